//! `credd stop`: the daemon ends cleanly once the answer is sent ([`crate::daemon::Daemon::
//! request_stop`]), unless a service manager runs it: that would start it again, so the client
//! stops it through the manager instead.

use credd_proto::{Response, StopReport};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    let managed_by = daemon.managed_by.clone();
    let stopping = managed_by.is_none();
    if stopping {
        tracing::info!("`credd stop`: stopping");
    }
    Response::Stopping(StopReport {
        pid: std::process::id(),
        managed_by,
        stopping,
    })
}
