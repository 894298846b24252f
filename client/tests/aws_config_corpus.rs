//! `credd import` against a corpus of real-world `~/.aws/config` files
//! (`aws_config_corpus/NAME.config`, with `NAME.credentials` when the keys live there and
//! `NAME.credd.toml` when a credd config exists already): each maps to `NAME.expected` (the credd
//! config written, then the report), a second run changes nothing, and nothing hand-written is
//! ever changed. `CREDD_UPDATE_CORPUS=1` rewrites the expected files (read them before committing).

use std::path::{Path, PathBuf};

use credd::aws_config::{self, AccessOutcome, AwsFiles, FileKind, Plan, ProfileFile};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_config_corpus")
}

/// Reads a corpus file as `credd import` does, named by its file name alone (stable locations).
fn read(name: &str, kind: FileKind) -> ProfileFile {
    let path = corpus().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => aws_config::parse::parse(&text, name, kind).unwrap(),
        Err(_) if kind == FileKind::Credentials => ProfileFile::default(),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn files(case: &str) -> AwsFiles {
    AwsFiles {
        config: read(&format!("{case}.config"), FileKind::Config),
        credentials: read(&format!("{case}.credentials"), FileKind::Credentials),
    }
}

fn existing(case: &str) -> String {
    std::fs::read_to_string(corpus().join(format!("{case}.credd.toml"))).unwrap_or_default()
}

/// The report, one line per fact, as the expected file holds it after the config.
fn report(plan: &Plan) -> String {
    let mut out = String::new();
    match &plan.access {
        AccessOutcome::Added { source, from } => {
            out.push_str(&format!("access: added {source}: {from}\n"))
        }
        AccessOutcome::Kept { source } => out.push_str(&format!("access: kept {source}\n")),
        AccessOutcome::NotFound => out.push_str("access: none\n"),
    }
    for p in &plan.added {
        out.push_str(&format!(
            "added: {} ({}){}\n",
            p.profile,
            p.role_arn
                .clone()
                .or(p.sso_role.clone())
                .unwrap_or_default(),
            p.via
                .as_deref()
                .map(|v| format!(" via {v}"))
                .unwrap_or_default()
        ));
    }
    for p in &plan.unchanged {
        if p.profile == p.from {
            out.push_str(&format!("unchanged: {}\n", p.profile));
        } else {
            out.push_str(&format!(
                "unchanged: {} (configured as {})\n",
                p.from, p.profile
            ));
        }
    }
    for s in &plan.skipped {
        out.push_str(&format!(
            "skipped: {} [{}]: {}\n",
            s.at, s.profile, s.reason
        ));
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if let Some(k) = &plan.key {
        out.push_str(&format!(
            "key: {} at {} -> {}\n",
            k.access_key_id.as_deref().unwrap_or("?"),
            k.at,
            k.command
        ));
    }
    out
}

const SEPARATOR: &str = "\n#### report (not part of the config) ####\n";

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".config").map(str::to_owned)
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_corpus_file_maps_as_expected() {
    let update = std::env::var_os("CREDD_UPDATE_CORPUS").is_some();
    let cases = cases();
    assert!(cases.len() >= 12, "{cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let plan = aws_config::plan(&files(case), &existing(case)).unwrap();
        let got = format!("{}{SEPARATOR}{}", plan.text, report(&plan));
        let expected_path = corpus().join(format!("{case}.expected"));
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{case}: got\n{got}\n--- expected ({}):\n{expected}",
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_second_run_changes_nothing() {
    for case in cases() {
        let files = files(&case);
        let first = aws_config::plan(&files, &existing(&case)).unwrap();
        let second = aws_config::plan(&files, &first.text).unwrap();
        assert!(!second.changes(), "{case}: {second:?}");
        assert_eq!(second.text, first.text, "{case}");
        assert!(second.added.is_empty(), "{case}");
        let mut before: Vec<_> = first.added.iter().chain(&first.unchanged).collect();
        before.sort_by(|a, b| a.from.cmp(&b.from));
        let mut after: Vec<_> = second.unchanged.iter().collect();
        after.sort_by(|a, b| a.from.cmp(&b.from));
        assert_eq!(before, after, "{case}");
    }
}

#[test]
fn hand_written_lines_are_never_changed() {
    for case in cases() {
        let mine = existing(&case);
        let plan = aws_config::plan(&files(&case), &mine).unwrap();
        // Every line of the hand-written file is still there, in order: the import only adds.
        let mut new_lines = plan.text.lines();
        for line in mine.lines() {
            assert!(
                new_lines.any(|l| l == line),
                "{case}: lost or changed {line:?}"
            );
        }
    }
}

#[test]
fn no_secret_reaches_the_plan_or_its_report() {
    for case in cases() {
        let plan = aws_config::plan(&files(&case), &existing(&case)).unwrap();
        let all = format!(
            "{}{}{:?}{}",
            plan.text,
            report(&plan),
            files(&case),
            serde_json::to_string(&plan).unwrap()
        );
        for secret in ["EXAMPLEKEY", "EXAMPLETOKEN"] {
            assert!(!all.contains(secret), "{case}: a secret leaked");
        }
    }
}

/// Found by the `aws_config_import` fuzz target (tests/fuzz/regressions/aws_config_import/): a
/// web identity profile whose `role_arn` is no role ARN (here a later `[profile ci]` overriding
/// the first) became an `[access]` the daemon refuses; it is skipped, saying why.
#[test]
fn a_web_identity_role_that_is_no_role_arn_is_not_imported() {
    let config = "[profile ci]\nrole_arn = arn:aws:iam::999999999999:role/GithubActions\n\
                  web_identity_token_file = /var/run/token\n\
                  [profile ci]\nrole_arn = arn:aws:ia = ci\n";
    let files = AwsFiles {
        config: aws_config::parse::parse(config, "config", FileKind::Config).unwrap(),
        credentials: ProfileFile::default(),
    };
    let plan = aws_config::plan(&files, "").unwrap();
    assert_eq!(plan.access, AccessOutcome::NotFound, "{}", plan.text);
    assert!(!plan.text.contains("[access]"), "{}", plan.text);
    let skipped = &plan.skipped[0];
    assert_eq!(skipped.profile, "ci");
    assert!(skipped.reason.contains("role_arn"), "{}", skipped.reason);
}

/// Found by the `aws_config_import` fuzz target (tests/fuzz/regressions/aws_config_import/): an
/// `mfa_serial` STS would refuse went into `[access]`, which the daemon then refused; it is left
/// out, with a note.
#[test]
fn an_mfa_serial_sts_refuses_is_not_imported() {
    let config = "[default]\nregion = eu-west-1\nmfa_serial = arn:awss]\n";
    let credentials = "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n";
    let files = AwsFiles {
        config: aws_config::parse::parse(config, "config", FileKind::Config).unwrap(),
        credentials: aws_config::parse::parse(credentials, "credentials", FileKind::Credentials)
            .unwrap(),
    };
    let plan = aws_config::plan(&files, "").unwrap();
    assert!(plan.text.contains("[access]"), "{}", plan.text);
    assert!(!plan.text.contains("mfa_serial"), "{}", plan.text);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("mfa_serial not imported")),
        "{:?}",
        plan.notes
    );
}

/// Found by the `aws_config_import` fuzz target (tests/fuzz/regressions/aws_config_import/): with
/// two IAM users' keys, the first import took the one its profiles come from as `[access]`, key
/// in the keychain; a second import took the other key for that `[access]` (which names no
/// profile) and no longer saw the profile it had written as there already.
#[test]
fn importing_again_picks_the_same_of_two_iam_users() {
    let config = "[profile access]\nmfa_serial = arn:aws:iam::111111111111:mfa/erin\n\
                  [profile ci-bot]\nregion = eu-west-1\n\
                  [profile ci-deploy]\nrole_arn = arn:aws:iam::333333333333:role/CiDeploy\n\
                  source_profile = ci-bot\n";
    let credentials = "[access]\naws_access_key_id = AKIAACCESSEXAMPLE001\n\
                       aws_secret_access_key = x\n\
                       [ci-bot]\naws_access_key_id = AKIACIBOTEXAMPLE0001\n\
                       aws_secret_access_key = y\n";
    let files = AwsFiles {
        config: aws_config::parse::parse(config, "config", FileKind::Config).unwrap(),
        credentials: aws_config::parse::parse(credentials, "credentials", FileKind::Credentials)
            .unwrap(),
    };
    let first = aws_config::plan(&files, "").unwrap();
    assert!(
        first.added.iter().any(|p| p.profile == "ci-deploy"),
        "{}",
        first.text
    );
    let second = aws_config::plan(&files, &first.text).unwrap();
    assert!(!second.changes(), "{second:?}");
    let again: Vec<_> = second
        .unchanged
        .iter()
        .map(|p| p.profile.as_str())
        .collect();
    assert_eq!(again, ["ci-deploy"], "{}", first.text);
}
