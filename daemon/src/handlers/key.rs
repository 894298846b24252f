//! `credd key add|import|rotate|remove`: the IAM user's long-lived key in the OS keychain.

use credd_proto::{ErrorCode, ErrorReply, Request, Response};

use crate::Daemon;

pub async fn handle(_daemon: &Daemon, request: Request) -> Response {
    Response::Error(ErrorReply::new(
        ErrorCode::Internal,
        format!("`credd {}` is not implemented yet", request.name()),
    ))
}
