//! `source = "iam-user"`: the IAM user's long-lived key, from the OS keychain ([`Keychain`],
//! `key = "keychain"`) or a profile of the shared credentials file ([`key_file`]), read afresh
//! at every login so a replaced or rotated key is picked up.
//!
//! With `mfa_serial`, login trades the key plus a one-time code for a GetSessionToken session of
//! `session_duration`, and roles are assumed from that; without it the key signs AssumeRole itself.
//! With `mfa_command` too, a login given no code runs the command for one (the daemon's own
//! logins and renewals, and `credd login` without `--mfa-code`).

pub mod age;
pub mod iam;
pub mod key_file;
pub mod keychain;
pub mod keys;
pub mod mfa_command;
pub mod rotate;
mod source;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use credd_proto::Secret;

use crate::access::command::Runner;

use super::{AccessError, AccessSession, BoxFuture, SessionCredential};
use crate::config::{DEFAULT_AWS_PROFILE, IamUserConfig, KeySource};
use crate::creds::AwsCredentials;
use crate::sts::{self, FailureKind, Sts, StsFailure};
use keychain::Keychain;
use mfa_command::MfaCommand;

pub struct IamUser {
    /// Where the key is kept.
    pub key: KeySource,
    pub mfa_serial: Option<String>,
    /// Prints a code when a login is given none.
    pub mfa_command: Option<MfaCommand>,
    pub session_duration: Duration,
    /// `None`: the SDKs' own lookup (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub credentials_file: Option<PathBuf>,
    /// The OS keychain entry, for `key = "keychain"`.
    pub keychain: Keychain,
    /// The key ID the last read found (no secret), for status.
    last_key_id: std::sync::Mutex<Option<String>>,
}

/// Where a key was read from, for messages: `the keychain (Secret Service …:
/// credd/aws-access-key)` or `/home/alice/.aws/credentials [access]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Keychain(String),
    File {
        path: PathBuf,
        profile: String,
    },
    /// Typed into `credd key add`, not stored yet.
    Given,
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Keychain(keychain) => write!(f, "the keychain ({keychain})"),
            KeyOrigin::File { path, profile } => write!(f, "{} [{profile}]", path.display()),
            KeyOrigin::Given => f.write_str("`credd key add`"),
        }
    }
}

impl IamUser {
    pub fn new(
        config: &IamUserConfig,
        session_duration: Duration,
        credentials_file: Option<PathBuf>,
        commands: Runner,
    ) -> Self {
        IamUser {
            key: config.key.clone(),
            mfa_serial: config.mfa_serial.clone(),
            mfa_command: config
                .mfa_command
                .clone()
                .map(|argv| MfaCommand::new(argv, commands)),
            session_duration,
            credentials_file,
            keychain: Keychain::new(),
            last_key_id: std::sync::Mutex::new(None),
        }
    }

    /// The access key ID the last login read (an MFA session's key, which the session's own
    /// credentials do not show).
    pub fn last_key_id(&self) -> Option<String> {
        crate::lock::lock(&self.last_key_id).clone()
    }

    /// Where the key is kept: `keychain: ...` or `file: PATH [PROFILE]`.
    /// The shared-credentials profile the key is read from, with `key = "file"`.
    pub fn aws_profile(&self) -> Option<&str> {
        match &self.key {
            KeySource::File { aws_profile } => Some(aws_profile),
            KeySource::Keychain => None,
        }
    }

    pub fn stored_in(&self) -> String {
        match &self.key {
            KeySource::Keychain => format!("keychain: {}", self.keychain.describe()),
            KeySource::File { aws_profile } => {
                format!(
                    "file: {} [{aws_profile}]",
                    self.credentials_path().display()
                )
            }
        }
    }

    /// The shared credentials file this source reads (and `credd key import` moves from).
    pub fn credentials_path(&self) -> PathBuf {
        key_file::credentials_path(self.credentials_file.as_deref())
    }

    /// Reads the key afresh at every login, so a replaced or rotated key is picked up.
    pub async fn long_lived_key(&self) -> Result<(AwsCredentials, KeyOrigin), AccessError> {
        let read = self.read_key().await;
        if let Ok((key, _)) = &read {
            *crate::lock::lock(&self.last_key_id) = Some(key.access_key_id.clone());
        }
        read
    }

    async fn read_key(&self) -> Result<(AwsCredentials, KeyOrigin), AccessError> {
        match &self.key {
            KeySource::Keychain => {
                let Some(stored) = self.keychain.read().await? else {
                    // Where `credd key import` would find one, the message says so.
                    let path = self.credentials_path();
                    let import = key_file::has_key(&path, DEFAULT_AWS_PROFILE)
                        .await
                        .then(|| format!("{} [{DEFAULT_AWS_PROFILE}]", path.display()));
                    return Err(AccessError::NoKeychainKey {
                        keychain: self.keychain.describe(),
                        import,
                    });
                };
                Ok((
                    stored.credentials(),
                    KeyOrigin::Keychain(self.keychain.describe()),
                ))
            }
            KeySource::File { aws_profile } => {
                let path = self.credentials_path();
                let creds = key_file::read_key(&path, aws_profile).await?;
                if creds.session_token.is_some() {
                    tracing::warn!(profile = %aws_profile, file = %path.display(), "the access profile holds temporary credentials, not an IAM user's long-lived key");
                }
                Ok((
                    creds,
                    KeyOrigin::File {
                        path,
                        profile: aws_profile.clone(),
                    },
                ))
            }
        }
    }
}

/// What AWS says when it refuses an IAM user's key itself, and what that means. `None`: the
/// refusal is about something else (a policy, the MFA code).
fn key_refusal(code: &str) -> Option<&'static str> {
    match code {
        "InvalidClientTokenId" | "UnrecognizedClientException" => {
            Some("the key does not exist, or was deleted or deactivated")
        }
        "SignatureDoesNotMatch" => Some("the secret access key is not the one of this key ID"),
        "IncompleteSignature" | "InvalidAccessKeyId" => Some("the key is malformed"),
        _ => None,
    }
}

/// AWS refused the IAM user's key itself: which key, from where, why, and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "AWS refused the key {access_key_id} from {origin} ({}: {reason}): {fix}",
    failure.code
)]
pub struct KeyRefusal {
    pub access_key_id: String,
    /// `the keychain (…: credd/aws-access-key)` or `/home/alice/.aws/credentials [access]`.
    pub origin: String,
    pub reason: String,
    pub fix: String,
    pub failure: StsFailure,
}

/// `failure` as [`AccessError::KeyRefused`] when AWS refused the key itself, else as it is.
pub fn refused_key(key_id: &str, origin: &KeyOrigin, failure: StsFailure) -> AccessError {
    let Some(reason) = (failure.kind == FailureKind::Refused)
        .then(|| key_refusal(&failure.code))
        .flatten()
    else {
        return AccessError::Sts(failure);
    };
    let fix = match origin {
        KeyOrigin::Keychain(_) => "run `credd key add` with a working key".to_owned(),
        KeyOrigin::Given => "check the key ID and the secret (the IAM console lists your keys; a \
                             secret is shown only when its key is made), then run `credd key \
                             add` again"
            .to_owned(),
        KeyOrigin::File { path, profile } => format!(
            "put a working key in {} under [{profile}], or run `credd key add` to keep one in \
             the OS keychain instead",
            path.display()
        ),
    };
    AccessError::KeyRefused(Box::new(KeyRefusal {
        access_key_id: key_id.to_owned(),
        origin: origin.to_string(),
        reason: reason.to_owned(),
        fix,
        failure,
    }))
}

/// [`sts::classify`], plus the code and message of an error document the SDK could not read:
/// moto answers a refused key with IAM's `<ErrorResponse><Errors><Error>`, which the STS parser
/// reports as `Unknown: no message`.
fn classify<E>(region: &str, err: SdkError<E, HttpResponse>) -> StsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let raw = match &err {
        SdkError::ServiceError(service) if service.err().code().is_none() => {
            service.raw().body().bytes().map(error_document)
        }
        _ => None,
    };
    let mut failure = sts::classify(region, err);
    if let Some((Some(code), message)) = raw {
        failure.code = code;
        if let Some(message) = message {
            failure.message = message;
        }
    }
    failure
}

/// The first `<Code>` and `<Message>` of an AWS error document.
fn error_document(body: &[u8]) -> (Option<String>, Option<String>) {
    use quick_xml::events::Event;
    let body = String::from_utf8_lossy(body);
    let mut reader = quick_xml::Reader::from_str(&body);
    let (mut code, mut message) = (None, None);
    let mut inside: Option<&'static str> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                inside = match e.local_name().as_ref() {
                    "Code" => Some("Code"),
                    "Message" => Some("Message"),
                    _ => None,
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.xml10_content().trim().to_owned();
                match inside {
                    Some("Code") if code.is_none() => code = Some(text),
                    Some("Message") if message.is_none() => message = Some(text),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => inside = None,
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (code, message)
}

fn valid_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The identity behind `creds`, for status and the default session name.
pub async fn caller_identity(
    sts: &Sts,
    regions: &[String],
    creds: &AwsCredentials,
) -> Result<(String, String), StsFailure> {
    sts.with_failover(regions, |client, region| async move {
        client
            .get_caller_identity()
            .customize()
            .config_override(sts::signed_by(creds))
            .send()
            .await
            .map(|out| out.arn.unwrap_or_default())
            .map_err(|e| classify(&region, e))
    })
    .await
}

impl IamUser {
    pub fn start_session<'a>(
        &'a self,
        sts: &'a Sts,
        regions: &'a [String],
        mfa_code: Option<Secret>,
    ) -> BoxFuture<'a, Result<(AccessSession, String), AccessError>> {
        Box::pin(async move {
            let (key, origin) = self.long_lived_key().await?;
            let Some(serial) = &self.mfa_serial else {
                // No session step: the key is the session. Asking who it is checks it works.
                let (arn, region) = caller_identity(sts, regions, &key)
                    .await
                    .map_err(|f| refused_key(&key.access_key_id, &origin, f))?;
                let session = AccessSession {
                    credential: SessionCredential::Signing(key),
                    identity_arn: Some(arn),
                    expires_at: None,
                    expected_end: None,
                    mfa: false,
                    federation: None,
                };
                return Ok((session, region));
            };
            // A code the user gave wins over the command.
            let code = match (mfa_code, &self.mfa_command) {
                (Some(code), _) => code,
                (None, Some(command)) => command.code().await?,
                (None, None) => {
                    return Err(AccessError::MfaRequired {
                        serial: serial.clone(),
                    });
                }
            };
            if !valid_code(code.expose()) {
                return Err(AccessError::MalformedMfaCode);
            }
            let seconds = i32::try_from(self.session_duration.as_secs()).unwrap_or(i32::MAX);
            let key = &key;
            let code = &code;
            let asked = sts.now();
            let exchanged = sts
                .with_failover(regions, |client, region| async move {
                    client
                        .get_session_token()
                        .serial_number(serial)
                        .token_code(code.expose())
                        .duration_seconds(seconds)
                        .customize()
                        .config_override(sts::signed_by(key))
                        .send()
                        .await
                        .map_err(|e| classify(&region, e))
                        .and_then(|out| {
                            out.credentials.ok_or_else(|| StsFailure {
                                kind: FailureKind::Outage,
                                region: region.clone(),
                                code: "EmptyResponse".into(),
                                message: "GetSessionToken returned no credentials".into(),
                            })
                        })
                })
                .await;
            let (creds, region) = match exchanged {
                Ok(answer) => answer,
                Err(f) => match mfa_refusal(&f) {
                    Some(MfaRefusal::Serial) => {
                        return Err(AccessError::MfaSerialRefused {
                            serial: serial.clone(),
                            message: f.message,
                        });
                    }
                    Some(MfaRefusal::Code) => {
                        return Err(code_or_serial(sts, regions, key, serial, f.message).await);
                    }
                    None => return Err(refused_key(&key.access_key_id, &origin, f)),
                },
            };
            let signing =
                AwsCredentials::from_sts(creds).granted_at_most(asked, self.session_duration);
            // GetSessionToken credentials may call GetCallerIdentity; its answer is informational.
            let identity_arn = match caller_identity(sts, regions, &signing).await {
                Ok((arn, _)) => Some(arn),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the access identity");
                    None
                }
            };
            let session = AccessSession {
                expires_at: signing.expiration,
                expected_end: None,
                credential: SessionCredential::Signing(signing),
                identity_arn,
                mfa: true,
                federation: None,
            };
            Ok((session, region))
        })
    }
}

/// What STS's refusal of GetSessionToken says of the MFA step.
#[derive(Debug, PartialEq, Eq)]
enum MfaRefusal {
    /// "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA
    /// serial number is valid and associated with this user.": the serial is no device of the
    /// user (real STS; moto checks no MFA at all).
    Serial,
    /// "MultiFactorAuthentication failed with invalid MFA one time pass code.": a wrong or used
    /// code, or a device of the user's other than the one that made the code.
    Code,
}

fn mfa_refusal(f: &StsFailure) -> Option<MfaRefusal> {
    if f.kind != FailureKind::Refused || !f.message.contains("MultiFactorAuthentication") {
        return None;
    }
    let message = f.message.to_ascii_lowercase();
    if message.contains("serial number") || message.contains("unable to validate") {
        Some(MfaRefusal::Serial)
    } else {
        Some(MfaRefusal::Code)
    }
}

/// A refused code: a serial in another account than the key's user cannot be this user's device
/// (GetCallerIdentity, which needs no MFA, says whose key it is); otherwise STS cannot tell a
/// wrong code from another device's, and the error names both.
async fn code_or_serial(
    sts: &Sts,
    regions: &[String],
    key: &AwsCredentials,
    serial: &str,
    message: String,
) -> AccessError {
    let serial_account = serial
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3))
        .filter(|a| !a.is_empty());
    if let Some(serial_account) = serial_account
        && let Ok((user_arn, _)) = caller_identity(sts, regions, key).await
        && let Some(user_account) = user_arn.split(':').nth(4)
        && user_account != serial_account
    {
        return AccessError::MfaSerialRefused {
            serial: serial.to_owned(),
            message: format!(
                "{message} The device is in account {serial_account}, the key is {user_arn}'s"
            ),
        };
    }
    AccessError::MfaCodeRefused {
        serial: serial.to_owned(),
        message,
    }
}

#[cfg(test)]
mod mfa_refusal_tests {
    use super::*;

    fn denied(message: &str) -> StsFailure {
        StsFailure {
            kind: FailureKind::Refused,
            region: "us-east-1".into(),
            code: "AccessDenied".into(),
            message: message.into(),
        }
    }

    /// Real STS's two answers, as users report them.
    #[test]
    fn a_serial_that_is_no_device_of_the_user_is_told_apart_from_a_wrong_code() {
        assert_eq!(
            mfa_refusal(&denied(
                "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify \
                 your MFA serial number is valid and associated with this user."
            )),
            Some(MfaRefusal::Serial)
        );
        assert_eq!(
            mfa_refusal(&denied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code. "
            )),
            Some(MfaRefusal::Code)
        );
        assert_eq!(mfa_refusal(&denied("User is not authorized")), None);
        let serial = "arn:aws:iam::111111111111:mfa/alice".to_owned();
        let code = AccessError::MfaCodeRefused {
            serial: serial.clone(),
            message: "invalid MFA one time pass code".into(),
        }
        .to_string();
        assert!(
            code.contains("wrong or already used")
                && code.contains("arn:aws:iam::111111111111:mfa/alice is not the MFA device"),
            "{code}"
        );
        let wrong = AccessError::MfaSerialRefused {
            serial,
            message: "verify your MFA serial number".into(),
        };
        assert!(
            wrong.to_string().starts_with(
                "mfa_serial arn:aws:iam::111111111111:mfa/alice is not an MFA device of this IAM user"
            ),
            "{wrong}"
        );
        assert_eq!(wrong.class(), crate::access::source::ErrorClass::FixConfig);
    }
}

#[cfg(test)]
mod key_refusal_tests {
    use super::*;

    fn refused(code: &str) -> StsFailure {
        StsFailure {
            kind: FailureKind::Refused,
            region: "us-east-1".into(),
            code: code.into(),
            message: "The security token included in the request is invalid.".into(),
        }
    }

    #[test]
    fn moto_s_iam_style_error_document_gives_its_code_and_message() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
        assert_eq!(
            error_document(body),
            (
                Some("InvalidClientTokenId".to_owned()),
                Some("The security token included in the request is invalid.".to_owned())
            )
        );
        assert_eq!(error_document(b"not xml"), (None, None));
    }

    #[test]
    fn a_refused_key_names_the_key_where_it_came_from_and_the_fix() {
        let keychain =
            KeyOrigin::Keychain("Secret Service (default collection): credd/aws-access-key".into());
        let e = refused_key("AKIAOLD", &keychain, refused("InvalidClientTokenId"));
        assert_eq!(
            e.to_string(),
            "AWS refused the key AKIAOLD from the keychain (Secret Service (default collection): \
             credd/aws-access-key) (InvalidClientTokenId: the key does not exist, or was deleted \
             or deactivated): run `credd key add` with a working key"
        );
        let file = KeyOrigin::File {
            path: "/home/alice/.aws/credentials".into(),
            profile: "access".into(),
        };
        let e = refused_key("AKIAOLD", &file, refused("SignatureDoesNotMatch"));
        assert!(
            e.to_string().starts_with(
                "AWS refused the key AKIAOLD from /home/alice/.aws/credentials [access] \
                 (SignatureDoesNotMatch: the secret access key is not the one of this key ID): \
                 put a working key in /home/alice/.aws/credentials under [access]"
            ),
            "{e}"
        );
        // Anything else (an outage, a policy) stays what it is.
        let mut outage = refused("Timeout");
        outage.kind = FailureKind::Outage;
        assert!(matches!(
            refused_key("AKIAOLD", &file, outage),
            AccessError::Sts(_)
        ));
        assert!(matches!(
            refused_key("AKIAOLD", &file, refused("AccessDenied")),
            AccessError::Sts(_)
        ));
    }
}
