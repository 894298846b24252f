//! The container-credentials routes (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): the current profile,
//! which follows `credd switch`, and pinned profiles, which never change identity.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{self, reply};
use super::{HttpState, advertised_expiration, rfc3339};
use crate::creds::RoleCredentials;
use crate::engine::EngineError;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    account_id: &'a str,
}

/// Layer on the container routes: the raw token in `Authorization`, compared in constant time
/// and never echoed anywhere.
pub async fn require_token(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if state.daemon.http_token.matches(given) {
        next.run(req).await
    } else {
        reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong Authorization token (see AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
        )
    }
}

pub async fn current(State(state): State<Arc<HttpState>>) -> Response {
    let Some(name) = state.daemon.current_profile() else {
        return error::engine(&EngineError::NoCurrentProfile {
            known: state.daemon.engine.profile_names(),
        });
    };
    let follow_window = state.daemon.config().daemon.follow_window;
    match state.daemon.engine.credentials(&name).await {
        Ok(c) => {
            let expiration = advertised_expiration(&c, SystemTime::now(), follow_window);
            render(&c, expiration)
        }
        Err(e) => error::engine(&e),
    }
}

pub async fn pinned(
    State(state): State<Arc<HttpState>>,
    profile: Result<Path<String>, PathRejection>,
) -> Response {
    let profile = match profile {
        Ok(Path(profile)) => profile,
        Err(rejection) => return error::bad_path(&rejection),
    };
    match state.daemon.engine.credentials(&profile).await {
        Ok(c) => render(&c, c.expiration),
        Err(e) => error::engine(&e),
    }
}

fn render(c: &RoleCredentials, expiration: SystemTime) -> Response {
    let body = Body {
        access_key_id: &c.creds.access_key_id,
        secret_access_key: c.creds.secret_access_key.expose(),
        token: c.session_token(),
        expiration: rfc3339(expiration),
        account_id: &c.account_id,
    };
    axum::Json(body).into_response()
}
