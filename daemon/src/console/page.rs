//! The browser's way to a console sign-in URL without the URL on a command line: a one-shot
//! loopback page, `http://127.0.0.1:PORT/console/NONCE`, that redirects (303) to the sign-in URL
//! once and then closes. The browser is started with the page's address, which any local user
//! may read in its argv and which signs no one in; the page answers only the daemon's own user
//! (the connection's owner, looked up at accept, as the login's listener does; macOS cannot tell,
//! see the README), a navigation the user started (no `Sec-Fetch-Site` other than `none`), and
//! a loopback `Host`; it lives [`LIFETIME`] at most.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use credd_proto::Secret;
use tokio::sync::watch;

use crate::access::loopback::{browser_page_policy, from_a_web_page, guard, page};
use crate::listener::{self, Listener, Policy};
use crate::lock;

/// How long the page waits for the browser: a cold browser start is seconds; the sign-in token
/// behind it lasts 15 minutes.
pub const LIFETIME: Duration = Duration::from_secs(120);

/// How long the page stays after its redirect, for the answer to reach the browser.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

static POLICY: Policy = browser_page_policy("console page", 8);

struct Shared {
    /// Taken by the one redirect.
    url: Mutex<Option<Secret>>,
    /// Told when the redirect went out: the page closes.
    served: watch::Sender<bool>,
}

/// Serves `url` once from a fresh loopback page; its address, for the browser.
pub async fn serve_once(url: Secret) -> std::io::Result<String> {
    let listener = Listener::bind(([127, 0, 0, 1], 0).into()).map_err(std::io::Error::other)?;
    let port = listener.addr.port();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let path = format!("/console/{}", hex::encode(nonce));
    let (served, mut stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        url: Mutex::new(Some(url)),
        served,
    });
    let app = Router::new()
        .route(&path, get(redirect))
        .layer(axum::middleware::from_fn_with_state(port, guard))
        .with_state(shared.clone());
    let stop = stopped.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = listener::serve(listener, app, &POLICY, || 1, |_| None, stop) => {}
            _ = stopped.changed() => {}
            () = tokio::time::sleep(LIFETIME) => {
                tracing::info!("the console sign-in page was not opened within {}s; closed", LIFETIME.as_secs());
            }
        }
        // The URL goes with the page, served or not.
        drop(shared);
    });
    Ok(format!("http://127.0.0.1:{port}{path}"))
}

/// The one redirect to the sign-in URL; after it, the page is gone.
async fn redirect(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if from_a_web_page(&req) {
        return page(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "The console sign-in opens only in the browser credd started, not from a web page.",
        );
    }
    let Some(url) = lock::lock(&shared.url).take() else {
        return page(
            StatusCode::GONE,
            "Sign-in used",
            "This console sign-in was already opened. Run <code>credd console</code> again.",
        );
    };
    let response = match HeaderValue::from_str(url.expose()) {
        Ok(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in unavailable",
            "The sign-in address cannot be sent to the browser.",
        ),
    };
    // The page closes once the answer had time to go out.
    let closing = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(FLUSH_GRACE).await;
        let _ = closing.served.send(true);
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(port: u16, path: &str, extra: &str) -> String {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
        );
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// The real listener: a web page is refused, the owner's navigation is redirected once, and
    /// then the page is gone.
    #[tokio::test]
    async fn the_page_redirects_its_owner_once_then_closes() {
        let signin = "https://signin.aws.amazon.com/federation?Action=login&SigninToken=T0KEN";
        let page = serve_once(Secret::new(signin)).await.unwrap();
        let rest = page.strip_prefix("http://127.0.0.1:").unwrap();
        let (port, path) = rest.split_once('/').unwrap();
        let port: u16 = port.parse().unwrap();
        let path = format!("/{path}");
        assert!(path.starts_with("/console/") && path.len() == "/console/".len() + 32);

        let wrong = get(port, "/console/0000", "").await;
        assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
        let framed = get(port, &path, "Sec-Fetch-Site: cross-site\r\n").await;
        assert!(framed.starts_with("HTTP/1.1 403"), "{framed}");
        assert!(!framed.contains("T0KEN"), "{framed}");

        let redirect = get(port, &path, "Sec-Fetch-Site: none\r\n").await;
        assert!(redirect.starts_with("HTTP/1.1 303"), "{redirect}");
        assert!(
            redirect.contains(&format!("location: {signin}")),
            "{redirect}"
        );
        assert!(redirect.contains("cache-control: no-store"), "{redirect}");

        // Served: the listener closes.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(closed.is_ok(), "the page still listens after its redirect");
    }
}
