//! `credd doctor`: the daemon's live posture checks ([`crate::engine::Engine::doctor`]) and its
//! version; the client adds the local checks and orders the findings.

use credd_proto::{DoctorReport, Response};

use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    Response::Doctor(DoctorReport {
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
        findings: daemon.engine.doctor().await,
    })
}
