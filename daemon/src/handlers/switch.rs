//! `credd switch <profile>`: moves the current route to another profile.

use credd_proto::Response;

use crate::Daemon;

pub fn handle(daemon: &Daemon, profile: &str) -> Response {
    match daemon.switch(profile) {
        Ok(previous) => Response::Switched {
            previous,
            current: profile.to_owned(),
        },
        Err(e) => super::error(&e),
    }
}
