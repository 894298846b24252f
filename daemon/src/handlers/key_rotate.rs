//! `credd key rotate`: a new key for the IAM user, stored before the old one is deleted.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::access::iam_user::iam::IamError;
use crate::access::iam_user::rotate::RotateError;
use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    // In a task of its own: a client that goes away must not stop a rotation half-way.
    let engine = daemon.engine.clone();
    match tokio::spawn(async move { engine.rotate_key().await }).await {
        Ok(Ok(report)) => Response::KeyStored(report),
        Ok(Err(e)) => Response::Error(ErrorReply::new(code(&e), e.to_string())),
        Err(e) => Response::Error(ErrorReply::new(
            ErrorCode::Internal,
            format!("the key rotation failed: {e}"),
        )),
    }
}

/// What a script can tell from a failed rotation.
fn code(e: &RotateError) -> ErrorCode {
    match e {
        RotateError::Busy | RotateError::NoIam => ErrorCode::Unavailable,
        RotateError::NotInKeychain(_) | RotateError::NotIamUser(_) => ErrorCode::ConfigInvalid,
        RotateError::NoKey | RotateError::KeychainRead(_) | RotateError::NotStored { .. } => {
            ErrorCode::Keychain
        }
        RotateError::Create(IamError::Unreachable { .. }) => ErrorCode::Unavailable,
        RotateError::Create(_) | RotateError::NotVerified { .. } => ErrorCode::Sts,
    }
}
