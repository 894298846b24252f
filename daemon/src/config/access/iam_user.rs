//! `source = "iam-user"`: an IAM user's long-lived key, from the OS keychain (`key =
//! "keychain"`, the default) or a profile of the shared credentials file (`aws_profile`, or `key =
//! "file"`), with an optional MFA device that turns it into a GetSessionToken session.

use std::time::Duration;

use super::{AccessConfig, DEFAULT_REGION, RawAccess, SourceConfig};
use crate::config::checks::check_mfa_serial;
use crate::config::{ConfigError, Validator};

/// GetSessionToken limits for IAM users.
pub const SESSION_MIN: Duration = Duration::from_secs(900);
pub const SESSION_MAX: Duration = Duration::from_secs(129_600);
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);

/// The shared-credentials profile `key = "file"` reads when `aws_profile` is not set.
pub const DEFAULT_AWS_PROFILE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUserConfig {
    /// Where the IAM user's long-lived key is kept.
    pub key: KeySource,
    /// With it, `credd login` trades the key and a code for a GetSessionToken session.
    pub mfa_serial: Option<String>,
    /// A program (and its arguments) that prints a code for `mfa_serial`, so the daemon logs in
    /// and renews the session by itself.
    pub mfa_command: Option<Vec<String>>,
}

/// `[access] key`: where the IAM user's long-lived key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The OS keychain entry `credd/aws-access-key` (`credd key add`, `credd key import`).
    Keychain,
    /// A profile of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
    /// `~/.aws/credentials`).
    File { aws_profile: String },
}

impl IamUserConfig {
    /// The shared-credentials profile the key is read from, with `key = "file"`.
    pub fn aws_profile(&self) -> Option<&str> {
        match &self.key {
            KeySource::File { aws_profile } => Some(aws_profile),
            KeySource::Keychain => None,
        }
    }
}

impl Validator<'_> {
    /// The `iam-user` keys of `[access]`; `regions` is the caller's.
    pub(super) fn iam_user(&self, raw: RawAccess) -> Result<AccessConfig, ConfigError> {
        let aws_profile = match raw.aws_profile {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(self.at(&p, "aws_profile must not be empty"));
            }
            other => other,
        };
        let key = match (raw.key, aws_profile) {
            (None, None) => KeySource::Keychain,
            (None, Some(p)) => KeySource::File {
                aws_profile: p.into_inner(),
            },
            (Some(k), p) => match (k.get_ref().as_str(), p) {
                ("keychain", None) => KeySource::Keychain,
                ("keychain", Some(p)) => {
                    return Err(self.at_key(
                        p.span(),
                        "aws_profile",
                        "key = \"keychain\" takes the IAM user's key from the OS keychain, and \
                         aws_profile names a profile of the shared credentials file: remove one \
                         (remove aws_profile to use the keychain, after `credd key import \
                         --profile NAME`; or remove key to read the file)",
                    ));
                }
                ("file", p) => KeySource::File {
                    aws_profile: p
                        .map_or_else(|| DEFAULT_AWS_PROFILE.to_owned(), |p| p.into_inner()),
                },
                (other, _) => {
                    return Err(self.at(
                        &k,
                        format!(
                            "key: expected \"keychain\" (the OS keychain, `credd key add`) or \
                             \"file\" (the shared credentials file), found {other:?}"
                        ),
                    ));
                }
            },
        };
        let mfa_serial = match raw.mfa_serial {
            Some(m) => {
                check_mfa_serial(m.get_ref())
                    .map_err(|msg| self.at(&m, format!("mfa_serial: {msg}")))?;
                Some(m.into_inner())
            }
            None => None,
        };
        let mfa_command = match raw.mfa_command {
            Some(list) if mfa_serial.is_none() => {
                return Err(self.at_key(
                    list.span(),
                    "mfa_command",
                    "mfa_command needs mfa_serial too: it prints the codes of the MFA device \
                     mfa_serial names; add mfa_serial, or remove mfa_command",
                ));
            }
            Some(list) => Some(self.command(list, "mfa_command")?),
            None => None,
        };
        let session_duration = match raw.session_duration {
            Some(d) => {
                self.duration_in(&d, "session_duration", (SESSION_MIN, SESSION_MAX), "STS")?
            }
            None => DEFAULT_SESSION_DURATION,
        };
        Ok(AccessConfig {
            source: SourceConfig::IamUser(IamUserConfig {
                key,
                mfa_serial,
                mfa_command,
            }),
            session_duration,
            regions: vec![DEFAULT_REGION.to_owned()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::KeySource;
    use crate::config::testing::{GOOD, err, ok};
    use crate::config::{AccessSourceKind, DEFAULT_SESSION_DURATION};

    #[test]
    fn iam_user_defaults() {
        let c = ok(&GOOD
            .replace("aws_profile = \"access\"\n", "")
            .replace("regions = [\"us-east-1\", \"us-west-2\"]\n", ""));
        assert_eq!(c.access.kind(), AccessSourceKind::IamUser);
        assert_eq!(c.access.iam_user().unwrap().key, KeySource::Keychain);
        assert_eq!(c.access.session_duration, DEFAULT_SESSION_DURATION);
        assert_eq!(c.access.regions, ["us-east-1"]);
        assert_eq!(c.access.sso(), None);
        assert_eq!(c.access.sso_access_role(), None);
    }

    #[test]
    fn iam_user_session_within_sts_limits() {
        let with =
            |d: &str| GOOD.replace("regions =", &format!("session_duration = {d:?}\nregions ="));
        assert_eq!(
            ok(&with("36h")).access.session_duration.as_secs(),
            36 * 3600
        );
        let e = err(&with("37h"));
        assert!(
            e.msg.contains("between 15m and 1day 12h (STS limits)"),
            "{e}"
        );
        assert_eq!(e.line, Some(12), "{e}");
    }

    #[test]
    fn sso_keys_are_refused_under_iam_user() {
        for (line, key) in [
            ("sso_session = \"acme\"", "sso_session"),
            (
                "sso_start_url = \"https://acme.awsapps.com/start\"",
                "sso_start_url",
            ),
            ("sso_region = \"us-east-1\"", "sso_region"),
            ("sso_login = \"device\"", "sso_login"),
            ("sso_account_id = \"111111111111\"", "sso_account_id"),
            ("sso_role_name = \"AccessAdmin\"", "sso_role_name"),
            ("sso_replicas = []", "sso_replicas"),
        ] {
            let e = err(&GOOD.replace("regions =", &format!("{line}\nregions =")));
            assert_eq!((e.line, e.col), (Some(12), Some(1)), "{e}");
            assert_eq!(
                e.msg,
                format!(
                    "{key} belongs to source = \"sso\", not \"iam-user\": set source = \"sso\", \
                     or remove it"
                )
            );
        }
    }

    #[test]
    fn empty_aws_profile_and_bad_mfa_serial() {
        let e = err(&GOOD.replace("aws_profile = \"access\"", "aws_profile = \" \""));
        assert_eq!(
            (e.line, e.msg.as_str()),
            (Some(10), "aws_profile must not be empty")
        );
        let e = err(&GOOD.replace("mfa/alice", "mfa/al ice"));
        assert!(
            e.msg.starts_with("mfa_serial: expected an MFA device ARN"),
            "{e}"
        );
    }

    /// `GOOD` with `line` after `mfa_serial` (line 12).
    fn with_line(line: &str) -> String {
        GOOD.replace("regions =", &format!("{line}\nregions ="))
    }

    #[test]
    fn mfa_command_is_a_program_and_its_arguments() {
        let c = ok(&with_line(
            r#"mfa_command = ["ykman", "oath", "accounts", "code", "-s", "aws"]"#,
        ));
        assert_eq!(
            c.access.iam_user().unwrap().mfa_command.as_deref(),
            Some(&["ykman", "oath", "accounts", "code", "-s", "aws"].map(String::from)[..])
        );
        assert_eq!(ok(GOOD).access.iam_user().unwrap().mfa_command, None);
        let e = err(&with_line("mfa_command = []"));
        assert_eq!((e.line, e.col), (Some(12), Some(15)), "{e}");
        assert!(
            e.msg
                .starts_with("mfa_command must name a program and its arguments"),
            "{e}"
        );
        let e = err(&with_line(r#"mfa_command = [" ", "code"]"#));
        assert_eq!(e.msg, "mfa_command: the program name is empty");
        let e = err(&with_line("mfa_command = \"ykman oath accounts code\""));
        assert!(e.msg.contains("expected a sequence"), "{e}");
    }

    #[test]
    fn mfa_command_needs_mfa_serial() {
        let text = with_line(r#"mfa_command = ["ykman", "oath", "accounts", "code", "-s", "aws"]"#)
            .replace("mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n", "");
        let e = err(&text);
        assert_eq!((e.line, e.col), (Some(11), Some(1)), "{e}");
        assert!(e.msg.starts_with("mfa_command needs mfa_serial too"), "{e}");
    }

    #[test]
    fn mfa_command_belongs_to_iam_user() {
        let e = err(&crate::config::testing::sso_with(
            r#"mfa_command = ["ykman"]"#,
        ));
        assert_eq!((e.line, e.col), (Some(7), Some(1)), "{e}");
        assert!(
            e.msg.starts_with(
                "mfa_command belongs to source = \"iam-user\", not \"sso\": Identity Center asks \
                 for MFA itself"
            ),
            "{e}"
        );
    }

    fn with_key(lines: &str) -> String {
        GOOD.replace("aws_profile = \"access\"", lines)
    }

    #[test]
    fn the_key_comes_from_the_keychain_unless_a_file_profile_is_named() {
        let key = |text: &str| ok(text).access.iam_user().unwrap().key.clone();
        assert_eq!(key(&with_key("")), KeySource::Keychain);
        assert_eq!(key(&with_key("key = \"keychain\"")), KeySource::Keychain);
        let file = |p: &str| KeySource::File {
            aws_profile: p.to_owned(),
        };
        assert_eq!(key(GOOD), file("access"));
        assert_eq!(key(&with_key("key = \"file\"")), file("default"));
        assert_eq!(
            key(&with_key("key = \"file\"\naws_profile = \"work\"")),
            file("work")
        );
        assert_eq!(
            ok(GOOD).access.iam_user().unwrap().aws_profile(),
            Some("access")
        );
        assert_eq!(
            ok(&with_key("")).access.iam_user().unwrap().aws_profile(),
            None
        );
    }

    #[test]
    fn key_keychain_with_aws_profile_says_to_remove_one() {
        let e = err(&with_key("key = \"keychain\"\n  aws_profile = \"access\""));
        assert_eq!((e.line, e.col), (Some(11), Some(3)), "{e}");
        assert!(
            e.msg.starts_with(
                "key = \"keychain\" takes the IAM user's key from the OS keychain, and \
                 aws_profile names a profile of the shared credentials file: remove one"
            ),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_source_lists_the_two() {
        let e = err(&with_key("key = \"kwallet\""));
        assert_eq!((e.line, e.col), (Some(10), Some(7)), "{e}");
        assert_eq!(
            e.msg,
            "key: expected \"keychain\" (the OS keychain, `credd key add`) or \"file\" (the \
             shared credentials file), found \"kwallet\""
        );
    }
}
