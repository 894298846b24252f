//! The IAM user's key in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`): read with the SDK's own profile parser, and taken out of the file once
//! `credd key import` has moved it into the keychain (the file rewritten through a temp file and
//! a rename, keeping its mode).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_types::os_shim_internal::{Env, Fs};
use credd_proto::Secret;
use zeroize::Zeroizing;

use crate::creds::AwsCredentials;

/// The properties that make up a key in a profile: what `credd key import --delete` removes.
pub const KEY_PROPERTIES: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// What is wrong with the key in the shared credentials file, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "{} does not exist, so it holds no IAM user key for profile [{profile}]: run `credd key \
         add` to keep the key in the OS keychain (and remove aws_profile and key = \"file\" from \
         [access]), or put the key in that file",
        path.display()
    )]
    Missing { path: PathBuf, profile: String },
    #[error("{} could not be read ({detail}): check its permissions", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error("{detail}: fix that line of {}", path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error(
        "{} has no profile [{profile}] ({}): add the IAM user's key there under [{profile}], or \
         set aws_profile in [access] to the profile that holds it",
        path.display(),
        known_profiles(known)
    )]
    NoProfile {
        path: PathBuf,
        profile: String,
        known: Vec<String>,
    },
    #[error(
        "profile [{profile}] in {} has no {missing}: an IAM user's key needs aws_access_key_id \
         and aws_secret_access_key",
        path.display()
    )]
    Incomplete {
        path: PathBuf,
        profile: String,
        missing: &'static str,
    },
    #[error(
        "{} could not be rewritten ({detail}); it is unchanged, and the keychain holds the key: \
         delete the aws_access_key_id and aws_secret_access_key lines of [{profile}] yourself",
        path.display()
    )]
    Rewrite {
        path: PathBuf,
        profile: String,
        detail: String,
    },
}

fn known_profiles(known: &[String]) -> String {
    if known.is_empty() {
        "it has none".to_owned()
    } else {
        let names: Vec<String> = known.iter().map(|p| format!("[{p}]")).collect();
        format!("it has {}", names.join(", "))
    }
}

/// The shared credentials file: `configured` (the engine's wiring), else
/// `AWS_SHARED_CREDENTIALS_FILE` (a leading `~/` is the home directory, as for the SDKs), else
/// `~/.aws/credentials`.
pub fn credentials_path(configured: Option<&Path>) -> PathBuf {
    if let Some(path) = configured {
        return path.to_path_buf();
    }
    let home = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
            .unwrap_or_default()
    };
    match std::env::var("AWS_SHARED_CREDENTIALS_FILE") {
        Ok(p) if !p.is_empty() => match p.strip_prefix("~/") {
            Some(rest) => home().join(rest),
            None => PathBuf::from(p),
        },
        _ => home().join(".aws").join("credentials"),
    }
}

/// The key of `profile` in the credentials file at `path`, read afresh. A profile holding a
/// session token too is returned with it (temporary credentials, not an IAM user's key): the
/// caller decides.
pub async fn read_key(path: &Path, profile: &str) -> Result<AwsCredentials, KeyFileError> {
    match fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing {
                path: path.to_path_buf(),
                profile: profile.to_owned(),
            });
        }
        Err(e) => {
            return Err(KeyFileError::Unreadable {
                path: path.to_path_buf(),
                detail: e.to_string(),
            });
        }
    }
    let files = EnvConfigFiles::builder()
        .with_file(EnvConfigFileKind::Credentials, path)
        .build();
    // No AWS_PROFILE or home lookups: the file and the profile are given.
    let env = Env::from_slice(&[]);
    let set = aws_config::profile::load(&Fs::real(), &env, &files, None)
        .await
        .map_err(|e| {
            // "error parsing PATH on line N:\n  what": positions only, never the line.
            let parse = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<aws_config::profile::ProfileParseError>());
            match parse {
                Some(p) => KeyFileError::Malformed {
                    path: path.to_path_buf(),
                    detail: p.to_string().replace(":\n  ", ": "),
                },
                None => KeyFileError::Unreadable {
                    path: path.to_path_buf(),
                    detail: crate::access::error_chain(&e),
                },
            }
        })?;
    let Some(found) = set.get_profile(profile) else {
        let mut known: Vec<String> = set.profiles().map(str::to_owned).collect();
        known.sort();
        return Err(KeyFileError::NoProfile {
            path: path.to_path_buf(),
            profile: profile.to_owned(),
            known,
        });
    };
    let property = |name: &'static str| {
        found
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| KeyFileError::Incomplete {
                path: path.to_path_buf(),
                profile: profile.to_owned(),
                missing: name,
            })
    };
    Ok(AwsCredentials {
        access_key_id: property("aws_access_key_id")?.trim().to_owned(),
        secret_access_key: Secret::new(property("aws_secret_access_key")?.trim()),
        session_token: found
            .get("aws_session_token")
            .filter(|t| !t.trim().is_empty())
            .map(|t| Secret::new(t.trim())),
        expiration: None,
    })
}

/// Whether `path` holds a key for `profile`, for advice (`credd key import` would find one).
pub async fn has_key(path: &Path, profile: &str) -> bool {
    read_key(path, profile).await.is_ok()
}

/// Removes the key lines ([`KEY_PROPERTIES`]) of `profile` from the credentials file at `path`,
/// and the whole section when nothing but comments and blank lines is left of it. Other
/// profiles and lines stay as they are. The file is replaced through a temp file in its
/// directory and a rename, with the same mode (through a symlink: the file it points to).
/// Returns whether anything was removed.
pub fn remove_key(path: &Path, profile: &str) -> Result<bool, KeyFileError> {
    let rewrite_error = |detail: String| KeyFileError::Rewrite {
        path: path.to_path_buf(),
        profile: profile.to_owned(),
        detail,
    };
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|e| KeyFileError::Unreadable {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?,
    );
    let Some(edited) = without_key(&text, profile) else {
        return Ok(false);
    };
    // A credentials file that is a link (a dotfiles repository, a synced folder) is rewritten
    // where it points: the link stays a link.
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| rewrite_error(e.to_string()))?
        }
        _ => path.to_path_buf(),
    };
    let path = target.as_path();
    let mode = fs::metadata(path)
        .map_err(|e| rewrite_error(e.to_string()))?
        .permissions()
        .mode();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".credentials.credd-")
        .tempfile_in(dir)
        .map_err(|e| rewrite_error(format!("a temp file in {}: {e}", dir.display())))?;
    // The temp file starts 0600 and gets the file's mode before anything else is written.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| rewrite_error(e.to_string()))?;
    tmp.write_all(edited.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| rewrite_error(e.to_string()))?;
    tmp.persist(path)
        .map_err(|e| rewrite_error(e.error.to_string()))?;
    Ok(true)
}

/// `text` without the key lines of every `[profile]` section (and without a section left with
/// nothing but comments and blank lines); `None` when it has none.
fn without_key(text: &str, profile: &str) -> Option<Zeroizing<String>> {
    /// One section: its header line (none for the lines before the first) and its lines.
    struct Section<'a> {
        name: Option<String>,
        lines: Vec<&'a str>,
    }
    let mut sections: Vec<Section> = vec![Section {
        name: None,
        lines: Vec::new(),
    }];
    for line in text.split_inclusive('\n') {
        match section_name(line) {
            Some(name) => sections.push(Section {
                name: Some(name),
                lines: vec![line],
            }),
            None => sections
                .last_mut()
                .expect("there is always a section")
                .lines
                .push(line),
        }
    }
    let mut removed = false;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    for section in &sections {
        if section.name.as_deref() != Some(profile) {
            section.lines.iter().for_each(|l| out.push_str(l));
            continue;
        }
        let (header, body) = section.lines.split_first().expect("a header");
        let kept: Vec<&str> = body
            .iter()
            .copied()
            .filter(|l| {
                let key = is_key_line(l);
                removed |= key;
                !key
            })
            .collect();
        let empty = kept.iter().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t.starts_with(';')
        });
        if empty {
            // A blank line that separated this section from the next stays, once.
            if kept.last().is_some_and(|l| l.trim().is_empty()) && !out.is_empty() {
                out.push('\n');
            }
        } else {
            out.push_str(header);
            kept.iter().for_each(|l| out.push_str(l));
        }
    }
    removed.then_some(out)
}

/// `[name]` (or `[ name ]`, with a comment after it) → `name`.
fn section_name(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?;
    let end = inner.find(']')?;
    let rest = inner[end + 1..].trim();
    if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) {
        return None;
    }
    Some(inner[..end].trim().to_owned())
}

/// `aws_secret_access_key = ...` and the like (any case, any spacing).
fn is_key_line(line: &str) -> bool {
    let Some((name, _)) = line.split_once('=') else {
        return false;
    };
    let name = name.trim().to_ascii_lowercase();
    KEY_PROPERTIES.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# my keys
[default]
aws_access_key_id = AKIADEFAULT000000000
aws_secret_access_key = defaultsecret

[access]
# alice's key
aws_access_key_id = AKIAACCESS0000000000
AWS_Secret_Access_Key=accesssecret
region = eu-west-1

[other]
aws_access_key_id = AKIAOTHER00000000000
aws_secret_access_key = othersecret
";

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("credentials");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[tokio::test]
    async fn a_profile_key_is_read_with_clear_errors_for_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), FILE, 0o600);
        let key = read_key(&path, "access").await.unwrap();
        assert_eq!(key.access_key_id, "AKIAACCESS0000000000");
        assert_eq!(key.secret_access_key.expose(), "accesssecret");
        assert!(key.session_token.is_none());

        let e = read_key(&path, "prod").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} has no profile [prod] (it has [access], [default], [other]): add the IAM \
                 user's key there under [prod], or set aws_profile in [access] to the profile \
                 that holds it",
                path.display()
            )
        );
        let missing = dir.path().join("nope");
        let e = read_key(&missing, "default").await.unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{} does not exist, so it holds no IAM user key for profile [default]: run \
                 `credd key add`",
                missing.display()
            )),
            "{e}"
        );
        let path = write(dir.path(), "[access]\naws_access_key_id = AKIA\n", 0o600);
        let e = read_key(&path, "access").await.unwrap_err();
        assert!(
            e.to_string().starts_with("profile [access] in ")
                && e.to_string().contains("has no aws_secret_access_key"),
            "{e}"
        );
        let path = write(dir.path(), "[access]\nsecret-in-a-bad-line\n", 0o600);
        let e = read_key(&path, "access").await.unwrap_err();
        assert!(matches!(e, KeyFileError::Malformed { .. }), "{e:?}");
        assert!(!e.to_string().contains("secret-in-a-bad-line"), "{e}");
        assert!(e.to_string().contains("on line 2"), "{e}");
    }

    #[test]
    fn removing_a_key_keeps_the_rest_of_the_section_and_the_other_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), FILE, 0o640);
        assert!(remove_key(&path, "access").unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            FILE.replace(
                "aws_access_key_id = AKIAACCESS0000000000\nAWS_Secret_Access_Key=accesssecret\n",
                ""
            )
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640,
            "the mode is kept"
        );
        assert!(
            !remove_key(&path, "access").unwrap(),
            "nothing left to remove"
        );
    }

    #[test]
    fn a_section_with_only_the_key_goes_entirely() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), FILE, 0o600);
        assert!(remove_key(&path, "default").unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("default"), "{text}");
        assert!(text.starts_with("# my keys\n\n[access]\n"), "{text}");
        assert!(
            text.contains("[other]\naws_access_key_id = AKIAOTHER"),
            "{text}"
        );
        assert!(remove_key(&path, "other").unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("other"), "{text}");
        assert!(text.ends_with("region = eu-west-1\n\n"), "{text:?}");
        // Only the file remains in the directory: the temp file was renamed over it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_linked_credentials_file_is_rewritten_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let dotfiles = dir.path().join("dotfiles");
        fs::create_dir(&dotfiles).unwrap();
        let real = write(&dotfiles, FILE, 0o600);
        let link = dir.path().join("credentials");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(remove_key(&link, "access").unwrap());
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link stays a link"
        );
        assert!(!fs::read_to_string(&real).unwrap().contains("AKIAACCESS"));
        assert_eq!(
            fs::read_dir(&dotfiles).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn section_headers_and_key_lines_are_recognized_as_the_sdks_write_them() {
        assert_eq!(section_name("[ access ] # x\n").as_deref(), Some("access"));
        assert_eq!(section_name("[access]\n").as_deref(), Some("access"));
        assert_eq!(section_name("aws = [x]\n"), None);
        assert!(is_key_line("aws_session_token=abc\n"));
        assert!(is_key_line("  AWS_ACCESS_KEY_ID  =  x\n"));
        assert!(!is_key_line("region = us-east-1\n"));
        assert!(!is_key_line("# aws_access_key_id\n"));
    }
}
