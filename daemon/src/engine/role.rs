//! The role provider: one AssumeRole for one profile, signed by the access session or, for a
//! chained profile, by the credentials of the profile it goes `via`.

use aws_sdk_sts::types::Tag;

use crate::config::Profile;
use crate::creds::{AwsCredentials, RoleCredentials};
use crate::sts::{self, FailureKind, Sts, StsFailure};

pub async fn assume(
    sts: &Sts,
    regions: &[String],
    profile: &Profile,
    role_arn: &str,
    signer: &AwsCredentials,
    session_name: &str,
) -> Result<RoleCredentials, StsFailure> {
    let seconds = i32::try_from(profile.duration.as_secs()).unwrap_or(i32::MAX);
    let tags: Vec<Tag> = profile
        .tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let asked = sts.now();
    let ((creds, assumed_arn), region) = sts
        .with_failover(regions, |client, region| {
            let tags = tags.clone();
            async move {
                let mut call = client
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session_name)
                    .duration_seconds(seconds)
                    .set_external_id(profile.external_id.clone())
                    .set_source_identity(profile.source_identity.clone());
                if !tags.is_empty() {
                    call = call.set_tags(Some(tags));
                }
                let out = call
                    .customize()
                    .config_override(sts::signed_by(signer))
                    .send()
                    .await
                    .map_err(|e| sts::classify(&region, e))?;
                let arn = out.assumed_role_user.map(|u| u.arn).unwrap_or_default();
                let creds = out.credentials.ok_or_else(|| StsFailure {
                    kind: FailureKind::Outage,
                    region: region.clone(),
                    code: "EmptyResponse".into(),
                    message: "AssumeRole returned no credentials".into(),
                })?;
                Ok((creds, arn))
            }
        })
        .await?;
    let creds = AwsCredentials::from_sts(creds).granted_at_most(asked, profile.duration);
    let issued = sts.now();
    let expiration = creds.expiration.unwrap_or(issued);
    Ok(RoleCredentials {
        issued,
        expiration,
        account_id: profile.account_id.clone(),
        assumed_arn,
        region,
        creds,
    })
}
