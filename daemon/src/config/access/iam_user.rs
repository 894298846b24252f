//! `source = "iam-user"`: an IAM user's long-lived key from the shared credentials file, with an
//! optional MFA device that turns it into a GetSessionToken session.

use std::time::Duration;

use super::{AccessConfig, DEFAULT_REGION, RawAccess, SourceConfig};
use crate::config::checks::check_mfa_serial;
use crate::config::{ConfigError, Validator};

/// GetSessionToken limits for IAM users.
pub const SESSION_MIN: Duration = Duration::from_secs(900);
pub const SESSION_MAX: Duration = Duration::from_secs(129_600);
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUserConfig {
    /// The shared-credentials profile holding the IAM user's long-lived key.
    pub aws_profile: String,
    /// With it, `credd login` trades the key and a code for a GetSessionToken session.
    pub mfa_serial: Option<String>,
}

impl Validator<'_> {
    /// The `iam-user` keys of `[access]`; `regions` is the caller's.
    pub(super) fn iam_user(&self, raw: RawAccess) -> Result<AccessConfig, ConfigError> {
        let aws_profile = match raw.aws_profile {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(self.at(&p, "aws_profile must not be empty"));
            }
            Some(p) => p.into_inner(),
            None => "default".to_owned(),
        };
        let mfa_serial = match raw.mfa_serial {
            Some(m) => {
                check_mfa_serial(m.get_ref())
                    .map_err(|msg| self.at(&m, format!("mfa_serial: {msg}")))?;
                Some(m.into_inner())
            }
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
                aws_profile,
                mfa_serial,
            }),
            session_duration,
            regions: vec![DEFAULT_REGION.to_owned()],
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{GOOD, err, ok};
    use crate::config::{AccessSourceKind, DEFAULT_SESSION_DURATION};

    #[test]
    fn iam_user_defaults() {
        let c = ok(&GOOD
            .replace("aws_profile = \"access\"\n", "")
            .replace("regions = [\"us-east-1\", \"us-west-2\"]\n", ""));
        assert_eq!(c.access.kind(), AccessSourceKind::IamUser);
        assert_eq!(c.access.iam_user().unwrap().aws_profile, "default");
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
}
