//! `credd doctor`: the daemon's live posture checks ([`crate::engine::Engine::doctor`]) and its
//! version; the client adds the local checks and orders the findings.

use credd_proto::{DoctorReport, Response, Severity};

use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    let findings = daemon.engine.doctor().await;
    // The checks by name and verdict only: what a finding says stays between daemon and user.
    let problems: Vec<String> = findings
        .iter()
        .filter(|f| f.severity > Severity::Ok)
        .map(|f| format!("{} {}", f.severity.as_str(), f.check))
        .collect();
    tracing::info!(checks = findings.len(), problems = ?problems, "credd doctor ran");
    Response::Doctor(DoctorReport {
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
        findings,
    })
}
