//! `credd switch <profile>`: moves the current route to another profile.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;
use crate::vend::SwitchError;

pub fn handle(daemon: &Daemon, profile: &str) -> Response {
    match daemon.vending.switch(profile) {
        Ok(previous) => Response::Switched {
            previous,
            current: profile.to_owned(),
        },
        Err(SwitchError::Unknown(e)) => super::error(&e),
        Err(e @ SwitchError::NotSaved { .. }) => {
            Response::Error(ErrorReply::new(ErrorCode::Internal, e.to_string()))
        }
    }
}
