//! `credd import` (the client's `credd::aws_config`) checked against the two authorities it
//! answers to: every config it writes for the corpus (`client/tests/aws_config_corpus`) is one
//! this daemon's own config checks accept, and its reading of each AWS file is the AWS SDK's own
//! (aws-config's profile-file parser, which the client cannot link).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};
use credd::aws_config::{self as import, AwsFiles, FileKind, ProfileFile};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/aws_config_corpus")
}

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".config").map(str::to_owned)
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "{cases:?}");
    cases
}

fn text(name: &str) -> Option<String> {
    std::fs::read_to_string(corpus().join(name)).ok()
}

#[test]
fn every_config_the_import_writes_passes_the_daemons_checks() {
    for case in cases() {
        let files = AwsFiles {
            config: import::parse::parse(
                &text(&format!("{case}.config")).unwrap(),
                "config",
                FileKind::Config,
            )
            .unwrap(),
            credentials: text(&format!("{case}.credentials"))
                .map(|t| import::parse::parse(&t, "credentials", FileKind::Credentials).unwrap())
                .unwrap_or_default(),
        };
        let existing = text(&format!("{case}.credd.toml")).unwrap_or_default();
        let plan = import::plan(&files, &existing).unwrap();
        let path = Path::new("/corpus").join(format!("{case}.toml"));
        match super::parse(&path, &plan.text) {
            Ok(config) => {
                let imported = plan.added.iter().chain(&plan.unchanged);
                for p in imported {
                    assert!(
                        config.profiles.contains_key(&p.profile),
                        "{case}: {}",
                        p.profile
                    );
                }
            }
            Err(e) => panic!(
                "{case}: the daemon refuses what the import wrote: {e}\n{}",
                plan.text
            ),
        }
    }
}

#[tokio::test]
async fn the_import_reads_each_file_as_the_aws_sdk_does() {
    for case in cases() {
        let config = text(&format!("{case}.config")).unwrap();
        let credentials = text(&format!("{case}.credentials")).unwrap_or_default();
        let fs = Fs::from_map(HashMap::from([
            ("/home/u/.aws/config".to_owned(), config.clone()),
            ("/home/u/.aws/credentials".to_owned(), credentials.clone()),
        ]));
        let env = Env::from_slice(&[("HOME", "/home/u")]);
        let sdk = aws_config::profile::load(&fs, &env, &EnvConfigFiles::default(), None)
            .await
            .unwrap_or_else(|e| panic!("{case}: the SDK refuses it: {e}"));
        let ours: ProfileFile = import::parse::parse(&config, "config", FileKind::Config).unwrap();
        let creds: ProfileFile =
            import::parse::parse(&credentials, "credentials", FileKind::Credentials).unwrap();

        let mut names: Vec<&str> = ours
            .profiles
            .keys()
            .chain(creds.profiles.keys())
            .map(String::as_str)
            .collect();
        names.sort();
        names.dedup();
        let mut sdk_names: Vec<&str> = sdk.profiles().collect();
        sdk_names.sort();
        assert_eq!(names, sdk_names, "{case}: profiles");
        let mut sessions: Vec<&str> = ours.sso_sessions.keys().map(String::as_str).collect();
        let mut sdk_sessions: Vec<&str> = sdk.sso_sessions().collect();
        sdk_sessions.sort();
        sessions.sort();
        assert_eq!(sessions, sdk_sessions, "{case}: sso sessions");

        for (name, section) in &ours.profiles {
            let theirs = sdk.get_profile(name).unwrap();
            for (key, property) in &section.properties {
                // The credentials file wins where both have a key.
                if creds
                    .profiles
                    .get(name)
                    .is_some_and(|c| c.properties.contains_key(key))
                {
                    continue;
                }
                match &property.value {
                    Some(value) => assert_eq!(
                        theirs.get(key),
                        Some(value.as_str()),
                        "{case}: [{name}] {key}"
                    ),
                    None => assert!(theirs.get(key).is_some(), "{case}: [{name}] {key}"),
                }
            }
        }
        for (name, section) in &ours.sso_sessions {
            let theirs = sdk.sso_session(name).unwrap();
            for (key, property) in &section.properties {
                assert_eq!(
                    theirs.get(key),
                    property.value.as_deref(),
                    "{case}: {name} {key}"
                );
            }
        }
    }
}
