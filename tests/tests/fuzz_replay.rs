//! Replays every input kept for the fuzz targets of `tests/fuzz/` (its `corpus/<target>/`, the
//! minimized corpus, and `regressions/<target>/`, each crash a fuzzer found) through the same
//! entry points the targets call, as plain tests on stable Rust: a parser change that breaks an
//! invariant on any of them fails here, without nightly or libFuzzer.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; `None` when it does not exist.
fn inputs(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Runs `entry` on every corpus and regression input of `target`. The corpus must be there and
/// hold something (an empty one would pass vacuously); the regressions are there once a crash
/// was found.
fn replay(target: &str, entry: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let corpus = fuzz_dir().join("corpus").join(target);
    let mut files = match inputs(&corpus) {
        Some(files) if !files.is_empty() => files,
        Some(_) => panic!("{} is empty: run tests/fuzz/run", corpus.display()),
        None => panic!("{} is missing: run tests/fuzz/run", corpus.display()),
    };
    let regressions = fuzz_dir().join("regressions").join(target);
    match inputs(&regressions) {
        Some(found) if found.is_empty() => {
            panic!(
                "{} is empty: remove it or add the crash",
                regressions.display()
            )
        }
        Some(found) => files.extend(found),
        None => {}
    }
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable input");
        if std::panic::catch_unwind(|| entry(&data)).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs break an invariant (replay one with `cargo +nightly fuzz run \
         --fuzz-dir tests/fuzz {target} FILE`):\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn control_frame() {
    replay("control_frame", credd_proto::fuzzing::control_frame);
}

#[test]
fn http_guard() {
    replay("http_guard", credd_daemon::fuzzing::http_guard);
}

#[test]
fn config() {
    replay("config", credd_daemon::fuzzing::config);
}

#[test]
fn saml() {
    replay("saml", credd_daemon::fuzzing::saml);
}

#[test]
fn sso_cache() {
    replay("sso_cache", credd_daemon::fuzzing::sso_cache);
}

#[test]
fn aws_config_import() {
    replay("aws_config_import", |data| {
        for w in credd::fuzzing::aws_config_import(data) {
            credd_daemon::fuzzing::imported_config(
                w.before.as_deref(),
                &w.text,
                &w.profiles,
                w.access,
            );
        }
    });
}

#[test]
fn oauth_callback() {
    replay("oauth_callback", credd_daemon::fuzzing::oauth_callback);
}

/// Every fuzz target is replayed here: a new target without its test fails.
#[test]
fn every_target_is_replayed() {
    let replayed = [
        "aws_config_import",
        "config",
        "control_frame",
        "http_guard",
        "oauth_callback",
        "saml",
        "sso_cache",
    ];
    let targets = inputs(&fuzz_dir().join("fuzz_targets")).expect("tests/fuzz/fuzz_targets");
    let mut names: Vec<String> = targets
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.strip_suffix(".rs")?.to_owned()))
        .collect();
    names.sort();
    assert_eq!(names, replayed);
}
