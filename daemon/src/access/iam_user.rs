//! `source = "iam-user"`: the IAM user's long-lived key from the shared credentials file.
//!
//! With `mfa_serial`, login trades the key plus a one-time code for a GetSessionToken session of
//! `session_duration`, and roles are assumed from that; without it the key signs AssumeRole itself.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use credd_proto::Secret;

use super::{AccessError, AccessSession, BoxFuture, SessionCredential, error_chain};
use crate::config::IamUserConfig;
use crate::creds::AwsCredentials;
use crate::sts::{self, FailureKind, Sts, StsFailure};

pub struct IamUser {
    pub aws_profile: String,
    pub mfa_serial: Option<String>,
    pub session_duration: Duration,
    /// `None`: the SDKs' own lookup (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub credentials_file: Option<PathBuf>,
}

impl IamUser {
    pub fn new(
        config: &IamUserConfig,
        session_duration: Duration,
        credentials_file: Option<PathBuf>,
    ) -> Self {
        IamUser {
            aws_profile: config.aws_profile.clone(),
            mfa_serial: config.mfa_serial.clone(),
            session_duration,
            credentials_file,
        }
    }

    /// Reads the key afresh at every login, so a rotated key is picked up.
    async fn long_lived_key(&self, sts: &Sts) -> Result<AwsCredentials, AccessError> {
        let mut provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&ProviderConfig::default().with_http_client(sts.http_client()))
            .profile_name(&self.aws_profile);
        if let Some(file) = &self.credentials_file {
            provider = provider.profile_files(
                EnvConfigFiles::builder()
                    .with_file(EnvConfigFileKind::Credentials, file)
                    .build(),
            );
        }
        let provider = provider.build();
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| AccessError::NoKey {
                profile: self.aws_profile.clone(),
                detail: error_chain(&e),
            })?;
        if creds.session_token().is_some() {
            tracing::warn!(profile = %self.aws_profile, "the access profile holds temporary credentials, not an IAM user's long-lived key");
        }
        Ok(AwsCredentials {
            access_key_id: creds.access_key_id().to_owned(),
            secret_access_key: Secret::new(creds.secret_access_key()),
            session_token: creds.session_token().map(Secret::new),
            expiration: creds.expiry(),
        })
    }
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
            .map_err(|e| sts::classify(&region, e))
    })
    .await
}

impl IamUser {
    pub fn login<'a>(
        &'a self,
        sts: &'a Sts,
        regions: &'a [String],
        mfa_code: Option<Secret>,
    ) -> BoxFuture<'a, Result<(AccessSession, String), AccessError>> {
        Box::pin(async move {
            let key = self.long_lived_key(sts).await?;
            let Some(serial) = &self.mfa_serial else {
                // No session step: the key is the session. Asking who it is checks it works.
                let (arn, region) = caller_identity(sts, regions, &key).await?;
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
            let code = mfa_code.ok_or_else(|| AccessError::MfaRequired {
                serial: serial.clone(),
            })?;
            if !valid_code(code.expose()) {
                return Err(AccessError::MalformedMfaCode);
            }
            let seconds = i32::try_from(self.session_duration.as_secs()).unwrap_or(i32::MAX);
            let key = &key;
            let code = &code;
            let (creds, region) = sts
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
                        .map_err(|e| sts::classify(&region, e))
                        .and_then(|out| {
                            out.credentials.ok_or_else(|| StsFailure {
                                kind: FailureKind::Outage,
                                region: region.clone(),
                                code: "EmptyResponse".into(),
                                message: "GetSessionToken returned no credentials".into(),
                            })
                        })
                })
                .await
                .map_err(|f| {
                    if f.kind == FailureKind::Refused
                        && f.message.contains("MultiFactorAuthentication")
                    {
                        AccessError::MfaCodeRefused(f.message)
                    } else {
                        AccessError::Sts(f)
                    }
                })?;
            let signing = AwsCredentials::from_sts(creds);
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
