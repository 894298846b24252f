//! The container-credentials routes (`AWS_CONTAINER_CREDENTIALS_FULL_URI`): the current profile,
//! which follows `credd switch`, and pinned profiles, which never change identity.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{self, reply};
use super::{HttpState, Owner, Peer, rfc3339};
use crate::creds::RoleCredentials;
use crate::logging::{THROTTLE_WINDOW, Throttle};
use crate::vend::{Caller, Route};

/// Refused requests of other users, logged at most once a minute.
static REFUSED: Throttle = Throttle::new(THROTTLE_WINDOW);

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    account_id: &'a str,
}

/// Layer on the container routes: a process of the daemon's own user (or of a user the config
/// allows), and the raw token in `Authorization`, compared in constant time and never echoed
/// anywhere. The token alone is not enough: another user who learnt it (it was sent to their
/// program while they held the port) still gets nothing.
pub async fn require_token(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    // Looked up once, when the connection was accepted; `Unverifiable` where the OS cannot tell
    // (macOS), where the token is the only check, as it always was there.
    let owner = req.extensions().get::<Peer>().map(|p| p.owner);
    let allowed = match owner {
        Some(Owner::Me | Owner::Unverifiable) => true,
        Some(Owner::Other(uid)) => state.daemon.config().daemon.allow_uids.contains(&uid),
        Some(Owner::Unknown) | None => false,
    };
    if !allowed {
        if let Some(more) = REFUSED.allow() {
            tracing::warn!(
                owner = ?owner,
                suppressed_since_last = more,
                "refused a credentials request from another user"
            );
        }
        return reply(
            StatusCode::FORBIDDEN,
            "ForeignUser",
            "credentials are served only to processes of the daemon's own user (another user's \
             needs its uid in [daemon] allow_uids)",
        );
    }
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

pub async fn current(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
) -> Response {
    serve(&state, None, peer).await
}

pub async fn pinned(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
    profile: Result<Path<String>, PathRejection>,
) -> Response {
    match profile {
        Ok(Path(profile)) => serve(&state, Some(profile), peer).await,
        Err(rejection) => error::bad_path(&rejection),
    }
}

async fn serve(
    state: &HttpState,
    profile: Option<String>,
    peer: Option<Extension<Peer>>,
) -> Response {
    let caller = Caller::tcp(peer.as_ref().map(|p| &p.0));
    match state
        .daemon
        .vending
        .vend(Route::Container, profile, &caller)
        .await
    {
        Ok(v) => render(&v.credentials, v.expiration),
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
