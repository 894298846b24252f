//! What the engine answers when it cannot: each variant says what the user can do about it.

use crate::access::AccessError;
use crate::access::source::{ErrorClass, Refuser};
use crate::access::sso::SsoError;
use crate::config::names::{list, suggestion};
use crate::sts::StsFailure;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// `rejected_edit`: the config's last edit, rejected (file:line:col and why), which may be
    /// the one that adds `name`.
    #[error("{}", unknown_profile(name, known, rejected_edit.as_deref()))]
    UnknownProfile {
        name: String,
        known: Vec<String>,
        rejected_edit: Option<String>,
    },
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

/// `unknown profile "prdo"; did you mean "prod"? ...`, naming the rejected edit first when there
/// is one: a profile added there is not in force.
fn unknown_profile(name: &str, known: &[String], rejected_edit: Option<&str>) -> String {
    let mut out = format!("unknown profile {name:?}");
    if let Some(edit) = rejected_edit {
        out.push_str(&format!(
            ": the config's last edit was rejected, so the profiles it adds are not in force \
             (the previous config is) until it is fixed: {edit}"
        ));
    }
    out.push_str(&suggestion(name, known));
    out.push_str(&format!("; known profiles: {}", list(known)));
    out
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

#[cfg(test)]
mod tests {
    use super::EngineError;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_typo_gets_a_suggestion_and_a_short_list() {
        let mut known: Vec<String> = (0..150).map(|i| format!("account-{i:03}")).collect();
        known.push("prod".into());
        known.sort();
        let e = EngineError::UnknownProfile {
            name: "prdo".into(),
            known,
            rejected_edit: None,
        };
        let text = e.to_string();
        assert!(
            text.starts_with(
                "unknown profile \"prdo\"; did you mean \"prod\"?; known profiles: account-000, "
            ),
            "{text}"
        );
        assert!(
            text.ends_with("account-009, and 141 more (`credd profiles` lists them)"),
            "{text}"
        );
        assert!(text.len() < 300, "{} bytes: {text}", text.len());
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        let e = EngineError::UnknownProfile {
            name: "sandbox".into(),
            known: names(&["prod", "staging"]),
            rejected_edit: None,
        };
        assert_eq!(
            e.to_string(),
            "unknown profile \"sandbox\"; known profiles: prod, staging"
        );
        assert_eq!(
            crate::config::names::did_you_mean("Staging", &names(&["prod", "staging"])),
            ["staging"]
        );
        assert_eq!(
            crate::config::names::did_you_mean("stag", &names(&["prod", "staging"])),
            ["staging"]
        );
    }

    #[test]
    fn an_unknown_profile_names_the_rejected_edit() {
        let e = EngineError::UnknownProfile {
            name: "sandbox".into(),
            known: names(&["prod"]),
            rejected_edit: Some("/c/config.toml:9:1: unknown field `rol_arn`".into()),
        };
        assert_eq!(
            e.to_string(),
            "unknown profile \"sandbox\": the config's last edit was rejected, so the profiles it \
             adds are not in force (the previous config is) until it is fixed: \
             /c/config.toml:9:1: unknown field `rol_arn`; known profiles: prod"
        );
    }
}
