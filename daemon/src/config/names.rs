//! Naming a profile that is not there: the close names ("did you mean"), and a list of the
//! known ones short enough for one line of an error however many there are.

/// Names listed in an error before the rest are only counted: 150 profiles make a 2 KB line.
const LISTED: usize = 10;

/// At most [`LISTED`] names, then how many more and where to see them all.
pub fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none configured".to_owned();
    }
    if names.len() <= LISTED + 1 {
        return names.join(", ");
    }
    format!(
        "{}, and {} more (`credd profiles` lists them)",
        names[..LISTED].join(", "),
        names.len() - LISTED
    )
}

/// The known names close to `name` (a typo, another case, a missing suffix), closest first, at
/// most three.
pub fn did_you_mean(name: &str, known: &[String]) -> Vec<String> {
    let wanted = name.to_lowercase();
    let mut close: Vec<(f64, &String)> = known
        .iter()
        .filter_map(|k| {
            let candidate = k.to_lowercase();
            let score = strsim::jaro_winkler(&wanted, &candidate);
            let edits = strsim::damerau_levenshtein(&wanted, &candidate);
            let near = edits <= (wanted.chars().count() / 4).max(1)
                || score >= 0.9
                || (wanted.len() >= 3 && candidate.starts_with(&wanted));
            near.then_some((score, k))
        })
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    close.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

/// `; did you mean "prod"?` (or several), or nothing when no name is close.
pub fn suggestion(name: &str, known: &[String]) -> String {
    match did_you_mean(name, known).as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one:?}?"),
        several => format!(
            "; did you mean one of {}?",
            several
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
