//! What `web-identity` and `saml` share: the unsigned STS calls that trade the identity
//! provider's token or assertion for the access role's credentials, STS's refusals explained in
//! words, and the session they make.

use std::time::Duration;

use credd_proto::Secret;

use super::{AccessError, AccessSession, SessionCredential};
use crate::creds::AwsCredentials;
use crate::sts::{FailureKind, Sts, StsFailure};

/// The identity provider's side of a `web-identity` or `saml` session.
#[derive(Debug, Clone)]
pub struct Federation {
    /// Who the identity provider says the user is: `email (or sub) at issuer`, or the SAML NameID.
    pub who: String,
    /// The identity provider's refresh token (credd's own OIDC login, with `offline_access`).
    pub refresh_token: Option<Secret>,
    /// How the session renews itself without the user, for status; `None`: only `credd login`
    /// renews it.
    pub renews: Option<String>,
    /// When STS issued the session's credentials: with their expiry, their lifetime (STS may
    /// grant less than asked).
    pub issued_at: std::time::SystemTime,
}

pub fn session(
    creds: AwsCredentials,
    identity_arn: String,
    federation: Federation,
) -> AccessSession {
    AccessSession {
        expires_at: creds.expiration,
        expected_end: None,
        credential: SessionCredential::Signing(creds),
        identity_arn: Some(identity_arn),
        mfa: false,
        federation: Some(federation),
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

type Answer = (
    Option<aws_sdk_sts::types::Credentials>,
    Option<aws_sdk_sts::types::AssumedRoleUser>,
);

/// An unsigned AssumeRoleWith* call (`call` sends it in one region), in each region in turn
/// until one answers: the credentials, the assumed role's ARN and the region that answered.
async fn assume_unsigned<F, Fut>(
    sts: &Sts,
    regions: &[String],
    action: &str,
    call: F,
) -> Result<(AwsCredentials, String, String), StsFailure>
where
    F: Fn(aws_sdk_sts::Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, StsFailure>>,
{
    let ((credentials, user), region) = sts.with_failover(regions, call).await?;
    let credentials = credentials.ok_or_else(|| StsFailure {
        kind: FailureKind::Outage,
        region: region.clone(),
        code: "EmptyResponse".into(),
        message: format!("{action} returned no credentials"),
    })?;
    let arn = user.map(|u| u.arn).unwrap_or_default();
    Ok((AwsCredentials::from_sts(credentials), arn, region))
}

/// AssumeRoleWithWebIdentity, in each region in turn until one answers.
pub async fn assume_role_with_web_identity(
    sts: &Sts,
    regions: &[String],
    role_arn: &str,
    session_name: &str,
    token: &Secret,
    duration: Duration,
) -> Result<(AwsCredentials, String, String), StsFailure> {
    let asked = sts.now();
    assume_unsigned(
        sts,
        regions,
        "AssumeRoleWithWebIdentity",
        |client, region| async move {
            let out = client
                .assume_role_with_web_identity()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .web_identity_token(token.expose())
                .duration_seconds(seconds(duration))
                .send()
                .await
                .map_err(|e| crate::sts::classify(&region, e))?;
            Ok((out.credentials, out.assumed_role_user))
        },
    )
    .await
    .map(|(creds, arn, region)| (creds.granted_at_most(asked, duration), arn, region))
}

/// AssumeRoleWithSAML, in each region in turn until one answers.
pub async fn assume_role_with_saml(
    sts: &Sts,
    regions: &[String],
    role_arn: &str,
    provider_arn: &str,
    assertion: &Secret,
    duration: Duration,
) -> Result<(AwsCredentials, String, String), StsFailure> {
    let asked = sts.now();
    assume_unsigned(
        sts,
        regions,
        "AssumeRoleWithSAML",
        |client, region| async move {
            let out = client
                .assume_role_with_saml()
                .role_arn(role_arn)
                .principal_arn(provider_arn)
                .saml_assertion(assertion.expose())
                .duration_seconds(seconds(duration))
                .send()
                .await
                .map_err(|e| crate::sts::classify(&region, e))?;
            Ok((out.credentials, out.assumed_role_user))
        },
    )
    .await
    .map(|(creds, arn, region)| (creds.granted_at_most(asked, duration), arn, region))
}

/// STS's refusal of a SAML assertion, with what to check.
pub fn explain_saml(f: StsFailure, role_arn: &str, provider_arn: &str) -> AccessError {
    let advice = match f.code.as_str() {
        "InvalidIdentityToken" => format!(
            "STS did not accept the assertion: check that the IAM SAML provider {provider_arn} \
             holds your identity provider's current metadata (its signing certificate)"
        ),
        "IDPRejectedClaim" | "AccessDenied" => format!(
            "STS refused {role_arn}: its trust policy must allow sts:AssumeRoleWithSAML for \
             {provider_arn}, and its conditions (SAML:aud, ...) must match the assertion"
        ),
        "ExpiredTokenException" | "ExpiredToken" => {
            "the assertion had expired when STS saw it (they are valid for minutes): check this \
             machine's clock, and that assertion_command prints a fresh one"
                .to_owned()
        }
        "MalformedPolicyDocument" | "ValidationError" => {
            format!(
                "STS could not read the assertion as a SAML response: {}",
                f.message
            )
        }
        _ => return AccessError::Sts(f),
    };
    explained(f, advice)
}

pub(super) fn explained(f: StsFailure, advice: String) -> AccessError {
    if f.kind == FailureKind::Outage {
        return AccessError::Sts(f);
    }
    AccessError::Refused { advice, failure: f }
}
