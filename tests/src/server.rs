//! What the harness's own servers (the STS proxy, the Identity Center fake) share: a loopback
//! listener served by a tokio runtime on a thread of its own that stops when dropped, the way a
//! service refuses a connection, and the test's view of their locks.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// A free 127.0.0.1 port, non-blocking (for tokio), for the `what` of a panic message.
pub fn bind(what: &str) -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("bind the {what} on 127.0.0.1: {e}"));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("make the {what}'s listener non-blocking: {e}"));
    listener
}

/// A server running on its own thread; dropping it stops the server and waits for the thread.
pub struct ServerThread {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` on `listener` (from [`bind`]) in a one-worker runtime named `name`;
    /// `serve` returns when its shutdown receiver fires.
    pub fn start<F>(
        name: &str,
        listener: TcpListener,
        serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> F + Send + 'static,
    ) -> ServerThread
    where
        F: Future<Output = ()>,
    {
        let addr = listener.local_addr().expect("the listener's address");
        let (shutdown, shutdown_rx) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("build the {name}'s tokio runtime: {e}"));
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            // Dropping the runtime at the end cancels connections still in flight.
            .spawn(move || runtime.block_on(serve(listener, shutdown_rx)))
            .unwrap_or_else(|e| panic!("spawn the {name}'s thread: {e}"));
        ServerThread {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Err: the server already stopped.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread was printed already; don't double-panic.
            let _ = thread.join();
        }
    }
}

/// Failing a hyper service with this makes hyper close the connection without an answer: a
/// refused connection, as far as the client can tell.
#[derive(Debug)]
pub struct Refused(pub &'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection refused by the {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// A poisoned lock only means another test thread panicked; what it guards is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
