//! `credd console`: an AWS console sign-in for a profile (its cached role session) or for the
//! access session itself (an IAM user's through GetFederationToken). [`url`] builds and checks
//! the URLs, [`federation`] asks the federation endpoint for the sign-in token; the handler
//! (`handlers/console.rs`) takes the credentials from the vending point.

pub mod federation;
pub mod page;
pub mod url;

use std::time::Duration;

use credd_proto::ErrorCode;

use crate::access::session_name_from_arn;
use crate::creds::AwsCredentials;
use crate::engine::EngineError;
use crate::sts::{self, FailureKind, Sts, StsFailure, classify};
use federation::FederationError;
use url::UrlError;

/// The console session's length that `getSigninToken` accepts (SessionDuration), and so what
/// `--duration` may ask for a federation-token sign-in.
pub const MIN_DURATION: Duration = Duration::from_secs(900);
pub const MAX_DURATION: Duration = Duration::from_secs(43_200);
/// The IAM user's console session when `--duration` is not given: a working hour, as the AWS
/// CLI's and aws-vault's federation tokens default to.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3_600);

/// The session policy passed to GetFederationToken. A federated user's permissions are the
/// intersection of the IAM user's own policies and this one, so allowing everything here gives
/// the console session exactly the user's permissions, no more.
pub const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(
        "--duration {secs}s: a console session lasts from {} to {} seconds (15 minutes to 12 hours)",
        MIN_DURATION.as_secs(),
        MAX_DURATION.as_secs()
    )]
    Duration { secs: u64 },
    #[error(
        "the IAM Identity Center access session has no keys of its own to sign in with: \
         `credd console PROFILE` opens a profile's console"
    )]
    NoKeys,
    #[error(
        "{whom} is in partition {partition:?}: `credd console` signs in to aws, aws-cn and \
         aws-us-gov only"
    )]
    Partition { whom: String, partition: String },
    #[error("GetFederationToken for the IAM user's console session failed: {0}")]
    FederationToken(StsFailure),
    #[error(transparent)]
    Federation(#[from] FederationError),
}

impl ConsoleError {
    /// The control protocol's code for it.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            // The engine's own mapping.
            ConsoleError::Engine(_) => None,
            ConsoleError::Url(_)
            | ConsoleError::Duration { .. }
            | ConsoleError::NoKeys
            | ConsoleError::Partition { .. } => Some(ErrorCode::InvalidArgument),
            ConsoleError::FederationToken(f) if f.kind == FailureKind::Outage => {
                Some(ErrorCode::Unavailable)
            }
            ConsoleError::FederationToken(_) => Some(ErrorCode::Sts),
            ConsoleError::Federation(_) => Some(ErrorCode::Federation),
        }
    }
}

/// `--duration`, checked against what `getSigninToken` accepts.
pub fn check_duration(secs: u64) -> Result<Duration, ConsoleError> {
    let d = Duration::from_secs(secs);
    if (MIN_DURATION..=MAX_DURATION).contains(&d) {
        Ok(d)
    } else {
        Err(ConsoleError::Duration { secs })
    }
}

/// The federated user's name: the IAM user's (2 to 32 of the characters STS allows), so
/// CloudTrail shows who acted.
pub fn federated_name(user_arn: Option<&str>) -> String {
    session_name_from_arn(user_arn).chars().take(32).collect()
}

/// GetFederationToken signed by the IAM user's long-lived `key`, for `duration`, with
/// [`ALLOW_ALL`]: the console session's credentials and the federated user's ARN.
pub async fn federation_token(
    sts: &Sts,
    regions: &[String],
    key: &AwsCredentials,
    name: &str,
    duration: Duration,
) -> Result<(AwsCredentials, Option<String>), ConsoleError> {
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let ((creds, arn), _region) = sts
        .with_failover(regions, |client, region| async move {
            let out = client
                .get_federation_token()
                .name(name)
                .policy(ALLOW_ALL)
                .duration_seconds(seconds)
                .customize()
                .config_override(sts::signed_by(key))
                .send()
                .await
                .map_err(|e| classify(&region, e))?;
            let arn = out.federated_user.map(|u| u.arn);
            match out.credentials {
                Some(c) => Ok((AwsCredentials::from_sts(c), arn)),
                None => Err(StsFailure {
                    kind: FailureKind::Outage,
                    region: region.clone(),
                    code: "EmptyResponse".into(),
                    message: "GetFederationToken returned no credentials".into(),
                }),
            }
        })
        .await
        .map_err(ConsoleError::FederationToken)?;
    Ok((creds, arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_outside_the_console_limits_are_refused_by_value() {
        assert_eq!(check_duration(900).unwrap(), MIN_DURATION);
        assert_eq!(check_duration(43_200).unwrap(), MAX_DURATION);
        let e = check_duration(899).unwrap_err().to_string();
        assert!(
            e.starts_with("--duration 899s:") && e.contains("900 to 43200"),
            "{e}"
        );
        assert!(check_duration(43_201).is_err());
        assert_eq!(
            check_duration(0).unwrap_err().code(),
            Some(ErrorCode::InvalidArgument)
        );
    }

    #[test]
    fn the_federated_user_is_named_after_the_iam_user() {
        assert_eq!(
            federated_name(Some("arn:aws:iam::111111111111:user/ops/alice")),
            "alice"
        );
        assert_eq!(federated_name(None), "credd");
        let long = format!("arn:aws:iam::1:user/{}", "a".repeat(60));
        assert_eq!(federated_name(Some(&long)).len(), 32);
    }

    #[test]
    fn the_session_policy_is_valid_json_allowing_everything() {
        let policy: serde_json::Value = serde_json::from_str(ALLOW_ALL).unwrap();
        assert_eq!(policy["Statement"][0]["Action"], "*");
        assert_eq!(policy["Statement"][0]["Effect"], "Allow");
    }
}
