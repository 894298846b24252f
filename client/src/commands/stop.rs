//! `credd stop`: ends the daemon cleanly and waits until it is gone. A daemon that a service
//! manager runs is stopped through the manager (which would otherwise start it again); when that
//! fails, the exact command to run is printed. With no daemon running, says so and exits 0: the
//! daemon is stopped either way.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use credd_proto::paths::Paths;
use credd_proto::{Request, Response, StopReport};
use serde_json::json;

use super::unexpected;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::output;
use crate::service_manager::Manager;

/// How long the daemon may take to end once it said it would (it finishes what it is answering).
const STOP_WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Stop;
    // Never start a daemon only to stop it.
    let mut conn = match Connection::open_existing(paths) {
        Ok(conn) => conn,
        Err(ClientError::NotRunning { socket, .. }) => {
            if json {
                output::json(&json!({ "running": false, "stopped": false }));
            } else {
                eprintln!(
                    "credd: credd-daemon is not running (no daemon answers at {}): nothing to stop",
                    socket.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    let report = match conn.request(&request)? {
        Response::Stopping(report) => report,
        Response::Error(e) => return Err(ClientError::Daemon(e)),
        other => return Err(unexpected(&request, other)),
    };
    drop(conn);
    let how = match (&report.managed_by, report.stopping) {
        (_, true) => None,
        (Some(name), false) => Some(stop_through_manager(name, &report)?),
        (None, false) => {
            return Err(ClientError::StopRefused {
                pid: report.pid,
                why: "it did not say why".to_owned(),
            });
        }
    };
    if !gone(paths, report.pid, STOP_WAIT) {
        return Err(ClientError::StopTimedOut {
            pid: report.pid,
            waited: STOP_WAIT,
        });
    }
    if json {
        output::json(&json!({
            "running": true,
            "stopped": true,
            "pid": report.pid,
            "managed_by": report.managed_by,
        }));
    } else {
        match how {
            Some(command) => println!(
                "stopped credd-daemon (pid {}) through {}: `{command}`",
                report.pid,
                report
                    .managed_by
                    .as_deref()
                    .unwrap_or("its service manager")
            ),
            None => println!("stopped credd-daemon (pid {})", report.pid),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the manager that runs the daemon to stop it; returns the command it ran.
fn stop_through_manager(name: &str, report: &StopReport) -> Result<String, ClientError> {
    let manager = match name {
        "systemd" => Manager::Systemd,
        "launchd" => Manager::Launchd,
        other => {
            return Err(ClientError::StopRefused {
                pid: report.pid,
                why: format!("{other} runs it, which credd does not know how to drive"),
            });
        }
    };
    let command = manager.stop_command();
    manager
        .stop()
        .map_err(|e| ClientError::StopThroughManager {
            pid: report.pid,
            manager: name.to_owned(),
            command: command.clone(),
            error: e,
        })?;
    Ok(command)
}

/// Whether the daemon `pid` ended (or at least let its socket go) within `wait`.
fn gone(paths: &Paths, pid: u32, wait: Duration) -> bool {
    let socket = paths.socket();
    let deadline = Instant::now() + wait;
    loop {
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        let alive = i32::try_from(pid).is_ok_and(|p| unsafe { libc::kill(p, 0) } == 0);
        if !alive || !socket.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
