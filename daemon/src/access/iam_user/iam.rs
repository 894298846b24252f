//! IAM calls an IAM user makes on their own user: create, delete and list access keys (for
//! `credd key rotate` and the key's age in status). Signed by whatever the caller passes: the MFA
//! session when there is one (organizations often allow IAM self-management only with MFA), else
//! the key itself. No UserName is sent: IAM acts on the user that signed.
//!
//! Built like [`crate::sts`] ([`crate::sdk::Clients`]): the same HTTP client (hyper, rustls on
//! ring), the same limits, the engine's clock, and an endpoint override from the environment
//! (`AWS_ENDPOINT_URL_IAM`, then `AWS_ENDPOINT_URL`), which is how the tests point IAM at moto.
//! IAM is global: one endpoint per partition, signed for the partition's first region.

use std::fmt;
use std::time::SystemTime;

use aws_sdk_iam::config::SharedHttpClient;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use credd_proto::Secret;

use crate::clock::Clock;
use crate::creds::AwsCredentials;
use crate::sdk::{Clients, global_service_region};
use crate::sts;

/// The IAM actions credd calls, named as a policy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamAction {
    CreateAccessKey,
    DeleteAccessKey,
    ListAccessKeys,
}

impl fmt::Display for IamAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IamAction::CreateAccessKey => "iam:CreateAccessKey",
            IamAction::DeleteAccessKey => "iam:DeleteAccessKey",
            IamAction::ListAccessKeys => "iam:ListAccessKeys",
        })
    }
}

/// What went wrong with an IAM call, sorted by what the user does about it. Never holds a
/// secret: IAM's messages name keys by their ID only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error(
        "IAM denied {action}: the IAM user needs {action} on their own user \
         (Resource \"arn:aws:iam::*:user/${{aws:username}}\"); if the policy requires MFA, \
         configure mfa_serial and run `credd login` first (IAM said: {message})"
    )]
    AccessDenied { action: IamAction, message: String },
    /// IAM allows two access keys per user, and both exist.
    #[error("{}", limit_exceeded_message(keys, in_use.as_deref()))]
    LimitExceeded {
        /// The user's keys, when ListAccessKeys answered.
        keys: Vec<KeyMetadata>,
        /// The key credd holds, which is the one to keep.
        in_use: Option<String>,
    },
    #[error("IAM has no such key or user for {action}: {message}")]
    NoSuchEntity { action: IamAction, message: String },
    /// No answer, a timeout, throttling or a 5xx: trying later may work.
    #[error("IAM could not be reached for {action} at {endpoint}: {detail}")]
    Unreachable {
        action: IamAction,
        endpoint: String,
        detail: String,
    },
    #[error("IAM refused {action}: {code}: {message}")]
    Refused {
        action: IamAction,
        code: String,
        message: String,
    },
}

fn limit_exceeded_message(keys: &[KeyMetadata], in_use: Option<&str>) -> String {
    let mut out = String::from(
        "the IAM user already has two access keys, the most IAM allows, so no new one can be \
         created",
    );
    let others: Vec<&KeyMetadata> = keys
        .iter()
        .filter(|k| Some(k.access_key_id.as_str()) != in_use)
        .collect();
    if keys.is_empty() {
        out.push_str(
            ": list them with `aws iam list-access-keys`, delete the one credd does not use \
             in the IAM console or with `aws iam delete-access-key --access-key-id <ID>`, then \
             run `credd key rotate` again",
        );
        return out;
    }
    let listed: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut s = k.access_key_id.clone();
            let mut notes = Vec::new();
            if Some(k.access_key_id.as_str()) == in_use {
                notes.push("used by credd".to_owned());
            }
            if let Some(status) = &k.status
                && status != "Active"
            {
                notes.push(status.to_lowercase());
            }
            if let Some(t) = k.created_at {
                notes.push(format!("created {}", humantime::format_rfc3339_seconds(t)));
            }
            if !notes.is_empty() {
                s.push_str(&format!(" ({})", notes.join(", ")));
            }
            s
        })
        .collect();
    out.push_str(&format!(": {}. ", listed.join(", ")));
    match others.as_slice() {
        [other] => out.push_str(&format!(
            "Delete the unused one, {id}, in the IAM console or with \
             `aws iam delete-access-key --access-key-id {id}`, then run `credd key rotate` again",
            id = other.access_key_id
        )),
        _ => out.push_str(
            "Delete the one credd does not use in the IAM console or with \
             `aws iam delete-access-key --access-key-id <ID>`, then run `credd key rotate` again",
        ),
    }
    out
}

/// One of the user's access keys, as ListAccessKeys describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    pub access_key_id: String,
    /// `Active`, `Inactive` (or `Expired`).
    pub status: Option<String>,
    pub created_at: Option<SystemTime>,
}

/// A key CreateAccessKey just made; the secret is shown once, here only.
#[derive(Debug)]
pub struct NewKey {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub created_at: Option<SystemTime>,
}

impl NewKey {
    /// The key as credentials to sign with.
    pub fn credentials(&self) -> AwsCredentials {
        AwsCredentials::long_lived(&self.access_key_id, &self.secret_access_key)
    }
}

pub struct Iam {
    /// One SDK client per signing region (there is one per partition).
    clients: Clients<aws_sdk_iam::Client>,
}

impl Iam {
    /// `AWS_ENDPOINT_URL_IAM`, then `AWS_ENDPOINT_URL`, replace the partition's endpoint (tests,
    /// private endpoints). `http` is the STS client's, so both share one connection pool.
    pub fn from_env(clock: Clock, http: SharedHttpClient) -> Iam {
        let endpoint = ["AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Iam::new(clock, endpoint, http)
    }

    /// IAM reached through `http` only, e.g. a scripted fake in a unit test.
    #[cfg(test)]
    pub fn with_http_client(clock: Clock, http: SharedHttpClient) -> Iam {
        Iam::new(clock, None, http)
    }

    fn new(clock: Clock, endpoint: Option<String>, http: SharedHttpClient) -> Iam {
        Iam {
            // As for STS: one attempt gets 5 s, the whole call 12 s, and a connection 2 s.
            clients: Clients::new(aws_sdk_iam::Client::new, clock, http, endpoint, sts::LIMITS),
        }
    }

    pub fn endpoint_override(&self) -> Option<&str> {
        self.clients.endpoint()
    }

    /// Where the calls go, for messages.
    fn endpoint_name(&self, region: &str) -> String {
        match self.clients.endpoint() {
            Some(url) => url.to_owned(),
            None => format!("IAM ({region})"),
        }
    }

    /// CreateAccessKey for the signing user. `in_use` is the key credd holds: when the user
    /// already has two keys, the error names the other one as the one to delete.
    pub async fn create_access_key(
        &self,
        sts_region: Option<&str>,
        signer: &AwsCredentials,
        in_use: Option<&str>,
    ) -> Result<NewKey, IamError> {
        let region = global_service_region(sts_region);
        let action = IamAction::CreateAccessKey;
        let result = self
            .clients
            .get(region)
            .create_access_key()
            .customize()
            .config_override(signed_by(signer))
            .send()
            .await;
        match result {
            Ok(out) => {
                let key = out.access_key.ok_or_else(|| IamError::Refused {
                    action,
                    code: "EmptyResponse".into(),
                    message: "CreateAccessKey returned no key".into(),
                })?;
                Ok(NewKey {
                    created_at: key.create_date.and_then(|d| SystemTime::try_from(d).ok()),
                    access_key_id: key.access_key_id,
                    secret_access_key: Secret::from(key.secret_access_key),
                })
            }
            Err(e) => match self.classify(action, region, e) {
                IamError::LimitExceeded { .. } => {
                    // Name the keys, so the user knows which one to delete.
                    let keys = self
                        .list_access_keys(sts_region, signer)
                        .await
                        .unwrap_or_default();
                    Err(IamError::LimitExceeded {
                        keys,
                        in_use: in_use.map(str::to_owned),
                    })
                }
                e => Err(e),
            },
        }
    }

    /// DeleteAccessKey of one of the signing user's keys.
    pub async fn delete_access_key(
        &self,
        sts_region: Option<&str>,
        signer: &AwsCredentials,
        access_key_id: &str,
    ) -> Result<(), IamError> {
        let region = global_service_region(sts_region);
        self.clients
            .get(region)
            .delete_access_key()
            .access_key_id(access_key_id)
            .customize()
            .config_override(signed_by(signer))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.classify(IamAction::DeleteAccessKey, region, e))
    }

    /// ListAccessKeys of the signing user (every page).
    pub async fn list_access_keys(
        &self,
        sts_region: Option<&str>,
        signer: &AwsCredentials,
    ) -> Result<Vec<KeyMetadata>, IamError> {
        let region = global_service_region(sts_region);
        let client = self.clients.get(region);
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = client
                .list_access_keys()
                .set_marker(marker.take())
                .customize()
                .config_override(signed_by(signer))
                .send()
                .await
                .map_err(|e| self.classify(IamAction::ListAccessKeys, region, e))?;
            keys.extend(out.access_key_metadata().iter().filter_map(|k| {
                Some(KeyMetadata {
                    access_key_id: k.access_key_id.clone()?,
                    status: k.status.as_ref().map(|s| s.as_str().to_owned()),
                    created_at: k.create_date.and_then(|d| SystemTime::try_from(d).ok()),
                })
            }));
            match out.marker() {
                Some(m) if out.is_truncated() && !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    fn classify<E>(
        &self,
        action: IamAction,
        region: &str,
        err: SdkError<E, HttpResponse>,
    ) -> IamError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let unreachable = |detail: String| IamError::Unreachable {
            action,
            endpoint: self.endpoint_name(region),
            detail,
        };
        match &err {
            SdkError::TimeoutError(_) => unreachable("no answer in time".to_owned()),
            SdkError::DispatchFailure(e) => unreachable(
                e.as_connector_error()
                    .map(|c| crate::access::error_chain(c))
                    .unwrap_or_else(|| "could not send the request".to_owned()),
            ),
            SdkError::ResponseError(_) => unreachable("the response could not be read".to_owned()),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown");
                let message = service.err().message().unwrap_or("no message");
                let status = service.raw().status().as_u16();
                sort(action, code, message, status)
                    .unwrap_or_else(|| unreachable(format!("{code}: {message}")))
            }
            _ => IamError::Refused {
                action,
                code: "RequestFailed".into(),
                message: crate::access::error_chain(&err),
            },
        }
    }
}

/// An IAM error answer as what the user does about it; `None`: IAM could not answer (throttled,
/// failing), which trying later may mend.
pub fn sort(action: IamAction, code: &str, message: &str, status: u16) -> Option<IamError> {
    let message = message.to_owned();
    Some(match code {
        "AccessDenied" | "AccessDeniedException" => IamError::AccessDenied { action, message },
        "LimitExceeded" | "LimitExceededException" => IamError::LimitExceeded {
            keys: Vec::new(),
            in_use: None,
        },
        "NoSuchEntity" | "NoSuchEntityException" => IamError::NoSuchEntity { action, message },
        "Throttling"
        | "ThrottlingException"
        | "ServiceFailure"
        | "ServiceFailureException"
        | "ServiceUnavailable"
        | "InternalFailure" => return None,
        _ if status >= 500 => return None,
        _ => IamError::Refused {
            action,
            code: code.to_owned(),
            message,
        },
    })
}

/// Per-call signing credentials, without rebuilding the client.
fn signed_by(creds: &AwsCredentials) -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default().credentials_provider(creds.to_sdk())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(id: &str, status: &str) -> KeyMetadata {
        KeyMetadata {
            access_key_id: id.into(),
            status: Some(status.into()),
            created_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    #[test]
    fn access_denied_names_the_permission_and_the_users_own_user() {
        let e = sort(
            IamAction::CreateAccessKey,
            "AccessDenied",
            "not authorized",
            403,
        )
        .expect("a refusal");
        let text = e.to_string();
        assert!(text.contains("iam:CreateAccessKey"), "{text}");
        assert!(text.contains("user/${aws:username}"), "{text}");
        assert!(text.contains("not authorized"), "{text}");
        let e = sort(IamAction::DeleteAccessKey, "AccessDenied", "no", 403).expect("a refusal");
        assert!(e.to_string().contains("iam:DeleteAccessKey"), "{e}");
    }

    #[test]
    fn outages_are_not_refusals() {
        for (code, status) in [
            ("Throttling", 400),
            ("ServiceFailure", 500),
            ("Whatever", 503),
        ] {
            assert_eq!(
                sort(IamAction::ListAccessKeys, code, "m", status),
                None,
                "{code}"
            );
        }
        assert!(matches!(
            sort(IamAction::DeleteAccessKey, "NoSuchEntity", "gone", 404),
            Some(IamError::NoSuchEntity { .. })
        ));
        assert!(matches!(
            sort(
                IamAction::CreateAccessKey,
                "InvalidClientTokenId",
                "bad",
                403
            ),
            Some(IamError::Refused { .. })
        ));
    }

    #[test]
    fn limit_exceeded_names_the_unused_key_and_how_to_delete_it() {
        let e = IamError::LimitExceeded {
            keys: vec![key("AKIAINUSE", "Active"), key("AKIAOTHER", "Inactive")],
            in_use: Some("AKIAINUSE".into()),
        };
        let text = e.to_string();
        assert!(text.contains("two access keys"), "{text}");
        assert!(text.contains("AKIAINUSE (used by credd"), "{text}");
        assert!(text.contains("AKIAOTHER (inactive"), "{text}");
        assert!(
            text.contains("aws iam delete-access-key --access-key-id AKIAOTHER"),
            "{text}"
        );
        assert!(text.contains("created 2023-11-14T22:13:20Z"), "{text}");
        // Without the list, it still says what to do.
        let bare = IamError::LimitExceeded {
            keys: vec![],
            in_use: None,
        }
        .to_string();
        assert!(bare.contains("aws iam list-access-keys"), "{bare}");
        assert!(bare.contains("aws iam delete-access-key"), "{bare}");
    }

    #[test]
    fn iam_signs_for_the_partition_of_the_sts_region() {
        assert_eq!(global_service_region(None), "us-east-1");
        assert_eq!(global_service_region(Some("eu-west-1")), "us-east-1");
        assert_eq!(global_service_region(Some("cn-northwest-1")), "cn-north-1");
        assert_eq!(
            global_service_region(Some("us-gov-east-1")),
            "us-gov-west-1"
        );
    }

    #[test]
    fn a_new_key_never_shows_its_secret() {
        let k = NewKey {
            access_key_id: "AKIANEW".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG"),
            created_at: None,
        };
        assert!(!format!("{k:?}").contains("wJalr"));
        assert_eq!(
            k.credentials().secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG"
        );
    }
}
