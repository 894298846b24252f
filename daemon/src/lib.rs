//! credd-daemon: holds the access session, keeps every profile's role credentials fresh in the
//! background, and answers the `credd` client on a Unix socket.
//!
//! Start-up order: config (refuse to start on an error) → runtime dir, instance lock, control
//! socket → engine → readiness reported → serve until SIGTERM/SIGINT, then remove the socket.

pub mod access;
pub mod audit;
pub mod clock;
pub mod config;
pub mod console;
pub mod control;
pub mod creds;
pub mod daemon;
pub mod desktop;
pub mod docker;
pub mod doctor;
pub mod engine;
/// Fuzz entry points (`tests/fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub mod http;
pub mod http_token;
#[cfg(test)]
mod in_process_tests;
pub mod launch;
pub mod listener;
mod lock;
pub mod logging;
pub mod runtime_dir;
pub mod sdk;
pub mod state;
pub mod sts;
#[cfg(test)]
pub mod testing;
pub mod vend;
pub mod watch;

use std::sync::Arc;

use anyhow::Context;
use credd_proto::paths::Paths;
use tokio::signal::unix::{SignalKind, signal};

use crate::daemon::Daemon;

/// Runs the daemon attached to the terminal until SIGTERM or SIGINT, logging to stderr or, when
/// given, to `log_file` (rotated).
pub fn run_foreground(paths: Paths, log_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    runtime_dir::harden_process();
    // Before the log is opened there: no other user may have planted a link or a state file.
    if let Err(e) = runtime_dir::ensure_private_dir(&paths.state_dir, runtime_dir::STATE) {
        launch::report_startup(Err(&e.to_string()));
        return Err(e.into());
    }
    if let Err(e) = logging::init(log_file) {
        launch::report_startup(Err(&format!("{e:#}")));
        return Err(e);
    }
    // Before any other thread: it takes the service manager's sockets out of the environment.
    // SAFETY: only this thread runs yet.
    let inherited = match unsafe { listener::activation::take() } {
        Ok(inherited) => inherited,
        Err(e) => {
            launch::report_startup(Err(&e));
            anyhow::bail!(e);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(paths, inherited));
    if let Err(e) = &result {
        launch::report_startup(Err(&format!("{e:#}")));
    }
    result
}

async fn serve(
    paths: Paths,
    inherited: Option<listener::activation::Inherited>,
) -> anyhow::Result<()> {
    let config = config::load(&paths.config)?;
    // Signals first: from the moment the socket exists, SIGTERM must remove it.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let dir = runtime_dir::ensure_private_dir(&paths.runtime_dir, runtime_dir::RUNTIME)?;
    let _lock = runtime_dir::lock_instance(&paths.lock_file())?;
    // The port before the socket: a port in use must not leave a socket behind.
    let http_listener = match inherited {
        Some(passed) => {
            let listener = listener::Listener::inherited(passed.socket, passed.fd)?;
            let wanted = config.daemon.listen;
            if wanted.port() != 0 && wanted != listener.addr {
                tracing::warn!(
                    "the service manager's socket listens on {}, not on [daemon] listen = {wanted}: \
                     serving on {0} (run `credd service install` again to move the socket)",
                    listener.addr
                );
            }
            listener
        }
        None => listener::Listener::bind(config.daemon.listen)?,
    };
    let http_addr = http_listener.addr;
    // A new token at every start: whoever held the port while the daemon was down (and got
    // the old token from the SDKs that knocked) holds nothing that works.
    let token = http_token::HttpToken::create(&paths.token_file())?;
    // What others could read is burnt: a session they may have copied.
    let trusted = !dir.was_open;
    let store = access::persist::SessionStore::new(&paths.session_file(), trusted);
    let socket_path = paths.socket();
    let listener = runtime_dir::bind_control_socket(&socket_path)?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .with_context(|| format!("listening on {}", socket_path.display()))?;

    let daemon = Arc::new(Daemon::new(
        paths,
        config,
        token,
        store,
        daemon::Wiring::system(),
    ));
    let _ = daemon.http_url.set(format!("http://{http_addr}"));
    watch::watch_config(daemon.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = tokio::spawn(control::serve(listener, daemon.clone(), stop_rx.clone()));
    let http_state = Arc::new(http::HttpState::new(daemon.clone()));
    let http = tokio::spawn(http::serve(http_listener, http_state, stop_rx.clone()));
    if let Some(listeners) = daemon.containers.take_listeners() {
        tokio::spawn(http::docker::serve_all(daemon.clone(), listeners, stop_rx));
    }
    daemon.containers.resume();

    launch::report_startup(Ok(()));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        socket = %socket_path.display(),
        url = %format!("http://{http_addr}"),
        config = %daemon.paths.config.display(),
        "credd-daemon ready"
    );

    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            () = daemon.stop_requested() => break,
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: re-reading the config");
                let _ = daemon.reload();
            }
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = control.await;
    let _ = http.await;
    daemon.stop_audit();
    if let Err(e) = std::fs::remove_file(&socket_path) {
        tracing::warn!(socket = %socket_path.display(), error = %e, "could not remove the control socket");
    }
    tracing::info!("stopped");
    Ok(())
}
