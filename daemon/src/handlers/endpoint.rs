//! Where the HTTP API serves a profile, for `credd env` and `credd exec`, and whether they must
//! log in first.

use credd_proto::{EndpointInfo, ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon, profile: Option<String>) -> Response {
    let Some(base) = daemon.http_url.get() else {
        return Response::Error(ErrorReply::new(
            ErrorCode::Unavailable,
            "the HTTP credentials API is not running",
        ));
    };
    let config = daemon.config();
    let region = match &profile {
        Some(name) => match config.profiles.get(name) {
            Some(p) => p.region.clone(),
            None => {
                return super::error(&daemon.engine.unknown_profile(name));
            }
        },
        None => daemon
            .vending
            .current()
            .and_then(|c| config.profiles.get(&c).and_then(|p| p.region.clone())),
    };
    let url = match &profile {
        Some(name) => format!("{base}/v1/credentials/{name}"),
        None => format!("{base}/v1/credentials"),
    };
    Response::Endpoint(EndpointInfo {
        profile,
        url,
        region,
        imds_url: config.daemon.imds.then(|| base.clone()),
        needs_login: daemon.engine.needs_login(),
    })
}
