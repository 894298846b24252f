//! Defences on every route: DNS rebinding (Host must be a loopback literal or `localhost`, with
//! the port we listen on), browser-originated requests (`Origin`, `Sec-Fetch-Site` other than
//! `none`), request bodies (none of our routes takes one), and `Cache-Control: no-store` on every
//! answer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use axum::response::IntoResponse;

use super::Peer;
use super::error::Refusal;
use crate::listener::is_loopback_host;
use crate::logging::{THROTTLE_WINDOW, Throttle};

/// The IMDS token PUT has an empty body; anything larger is not for us.
const MAX_BODY: u64 = 1024;

/// What a web page's requests are refused for (DNS rebinding; a page of any site), each logged
/// at most once a minute with a count: the owner learns that some page is trying, and a page
/// sending thousands cannot fill the log.
static FOREIGN_HOST: Throttle = Throttle::new(THROTTLE_WINDOW);
static FROM_A_PAGE: Throttle = Throttle::new(THROTTLE_WINDOW);

pub async fn guard(req: Request, next: Next) -> Response {
    let local = req.extensions().get::<Peer>().map(|p| p.local);
    let mut response = match check(&req, local) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            log_refusal(&req, refusal.code);
            refusal.into_response()
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `local`: the address the request came in on (unknown only when a test drives the router
/// directly). Besides loopback names, the Host may be that address itself: a container names
/// the gateway it was given.
fn check(req: &Request, local: Option<SocketAddr>) -> Result<(), Refusal> {
    let port = local.map(|l| l.port());
    let names_us = |h: &str| is_loopback_host(h, port) || local.is_some_and(|l| names(h, l));
    let headers = req.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        // Which one would a proxy or a later check believe? Refuse rather than guess (RFC 9112).
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "InvalidHost",
            "a request must carry exactly one Host header",
        ));
    }
    let host_ok = host.is_none_or(|h| h.to_str().is_ok_and(names_us));
    // An absolute-form target (`GET http://name/...`) names the host in place of the header.
    let target_ok = req.uri().authority().is_none_or(|a| names_us(a.as_str()));
    if !host_ok || !target_ok {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "ForbiddenHost",
            "the Host header must be a loopback address or localhost, with the port credd listens on",
        ));
    }
    let from_browser = headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() != b"none");
    if from_browser {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "BrowserRequest",
            "requests from web pages are refused",
        ));
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if length > MAX_BODY || headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            "these routes take no request body",
        ));
    }
    Ok(())
}

/// Logs a refusal a web page causes, throttled, naming the `Host` and `Origin` it came with
/// (cut short, and quoted with escapes: they are the sender's words).
fn log_refusal(req: &Request, code: &str) {
    let (throttle, what) = match code {
        "ForbiddenHost" => (
            &FOREIGN_HOST,
            "refused requests for a host name that is not credd's (a web page rebinding DNS?)",
        ),
        "BrowserRequest" => (&FROM_A_PAGE, "refused requests from a web page"),
        _ => return,
    };
    if let Some(more) = throttle.allow() {
        let shown = |name| {
            req.headers().get(name).map(|v: &HeaderValue| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(100)
                    .collect::<String>()
            })
        };
        tracing::warn!(
            host = ?shown(header::HOST),
            origin = ?shown(header::ORIGIN),
            suppressed_since_last = more,
            "{what}"
        );
    }
}

/// `host` is exactly `local` (`172.17.0.1:9912`), or its address alone when it listens on 80.
fn names(host: &str, local: SocketAddr) -> bool {
    host.parse::<SocketAddr>().is_ok_and(|h| h == local)
        || (local.port() == 80 && host.parse::<IpAddr>().is_ok_and(|h| h == local.ip()))
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::listener::is_loopback_host;
    use axum::body::Body;
    use axum::extract::Request;

    fn code(req: Request) -> Option<&'static str> {
        check(&req, Some(([127, 0, 0, 1], 9911).into()))
            .err()
            .map(|r| r.code)
    }

    #[test]
    fn one_loopback_host_in_the_header_and_the_target() {
        let get = |uri: &str| Request::get(uri);
        let ok = get("/healthz").header("host", "127.0.0.1:9911");
        assert_eq!(code(ok.body(Body::empty()).unwrap()), None);
        let two = get("/healthz")
            .header("host", "127.0.0.1:9911")
            .header("host", "evil.example");
        assert_eq!(code(two.body(Body::empty()).unwrap()), Some("InvalidHost"));
        let absolute = get("http://evil.example/healthz").header("host", "127.0.0.1:9911");
        assert_eq!(
            code(absolute.body(Body::empty()).unwrap()),
            Some("ForbiddenHost")
        );
        let absolute_ok = get("http://localhost:9911/healthz").header("host", "localhost:9911");
        assert_eq!(code(absolute_ok.body(Body::empty()).unwrap()), None);
        let other_port = get("http://localhost:9912/healthz").header("host", "localhost:9911");
        assert_eq!(
            code(other_port.body(Body::empty()).unwrap()),
            Some("ForbiddenHost")
        );
    }

    #[test]
    fn loopback_hosts_with_our_port() {
        let port = Some(9911);
        for ok in [
            "127.0.0.1:9911",
            "127.1.2.3:9911",
            "[::1]:9911",
            "localhost:9911",
            "LOCALHOST:9911",
        ] {
            assert!(is_loopback_host(ok, port), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "[::1]",
            "localhost",
            "127.0.0.1:+9911",
            "127.0.0.1:80",
            "127.0.0.1:9912",
            "evil.example",
            "evil.example:9911",
            "localhost.evil.example:9911",
            "10.0.0.1:9911",
            "[::2]:9911",
            "127.0.0.1:x",
            "127.0.0.1:99999",
            "127.0.0.1:",
            "[::1]x",
            "[::1]:",
            "",
        ] {
            assert!(!is_loopback_host(bad, port), "{bad}");
        }
        // Port 80 may be left out, as clients do.
        assert!(is_loopback_host("127.0.0.1", Some(80)));
        assert!(is_loopback_host("127.0.0.1:80", Some(80)));
        assert!(
            is_loopback_host("127.0.0.1:09911", port),
            "leading zeros are digits"
        );
    }
}
