//! Loopback TCP listeners that another local user cannot crowd out: the SDK-facing HTTP API and
//! the browser login's redirect both serve through here.
//!
//! Our own accept loop (rather than `axum::serve`) so each connection is looked up once (whose is
//! it? [`peer`]), given a slot of its user's quota or refused at once ([`admission`]: a
//! stranger's flood cannot take the owner's slots), its IP TTL set, and served with hyper's header
//! limits and timeouts for a bounded lifetime. When the listener stops (the daemon shuts down,
//! the login it waited for ended), every connection it admitted is closed too.

pub mod activation;
pub mod admission;
pub mod peer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::logging::Throttle;
use admission::{Admission, Refused, Ticket};
pub use admission::{Limits, Owner};
pub use peer::{Peer, PortHolder};

/// Header bytes a request may carry (hyper's minimum buffer); SDK requests use about 300.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
pub(crate) const MAX_HEADERS: usize = 64;
/// How long a connection told to close may take to finish the answer it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Connections the kernel may hold for us before it drops new ones (the owner's among them: a
/// dropped SYN costs a 1 s retransmit). Capped by `net.core.somaxconn` (4096 on current
/// kernels); a stranger reconnecting 2,000 sockets at once cannot fill it.
const BACKLOG: i32 = 4096;
/// Connections accepted in a row before the accept loop lets other tasks run.
const ACCEPT_BATCH: u32 = 16;

/// How one listener treats its connections.
pub struct Policy {
    /// What the log calls it: `HTTP`, `login callback`.
    pub name: &'static str,
    pub limits: Limits,
    /// A client that has not sent its headers within this time is dropped (slowloris); also how
    /// long an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// A connection is closed after this long however busy it is kept (its answer in progress is
    /// finished first): no one holds a slot forever.
    pub max_lifetime: Duration,
    /// Requests on another user's connection are answered at most this often (`None`: no pace).
    pub others_pace: Option<Duration>,
    /// Refused connections, logged at most once a minute with a count (a flood must not fill
    /// the log).
    pub refused: Throttle,
    pub accept_failed: Throttle,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listen = {addr} is not a loopback address; credd serves this machine only")]
    NotLoopback { addr: SocketAddr },
    #[error("{}", in_use(addr, holder.as_ref()))]
    InUse {
        addr: SocketAddr,
        /// Who listens there, where the OS tells.
        holder: Option<PortHolder>,
    },
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        addr: SocketAddr,
        reason: std::io::Error,
    },
    #[error("the listener the service manager passed (fd {fd}) cannot be used: {why}")]
    Inherited { fd: i32, why: String },
}

/// Says who holds the port, and why that matters: every SDK pointed at it would send its
/// requests, with your HTTP token, there.
fn in_use(addr: &SocketAddr, holder: Option<&PortHolder>) -> String {
    let port = addr.port();
    match holder {
        Some(h) if h.uid != credd_proto::paths::current_uid() => format!(
            "cannot listen on {addr}: another user, {}, holds that port. Your SDKs pointed at it \
             would send their requests (with your HTTP token) to that user's program and take \
             whatever credentials it answers: do not use them until credd listens there again. \
             Find out why (`sudo ss -ltnp 'sport = :{port}'`); run credd as a service (`credd \
             service install`), whose socket keeps the port yours while the daemon restarts; or \
             set another [daemon] listen and run `eval \"$(credd env)\"` again",
            h.describe()
        ),
        Some(h) => format!(
            "cannot listen on {addr}: {} of yours holds that port (another credd-daemon with \
             another runtime dir?). Stop it, or set another [daemon] listen",
            h.describe()
        ),
        None => format!(
            "cannot listen on {addr}: the port is in use (is another credd-daemon or program \
             using it? `ss -tanp 'sport = :{port}'` tells who; connections of a program that \
             held it until moments ago may still be closing, for a minute at most). Stop it, or \
             set another [daemon] listen"
        ),
    }
}

/// The bound socket, registered with the runtime for readiness only: connections are accepted
/// on the plain socket (see [`serve`]).
pub struct Listener {
    socket: AsyncFd<std::net::TcpListener>,
    /// The one address we listen on, which is also the local end of every connection.
    pub addr: SocketAddr,
}

impl Listener {
    /// Binds `addr`; refuses anything but loopback even if validation was bypassed. A port held
    /// by someone else is an error naming them.
    pub fn bind(addr: SocketAddr) -> Result<Listener, BindError> {
        if !addr.ip().is_loopback() {
            return Err(BindError::NotLoopback { addr });
        }
        Listener::bind_any(addr)
    }

    /// Binds a Docker network's gateway address (the host's side of a bridge), where only
    /// containers the engine vouches for are served ([`crate::docker`]). Never a wildcard.
    pub fn bind_gateway(addr: SocketAddr) -> Result<Listener, BindError> {
        if addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return Err(BindError::Bind {
                addr,
                reason: std::io::Error::other("not a gateway address"),
            });
        }
        Listener::bind_any(addr)
    }

    fn bind_any(addr: SocketAddr) -> Result<Listener, BindError> {
        use socket2::{Domain, Socket, Type};
        let failed = |reason| BindError::Bind { addr, reason };
        let socket =
            Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None).map_err(failed)?;
        // As `TcpListener::bind` does: a restart must not wait for the old connections' TIME_WAIT.
        socket.set_reuse_address(true).map_err(failed)?;
        if let Err(reason) = socket.bind(&addr.into()) {
            if reason.kind() == std::io::ErrorKind::AddrInUse {
                return Err(BindError::InUse {
                    addr,
                    holder: peer::port_holder(addr),
                });
            }
            return Err(failed(reason));
        }
        socket.listen(BACKLOG).map_err(failed)?;
        Listener::register(socket.into(), |reason| BindError::Bind { addr, reason })
    }

    /// A listener a service manager bound for us (socket activation): it must be a listening
    /// TCP socket on loopback.
    pub fn inherited(socket: std::net::TcpListener, fd: i32) -> Result<Listener, BindError> {
        let why = |why: String| BindError::Inherited { fd, why };
        let addr = socket
            .local_addr()
            .map_err(|e| why(format!("not a TCP socket ({e})")))?;
        if !addr.ip().is_loopback() {
            return Err(why(format!(
                "it listens on {addr}, which is not a loopback address; credd serves this \
                 machine only (ListenStream=127.0.0.1:PORT)"
            )));
        }
        Listener::register(socket, |e| why(e.to_string()))
    }

    fn register(
        socket: std::net::TcpListener,
        failed: impl Fn(std::io::Error) -> BindError,
    ) -> Result<Listener, BindError> {
        socket.set_nonblocking(true).map_err(&failed)?;
        let addr = socket.local_addr().map_err(&failed)?;
        // SAFETY: the std listener owns its descriptor for as long as the AsyncFd holds it.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| failed(e.into()))?;
        Ok(Listener { socket, addr })
    }
}

/// Serves `router` on `listener` under `policy` until `stop` changes (or its sender is dropped);
/// then every connection still open is closed (its answer in progress finished first).
/// `hop_limit` gives the IP TTL / hop limit of each new connection; `on_accept` hears of each
/// admitted one, and what it returns is awaited before the connection is served (the audit
/// looking for its program).
pub async fn serve(
    listener: Listener,
    router: Router,
    policy: &'static Policy,
    hop_limit: impl Fn() -> u8,
    on_accept: impl Fn(&Peer) -> Option<Pending>,
    mut stop: watch::Receiver<bool>,
) {
    let admission = Admission::new(policy.limits);
    let mut owners = peer::OwnerLookup::new();
    // No getsockname per connection: its local end is the address we listen on.
    let local = listener.addr;
    loop {
        let mut ready = tokio::select! {
            r = listener.socket.readable() => match r {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::error!(error = %e, "the {} listener failed; not serving it", policy.name);
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
                    if let Some(more) = policy.accept_failed.allow() {
                        tracing::warn!(error = %e, suppressed_since_last = more, "{} accept failed", policy.name);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            };
            let (owner, socket_inode) = owners.owner(local, remote).await;
            match admission.admit(owner) {
                Ok(ticket) => {
                    let peer = Peer {
                        local,
                        remote,
                        owner,
                        socket_inode,
                    };
                    let before = on_accept(&peer);
                    let conn = Connection {
                        peer,
                        before,
                        ticket,
                        policy,
                        router: router.clone(),
                        stop: stop.clone(),
                    };
                    conn.spawn(stream, hop_limit());
                }
                Err(why) => {
                    // Reset, not closed: no FIN exchange and no TIME_WAIT socket left behind
                    // for each of a flood's connections (tens of thousands of them would slow
                    // every lookup in the kernel's connection table, the owner's too).
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    refused(policy, owner, why);
                }
            }
        }
    }
}

/// What a connection awaits before it is served.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One admitted connection and what it is served with.
struct Connection {
    peer: Peer,
    before: Option<Pending>,
    ticket: Ticket,
    policy: &'static Policy,
    router: Router,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection on its own task until the client closes it, its slot is given to
    /// another, its lifetime is up or the listener stops.
    fn spawn(self, stream: std::net::TcpStream, hop_limit: u8) {
        let _ = stream.set_nodelay(true);
        set_hop_limit(&stream, self.peer.local, hop_limit);
        let stream = match stream
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpStream::from_std(stream))
        {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "could not serve an accepted {} connection", self.policy.name);
                return;
            }
        };
        tokio::spawn(self.run(stream));
    }

    async fn run(self, stream: tokio::net::TcpStream) {
        let Connection {
            peer,
            before,
            ticket,
            policy,
            router,
            mut stop,
        } = self;
        if let Some(before) = before {
            before.await;
        }
        let slot = ticket.slot.clone();
        let pace = policy
            .others_pace
            .filter(|_| !matches!(peer.owner, Owner::Me | Owner::Unverifiable))
            .map(|every| {
                let mut pace = tokio::time::interval(every);
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
            .header_read_timeout(policy.header_timeout)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = ticket.slot.evicted() => {}
            _ = tokio::time::sleep(policy.max_lifetime) => {}
            _ = stop.changed() => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    }
}

fn refused(policy: &Policy, owner: Owner, why: Refused) {
    if let Some(more) = policy.refused.allow() {
        let whose = match owner {
            Owner::Other(uid) => format!("uid {uid}"),
            Owner::Unknown => "an unknown user".to_owned(),
            Owner::Me | Owner::Unverifiable => "this user".to_owned(),
        };
        let limit = match why {
            Refused::UserFull if policy.limits.per_other == 0 => "only this user is served",
            Refused::UserFull => "that user's connection limit is reached",
            Refused::OthersFull => "the limit for all other users is reached",
            Refused::Busy => "the connection limit is reached",
        };
        tracing::warn!(
            suppressed_since_last = more,
            "refused {} connections from {whose}: {limit}",
            policy.name
        );
    }
}

/// `127.0.0.1:9911`, `[::1]:9911`, `localhost:9911` (any case), where 9911 is `port`; without a
/// port the Host means 80 (RFC 9110), so it is right only when we listen there.
pub fn is_loopback_host(host: &str, port: Option<u16>) -> bool {
    let (name, given) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, "")) => (inside, None),
            Some((inside, after)) => match after.strip_prefix(':').and_then(parse_port) {
                Some(p) => (inside, Some(p)),
                None => return false,
            },
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) => match parse_port(p) {
                Some(p) => (name, Some(p)),
                None => return false,
            },
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|port| given.unwrap_or(80) == port);
    port_ok
        && (name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// Digits only: `u16::from_str` would also take `+80`.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Answers must not travel beyond this host (or into containers): TTL / hop limit.
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
