//! Access sources: how the administrative access-account session is obtained.
//!
//! Each source is one folder ([`iam_user`], [`sso`] for IAM Identity Center, [`web_identity`],
//! [`saml`]) behind one trait, [`source::Source`]. The engine owns caching, refresh, single
//! flight and persistence; a source only knows how to log in, renew itself, and what it is.
//! [`federated`] is what `web-identity` and `saml` share; [`command`] runs the commands they may
//! be configured with; [`loopback`] is the browser logins' redirect; [`persist`] keeps a session
//! across restarts.

pub mod command;
pub mod federated;
pub mod iam_user;
pub mod loopback;
pub mod persist;
pub mod saml;
pub mod source;
pub mod sso;
pub mod web_identity;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::creds::AwsCredentials;
use crate::sts::StsFailure;
use command::CommandError;
use federated::Federation;
use saml::SamlError;
use sso::{SsoError, SsoToken};
use web_identity::OidcError;

/// What the access session holds: credentials that sign STS calls, or bearer tokens for the
/// Identity Center portal.
#[derive(Debug, Clone)]
pub enum SessionCredential {
    /// The IAM user's key, or the MFA session from GetSessionToken.
    Signing(AwsCredentials),
    /// Identity Center access tokens, one per authorized Region, the home Region first.
    Bearer(Vec<SsoToken>),
}

/// The session everything else is assumed from.
#[derive(Debug, Clone)]
pub struct AccessSession {
    pub credential: SessionCredential,
    /// e.g. `arn:aws:iam::111111111111:user/alice`, when GetCallerIdentity answered.
    pub identity_arn: Option<String>,
    /// When the session is over for sure; `None` for a long-lived key, and for Identity Center,
    /// whose session lasts until a refresh is refused.
    pub expires_at: Option<SystemTime>,
    /// When the session is expected to end (shown, and warned about an hour ahead): the hard end,
    /// or Identity Center's login time plus the organization's session length.
    pub expected_end: Option<SystemTime>,
    /// Whether this session came from an MFA login (and so is worth persisting).
    pub mfa: bool,
    /// `web-identity` and `saml`: the identity provider's side.
    pub federation: Option<Federation>,
}

impl AccessSession {
    pub fn signing(&self) -> Option<&AwsCredentials> {
        match &self.credential {
            SessionCredential::Signing(c) => Some(c),
            SessionCredential::Bearer(_) => None,
        }
    }

    pub fn tokens(&self) -> &[SsoToken] {
        match &self.credential {
            SessionCredential::Bearer(t) => t,
            SessionCredential::Signing(_) => &[],
        }
    }

    /// When it ends, as far as anyone knows.
    pub fn ends_at(&self) -> Option<SystemTime> {
        self.expected_end.or(self.expires_at)
    }

    /// The RoleSessionName used when a profile sets none: the IAM user's name, so CloudTrail
    /// shows who acted.
    pub fn default_session_name(&self) -> String {
        session_name_from_arn(self.identity_arn.as_deref())
    }
}

/// A RoleSessionName from the last part of an identity's ARN (a user name, or the session name
/// of an assumed role such as Identity Center's `alice@acme.example`), else `credd`.
pub fn session_name_from_arn(arn: Option<&str>) -> String {
    session_name(
        arn.and_then(|arn| arn.rsplit([':', '/']).next())
            .unwrap_or("credd"),
    )
}

/// `raw` as a RoleSessionName: only the characters STS allows, 2 to 64 of them.
pub fn session_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .take(64)
        .collect();
    if name.len() < 2 {
        name = format!("credd-{name}");
    }
    name
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    #[error("a one-time code from MFA device {serial} is needed")]
    MfaRequired { serial: String },
    #[error("the MFA code must be 6 digits")]
    MalformedMfaCode,
    /// STS refused the code. It cannot say whether the code was wrong (or used already) or
    /// `serial` is not the device that made it, so the message names both.
    #[error(
        "the MFA code was refused for device {serial}: the code was wrong or already used (a code \
         works once: wait for the next one), or {serial} is not the MFA device that made it (check \
         mfa_serial in [access]) (STS: {message})"
    )]
    MfaCodeRefused { serial: String, message: String },
    /// STS says the serial is no MFA device of this IAM user: no code can work with it.
    #[error(
        "mfa_serial {serial} is not an MFA device of this IAM user, so no code can work: set \
         mfa_serial in [access] to the ARN of the user's device (`aws iam list-mfa-devices`, or the \
         IAM console's Security credentials tab shows it) (STS: {message})"
    )]
    MfaSerialRefused { serial: String, message: String },
    #[error("mfa_command `{program}` printed no 6-digit code")]
    MfaCommandNoCode { program: String },
    /// The shared credentials file holds no usable key (missing file, profile or property).
    #[error(transparent)]
    KeyFile(#[from] iam_user::key_file::KeyFileError),
    /// The OS keychain is locked, missing or failed.
    #[error(transparent)]
    Keychain(#[from] iam_user::keychain::KeychainError),
    /// `key = "keychain"` and the keychain has no entry; `import` names a file profile that
    /// holds a key `credd key import` would move.
    #[error(
        "no IAM user key in the keychain ({keychain}): run `credd key add`{}",
        import.as_ref().map_or_else(String::new, |from| format!(
            ", or `credd key import` to move the one in {from}"
        ))
    )]
    NoKeychainKey {
        keychain: String,
        import: Option<String>,
    },
    /// AWS refused the IAM user's key itself (deleted, deactivated, wrong secret).
    #[error(transparent)]
    KeyRefused(Box<iam_user::KeyRefusal>),
    #[error(transparent)]
    Sts(#[from] StsFailure),
    #[error(transparent)]
    Sso(#[from] SsoError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Saml(#[from] SamlError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("token_file {path} {detail}")]
    TokenFile { path: String, detail: String },
    /// STS refused the identity provider's token or assertion; `advice` says what to check.
    #[error("{advice} (STS in {}: {}: {})", failure.region, failure.code, failure.message)]
    Refused { advice: String, failure: StsFailure },
}

/// An error and its causes, e.g. "client error (Connect): tcp connect error: Connection refused".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::Secret;

    fn session(arn: Option<&str>) -> AccessSession {
        AccessSession {
            credential: SessionCredential::Signing(AwsCredentials {
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new("s"),
                session_token: None,
                expiration: None,
            }),
            identity_arn: arn.map(str::to_owned),
            expires_at: None,
            expected_end: None,
            mfa: false,
            federation: None,
        }
    }

    #[test]
    fn session_name_is_the_user_name() {
        assert_eq!(
            session(Some("arn:aws:iam::111111111111:user/alice")).default_session_name(),
            "alice"
        );
        assert_eq!(
            session(Some("arn:aws:iam::111111111111:user/ops/bob")).default_session_name(),
            "bob"
        );
        assert_eq!(session(None).default_session_name(), "credd");
        assert_eq!(
            session(Some("arn:aws:iam::1:user/x")).default_session_name(),
            "credd-x"
        );
    }
}
