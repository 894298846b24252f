//! `credd console`: the Region, partition and landing page are checked first; then the
//! credentials are taken through the vending point ([`Route::Console`]): a profile's cached role
//! session, or the access session's own way in (an IAM user's federation token). The federation
//! endpoint trades them for a sign-in token, and the sign-in URL goes back to the client only:
//! it is logged nowhere.

use std::time::SystemTime;

use credd_proto::{ConsoleRequest, ConsoleSignin, ErrorReply, Response};
use url::Url;

use crate::clock::unix;
use crate::config::{AccessSourceKind, Config};
use crate::console::page;
use crate::console::url::{Partition, destination, login_url, region_in};
use crate::console::{
    ConsoleError, DEFAULT_DURATION, check_duration, federated_name, federation_token,
};
use crate::daemon::Daemon;
use crate::engine::AccessConsole;
use crate::vend::{Caller, Route};

pub async fn handle(daemon: &Daemon, request: ConsoleRequest, caller: &Caller) -> Response {
    let whom = if request.access {
        "the access session".to_owned()
    } else {
        request
            .profile
            .clone()
            .or_else(|| daemon.vending.current())
            .map_or_else(|| "the current profile".to_owned(), |p| format!("{p:?}"))
    };
    match sign_in(daemon, request, caller).await {
        Ok(signin) => {
            tracing::info!(
                signed_in_as = %whom,
                region = %signin.region,
                mfa = signin.mfa_authenticated,
                "console sign-in URL made"
            );
            Response::Console(signin)
        }
        Err(e) => {
            tracing::warn!(signed_in_as = %whom, error = %e, "console sign-in failed");
            error(&e)
        }
    }
}

fn error(e: &ConsoleError) -> Response {
    match (e, e.code()) {
        (ConsoleError::Engine(e), _) => super::error(e),
        (_, Some(code)) => Response::Error(ErrorReply::new(code, e.to_string())),
        (_, None) => Response::Error(ErrorReply::new(
            credd_proto::ErrorCode::Internal,
            e.to_string(),
        )),
    }
}

async fn sign_in(
    daemon: &Daemon,
    request: ConsoleRequest,
    caller: &Caller,
) -> Result<ConsoleSignin, ConsoleError> {
    let duration = request.duration_secs.map(check_duration).transpose()?;
    if let Some(region) = &request.region {
        // A malformed Region is refused before anything else is looked at.
        Partition::of_region(region)?;
    }
    let mut signin = if request.access {
        access_sign_in(daemon, &request, duration, caller).await?
    } else {
        profile_sign_in(daemon, &request, duration.is_some(), caller).await?
    };
    if request.browser {
        match page::serve_once(signin.url.clone()).await {
            Ok(page) => signin.page = Some(page),
            Err(e) => signin.notes.push(format!(
                "no loopback page could be opened for the browser ({e}): it is given the \
                 sign-in URL itself"
            )),
        }
    }
    Ok(signin)
}

/// Where the sign-in lands.
struct Plan {
    partition: Partition,
    region: String,
    destination: Url,
}

/// The partition (`arn`'s, else the Region's), the Region (asked, else configured, else the
/// partition's first) and the page, all checked against each other.
fn plan(
    whom: &str,
    arn: Option<&str>,
    asked_region: Option<&str>,
    configured_region: Option<&str>,
    page: Option<&str>,
) -> Result<Plan, ConsoleError> {
    let chosen = asked_region.or(configured_region);
    let partition = match arn {
        Some(arn) => Partition::of_arn(arn).ok_or_else(|| ConsoleError::Partition {
            whom: whom.to_owned(),
            partition: arn.split(':').nth(1).unwrap_or_default().to_owned(),
        })?,
        None => chosen.map_or(Ok(Partition::Aws), Partition::of_region)?,
    };
    let region = chosen.unwrap_or(partition.default_region()).to_owned();
    region_in(&region, partition, whom)?;
    let destination = destination(partition, &region, page)?;
    Ok(Plan {
        partition,
        region,
        destination,
    })
}

async fn profile_sign_in(
    daemon: &Daemon,
    request: &ConsoleRequest,
    duration_asked: bool,
    caller: &Caller,
) -> Result<ConsoleSignin, ConsoleError> {
    let config = daemon.config();
    let name = request.profile.clone().or_else(|| daemon.vending.current());
    // Checked before the credentials leave the vending point; an unknown profile is the vending
    // point's to name.
    let configured = name.as_deref().and_then(|n| config.profiles.get(n));
    let early = configured
        .map(|p| {
            plan(
                &format!("profile {:?}", p.name),
                p.role_arn(),
                request.region.as_deref(),
                p.region.as_deref(),
                request.destination.as_deref(),
            )
        })
        .transpose()?;
    let vend = daemon.vending.vend(Route::Console, name, caller).await?;
    let whom = format!("profile {:?}", vend.profile);
    let issued_in = Partition::of_arn(&vend.credentials.assumed_arn);
    let plan = match early {
        Some(plan) if issued_in.is_none_or(|p| p == plan.partition) => plan,
        // The config changed in between, or an Identity Center role turned out to be in
        // another partition than its Region said: plan from what was vended.
        _ => plan(
            &whom,
            Some(&vend.credentials.assumed_arn),
            request.region.as_deref(),
            None,
            request.destination.as_deref(),
        )?,
    };
    let credentials = &vend.credentials;
    let mut notes = Vec::new();
    if duration_asked {
        notes.push(format!(
            "--duration does not apply to a role's console session: it lasts as long as the \
             role's credentials, until {} (only `credd console --access` as an IAM user \
             chooses its length)",
            rfc3339(credentials.expiration)
        ));
    }
    if chained(&config, &vend.profile) {
        notes.push(
            "this role is assumed with another role's credentials (role chaining), which AWS \
             limits to 1 hour: the console session ends with them"
                .to_owned(),
        );
    }
    let token = daemon
        .federation
        .signin_token(plan.partition, &credentials.creds, None)
        .await?;
    let endpoint = daemon.federation.endpoint(plan.partition);
    Ok(ConsoleSignin {
        url: login_url(&endpoint, &plan.destination, &token),
        profile: Some(vend.profile.clone()),
        identity: credentials.assumed_arn.clone(),
        partition: plan.partition.name().to_owned(),
        region: plan.region,
        destination: plan.destination.into(),
        expires_at: Some(unix(credentials.expiration)),
        mfa_authenticated: daemon.engine.access_mfa(),
        notes,
        page: None,
    })
}

/// Whether `profile`'s role is assumed with role credentials: through another profile, or
/// (Identity Center) with the access role's.
fn chained(config: &Config, profile: &str) -> bool {
    config.profiles.get(profile).is_some_and(|p| {
        p.via.is_some() || (p.role_arn().is_some() && config.access.kind() == AccessSourceKind::Sso)
    })
}

async fn access_sign_in(
    daemon: &Daemon,
    request: &ConsoleRequest,
    duration: Option<std::time::Duration>,
    caller: &Caller,
) -> Result<ConsoleSignin, ConsoleError> {
    let config = daemon.config();
    let whom = "the access session";
    // The access account's STS Region says which partition it is in until its ARN does.
    let sts_region = config.access.regions.first().map(String::as_str);
    let early = plan(
        whom,
        None,
        request.region.as_deref(),
        sts_region,
        request.destination.as_deref(),
    )?;
    let lifetime = duration.unwrap_or(DEFAULT_DURATION);
    let access = daemon
        .vending
        .vend_access(Route::Console, caller, lifetime)
        .await?;
    let arn = match &access {
        AccessConsole::IamUser { user_arn, .. } => user_arn.clone(),
        AccessConsole::RoleSession { arn, .. } => arn.clone(),
        AccessConsole::NoKeys => return Err(ConsoleError::NoKeys),
    };
    let plan = match &arn {
        Some(arn) => plan(
            whom,
            Some(arn),
            request.region.as_deref(),
            sts_region,
            request.destination.as_deref(),
        )?,
        None => early,
    };
    let mut notes = Vec::new();
    let (token, identity, expires_at, mfa) = match access {
        AccessConsole::IamUser { key, user_arn } => {
            let name = federated_name(user_arn.as_deref());
            let (creds, federated_arn) = federation_token(
                daemon.engine.sts(),
                &daemon.engine.sts_regions(),
                &key,
                &name,
                lifetime,
            )
            .await?;
            drop(key);
            notes.push(
                "this console session is not MFA-authenticated: it is a federated user's \
                 (GetFederationToken with the IAM user's long-lived key) with the IAM user's \
                 own permissions, except that a federated user cannot use IAM, or STS beyond \
                 GetCallerIdentity"
                    .to_owned(),
            );
            let token = daemon
                .federation
                .signin_token(plan.partition, &creds, Some(lifetime.as_secs()))
                .await?;
            let ends = daemon.engine.now() + lifetime;
            let expires_at = creds.expiration.map_or(ends, |e| e.min(ends));
            let identity = federated_arn.or(user_arn).unwrap_or_default();
            (token, identity, Some(expires_at), false)
        }
        AccessConsole::RoleSession {
            creds, expires_at, ..
        } => {
            if duration.is_some() {
                notes.push(format!(
                    "--duration does not apply to a role's console session: it lasts as long as \
                     the access role's session{}",
                    expires_at
                        .map(|e| format!(", until {}", rfc3339(e)))
                        .unwrap_or_default()
                ));
            }
            let token = daemon
                .federation
                .signin_token(plan.partition, &creds, None)
                .await?;
            (token, arn.unwrap_or_default(), expires_at, false)
        }
        AccessConsole::NoKeys => return Err(ConsoleError::NoKeys),
    };
    let endpoint = daemon.federation.endpoint(plan.partition);
    Ok(ConsoleSignin {
        url: login_url(&endpoint, &plan.destination, &token),
        profile: None,
        identity,
        partition: plan.partition.name().to_owned(),
        region: plan.region,
        destination: plan.destination.into(),
        expires_at: expires_at.map(unix),
        mfa_authenticated: mfa,
        notes,
        page: None,
    })
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_comes_from_the_role_and_the_region_must_be_in_it() {
        let p = plan(
            "profile \"gov\"",
            Some("arn:aws-us-gov:iam::1:role/x"),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(p.partition, Partition::AwsUsGov);
        assert_eq!(p.region, "us-gov-west-1");
        assert_eq!(
            p.destination.as_str(),
            "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"
        );
        let e = plan(
            "profile \"gov\"",
            Some("arn:aws-us-gov:iam::1:role/x"),
            Some("eu-west-1"),
            None,
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("profile \"gov\" is in aws-us-gov"), "{e}");
        let e = plan("p", Some("arn:aws-iso:iam::1:role/x"), None, None, None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("\"aws-iso\"") && e.contains("aws-cn"), "{e}");
    }

    #[test]
    fn the_asked_region_wins_over_the_profiles() {
        let p = plan(
            "p",
            Some("arn:aws:iam::1:role/x"),
            Some("ap-south-1"),
            Some("eu-west-1"),
            Some("s3"),
        )
        .unwrap();
        assert_eq!(p.region, "ap-south-1");
        assert_eq!(
            p.destination.as_str(),
            "https://console.aws.amazon.com/s3/home?region=ap-south-1"
        );
        let p = plan("p", None, None, Some("cn-north-1"), None).unwrap();
        assert_eq!(p.partition, Partition::AwsCn);
    }
}
