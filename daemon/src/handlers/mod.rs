//! One handler per control request; each turns a [`Request`] into a [`Response`].

mod console;
mod credentials;
mod docker;
mod doctor;
mod endpoint;
mod key;
mod key_rotate;
mod login;
mod logout;
mod profiles;
mod refresh;
mod reload;
mod reset_token;
mod sso_import;
mod status;
mod stop;
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
        Request::DockerGrant(request) => docker::grant(daemon, request).await,
        Request::DockerRevoke(request) => docker::revoke(daemon, request).await,
        Request::ResetToken => reset_token::handle(daemon),
        request @ (Request::KeyAdd { .. } | Request::KeyImport { .. } | Request::KeyRemove) => {
            key::handle(daemon, request).await
        }
        Request::KeyRotate => key_rotate::handle(daemon).await,
        Request::Console(request) => console::handle(daemon, request, caller).await,
        Request::Refresh { profile, all } => refresh::handle(daemon, profile, all).await,
        Request::Stop => stop::handle(daemon),
        Request::Doctor => doctor::handle(daemon).await,
    }
}

/// An engine error as a control-protocol error reply.
pub fn error(e: &EngineError) -> Response {
    Response::Error(reply(e))
}

/// The one place engine errors become control-protocol errors.
pub fn reply(e: &EngineError) -> ErrorReply {
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
    ErrorReply::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use credd_proto::{ErrorCode, Response};

    use crate::access::AccessError;
    use crate::access::iam_user::key_file::KeyFileError;
    use crate::access::iam_user::keychain::KeychainError;
    use crate::access::saml::SamlError;
    use crate::access::sso::SsoError;
    use crate::access::web_identity::OidcError;
    use crate::engine::EngineError;
    use crate::sts::{FailureKind, StsFailure};

    fn failure() -> StsFailure {
        StsFailure {
            kind: FailureKind::Refused,
            region: "us-east-1".into(),
            code: "AccessDenied".into(),
            message: "no".into(),
        }
    }

    fn sso(e: SsoError) -> EngineError {
        EngineError::Access(AccessError::Sso(e))
    }

    fn oidc(e: OidcError) -> EngineError {
        EngineError::Access(AccessError::Oidc(e))
    }

    /// The codes clients and scripts see, pinned: each error's class picks the same code the
    /// per-variant mapping before the classes did.
    #[test]
    fn every_error_keeps_its_control_code() {
        let issuer = || "https://idp.example".to_owned();
        let cases = [
            (
                EngineError::UnknownProfile {
                    name: "x".into(),
                    known: vec![],
                    rejected_edit: None,
                },
                ErrorCode::UnknownProfile,
            ),
            (
                EngineError::NoCurrentProfile { known: vec![] },
                ErrorCode::UnknownProfile,
            ),
            (
                EngineError::LoginRequired { detail: None },
                ErrorCode::LoginRequired,
            ),
            (
                EngineError::Unavailable {
                    profile: "x".into(),
                    detail: None,
                },
                ErrorCode::Unavailable,
            ),
            (EngineError::Sts(failure()), ErrorCode::Sts),
            (
                AccessError::MfaRequired { serial: "s".into() }.into(),
                ErrorCode::LoginRequired,
            ),
            (
                AccessError::MalformedMfaCode.into(),
                ErrorCode::InvalidMfaCode,
            ),
            (
                AccessError::MfaCodeRefused {
                    serial: "s".into(),
                    message: "used".into(),
                }
                .into(),
                ErrorCode::InvalidMfaCode,
            ),
            (
                AccessError::MfaCommandNoCode {
                    program: "ykman".into(),
                }
                .into(),
                ErrorCode::InvalidMfaCode,
            ),
            (
                AccessError::KeyFile(KeyFileError::Missing {
                    path: "/x".into(),
                    profile: "p".into(),
                })
                .into(),
                ErrorCode::ConfigInvalid,
            ),
            (
                AccessError::Keychain(KeychainError::Unavailable {
                    tried: "all".into(),
                })
                .into(),
                ErrorCode::Keychain,
            ),
            (
                AccessError::NoKeychainKey {
                    keychain: "k".into(),
                    import: None,
                }
                .into(),
                ErrorCode::Keychain,
            ),
            (
                sso(SsoError::Unreachable {
                    region: "r".into(),
                    detail: "d".into(),
                }),
                ErrorCode::Unavailable,
            ),
            (sso(SsoError::AuthorizationDenied), ErrorCode::LoginRequired),
            (
                sso(SsoError::Forbidden {
                    account_id: "1".into(),
                    role_name: "r".into(),
                    message: "m".into(),
                }),
                ErrorCode::Sts,
            ),
            (
                oidc(OidcError::Unreachable {
                    issuer: issuer(),
                    detail: "d".into(),
                }),
                ErrorCode::Unavailable,
            ),
            (
                oidc(OidcError::NoDeviceGrant { issuer: issuer() }),
                ErrorCode::ConfigInvalid,
            ),
            (
                oidc(OidcError::RefreshRefused("r".into())),
                ErrorCode::LoginRequired,
            ),
            (oidc(OidcError::NoIdToken), ErrorCode::IdentityProvider),
            (
                AccessError::Saml(SamlError::NoRoles).into(),
                ErrorCode::IdentityProvider,
            ),
            (
                AccessError::TokenFile {
                    path: "/t".into(),
                    detail: "d".into(),
                }
                .into(),
                ErrorCode::IdentityProvider,
            ),
            (
                AccessError::Refused {
                    advice: "a".into(),
                    failure: failure(),
                }
                .into(),
                ErrorCode::Sts,
            ),
        ];
        for (e, code) in cases {
            let Response::Error(reply) = super::error(&e) else {
                panic!("{e}: not an error reply");
            };
            assert_eq!(reply.code, code, "{e}");
        }
    }

    /// What an SDK sees: 4xx for what retrying cannot fix, 5xx for what it can.
    #[test]
    fn every_error_keeps_its_http_answer() {
        use axum::http::StatusCode;
        let cases = [
            (
                EngineError::UnknownProfile {
                    name: "x".into(),
                    known: vec![],
                    rejected_edit: None,
                },
                StatusCode::NOT_FOUND,
            ),
            (
                EngineError::NoCurrentProfile { known: vec![] },
                StatusCode::NOT_FOUND,
            ),
            (
                EngineError::LoginRequired { detail: None },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                AccessError::MfaRequired { serial: "s".into() }.into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                EngineError::Unavailable {
                    profile: "x".into(),
                    detail: None,
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (EngineError::Sts(failure()), StatusCode::BAD_GATEWAY),
            (
                AccessError::MalformedMfaCode.into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(crate::http::error::engine(&e).status(), status, "{e}");
        }
    }
}
