//! The IAM user as a [`Source`]: its key, with an MFA code when `mfa_serial` asks for one;
//! unattended without MFA or with `mfa_command`, which also renews an MFA session.

use std::sync::Arc;

use super::IamUser;
use credd_proto::Finding;

use crate::access::source::{Context, Established, Login, LoginRequest, Source};
use crate::access::{AccessError, AccessSession, BoxFuture};
use crate::config::KeySource;

impl Source for IamUser {
    fn is_unattended(&self) -> bool {
        self.mfa_serial.is_none() || self.mfa_command.is_some()
    }

    fn mfa_serial(&self) -> Option<&str> {
        self.mfa_serial.as_deref()
    }

    fn login(
        self: Arc<Self>,
        cx: Context,
        request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>> {
        Box::pin(async move {
            match self
                .start_session(&cx.sts, &cx.regions, request.mfa_code)
                .await
            {
                Ok(made) => Ok(Login::Done(made.into())),
                Err(AccessError::MfaRequired { serial }) => Ok(Login::NeedsMfa { serial }),
                Err(e) => Err(e),
            }
        })
    }

    fn renewal(&self, session: &AccessSession) -> Option<String> {
        self.mfa_command
            .as_ref()
            .filter(|_| session.mfa)
            .map(|c| format!("with mfa_command {}", c.program()))
    }

    fn renew(
        self: Arc<Self>,
        cx: Context,
        session: Arc<AccessSession>,
    ) -> Option<BoxFuture<'static, Result<Established, AccessError>>> {
        Source::renewal(&*self, &session)?;
        Some(Box::pin(async move {
            // Given no code, the login runs mfa_command for one.
            (self.start_session(&cx.sts, &cx.regions, None).await).map(Established::from)
        }))
    }

    fn checks(&self) -> Vec<Finding> {
        vec![self.mfa_check(), self.key_storage_check()]
    }

    fn iam_user(&self) -> Option<&IamUser> {
        Some(self)
    }
}

impl IamUser {
    /// `mfa`: without `mfa_serial` the key alone is the way in.
    fn mfa_check(&self) -> Finding {
        match (&self.mfa_serial, &self.mfa_command) {
            (None, _) => Finding::warning(
                "mfa",
                "no MFA: the IAM user's long-lived key alone signs every AssumeRole",
            )
            .why(
                "whoever copies the key (a backup, a leaked dotfile, malware) can assume every \
                 role the user may, from anywhere, until the key is deleted",
            )
            .fix(
                "give the IAM user an MFA device, set `mfa_serial` in [access] (with \
                 `mfa_command` for unattended codes) and run `credd login`; then require \
                 aws:MultiFactorAuthPresent in the roles' trust policies",
            ),
            (Some(serial), None) => Finding::ok("mfa", format!("{serial}, a code at each login")),
            (Some(serial), Some(c)) => Finding::ok(
                "mfa",
                format!("{serial}, codes from mfa_command {}", c.program()),
            ),
        }
    }

    /// `key-storage`: the long-lived key in the OS keychain, not in a plain-text file.
    fn key_storage_check(&self) -> Finding {
        match &self.key {
            KeySource::Keychain => Finding::ok("key-storage", self.stored_in()),
            KeySource::File { aws_profile } => Finding::warning(
                "key-storage",
                format!(
                    "the long-lived key is read from {} [{aws_profile}], in plain text",
                    self.credentials_path().display()
                ),
            )
            .why(
                "any program running as you, and any backup of your home directory, can read \
                 and copy it",
            )
            .fix(format!(
                "move it into the OS keychain: `credd key import --profile {aws_profile} \
                 --delete`, then remove aws_profile (or `key = \"file\"`) from [access]"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use credd_proto::Severity;

    use crate::access::source::Source;
    fn checks(access: &str) -> Vec<(String, Severity, String)> {
        let text = format!("[access]\nsource = \"iam-user\"\n{access}");
        let config = crate::config::parse(std::path::Path::new("/c.toml"), &text).expect("valid");
        let crate::config::SourceConfig::IamUser(c) = &config.access.source else {
            panic!("an iam-user config");
        };
        let user = super::IamUser::new(
            c,
            config.access.session_duration,
            Some("/home/alice/.aws/credentials".into()),
            crate::access::command::Runner::System,
        );
        user.checks()
            .into_iter()
            .map(|f| {
                (
                    f.check,
                    f.severity,
                    f.found + " | " + &f.fix.unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn a_key_without_mfa_in_a_file_is_two_warnings() {
        let found = checks("aws_profile = \"access\"\n");
        assert_eq!(found[0].0, "mfa");
        assert_eq!(found[0].1, Severity::Warning, "{found:?}");
        assert_eq!(found[1].0, "key-storage");
        assert_eq!(found[1].1, Severity::Warning, "{found:?}");
        assert!(
            found[1]
                .2
                .contains("/home/alice/.aws/credentials [access], in plain text")
                && found[1]
                    .2
                    .contains("`credd key import --profile access --delete`"),
            "{found:?}"
        );
    }

    #[test]
    fn mfa_and_the_keychain_pass() {
        let found = checks("mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n");
        assert_eq!(
            found.iter().map(|f| f.1).collect::<Vec<_>>(),
            [Severity::Ok, Severity::Ok],
            "{found:?}"
        );
        assert!(
            found[0]
                .2
                .starts_with("arn:aws:iam::111111111111:mfa/alice, a code at each login")
        );
        assert!(found[1].2.starts_with("keychain: "), "{found:?}");
    }
}
