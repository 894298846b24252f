//! What the engine answers when it cannot: each variant says what the user can do about it.

use crate::access::AccessError;
use crate::access::source::{ErrorClass, Refuser};
use crate::access::sso::SsoError;
use crate::sts::StsFailure;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("unknown profile {name:?}; known profiles: {}", list(known))]
    UnknownProfile { name: String, known: Vec<String> },
    #[error(
        "no current profile: choose one with `credd switch <profile>` (known: {})",
        list(known)
    )]
    NoCurrentProfile { known: Vec<String> },
    #[error("not logged in{}: run `credd login`", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    LoginRequired { detail: Option<String> },
    #[error("credentials for {profile:?} are not available yet{}; retrying in the background", detail.as_deref().map(|d| format!(" (last error: {d})")).unwrap_or_default())]
    Unavailable {
        profile: String,
        detail: Option<String>,
    },
    /// The access source could not log in (an STS failure is [`EngineError::Sts`] instead).
    #[error(transparent)]
    Access(AccessError),
    #[error(transparent)]
    Sts(#[from] StsFailure),
}

impl EngineError {
    /// What the caller should do about it; `None`: name a profile that exists.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            EngineError::UnknownProfile { .. } | EngineError::NoCurrentProfile { .. } => None,
            EngineError::LoginRequired { .. } => Some(ErrorClass::LoginAgain),
            EngineError::Unavailable { .. } => Some(ErrorClass::Retry),
            EngineError::Access(e) => Some(e.class()),
            EngineError::Sts(_) => Some(ErrorClass::Refused(Refuser::Aws)),
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none configured".to_owned()
    } else {
        names.join(", ")
    }
}

impl From<AccessError> for EngineError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Sts(f) => EngineError::Sts(f),
            AccessError::Sso(SsoError::SessionEnded { detail }) => EngineError::LoginRequired {
                detail: Some(format!("the Identity Center session has ended: {detail}")),
            },
            e => EngineError::Access(e),
        }
    }
}

impl From<SsoError> for EngineError {
    fn from(e: SsoError) -> Self {
        EngineError::from(AccessError::Sso(e))
    }
}
