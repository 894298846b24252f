//! Access sources: how the administrative access-account session is obtained.
//!
//! Each source is one module implementing [`AccessSource`]; the engine owns caching, refresh and
//! persistence, a source only knows how to log in.

pub mod iam_user;
pub mod persist;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use credd_proto::Secret;

use crate::creds::AwsCredentials;
use crate::sts::{Sts, StsFailure};

/// The session everything else is assumed from.
#[derive(Debug, Clone)]
pub struct AccessSession {
    /// What signs AssumeRole: the IAM user's key, or the MFA session from GetSessionToken.
    pub signing: AwsCredentials,
    /// e.g. `arn:aws:iam::111111111111:user/alice`, when GetCallerIdentity answered.
    pub identity_arn: Option<String>,
    /// `None` for a long-lived key, which does not expire.
    pub expires_at: Option<SystemTime>,
    /// Whether this session came from an MFA login (and so is worth persisting).
    pub mfa: bool,
}

impl AccessSession {
    /// The RoleSessionName used when a profile sets none: the IAM user's name, so CloudTrail
    /// shows who acted.
    pub fn default_session_name(&self) -> String {
        let raw = self
            .identity_arn
            .as_deref()
            .and_then(|arn| arn.rsplit([':', '/']).next())
            .unwrap_or("credd");
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
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    #[error("a one-time code from MFA device {serial} is needed")]
    MfaRequired { serial: String },
    #[error("the MFA code must be 6 digits")]
    MalformedMfaCode,
    #[error("the MFA code was refused: {0}")]
    MfaCodeRefused(String),
    #[error("no usable IAM user key in the shared credentials profile {profile:?}: {detail}")]
    NoKey { profile: String, detail: String },
    #[error(transparent)]
    Sts(#[from] StsFailure),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait AccessSource: Send + Sync {
    /// The MFA device `login` will ask a code for, if any.
    fn mfa_serial(&self) -> Option<&str>;
    /// Whether the session can be had without the user (no MFA, no browser): then the daemon
    /// logs in by itself at start.
    fn is_unattended(&self) -> bool {
        self.mfa_serial().is_none()
    }
    fn login<'a>(
        &'a self,
        sts: &'a Sts,
        regions: &'a [String],
        mfa_code: Option<Secret>,
    ) -> BoxFuture<'a, Result<(AccessSession, String), AccessError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(arn: Option<&str>) -> AccessSession {
        AccessSession {
            signing: AwsCredentials {
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new("s"),
                session_token: None,
                expiration: None,
            },
            identity_arn: arn.map(str::to_owned),
            expires_at: None,
            mfa: false,
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
