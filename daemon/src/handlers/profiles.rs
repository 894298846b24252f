//! `credd profiles`: the configured profiles and which one is current.

use credd_proto::{ProfileInfo, Response};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    let config = daemon.config();
    Response::Profiles {
        current: daemon.vending.current(),
        profiles: config
            .profiles
            .values()
            .map(|p| ProfileInfo {
                name: p.name.clone(),
                role_arn: p.role_arn().map(str::to_owned),
                sso_role: p.sso_role(),
                via: p.via.clone(),
                region: p.region.clone(),
            })
            .collect(),
    }
}
