//! HTTP errors: `{"code","message"}` with `Content-Type: application/json`; 4xx for what
//! retrying cannot fix, 5xx for what it can (every SDK retries 5xx; most do not retry 4xx).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::access::source::ErrorClass;
use crate::engine::EngineError;

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

/// A request refused by a check, before any handler work.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
}

impl Refusal {
    pub const fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Refusal {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        reply(self.status, self.code, self.message)
    }
}

pub fn reply(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(Body { code, message })).into_response()
}

/// The one place engine errors become HTTP answers.
pub fn engine(e: &EngineError) -> Response {
    let (status, code) = match (e, e.class()) {
        (EngineError::NoCurrentProfile { .. }, _) => (StatusCode::NOT_FOUND, "NoCurrentProfile"),
        (_, None) => (StatusCode::NOT_FOUND, "UnknownProfile"),
        (_, Some(ErrorClass::LoginAgain)) => (StatusCode::SERVICE_UNAVAILABLE, "LoginRequired"),
        (EngineError::Unavailable { .. }, _) => {
            (StatusCode::SERVICE_UNAVAILABLE, "CredentialsUnavailable")
        }
        (EngineError::Sts(_), _) => (StatusCode::BAD_GATEWAY, "StsError"),
        (_, Some(_)) => (StatusCode::SERVICE_UNAVAILABLE, "AccessUnavailable"),
    };
    reply(status, code, &e.to_string())
}

/// A name in the URL that does not decode (e.g. `%ff`): axum's own answer would be text/plain,
/// which Go's SDK cannot read as an error.
pub fn bad_path(rejection: &PathRejection) -> Response {
    tracing::debug!(error = %rejection, "refused an undecodable path");
    reply(
        StatusCode::BAD_REQUEST,
        "InvalidPath",
        "the name in the URL is not valid percent-encoded UTF-8",
    )
}

pub async fn not_found() -> Response {
    reply(StatusCode::NOT_FOUND, "NotFound", "no such route")
}

pub async fn method_not_allowed() -> Response {
    reply(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "method not allowed on this route",
    )
}
