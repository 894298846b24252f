//! `credd key rotate`: a new key for the IAM user, stored before the old one is deleted.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::Daemon;

pub async fn handle(_daemon: &Daemon) -> Response {
    Response::Error(ErrorReply::new(
        ErrorCode::Internal,
        "`credd key rotate` is not implemented yet",
    ))
}
