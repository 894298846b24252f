//! The IMDSv2 routes on each Docker network's gateway ([`crate::docker`]): the same handlers as
//! on loopback, but every request must come from a container the engine vouched for when its
//! connection was accepted, and it sees only its grant's profile. Everyone else (another
//! container, any process on this machine) gets 403.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use tokio::sync::{mpsc, watch};

use super::error::{self, reply};
use super::{HttpState, Peer, guard, imds};
use crate::daemon::Daemon;
use crate::listener::{self, Limits, Listener, Policy};
use crate::logging::{THROTTLE_WINDOW, Throttle};

/// Containers' connections have no local user (their sockets are in another network
/// namespace): they all count as one unknown peer, with room for many containers' SDKs. A
/// process of this machine's users gets a few, to be told 403.
static POLICY: Policy = Policy {
    name: "container HTTP",
    limits: Limits {
        mine: 16,
        per_other: 128,
        others: 192,
        idle_grace: Duration::from_secs(1),
    },
    header_timeout: Duration::from_secs(5),
    max_lifetime: Duration::from_secs(60),
    // No pace: a container's SDK asks three times in a row (token, listing, credentials), and a
    // refused container's connection is closed after its 403, so it cannot pipeline a flood.
    others_pace: None,
    refused: Throttle::new(THROTTLE_WINDOW),
    accept_failed: Throttle::new(THROTTLE_WINDOW),
};

/// Answers must not leave this machine: a container on a bridge is one hop away.
const HOP_LIMIT: u8 = 1;

fn router(state: Arc<HttpState>) -> Router {
    imds::routes(&state)
        .route_layer(from_fn_with_state(state.clone(), granted_only))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(guard::guard))
        .with_state(state)
}

/// Layer on every route: the connection comes from a container holding a live grant; its claim
/// goes with the request.
async fn granted_only(
    State(state): State<Arc<HttpState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<Peer>().copied();
    let claim = peer.and_then(|p| state.daemon.containers.claim_at(p.remote.ip(), p.local));
    let Some(claim) = claim else {
        let mut refused = reply(
            StatusCode::FORBIDDEN,
            "NotGranted",
            "credd serves here only containers started with a grant (`credd docker run`, or \
             `credd docker env`), and this connection does not come from one",
        );
        // Each try costs a new connection, which is asked about (at most once a second).
        refused
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refused;
    };
    req.extensions_mut().insert(claim);
    next.run(req).await
}

/// Serves every container listener [`crate::docker::Containers`] binds, until `stop`.
pub async fn serve_all(
    daemon: Arc<Daemon>,
    mut listeners: mpsc::UnboundedReceiver<Listener>,
    stop: watch::Receiver<bool>,
) {
    let state = Arc::new(HttpState::new(daemon.clone()));
    let mut stopping = stop.clone();
    loop {
        let listener = tokio::select! {
            l = listeners.recv() => match l {
                Some(l) => l,
                None => return,
            },
            _ = stopping.changed() => return,
        };
        let containers = daemon.containers.clone();
        let check = move |peer: &Peer| -> Option<listener::Pending> {
            Some(Box::pin(
                containers
                    .clone()
                    .check_connection(peer.remote.ip(), peer.local),
            ))
        };
        tokio::spawn(listener::serve(
            listener,
            router(state.clone()),
            &POLICY,
            || HOP_LIMIT,
            check,
            stop.clone(),
        ));
    }
}
