//! Every SDK reads the shared AWS files before the container route: a `[default]` profile that
//! holds credentials there wins over credd. `credd env` warns about it; `credd exec`, whose
//! command is pinned to one profile, also hides the shared credentials file from the command.

use std::path::PathBuf;

/// Keys that make a `[default]` profile supply credentials of its own.
const CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "credential_process",
    "role_arn",
    "sso_start_url",
    "sso_session",
    "web_identity_token_file",
    "credential_source",
];

pub struct Shadow {
    pub file: PathBuf,
    /// The shared credentials file (not the config file): safe to hide from a pinned command.
    pub is_credentials_file: bool,
}

fn aws_file(var: &str, default: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().join(".aws").join(default)))
}

/// The shared files whose `[default]` profile would shadow credd.
pub fn find() -> Vec<Shadow> {
    let mut found = Vec::new();
    for (var, name, is_credentials_file) in [
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials", true),
        ("AWS_CONFIG_FILE", "config", false),
    ] {
        let Some(file) = aws_file(var, name) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if default_has_credentials(&text) {
            found.push(Shadow {
                file,
                is_credentials_file,
            });
        }
    }
    found
}

/// The shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) and
/// the profiles in it that hold a long-lived key in plain text (`aws_secret_access_key`, with no
/// `aws_session_token`: a temporary key expires by itself).
pub fn plaintext_keys() -> Option<(PathBuf, Vec<String>)> {
    let file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")?;
    let text = std::fs::read_to_string(&file).ok()?;
    Some((file, sections_with_secret_keys(&text)))
}

/// The INI text's sections that set `aws_secret_access_key` and no `aws_session_token`.
fn sections_with_secret_keys(text: &str) -> Vec<String> {
    let mut found: Vec<(String, bool, bool)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            found.push((section.trim().to_owned(), false, false));
        } else if let Some((key, value)) = line.split_once('=')
            && let Some(last) = found.last_mut()
            && !value.trim().is_empty()
        {
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_secret_access_key" => last.1 = true,
                "aws_session_token" => last.2 = true,
                _ => {}
            }
        }
    }
    found
        .into_iter()
        .filter(|(_, secret, token)| *secret && !*token)
        .map(|(name, ..)| name)
        .collect()
}

/// Whether the INI text's `[default]` section sets any credential key.
fn default_has_credentials(text: &str) -> bool {
    let mut in_default = false;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_default = section.trim() == "default";
        } else if in_default
            && let Some((key, _)) = line.split_once('=')
            && CREDENTIAL_KEYS.contains(&key.trim().to_ascii_lowercase().as_str())
        {
            return true;
        }
    }
    false
}

pub fn warn(shadow: &Shadow, hidden: bool) {
    if hidden {
        eprintln!(
            "credd: note: the [default] profile in {} holds credentials that SDKs would use \
             before credd; hiding that file from this command",
            shadow.file.display()
        );
    } else {
        eprintln!(
            "credd: warning: the [default] profile in {} holds credentials, and SDKs use them \
             before credd; rename that profile (e.g. to [access]) so credd's credentials are used",
            shadow.file.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{default_has_credentials, sections_with_secret_keys};

    #[test]
    fn long_lived_keys_are_found_and_temporary_ones_are_not() {
        let text = "[access]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n\
                    [temp]\naws_access_key_id=ASIA\naws_secret_access_key=s\naws_session_token=t\n\
                    [empty]\naws_secret_access_key =\n[ old ]\nAWS_SECRET_ACCESS_KEY=x\n";
        assert_eq!(sections_with_secret_keys(text), ["access", "old"]);
        assert!(sections_with_secret_keys("region = x\n").is_empty());
    }

    #[test]
    fn default_section_with_keys_is_found() {
        assert!(default_has_credentials(
            "[default]\naws_access_key_id = AKID\n"
        ));
        assert!(default_has_credentials(
            "[ default ]\nCredential_Process=x\n"
        ));
        assert!(!default_has_credentials(
            "[default]\nregion = us-east-1\n[access]\naws_access_key_id=A\n"
        ));
        assert!(!default_has_credentials("[profile default]\nregion=x\n"));
        assert!(!default_has_credentials(""));
    }
}
