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

use crate::Daemon;
use crate::access::AccessError;
use crate::access::sso::SsoError;
use crate::access::web_identity::OidcError;
use crate::engine::EngineError;

pub async fn dispatch(daemon: &Daemon, request: Request) -> Response {
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
        Request::Credentials { profile } => credentials::handle(daemon, profile).await,
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
    let code = match e {
        EngineError::UnknownProfile { .. } | EngineError::NoCurrentProfile { .. } => {
            ErrorCode::UnknownProfile
        }
        EngineError::LoginRequired { .. } => ErrorCode::LoginRequired,
        EngineError::Unavailable { .. } => ErrorCode::Unavailable,
        EngineError::Access(a) => match a {
            AccessError::MfaRequired { .. } => ErrorCode::LoginRequired,
            AccessError::MalformedMfaCode
            | AccessError::MfaCodeRefused(_)
            | AccessError::MfaCommandNoCode { .. } => ErrorCode::InvalidMfaCode,
            AccessError::KeyFile(_) => ErrorCode::ConfigInvalid,
            AccessError::Keychain(_) | AccessError::NoKeychainKey { .. } => ErrorCode::Keychain,
            AccessError::KeyRefused { .. } => ErrorCode::Sts,
            AccessError::Sts(_) => ErrorCode::Sts,
            AccessError::Sso(e) => match e {
                SsoError::Unreachable { .. } => ErrorCode::Unavailable,
                SsoError::SessionEnded { .. }
                | SsoError::AuthorizationExpired
                | SsoError::AuthorizationDenied
                | SsoError::AuthorizationCancelled => ErrorCode::LoginRequired,
                SsoError::Forbidden { .. }
                | SsoError::WrongStartUrl { .. }
                | SsoError::Refused { .. } => ErrorCode::Sts,
            },
            AccessError::Oidc(e) => match e {
                OidcError::Unreachable { .. } => ErrorCode::Unavailable,
                OidcError::Discovery { .. } | OidcError::NoDeviceGrant { .. } => {
                    ErrorCode::ConfigInvalid
                }
                OidcError::Denied(_)
                | OidcError::Expired
                | OidcError::Cancelled
                | OidcError::RefreshRefused(_) => ErrorCode::LoginRequired,
                OidcError::Refused(_) | OidcError::BadIdToken(_) | OidcError::NoIdToken => {
                    ErrorCode::IdentityProvider
                }
            },
            AccessError::Saml(_) | AccessError::Command(_) | AccessError::TokenFile { .. } => {
                ErrorCode::IdentityProvider
            }
            AccessError::Refused { .. } => ErrorCode::Sts,
        },
        EngineError::Sts(_) => ErrorCode::Sts,
    };
    Response::Error(ErrorReply::new(code, e.to_string()))
}

/// The named profile, or the current one.
pub fn profile_or_current(daemon: &Daemon, profile: Option<String>) -> Result<String, EngineError> {
    match profile.or_else(|| daemon.current_profile()) {
        Some(p) => Ok(p),
        None => Err(EngineError::NoCurrentProfile {
            known: daemon.engine.profile_names(),
        }),
    }
}
