//! The control socket server: peer check, framing, one handler per request.
//!
//! Only the daemon's own user may connect (checked on the peer's credentials, on top of the
//! 0600 socket in a 0700 dir). A malformed, oversized or wrong-version frame gets an error reply
//! and its connection is closed; every other connection carries on. Connections that sit idle
//! give their slot up to new ones, so forgotten connections never make `credd status` wait.
//! A client pointed at another config file than this daemon's is refused, whatever it asks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use credd_proto::paths::{canonical, current_uid};
use credd_proto::{ErrorCode, ErrorReply, Frame, HEADER_LEN, ProtoError, Response, StopReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::daemon::Daemon;
use crate::handlers;
use crate::listener::admission::{Admission, Limits, Slot};
use crate::logging::{THROTTLE_WINDOW, Throttle};
use crate::vend::Caller;

/// `credd-daemon 0.1.0`, sent in every frame for version-mismatch messages.
pub const SOFTWARE: &str = concat!("credd-daemon ", env!("CARGO_PKG_VERSION"));

/// Connections served at once. When all are busy, the next waits (and those after it in the
/// listen backlog, then in `connect`) until one ends, so a burst of hundreds of
/// `credential-process` calls is answered, only later; a runaway script cannot make the daemon
/// hold more than this many open. One idle for a second gives its slot up at once.
const LIMITS: Limits = Limits {
    mine: 64,
    // Other users are dropped on their credentials before they ask for a slot.
    per_other: 0,
    others: 0,
    idle_grace: Duration::from_secs(1),
};
/// A connected client that says nothing for this long is dropped (freeing its slot).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

static REFUSED: Throttle = Throttle::new(THROTTLE_WINDOW);
static ACCEPT_FAILED: Throttle = Throttle::new(THROTTLE_WINDOW);
static BAD_REQUEST: Throttle = Throttle::new(THROTTLE_WINDOW);

pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, mut stop: watch::Receiver<bool>) {
    let admission = Admission::new(LIMITS);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                if let Some(more) = ACCEPT_FAILED.allow() {
                    tracing::warn!(error = %e, suppressed_since_last = more, "control socket accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let caller = match stream.peer_cred() {
            Ok(cred) if cred.uid() == current_uid() => Caller::unix(cred.uid(), cred.pid()),
            Ok(cred) => {
                if let Some(more) = REFUSED.allow() {
                    tracing::warn!(
                        uid = cred.uid(),
                        pid = cred.pid(),
                        suppressed_since_last = more,
                        "refused a control connection from another user"
                    );
                }
                continue;
            }
            Err(e) => {
                if let Some(more) = REFUSED.allow() {
                    tracing::warn!(error = %e, suppressed_since_last = more, "refused a control connection whose peer is unknown");
                }
                continue;
            }
        };
        // While every slot is busy, this one waits and the next ones queue (in the backlog),
        // rather than being turned away.
        let ticket = tokio::select! {
            t = admission.admit_mine_or_wait() => t,
            _ = stop.changed() => return,
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            connection(stream, daemon, caller, &ticket.slot).await;
            drop(ticket);
        });
    }
}

/// The next frame; the connection counts as idle (and may be evicted) until its first byte.
async fn read_frame(stream: &mut UnixStream, slot: &Slot) -> Result<Frame, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    slot.set_busy(false);
    let first = tokio::select! {
        r = tokio::time::timeout(IDLE_TIMEOUT, stream.read_u8()) => r,
        _ = slot.evicted() => return Err(ProtoError::Closed),
    };
    match first {
        Err(_) => return Err(ProtoError::Closed),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ProtoError::Closed);
        }
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(byte)) => header[0] = byte,
    }
    slot.set_busy(true);
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut header[1..])).await {
        Err(_) => return Err(ProtoError::Closed),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ProtoError::Closed);
        }
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    let len = credd_proto::frame_len(header)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut body)).await {
        Err(_) => Err(ProtoError::Closed),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ProtoError::Closed),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(_)) => Ok(body),
    }
}

async fn connection(mut stream: UnixStream, daemon: Arc<Daemon>, caller: Caller, slot: &Slot) {
    loop {
        let result = match read_frame(&mut stream, slot).await {
            Ok(body) => credd_proto::decode_request_with_config(SOFTWARE, &body),
            Err(e) => Err(e),
        };
        let (response, keep_open) = match result {
            Ok((request, named)) => {
                let span = tracing::debug_span!("control", request = request.name());
                let response = match config_mismatch(&daemon.paths.config, named.as_deref()) {
                    Some(refusal) => {
                        tracing::debug!(parent: &span, named = ?named, "refused a client pointed at another config");
                        Response::Error(refusal)
                    }
                    None => {
                        handlers::dispatch(&daemon, request, &caller)
                            .instrument(span)
                            .await
                    }
                };
                (response, true)
            }
            Err(ProtoError::Closed) | Err(ProtoError::Io(_)) => return,
            Err(e) => {
                let code = match &e {
                    ProtoError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
                    ProtoError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                    _ => ErrorCode::MalformedRequest,
                };
                if let Some(more) = BAD_REQUEST.allow() {
                    tracing::warn!(error = %e, suppressed_since_last = more, "bad control request; closing that connection");
                }
                (Response::Error(ErrorReply::new(code, e.to_string())), false)
            }
        };
        let frame = credd_proto::encode_response(SOFTWARE, &response);
        let written = stream.write_all(&frame).await;
        if let Response::Stopping(StopReport { stopping: true, .. }) = &response {
            // Answered first, so that the client hears it before the socket goes.
            let _ = stream.shutdown().await;
            daemon.request_stop();
            return;
        }
        if written.is_err() || !keep_open {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// The refusal for a client that named (`--config`, `CREDD_CONFIG`) another config file than
/// `ours`. Every verb is refused, reads included: `credd --config work.toml exec prod -- ...`
/// must never run with the `prod` of another file, and a status of the other config's profiles
/// would only mislead. A client that named none is served (it means whichever daemon runs).
fn config_mismatch(ours: &Path, named: Option<&str>) -> Option<ErrorReply> {
    let named = canonical(Path::new(named?));
    let ours = canonical(ours);
    if named == ours {
        return None;
    }
    let (ours, named) = (ours.display(), named.display());
    let pid = std::process::id();
    Some(ErrorReply::new(
        ErrorCode::ConfigMismatch,
        format!(
            "the running credd-daemon (pid {pid}) uses the config {ours}, not {named} (named by \
             --config or CREDD_CONFIG).\nTo use it, leave --config and CREDD_CONFIG out; to \
             switch to {named}, stop it (`kill {pid}`; a service: `credd --config {named} service \
             install`) and run this again; to run both, give the second daemon a runtime dir and a \
             `listen` port of its own: CREDD_RUNTIME_DIR=DIR credd --config {named} ..."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_config_is_refused_naming_both_and_the_same_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("config.toml");
        let other = dir.path().join("other.toml");
        std::fs::write(&ours, "").unwrap();
        std::fs::write(&other, "").unwrap();
        let link = dir.path().join("dotfiles.toml");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();

        assert_eq!(config_mismatch(&ours, None), None, "named none: served");
        for same in [&ours, &link, &dir.path().join("x/../config.toml")] {
            assert_eq!(
                config_mismatch(&ours, same.to_str()),
                None,
                "{}",
                same.display()
            );
        }
        let refusal = config_mismatch(&link, other.to_str()).expect("another file is refused");
        assert_eq!(refusal.code, ErrorCode::ConfigMismatch);
        let ours = canonical(&ours);
        for part in [
            format!(
                "uses the config {}, not {}",
                ours.display(),
                other.display()
            ),
            "To use it, leave --config and CREDD_CONFIG out".to_owned(),
            "CREDD_RUNTIME_DIR=".to_owned(),
        ] {
            assert!(
                refusal.message.contains(&part),
                "{part:?} in {}",
                refusal.message
            );
        }
        // A file that does not exist (yet) is another config too.
        assert!(config_mismatch(&ours, Some("/nowhere/credd.toml")).is_some());
    }
}
