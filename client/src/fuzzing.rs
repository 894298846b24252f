//! Entry points for the fuzz targets (`tests/fuzz/`) and their corpus replay (credd-tests'
//! `fuzz_replay`): `credd import`'s reading of `~/.aws/config` and `~/.aws/credentials` and its
//! plan, on arbitrary bytes, panicking when an invariant breaks. Not an API.

use crate::aws_config::{self, AwsFiles, FileKind, ProfileFile, parse};

/// What one import wrote, for the caller to check against the daemon's config checks (this
/// crate does not link the daemon): the config it started from (`None`: none), the text it
/// wrote, and the profiles it reports as imported.
pub struct Written {
    pub before: Option<String>,
    pub text: String,
    pub profiles: Vec<String>,
    /// Whether the config has an `[access]` (the daemon refuses one without).
    pub access: bool,
}

/// `data`: the config file, then optionally a NUL and the credentials file, then optionally a NUL
/// and an existing credd config.
///
/// Invariants: a parse error names a line of its file; an import keeps every line of the
/// existing config, in order; a second import of its output changes nothing and reports every
/// profile as already there; no value of `aws_secret_access_key` or `aws_session_token` reaches
/// the parsed files, the plan or the config written.
pub fn aws_config_import(data: &[u8]) -> Vec<Written> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Vec::new();
    };
    let mut parts = text.splitn(3, '\0');
    let config_text = parts.next().unwrap_or_default();
    let credentials_text = parts.next();
    let existing = parts.next();
    let Some(config) = read(config_text, "config", FileKind::Config) else {
        return Vec::new();
    };
    let credentials = match credentials_text {
        Some(t) => match read(t, "credentials", FileKind::Credentials) {
            Some(c) => c,
            None => return Vec::new(),
        },
        None => ProfileFile::default(),
    };
    let files = AwsFiles {
        config,
        credentials,
    };
    let secrets = secrets(text);
    let mut written = Vec::new();
    let mut starts = vec![None];
    if let Some(existing) = existing {
        starts.push(Some(existing));
    }
    for before in starts {
        let Ok(first) = aws_config::plan(&files, before.unwrap_or_default()) else {
            continue;
        };
        if let Some(before) = before {
            let mut new_lines = first.text.lines();
            for line in before.lines() {
                assert!(new_lines.any(|l| l == line), "lost or changed {line:?}");
            }
        }
        let second = aws_config::plan(&files, &first.text).expect("the import reads its output");
        assert!(!second.changes(), "a second run changes: {second:?}");
        assert_eq!(second.text, first.text);
        let mut imported: Vec<_> = first.added.iter().chain(&first.unchanged).collect();
        imported.sort_by(|a, b| a.from.cmp(&b.from));
        let mut again: Vec<_> = second.unchanged.iter().collect();
        again.sort_by(|a, b| a.from.cmp(&b.from));
        assert_eq!(imported, again);
        let all = format!(
            "{}{:?}{:?}{}",
            first.text,
            files,
            first,
            serde_json::to_string(&first).expect("a plan serializes")
        );
        for secret in &secrets {
            assert!(
                !all.contains(secret.as_str()),
                "a secret leaked: {secret:?}"
            );
        }
        written.push(Written {
            before: before.map(str::to_owned),
            text: first.text.clone(),
            profiles: imported.iter().map(|p| p.profile.clone()).collect(),
            access: !matches!(first.access, aws_config::AccessOutcome::NotFound),
        });
    }
    written
}

fn read(text: &str, name: &str, kind: FileKind) -> Option<ProfileFile> {
    match parse::parse(text, name, kind) {
        Ok(file) => Some(file),
        Err(e) => {
            assert_eq!(e.at.file, name);
            let lines = text.split('\n').count();
            assert!((1..=lines).contains(&e.at.line), "{e:?} of {lines} lines");
            assert!(!e.message.is_empty());
            None
        }
    }
}

/// The secret keys' values in the input: long enough to tell apart, and found only once (so any
/// copy in the output comes from that line).
fn secrets(text: &str) -> Vec<String> {
    text.split(['\n', '\0'])
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let key = key.trim().to_ascii_lowercase();
            (key == "aws_secret_access_key" || key == "aws_session_token")
                .then(|| value.trim().to_owned())
        })
        .filter(|v| v.len() >= 12 && text.matches(v.as_str()).count() == 1)
        .collect()
}
