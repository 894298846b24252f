//! `credd reset-token`: a new HTTP token; the old one stops working at once.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    match daemon.http_token.rotate() {
        Ok(()) => Response::TokenReset,
        Err(e) => Response::Error(ErrorReply::new(
            ErrorCode::Internal,
            format!("the HTTP token could not be replaced: {e}"),
        )),
    }
}
