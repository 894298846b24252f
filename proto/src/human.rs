//! How both binaries print a span of time for people, so that `credd status`, `credd login`, the
//! daemon's errors and its notifications all read alike: the two largest units, space-separated
//! (`3h 12m`, `14m 59s`, `2d 1h`, `40s`), rounded to the nearest of the smaller unit, never
//! printed in another style.

/// `secs` as the two largest non-zero units: `2d 1h`, `3h 12m`, `3h`, `14m 59s`, `15m`, `40s`.
pub fn duration(secs: u64) -> String {
    // Rounded to the nearest of the smaller unit shown, so a countdown taken a moment after the
    // hour and ten minutes mark reads `1h 10m`, not `1h 9m` (which can carry: `1h 59m 40s` is `2h`).
    let sizes = [86_400, 3600, 60, 1];
    let secs = match sizes.iter().position(|&size| secs >= size) {
        Some(first) => {
            let step = sizes.get(first + 1).copied().unwrap_or(1);
            (secs + step / 2) / step * step
        }
        None => secs,
    };
    let units = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let Some(first) = units.iter().position(|(n, _)| *n > 0) else {
        return "0s".to_owned();
    };
    let mut out = format!("{}{}", units[first].0, units[first].1);
    if let Some((n, unit)) = units.get(first + 1)
        && *n > 0
    {
        out.push_str(&format!(" {n}{unit}"));
    }
    out
}

/// A count with its noun in the right number: `1 profile`, `2 profiles`, `0 profiles`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::{count, duration};

    #[test]
    fn durations_read_alike_everywhere() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(40), "40s");
        assert_eq!(duration(120), "2m");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(899), "14m 59s");
        assert_eq!(duration(900), "15m");
        assert_eq!(duration(3 * 3600 + 12 * 60 + 5), "3h 12m");
        assert_eq!(duration(3 * 3600 + 5), "3h");
        assert_eq!(duration(2 * 86_400 + 3600), "2d 1h");
        assert_eq!(duration(2 * 86_400 + 59), "2d");
        // The dropped unit rounds the one shown, and may carry.
        assert_eq!(duration(3600 + 9 * 60 + 59), "1h 10m");
        assert_eq!(duration(3600 + 59 * 60 + 40), "2h");
        assert_eq!(duration(86_400 - 1), "1d");
        assert_eq!(duration(3 * 3600 + 12 * 60 + 29), "3h 12m");
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!(count(1, "profile", "profiles"), "1 profile");
        assert_eq!(count(0, "profile", "profiles"), "0 profiles");
        assert_eq!(count(150, "profile", "profiles"), "150 profiles");
    }
}
