//! `credd logout`: forgets every credential at once, and replaces the HTTP token so that no
//! program handed the old one gets anything after the next login.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::daemon::Daemon;

pub fn handle(daemon: &Daemon) -> Response {
    let forgotten = daemon.engine.logout();
    if let Err(e) = daemon.http_token.rotate() {
        tracing::error!(error = %e, "logged out, but the HTTP token could not be replaced");
        return Response::Error(ErrorReply::new(
            ErrorCode::Internal,
            format!(
                "logged out ({forgotten} credentials forgotten), but the HTTP token could not be \
                 replaced: {e}; run `credd reset-token`"
            ),
        ));
    }
    Response::LoggedOut { forgotten }
}
