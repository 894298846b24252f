//! The loopback HTTP API every SDK talks to: the container-credentials routes, `/healthz`, and
//! (with `imds = true`) the IMDSv2-compatible routes.
//!
//! Our own accept loop (rather than `axum::serve`) so each connection is looked up once (whose is
//! it? [`peer`]), given a slot of its user's quota or refused ([`crate::admission`]: a stranger's
//! flood cannot take the owner's slots), its IP TTL set, and served with hyper's header limits and
//! timeouts for a bounded lifetime.

mod container;
mod error;
mod guard;
pub mod imds;
pub mod peer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::{get, put};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::Daemon;
pub use crate::admission::Owner;
use crate::admission::{Admission, Limits, Refused};
use crate::creds::RoleCredentials;
use crate::logging::{THROTTLE_WINDOW, Throttle};
pub use peer::Peer;

/// Header bytes a request may carry (hyper's minimum buffer); SDK requests use about 300.
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A client that has not sent its headers within this time is dropped (slowloris); also how
/// long an idle keep-alive connection is kept.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this long however busy it is kept (its answer in progress is
/// finished first): no one holds a slot forever. SDKs fetch credentials every few minutes at
/// most and reconnect transparently.
const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// How long a connection told to close may take to finish the answer it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Connection quotas. The owner's programs get hundreds; other users, who have no business here
/// but `/healthz` (or a token handed to them, e.g. a root container), get a few.
const LIMITS: Limits = Limits {
    mine: 512,
    per_other: 8,
    others: 32,
    idle_grace: Duration::from_secs(1),
};

/// Connections the kernel may hold for us before it drops new ones (the owner's among them: a
/// dropped SYN costs a 1 s retransmit). Capped by `net.core.somaxconn` (4096 on current
/// kernels); a stranger reconnecting 2,000 sockets at once cannot fill it.
const BACKLOG: u32 = 4096;
/// Connections accepted in a row before the accept loop lets other tasks run.
const ACCEPT_BATCH: u32 = 16;
/// Requests on another user's connection are answered at most this often: no one else has a use
/// for more (`/healthz`, or a token handed to a root container), and a pipelined flood of refused
/// requests must not cost the daemon a core. Behind the pace the socket fills and the sender
/// blocks.
const OTHERS_PACE: Duration = Duration::from_millis(50);

/// Refused connections, logged at most once a minute (a flood must not fill the log).
static REFUSED: Throttle = Throttle::new(THROTTLE_WINDOW);
static ACCEPT_FAILED: Throttle = Throttle::new(THROTTLE_WINDOW);

pub struct HttpState {
    pub daemon: Arc<Daemon>,
    pub imds_tokens: imds::TokenStore,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listen = {addr} is not a loopback address; credd serves this machine only")]
    NotLoopback { addr: SocketAddr },
    #[error(
        "cannot listen on {addr}: {reason} (is another credd-daemon or program using it? change [daemon] listen)"
    )]
    Bind {
        addr: SocketAddr,
        reason: std::io::Error,
    },
}

/// The bound HTTP socket, registered with the runtime for readiness only: connections are
/// accepted on the plain socket (see [`serve`]).
pub struct Listener {
    socket: AsyncFd<std::net::TcpListener>,
    /// The one address we listen on, which is also the local end of every connection.
    pub addr: SocketAddr,
}

/// Binds the listener; refuses anything but loopback even if validation was bypassed.
pub async fn bind(addr: SocketAddr) -> Result<Listener, BindError> {
    if !addr.ip().is_loopback() {
        return Err(BindError::NotLoopback { addr });
    }
    let failed = |reason| BindError::Bind { addr, reason };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(failed)?;
    // As `TcpListener::bind` does: a restart must not wait for the old connections' TIME_WAIT.
    socket.set_reuseaddr(true).map_err(failed)?;
    socket.bind(addr).map_err(failed)?;
    let listener = socket.listen(BACKLOG).map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    let std = listener.into_std().map_err(failed)?;
    // SAFETY: the std listener owns its descriptor for as long as the AsyncFd holds it.
    let socket = unsafe { AsyncFd::register_with_interest(std, Interest::READABLE) }
        .map_err(|e| failed(e.into()))?;
    Ok(Listener {
        socket,
        addr: bound,
    })
}

pub fn router(state: Arc<HttpState>) -> Router {
    use axum::middleware::from_fn_with_state;
    const ROLES: &str = "/latest/meta-data/iam/security-credentials";
    const ROLES_EXTENDED: &str = "/latest/meta-data/iam/security-credentials-extended";
    let metadata = Router::new()
        .route(ROLES, get(imds::list))
        .route(&format!("{ROLES}/"), get(imds::list))
        .route(&format!("{ROLES}/{{name}}"), get(imds::credentials))
        .route(ROLES_EXTENDED, get(imds::list))
        .route(&format!("{ROLES_EXTENDED}/"), get(imds::list))
        .route(
            &format!("{ROLES_EXTENDED}/{{name}}"),
            get(imds::credentials_extended),
        )
        .route("/latest/meta-data/placement/region", get(imds::region))
        .route_layer(from_fn_with_state(state.clone(), imds::session_token));
    let imds = Router::new()
        .route("/latest/api/token", put(imds::token))
        .merge(metadata)
        .route_layer(from_fn_with_state(state.clone(), imds::own_user_only));
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

pub async fn serve(listener: Listener, state: Arc<HttpState>, mut stop: watch::Receiver<bool>) {
    let router = router(state.clone());
    let admission = Admission::new(LIMITS);
    let mut owners = peer::OwnerLookup::new();
    // No getsockname per connection: its local end is the address we listen on.
    let local = listener.addr;
    loop {
        let mut ready = tokio::select! {
            r = listener.socket.readable() => match r {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::error!(error = %e, "the HTTP listener failed; not serving HTTP");
                    return;
                }
            },
            _ = stop.changed() => return,
        };
        // Drain the queue while it is ready. Accepting on the plain socket, not tokio's, keeps a
        // refused connection to four system calls (accept, the owner query, close): no reactor
        // registration for what is closed at once.
        for accepted in 1.. {
            // A flood can keep the queue full: let the connections just admitted (the owner's
            // among them) run rather than drain it to the end first.
            if accepted % ACCEPT_BATCH == 0 {
                tokio::task::yield_now().await;
            }
            let (stream, remote) = match ready.get_inner().accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    if let Some(more) = ACCEPT_FAILED.allow() {
                        tracing::warn!(error = %e, suppressed_since_last = more, "HTTP accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            };
            let owner = owners.owner(local, remote).await;
            match admission.admit(owner) {
                Ok(ticket) => {
                    let peer = Peer {
                        local,
                        remote,
                        owner,
                    };
                    let hop_limit = state.daemon.config().daemon.imds_hop_limit;
                    connection(stream, peer, hop_limit, ticket, router.clone());
                }
                Err(why) => {
                    // Reset, not closed: no FIN exchange and no TIME_WAIT socket left behind
                    // for each of a flood's connections (tens of thousands of them would slow
                    // every lookup in the kernel's connection table, the owner's too).
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    refused(owner, why);
                }
            }
        }
    }
}

/// Serves one admitted connection on its own task until the client closes it, its slot is
/// given to another, or its lifetime is up.
fn connection(
    stream: std::net::TcpStream,
    peer: Peer,
    hop_limit: u8,
    ticket: crate::admission::Ticket,
    router: Router,
) {
    let _ = stream.set_nodelay(true);
    set_hop_limit(&stream, peer.local, hop_limit);
    let stream = match stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(stream))
    {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "could not serve an accepted HTTP connection");
            return;
        }
    };
    tokio::spawn(async move {
        let slot = ticket.slot.clone();
        let pace = (!matches!(peer.owner, Owner::Me | Owner::Unverifiable)).then(|| {
            let mut pace = tokio::time::interval(OTHERS_PACE);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Arc::new(tokio::sync::Mutex::new(pace))
        });
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer);
                let (slot, pace, router) = (slot.clone(), pace.clone(), router.clone());
                async move {
                    // One request at a time per connection: the lock is never contended.
                    if let Some(pace) = pace {
                        pace.lock().await.tick().await;
                    }
                    slot.set_busy(true);
                    let response = router.oneshot(req).await;
                    slot.set_busy(false);
                    response
                }
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = ticket.slot.evicted() => {}
            _ = tokio::time::sleep(MAX_LIFETIME) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    });
}

fn refused(owner: Owner, why: Refused) {
    if let Some(more) = REFUSED.allow() {
        let whose = match owner {
            Owner::Other(uid) => format!("uid {uid}"),
            Owner::Unknown => "an unknown user".to_owned(),
            Owner::Me | Owner::Unverifiable => "this user".to_owned(),
        };
        let limit = match why {
            Refused::UserFull => "that user's connection limit",
            Refused::OthersFull => "the limit for all other users",
            Refused::Busy => "the connection limit",
        };
        tracing::warn!(
            suppressed_since_last = more,
            "refused HTTP connections from {whose}: {limit} is reached"
        );
    }
}

/// IMDS answers must not travel beyond this host (or into containers): TTL / hop limit.
fn set_hop_limit(stream: &std::net::TcpStream, local: SocketAddr, hops: u8) {
    let sock = socket2::SockRef::from(stream);
    let result = if local.is_ipv4() {
        sock.set_ttl_v4(u32::from(hops))
    } else {
        sock.set_unicast_hops_v6(u32::from(hops))
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not set the IP TTL");
    }
}

/// `2026-11-25T09:52:36Z`: RFC 3339, UTC, whole seconds, as every SDK accepts.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The expiry the current route advertises: the real one, or sooner, so clients come back
/// within the follow window and pick up a `credd switch`. Never later than the real one.
pub fn advertised_expiration(
    creds: &RoleCredentials,
    now: SystemTime,
    follow_window: Duration,
) -> SystemTime {
    creds.expiration.min(now + follow_window)
}
