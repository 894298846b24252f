//! One handler per control request; each turns a [`Request`] into a [`Response`].

mod credentials;
mod endpoint;
mod key;
mod key_rotate;
mod login;
mod logout;
mod profiles;
mod reload;
mod reset_token;
mod sso_import;
mod status;
mod switch;

use credd_proto::{ErrorCode, ErrorReply, Request, Response};

use crate::access::source::{ErrorClass, Refuser};
use crate::daemon::Daemon;
use crate::engine::EngineError;
use crate::vend::Caller;

/// `caller`: who sent it, for the vending point.
pub async fn dispatch(daemon: &Daemon, request: Request, caller: &Caller) -> Response {
    match request {
        Request::Status => status::handle(daemon),
        Request::Profiles => profiles::handle(daemon),
        Request::Switch { profile } => switch::handle(daemon, &profile),
        Request::Reload => reload::handle(daemon),
        Request::Login { mfa_code, browser } => login::handle(daemon, mfa_code, browser).await,
        Request::LoginWait => login::wait(daemon).await,
        Request::LoginCancel => login::cancel(daemon),
        Request::SsoImport => sso_import::handle(daemon).await,
        Request::Logout => logout::handle(daemon),
        Request::Credentials { profile } => credentials::handle(daemon, profile, caller).await,
        Request::Endpoint { profile } => endpoint::handle(daemon, profile),
        Request::ResetToken => reset_token::handle(daemon),
        request @ (Request::KeyAdd { .. } | Request::KeyImport { .. } | Request::KeyRemove) => {
            key::handle(daemon, request).await
        }
        Request::KeyRotate => key_rotate::handle(daemon).await,
    }
}

/// The one place engine errors become control-protocol errors.
pub fn error(e: &EngineError) -> Response {
    let code = match e.class() {
        None => ErrorCode::UnknownProfile,
        Some(ErrorClass::LoginAgain) => ErrorCode::LoginRequired,
        Some(ErrorClass::FixConfig) => ErrorCode::ConfigInvalid,
        Some(ErrorClass::Retry) => ErrorCode::Unavailable,
        Some(ErrorClass::Refused(Refuser::Aws)) => ErrorCode::Sts,
        Some(ErrorClass::Refused(Refuser::IdentityProvider)) => ErrorCode::IdentityProvider,
        Some(ErrorClass::Refused(Refuser::MfaCode)) => ErrorCode::InvalidMfaCode,
        Some(ErrorClass::Refused(Refuser::Keychain)) => ErrorCode::Keychain,
    };
    Response::Error(ErrorReply::new(code, e.to_string()))
}
