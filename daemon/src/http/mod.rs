//! The loopback HTTP API every SDK talks to: the container-credentials routes, `/healthz`, and
//! (with `imds = true`) the IMDSv2-compatible routes, served through [`crate::listener`] (whose
//! is each connection, its user's quota, header timeouts, a bounded lifetime).

mod container;
pub mod docker;
pub(crate) mod error;
pub(crate) mod guard;
pub mod imds;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;

use crate::daemon::Daemon;
use crate::listener::{self, Limits, Listener, Policy};
pub use crate::listener::{Owner, Peer};
use crate::logging::{THROTTLE_WINDOW, Throttle};

/// The owner's programs get hundreds of connections; other users, who have no business here
/// but `/healthz` (or a token handed to them, e.g. a root container named in `allow_uids`), get
/// a few. A client that has not sent its headers within 5 s is dropped (slowloris), and a
/// connection is closed after 60 s however busy: SDKs fetch credentials every few minutes at most
/// and reconnect transparently.
static POLICY: Policy = Policy {
    name: "HTTP",
    limits: Limits {
        mine: 512,
        per_other: 8,
        others: 32,
        idle_grace: Duration::from_secs(1),
    },
    header_timeout: Duration::from_secs(5),
    max_lifetime: Duration::from_secs(60),
    // Requests on another user's connection are answered at most 20 a second: no one else has a
    // use for more, and a pipelined flood of refused requests must not cost the daemon a core.
    // Behind the pace the socket fills and the sender blocks.
    others_pace: Some(Duration::from_millis(50)),
    refused: Throttle::new(THROTTLE_WINDOW),
    accept_failed: Throttle::new(THROTTLE_WINDOW),
};

pub struct HttpState {
    pub daemon: Arc<Daemon>,
    pub imds_tokens: imds::TokenStore,
    container_answers: container::Answers,
}

impl HttpState {
    pub fn new(daemon: Arc<Daemon>) -> HttpState {
        HttpState {
            daemon,
            imds_tokens: imds::TokenStore::default(),
            container_answers: container::Answers::default(),
        }
    }
}

pub fn router(state: Arc<HttpState>) -> Router {
    use axum::middleware::from_fn_with_state;
    let imds =
        imds::routes(&state).route_layer(from_fn_with_state(state.clone(), imds::own_user_only));
    let container = Router::new()
        .route("/v1/credentials", get(container::current))
        .route("/v1/credentials/{profile}", get(container::pinned))
        .route_layer(from_fn_with_state(state.clone(), container::require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(container)
        .merge(imds)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(guard::guard))
        .with_state(state)
}

/// Serves the API on `listener` until `stop`.
pub async fn serve(listener: Listener, state: Arc<HttpState>, stop: watch::Receiver<bool>) {
    let router = router(state.clone());
    let daemon = state.daemon.clone();
    let hop_limit = move || state.daemon.config().daemon.imds_hop_limit;
    let accepted = move |peer: &Peer| daemon.connection_accepted(peer);
    listener::serve(listener, router, &POLICY, hop_limit, accepted, stop).await;
}

/// `2026-11-25T09:52:36Z`: RFC 3339, UTC, whole seconds, as every SDK accepts.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
