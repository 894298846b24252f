//! `credd key add|import|remove`: the protocol's side of the IAM user's key verbs
//! ([`crate::access::iam_user::keys`]), one at a time; where the key alone is the session, the
//! daemon logs in again with the new key at once. `credd key rotate` is `key_rotate.rs`.

use credd_proto::{BrowserLogin, ErrorCode, ErrorReply, Request, Response};

use crate::access::error_chain;
use crate::access::iam_user::keychain::Keychain;
use crate::access::iam_user::keys::{self, KeyContext, KeyError};
use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon, request: Request) -> Response {
    let Some(_one) = daemon.engine.try_key_change() else {
        return Response::Error(ErrorReply::new(
            ErrorCode::Unavailable,
            "another `credd key` command is under way: try again when it has finished",
        ));
    };
    let keychain = Keychain::new();
    let config = daemon.config();
    let cx = KeyContext {
        config: &config,
        sts: daemon.engine.sts(),
        keychain: &keychain,
    };
    let stored = match request {
        Request::KeyAdd {
            access_key_id,
            secret_access_key,
        } => keys::add(&cx, access_key_id, secret_access_key).await,
        Request::KeyImport {
            profile,
            delete_from_file,
        } => keys::import(&cx, profile, delete_from_file).await,
        Request::KeyRemove => {
            return match keys::remove(&keychain).await {
                Ok(removed) => Response::KeyRemoved {
                    removed,
                    keychain: keychain.describe(),
                },
                Err(e) => refused(&e),
            };
        }
        other => Err(KeyError::Internal(format!(
            "`credd {}` is not a key verb this handler serves",
            other.name()
        ))),
    };
    match stored {
        Ok(stored) => {
            let relogin = if keys::relogin_needed(&config) {
                log_in_again(daemon).await
            } else {
                None
            };
            Response::KeyStored(stored.report(relogin))
        }
        Err(e) => refused(&e),
    }
}

fn refused(e: &KeyError) -> Response {
    tracing::warn!(error = %e.message(), "key request refused");
    let code = match e {
        KeyError::Malformed(_) => ErrorCode::MalformedRequest,
        KeyError::Keychain(_) | KeyError::Mismatch(_) => ErrorCode::Keychain,
        KeyError::File(_) => ErrorCode::ConfigInvalid,
        e if e.is_outage() => ErrorCode::Unavailable,
        KeyError::Access(_) => ErrorCode::Sts,
        KeyError::Internal(_) => ErrorCode::Internal,
    };
    Response::Error(ErrorReply::new(code, e.message()))
}

/// Logs in again with the new key; a failure is returned as a warning: the key is stored.
async fn log_in_again(daemon: &Daemon) -> Option<String> {
    match daemon.engine.login(None, BrowserLogin::default()).await {
        Ok(_) => {
            tracing::info!("logged in again with the new key");
            None
        }
        Err(e) => Some(format!(
            "the key is stored, but logging in again with it failed: {}",
            error_chain(&e)
        )),
    }
}
