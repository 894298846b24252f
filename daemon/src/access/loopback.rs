//! The browser login's loopback redirect: `http://127.0.0.1:PORT/oauth/callback`, listening only
//! while one login waits. The first callback carrying the login's `state` ends it; one with
//! another state (a stale tab, a forged link) is refused and the login keeps waiting; anything
//! after the end is told the login is over, and the listener closes with the login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use credd_proto::Secret;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::lock;

pub const CALLBACK_PATH: &str = "/oauth/callback";

/// Why a browser login ended without a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// The identity provider redirected with `error` (the user declined, or it refused).
    Denied { error: String },
    /// The login was abandoned before the browser came back.
    Cancelled,
}

/// What the browser brought back: the authorization code, or the IdP's refusal.
type Callback = Result<Secret, CallbackError>;

struct Shared {
    state: String,
    done: Mutex<Option<oneshot::Sender<Callback>>>,
}

pub struct Loopback {
    port: u16,
    result: oneshot::Receiver<Callback>,
    server: tokio::task::AbortHandle,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Loopback {
    /// Listens on a free loopback port for the callback of the login whose `state` this is.
    pub async fn bind(state: &str) -> std::io::Result<Loopback> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: state.to_owned(),
            done: Mutex::new(Some(tx)),
        });
        let app = Router::new()
            .route(CALLBACK_PATH, get(callback))
            .with_state(shared);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the login's loopback listener failed");
            }
        });
        Ok(Loopback {
            port,
            result: rx,
            server: server.abort_handle(),
        })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits for the callback with the right state.
    pub async fn code(mut self) -> Result<Secret, CallbackError> {
        match (&mut self.result).await {
            Ok(callback) => callback,
            Err(_) => Err(CallbackError::Cancelled),
        }
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> (StatusCode, Html<String>) {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>credd: {title}</title>\
             <h1>{title}</h1><p>{text}</p>"
        )),
    )
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, Html<String>) {
    let state_ok = query
        .get("state")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(shared.state.as_bytes())));
    if !state_ok {
        tracing::warn!("refused a login callback whose state is not the pending login's");
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "This sign-in link does not belong to the login credd is waiting for. \
             Run <code>credd login</code> again if you meant to sign in.",
        );
    }
    let Some(tx) = lock::lock(&shared.done).take() else {
        return page(
            StatusCode::CONFLICT,
            "Already signed in",
            "This login has already finished; you can close this tab.",
        );
    };
    if let Some(error) = query.get("error") {
        tracing::warn!(error = ?error, "the browser login was refused");
        let _ = tx.send(Err(CallbackError::Denied {
            error: error
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect(),
        }));
        return page(
            StatusCode::OK,
            "Sign-in denied",
            "The sign-in was not allowed. You can close this tab.",
        );
    }
    match query.get("code").filter(|c| !c.is_empty()) {
        Some(code) => {
            let _ = tx.send(Ok(Secret::new(code.as_str())));
            page(
                StatusCode::OK,
                "Signed in",
                "credd has the login. You can close this tab and return to the terminal.",
            )
        }
        None => {
            // Put the sender back: a callback without a code is not the end of the login.
            *lock::lock(&shared.done) = Some(tx);
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in incomplete",
                "The redirect carried no authorization code.",
            )
        }
    }
}
