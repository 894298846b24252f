//! `credd status`: everything a user needs to see at a glance; nothing secret.

use credd_proto::{ConfigInfo, PathsInfo, Response, StatusReport};

use crate::clock::unix;
use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    let p = &daemon.paths;
    let show = |path: &std::path::Path| path.display().to_string();
    let config = daemon.config_status(|s| ConfigInfo {
        path: show(&p.config),
        loaded_at: unix(s.loaded_at),
        error: s.error.clone(),
        warnings: s.warnings.clone(),
    });
    Response::Status(Box::new(StatusReport {
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        started_at: unix(daemon.started_at),
        paths: PathsInfo {
            config: show(&p.config),
            runtime_dir: show(&p.runtime_dir),
            socket: show(&p.socket()),
            token_file: show(&p.token_file()),
            state_file: show(&p.state_file()),
        },
        url: daemon.http_url.get().cloned(),
        config,
        access: daemon.engine.access_info(),
        current_profile: daemon.vending.current(),
        profiles: daemon.engine.profile_status(),
        docker: daemon.containers.status(),
    }))
}
