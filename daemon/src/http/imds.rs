//! The IMDSv2-compatible routes (`AWS_EC2_METADATA_SERVICE_ENDPOINT`), served only with
//! `imds = true`. They always serve the current profile's view, with the follow-window expiry.
//!
//! IMDS has no shared secret, so on Linux every request must come from a socket owned by the
//! daemon's own user; a token PUT carrying `X-Forwarded-For` (a proxy relaying someone else's
//! request) is refused, and session tokens live in a bounded in-memory store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Serialize;

use super::error::{self, reply};
use super::{HttpState, Owner, Peer, rfc3339};
use crate::docker::grants::Claim;
use crate::engine::EngineError;
use crate::lock;
use crate::logging::{THROTTLE_WINDOW, Throttle};
use crate::vend::{Caller, Route};

const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const MAX_TTL: u64 = 21_600;
/// Asks the ordinary credentials route for the extended body (with `AccountId`).
const EXTENDED_HEADER: &str = "x-amzn-extended";
/// More live tokens than any one user's processes need; the oldest go first beyond it.
const MAX_TOKENS: usize = 1024;
/// Refusals are logged at most once a minute: another user can send thousands a second.
static REFUSED: Throttle = Throttle::new(THROTTLE_WINDOW);

/// Session tokens, each with its expiry and, on a container listener, the container it was
/// issued to (a token works for that container only).
#[derive(Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl TokenStore {
    fn issue(&self, ttl: Duration, holder: Option<&str>) -> Option<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).ok()?;
        let token = hex::encode(raw);
        let now = Instant::now();
        let mut tokens = lock::lock(&self.tokens);
        tokens.retain(|_, (expiry, _)| *expiry > now);
        if tokens.len() >= MAX_TOKENS
            && let Some(oldest) = tokens
                .iter()
                .min_by_key(|(_, (e, _))| *e)
                .map(|(t, _)| t.clone())
        {
            tokens.remove(&oldest);
        }
        tokens.insert(token.clone(), (now + ttl, holder.map(str::to_owned)));
        Some(token)
    }

    fn valid(&self, token: &str, holder: Option<&str>) -> bool {
        let tokens = lock::lock(&self.tokens);
        tokens
            .get(token)
            .is_some_and(|(e, h)| *e > Instant::now() && h.as_deref() == holder)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    code: &'static str,
    last_updated: String,
    #[serde(rename = "Type")]
    kind: &'static str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

/// The IMDS routes (the token PUT, and behind a live session token the role listing, its
/// credentials and the region), before the layer that says who may call them: your own user on
/// loopback, a granted container on a Docker network's gateway ([`super::docker`]).
pub fn routes(state: &Arc<HttpState>) -> Router<Arc<HttpState>> {
    const ROLES: &str = "/latest/meta-data/iam/security-credentials";
    const ROLES_EXTENDED: &str = "/latest/meta-data/iam/security-credentials-extended";
    let metadata = Router::new()
        .route(ROLES, get(list))
        .route(&format!("{ROLES}/"), get(list))
        .route(&format!("{ROLES}/{{name}}"), get(credentials))
        .route(ROLES_EXTENDED, get(list))
        .route(&format!("{ROLES_EXTENDED}/"), get(list))
        .route(
            &format!("{ROLES_EXTENDED}/{{name}}"),
            get(credentials_extended),
        )
        .route("/latest/meta-data/placement/region", get(region))
        .route_layer(from_fn_with_state(state.clone(), session_token));
    Router::new()
        .route("/latest/api/token", put(token))
        .merge(metadata)
}

/// Layer on every IMDS route: IMDS is on and the caller is a process of our own user.
pub async fn own_user_only(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    if !state.daemon.config().daemon.imds {
        return reply(
            StatusCode::NOT_FOUND,
            "NotFound",
            "IMDS is off (imds = false)",
        );
    }
    // Looked up once, when the connection was accepted. Where the OS cannot tell (macOS), the
    // owner is `Unverifiable` and IMDS answers, as it always has there.
    let peer = req.extensions().get::<Peer>().copied();
    if !matches!(peer.map(|p| p.owner), Some(Owner::Me | Owner::Unverifiable)) {
        if let Some(more) = REFUSED.allow() {
            tracing::warn!(
                peer = ?peer.map(|p| p.remote),
                owner = ?peer.map(|p| p.owner),
                suppressed_since_last = more,
                "refused an IMDS request from another user"
            );
        }
        return reply(
            StatusCode::FORBIDDEN,
            "ForeignUser",
            "IMDS answers only processes of the daemon's own user",
        );
    }
    next.run(req).await
}

/// The container a request on a container listener comes from ([`super::docker`]); none on
/// the loopback listener.
type Granted = Option<Extension<Arc<Claim>>>;

fn holder(granted: Option<&Arc<Claim>>) -> Option<&str> {
    granted.map(|c| c.container.id.as_str())
}

/// Layer on the metadata routes: a live session token from the token PUT (on a container
/// listener, one issued to this container).
pub async fn session_token(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response {
    let granted = req.extensions().get::<Arc<Claim>>();
    let ok = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| state.imds_tokens.valid(t, holder(granted)));
    if !ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or expired IMDS session token",
        );
    }
    next.run(req).await
}

pub async fn token(
    State(state): State<Arc<HttpState>>,
    granted: Granted,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key("x-forwarded-for") {
        return reply(
            StatusCode::FORBIDDEN,
            "Forwarded",
            "token requests through a proxy are refused",
        );
    }
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|t| (1..=MAX_TTL).contains(t));
    let Some(ttl) = ttl else {
        return reply(
            StatusCode::BAD_REQUEST,
            "InvalidTtl",
            "X-aws-ec2-metadata-token-ttl-seconds must be 1 to 21600",
        );
    };
    let holder = holder(granted.as_ref().map(|g| &g.0));
    let Some(token) = state.imds_tokens.issue(Duration::from_secs(ttl), holder) else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "NoRandomness",
            "could not make a token",
        );
    };
    let mut response = token.into_response();
    response
        .headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(ttl));
    response
}

/// The one role name: the container's pinned profile, or the current profile's.
pub async fn list(State(state): State<Arc<HttpState>>, granted: Granted) -> Response {
    if let Some(Extension(claim)) = granted {
        return claim.profile.clone().into_response();
    }
    match state.daemon.vending.current() {
        // Exactly the name, no newline: SDKs paste the body into the next URL.
        Some(name) => name.into_response(),
        None => error::engine(&EngineError::NoCurrentProfile {
            known: state.daemon.engine.profile_names(),
        }),
    }
}

async fn serve(
    state: &HttpState,
    peer: Option<Extension<Peer>>,
    granted: Granted,
    name: Result<Path<String>, PathRejection>,
    extended: bool,
) -> Response {
    let name = match name {
        Ok(Path(name)) => name,
        Err(rejection) => return error::bad_path(&rejection),
    };
    let caller = Caller::tcp(peer.as_ref().map(|p| &p.0));
    let (route, container) = match &granted {
        // A container takes its grant's profile and no other.
        Some(Extension(claim)) if claim.profile != name => {
            return reply(
                StatusCode::NOT_FOUND,
                "NotGranted",
                "this container's grant is for another profile (list security-credentials/ for \
                 its name)",
            );
        }
        Some(Extension(claim)) => (Route::Docker, Some(&claim.container)),
        None => (Route::Imds, None),
    };
    match state
        .daemon
        .vending
        .vend_to(route, Some(name), &caller, container)
        .await
    {
        Ok(v) => {
            let c = &v.credentials;
            let body = Body {
                code: "Success",
                last_updated: rfc3339(c.issued),
                kind: "AWS-HMAC",
                access_key_id: &c.creds.access_key_id,
                secret_access_key: c.creds.secret_access_key.expose(),
                token: c.session_token(),
                expiration: rfc3339(v.expiration),
                account_id: extended.then_some(c.account_id.as_str()),
            };
            axum::Json(body).into_response()
        }
        Err(e) => error::engine(&e),
    }
}

/// The credentials, plus `AccountId` when the request asks for the extended body with
/// [`EXTENDED_HEADER`]` = 1`, as the AWS SDK for Java v2 (2.59) does on this route.
pub async fn credentials(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
    granted: Granted,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    serve(&state, peer, granted, name, wants_extended(&headers)).await
}

/// Whether a request on the ordinary credentials route asks for the extended body.
fn wants_extended(headers: &HeaderMap) -> bool {
    headers
        .get(EXTENDED_HEADER)
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// The same plus `AccountId` (older SDKs that know the extended route ask here first).
pub async fn credentials_extended(
    State(state): State<Arc<HttpState>>,
    peer: Option<Extension<Peer>>,
    granted: Granted,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    serve(&state, peer, granted, name, true).await
}

pub async fn region(State(state): State<Arc<HttpState>>, granted: Granted) -> Response {
    let config = state.daemon.config();
    let profile = match granted {
        Some(Extension(claim)) => Some(claim.profile.clone()),
        None => state.daemon.vending.current(),
    };
    let region = profile.and_then(|p| config.profiles.get(&p).and_then(|p| p.region.clone()));
    match region {
        Some(r) => ([(header::CONTENT_TYPE, "text/plain")], r).into_response(),
        None => reply(
            StatusCode::NOT_FOUND,
            "NoRegion",
            "the current profile has no region",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_x_amzn_extended_1_asks_for_the_extended_body() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("X-amzn-extended", HeaderValue::from_static(value));
            wants_extended(&headers)
        };
        assert!(with("1"));
        assert!(with(" 1 "));
        for value in ["0", "", "true", "11", "yes"] {
            assert!(!with(value), "{value:?}");
        }
        assert!(!wants_extended(&HeaderMap::new()));
    }
}
