//! `credd logout`: forgets every credential at once.

use credd_proto::Response;

use crate::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    Response::LoggedOut {
        forgotten: daemon.engine.logout(),
    }
}
