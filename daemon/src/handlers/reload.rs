//! `credd reload`: re-reads the config now and says whether it was applied.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    match daemon.reload() {
        Ok(config) => Response::Reloaded {
            path: config.path.display().to_string(),
            profiles: config.profiles.len(),
            warnings: daemon.config_status(|s| s.warnings.clone()),
        },
        Err(e) => Response::Error(ErrorReply::new(
            ErrorCode::ConfigInvalid,
            format!("{e}\n(the previous config stays in force)"),
        )),
    }
}
