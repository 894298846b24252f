//! `credd docker run`, `credd docker env` and `credd docker revoke`: grants for containers
//! ([`crate::docker`]).

use credd_proto::docker::{GrantRequest, RevokeRequest};
use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;
use crate::engine::EngineError;

pub async fn grant(daemon: &Daemon, request: GrantRequest) -> Response {
    let config = daemon.config();
    // Pinned now: a later `credd switch` does not follow the container in.
    let profile = match request.profile.clone().or_else(|| daemon.vending.current()) {
        Some(p) => p,
        None => {
            return super::error(&EngineError::NoCurrentProfile {
                known: daemon.engine.profile_names(),
            });
        }
    };
    let Some(configured) = config.profiles.get(&profile) else {
        return super::error(&daemon.engine.unknown_profile(&profile));
    };
    let region = configured.region.clone();
    match daemon.containers.grant(&request, profile, region).await {
        Ok(grant) => Response::DockerGrant(grant),
        Err(e) => Response::Error(ErrorReply::new(ErrorCode::Docker, e.to_string())),
    }
}

pub async fn revoke(daemon: &Daemon, request: RevokeRequest) -> Response {
    if request.id.is_none() && !request.all {
        return Response::Error(ErrorReply::new(
            ErrorCode::InvalidArgument,
            "name the grant to revoke (its ID, as `credd status` lists it) or ask for all",
        ));
    }
    let (grants, containers) = match daemon
        .containers
        .revoke(request.id.as_deref(), request.unclaimed_only)
        .await
    {
        Ok(revoked) => revoked,
        Err(e) => return Response::Error(ErrorReply::new(ErrorCode::Docker, e.to_string())),
    };
    if grants.is_empty()
        && !request.all
        && !request.unclaimed_only
        && let Some(id) = &request.id
    {
        return Response::Error(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!("no live grant {id:?} (`credd status` lists the grants)"),
        ));
    }
    Response::DockerRevoked { grants, containers }
}
