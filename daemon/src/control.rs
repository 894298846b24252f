//! The control socket server: peer check, framing, one handler per request.
//!
//! Only the daemon's own user may connect (checked on the peer's credentials, on top of the
//! 0600 socket in a 0700 dir). A malformed, oversized or wrong-version frame gets an error reply
//! and its connection is closed; every other connection carries on.

use std::sync::Arc;
use std::time::Duration;

use credd_proto::paths::current_uid;
use credd_proto::{ErrorCode, ErrorReply, Frame, HEADER_LEN, ProtoError, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::{Daemon, SOFTWARE, handlers};

/// Connections served at once. More wait in the listen backlog (and then in `connect`) until
/// one ends, so a burst of hundreds of `credential-process` calls is answered, only later; a
/// runaway script cannot make the daemon hold more than this many open.
const MAX_CONNECTIONS: usize = 64;
/// A connected client that says nothing for this long is dropped (freeing its slot).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A slot first, then the next connection: beyond the limit, clients queue rather than
        // being turned away.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == current_uid() => {}
            Ok(cred) => {
                tracing::warn!(
                    uid = cred.uid(),
                    pid = cred.pid(),
                    "refused a control connection from another user"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a control connection whose peer is unknown");
                continue;
            }
        }
        let daemon = daemon.clone();
        tokio::spawn(async move {
            connection(stream, daemon).await;
            drop(permit);
        });
    }
}

async fn read_frame(stream: &mut UnixStream) -> Result<Frame, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut header)).await {
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

async fn connection(mut stream: UnixStream, daemon: Arc<Daemon>) {
    loop {
        let result = match read_frame(&mut stream).await {
            Ok(body) => credd_proto::decode_request(SOFTWARE, &body),
            Err(e) => Err(e),
        };
        let (response, keep_open) = match result {
            Ok(request) => {
                let span = tracing::debug_span!("control", request = request.name());
                (
                    handlers::dispatch(&daemon, request).instrument(span).await,
                    true,
                )
            }
            Err(ProtoError::Closed) | Err(ProtoError::Io(_)) => return,
            Err(e) => {
                let code = match &e {
                    ProtoError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
                    ProtoError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                    _ => ErrorCode::MalformedRequest,
                };
                tracing::warn!(error = %e, "bad control request; closing that connection");
                (Response::Error(ErrorReply::new(code, e.to_string())), false)
            }
        };
        let frame = credd_proto::encode_response(SOFTWARE, &response);
        if stream.write_all(&frame).await.is_err() || !keep_open {
            let _ = stream.shutdown().await;
            return;
        }
    }
}
