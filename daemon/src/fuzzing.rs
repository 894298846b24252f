//! Entry points for the fuzz targets (`tests/fuzz/`) and their corpus replay (credd-tests'
//! `fuzz_replay`): each runs one of the daemon's parsers on arbitrary bytes, as the daemon runs
//! it, and panics when an invariant breaks. Not an API: the parsers stay private to their modules.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::access::{loopback, saml, sso};
use crate::listener::{Owner, Peer};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
}

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}

// ---------------------------------------------------------------------------------------------
// The HTTP request guard

/// The listeners a request may arrive on: the loopback API, and a container gateway on port 80
/// (whose clients name the gateway's address as the Host).
const LOCALS: [&str; 2] = ["127.0.0.1:9911", "172.17.0.1:80"];

/// One HTTP/1 connection's bytes, served by hyper as the daemon's listener serves them, through
/// the guard to routes shaped as the API's (a name percent-decoded from the path).
///
/// Invariant: every request that gets past the guard carries one Host at most, and it (and an
/// absolute-form target's authority) names this listener: `localhost` or a loopback address with
/// its port, or its own address; no `Origin`, no `Sec-Fetch-Site` other than `none`, no
/// `Transfer-Encoding`, no `Content-Length` above 1 KiB.
pub fn http_guard(data: &[u8]) {
    for local in LOCALS {
        let local: SocketAddr = local.parse().expect("a socket address");
        let passed = serve_connection(data, local);
        for (uri, headers) in passed {
            check_passed(&uri, &headers, local);
        }
    }
}

type Passed = Arc<Mutex<Vec<(Uri, HeaderMap)>>>;

fn serve_connection(data: &[u8], local: SocketAddr) -> Vec<(Uri, HeaderMap)> {
    use axum::extract::Path as UrlPath;
    use axum::extract::rejection::PathRejection;
    use axum::routing::get;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::ServiceExt;

    let passed: Passed = Arc::default();
    let record = |passed: Passed| {
        move |req: Request| async move {
            crate::lock::lock(&passed).push((req.uri().clone(), req.headers().clone()));
            StatusCode::OK
        }
    };
    let named = {
        let passed = passed.clone();
        move |name: Result<UrlPath<String>, PathRejection>, req: Request| async move {
            if let Ok(UrlPath(name)) = name {
                // What a handler looks the profile up by: any string, never a panic.
                let _ = crate::config::check_name(&name);
            }
            crate::lock::lock(&passed).push((req.uri().clone(), req.headers().clone()));
            StatusCode::OK
        }
    };
    let router: Router = Router::new()
        .route("/v1/credentials/{profile}", get(named.clone()))
        .route(
            "/latest/meta-data/iam/security-credentials/{name}",
            get(named),
        )
        .fallback(record(passed.clone()))
        .layer(axum::middleware::from_fn(crate::http::guard::guard));
    let peer = Peer {
        local,
        remote: SocketAddr::new(local.ip(), 40000),
        owner: Owner::Me,
        socket_inode: None,
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        req.extensions_mut().insert(peer);
        router.clone().oneshot(req)
    });
    let input = data.to_vec();
    block_on(async move {
        let (client, server) = tokio::io::duplex(1 << 20);
        // Half-close: the input ends right after its last request, which must still be served.
        let connection = hyper::server::conn::http1::Builder::new()
            .max_buf_size(crate::listener::MAX_HEADER_BYTES)
            .max_headers(crate::listener::MAX_HEADERS)
            .half_close(true)
            .serve_connection(TokioIo::new(server), service);
        let (mut read, mut write) = tokio::io::split(client);
        let talk = async move {
            let _ = write.write_all(&input).await;
            let _ = write.shutdown().await;
            let mut answer = Vec::new();
            let _ = read.read_to_end(&mut answer).await;
        };
        let served = async {
            let _ = tokio::join!(connection, talk);
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), served)
            .await
            .expect("a connection of a few kB is served within 10 s");
    });
    std::mem::take(&mut *crate::lock::lock(&passed))
}

fn check_passed(uri: &Uri, headers: &HeaderMap, local: SocketAddr) {
    let hosts: Vec<_> = headers.get_all(header::HOST).iter().collect();
    assert!(hosts.len() <= 1, "several Host headers passed: {hosts:?}");
    if let Some(host) = hosts.first() {
        let host = host.to_str().expect("a Host that passed is text");
        assert!(
            names_listener(host, local),
            "Host {host:?} passed on {local}"
        );
    }
    if let Some(authority) = uri.authority() {
        assert!(
            names_listener(authority.as_str(), local),
            "target {uri} passed on {local}"
        );
    }
    assert!(!headers.contains_key(header::ORIGIN), "an Origin passed");
    for site in headers.get_all("sec-fetch-site") {
        assert_eq!(site.as_bytes(), b"none", "Sec-Fetch-Site {site:?} passed");
    }
    assert!(!headers.contains_key(header::TRANSFER_ENCODING));
    for length in headers.get_all(header::CONTENT_LENGTH) {
        let n: u64 = length
            .to_str()
            .ok()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("Content-Length {length:?} passed"));
        assert!(n <= 1024, "Content-Length {n} passed");
    }
}

/// The rule, read independently of the guard (through the URL standard's host parser, which
/// accepts more than the guard: so this is a bound on what the guard may let through).
fn names_listener(host: &str, local: SocketAddr) -> bool {
    let Ok(url) = url::Url::parse(&format!("http://{host}/")) else {
        return false;
    };
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port_or_known_default() != Some(local.port())
    {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || local.ip() == ip,
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || local.ip() == ip,
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The config parser

/// The config file's text, parsed and validated.
///
/// Invariants: an error points inside the text (`line:col`, 1-based) and says something; an
/// accepted config is the same config when its TOML is written back out by another writer (the
/// validated config depends on the data, never on the layout), and parsing is deterministic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/config.toml");
    match crate::config::parse(path, text) {
        Err(e) => check_config_error(&e, text),
        Ok(config) => {
            assert_eq!(crate::config::parse(path, text).as_ref(), Ok(&config));
            let table: toml::Table = toml::from_str(text).expect("an accepted config is TOML");
            let Ok(rewritten) = toml::to_string(&table) else {
                return;
            };
            match crate::config::parse(path, &rewritten) {
                Ok(again) => assert_eq!(
                    again, config,
                    "the config changed when rewritten as\n{rewritten}"
                ),
                Err(e) => panic!("a rewritten config is refused: {e}\n{rewritten}"),
            }
        }
    }
}

fn check_config_error(e: &crate::config::ConfigError, text: &str) {
    assert!(!e.msg.trim().is_empty(), "an error says nothing: {e:?}");
    let lines = text.split('\n').count();
    if let Some(line) = e.line {
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
        let col = e.col.expect("a line comes with a column");
        let width = text.split('\n').nth(line - 1).unwrap_or("").chars().count();
        assert!((1..=width + 1).contains(&col), "col {col} of {width}: {e}");
    }
    let _ = e.to_string();
}

/// A config `credd import` wrote (the `aws_config_import` target: the client's import on
/// arbitrary AWS files), with the config it started from (`None`: none).
///
/// Invariant: when the daemon accepted the config it started from (or there was none) and the
/// import found an `[access]` (`access`), the daemon accepts what it wrote, with every profile
/// the import reports.
pub fn imported_config(before: Option<&str>, written: &str, profiles: &[String], access: bool) {
    let path = Path::new("/fuzz/imported.toml");
    if !access || before.is_some_and(|b| crate::config::parse(path, b).is_err()) {
        return;
    }
    match crate::config::parse(path, written) {
        Ok(config) => {
            for p in profiles {
                assert!(config.profiles.contains_key(p), "{p} is not in\n{written}");
            }
        }
        Err(e) => panic!("the daemon refuses what the import wrote: {e}\n{written}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The SAML attribute reader

/// A SAMLResponse as `assertion_command` prints it: `data` base64-encoded (so the fuzzer works on
/// the XML), and `data` itself as the printed text.
///
/// Invariants: every role read is a (role ARN, SAML provider ARN) pair; choosing without a
/// wanted role works exactly when one is offered, and choosing each offered role finds it;
/// line-wrapped base64 reads the same.
pub fn saml(data: &[u8]) {
    let encoded = STANDARD.encode(data);
    let result = saml::parse(&encoded);
    if let Ok(assertion) = &result {
        for (role, provider) in &assertion.roles {
            assert!(
                role.starts_with("arn:aws") && role.contains(":role/"),
                "{role}"
            );
            assert!(
                provider.starts_with("arn:aws") && provider.contains(":saml-provider/"),
                "{provider}"
            );
            assert_eq!(&assertion.choose(Some(role)).expect("offered").0, role);
        }
        assert_eq!(assertion.choose(None).is_ok(), assertion.roles.len() == 1);
    }
    let wrapped: String = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join("\r\n");
    assert_eq!(saml::parse(&wrapped), result);
    if let Err(e) = &result {
        let _ = e.to_string();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = saml::parse(text).map_err(|e| e.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// The AWS CLI's SSO token cache

const SSO_START_URL: &str = "https://d-9067c5e4a1.awsapps.com/start";
const SSO_REGION: &str = "us-east-1";

/// A `~/.aws/sso/cache/*.json` file, read for the session of [`SSO_START_URL`] in
/// [`SSO_REGION`].
///
/// Invariants: a token read is written back (as credd writes the file) and read again the same,
/// times to the second; no error message carries the file's secrets.
pub fn sso_cache(data: &[u8]) {
    let file = Path::new("/fuzz/sso/cache/0123.json");
    match sso::cache::parse(file, data, SSO_START_URL, SSO_REGION) {
        Ok(Some(token)) => {
            let written = sso::cache::encode(SSO_START_URL, &token);
            let again = sso::cache::parse(file, &written, SSO_START_URL, SSO_REGION)
                .expect("credd reads what it writes")
                .expect("for the same session");
            same_token(&token, &again);
            let third = sso::cache::encode(SSO_START_URL, &again);
            assert_eq!(&written[..], &third[..], "writing is not stable");
        }
        Ok(None) => {}
        Err(e) => {
            let msg = e.to_string();
            for secret in secrets_in(data) {
                assert!(!msg.contains(&secret), "an error shows a secret: {msg}");
            }
        }
    }
}

fn same_token(a: &sso::SsoToken, b: &sso::SsoToken) {
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    assert_eq!(a.access_token, b.access_token);
    assert_eq!(a.refresh_token, b.refresh_token);
    assert_eq!(a.region, b.region);
    assert_eq!(secs(a.expires_at), secs(b.expires_at));
    assert_eq!(a.session_start.map(secs), b.session_start.map(secs));
    match (&a.registration, &b.registration) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.client_id, b.client_id);
            assert_eq!(a.client_secret, b.client_secret);
            assert_eq!(secs(a.expires_at), secs(b.expires_at));
        }
        (a, b) => panic!("registration {:?} became {:?}", a.is_some(), b.is_some()),
    }
}

/// The secret fields' values in a cache file, when it is JSON: long enough to be told apart
/// from ordinary words of a message, and found once in the file (a copy in another field, which
/// an error may quote, is no secret's).
fn secrets_in(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(data) else {
        return Vec::new();
    };
    ["accessToken", "refreshToken", "clientSecret"]
        .iter()
        .filter_map(|k| fields.get(*k)?.as_str())
        .filter(|v| v.len() >= 12 && text.matches(*v).count() == 1)
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The OAuth loopback callback

const LOGIN_STATE: &str = "Zq3-state_4f8a1c";
const LOGIN_PORT: u16 = 53682;

/// A request target sent to a pending login's loopback listener (`data` after
/// `/oauth/callback?` unless it starts with `/`).
///
/// Invariants, with the query read by the URL standard's form parser (the last of repeated
/// names): the login ends with a code exactly when the path is the callback's, the state is the
/// login's and a non-empty code is given (and no error), and the code is the one given; it ends
/// refused exactly when the state is the login's and an error is given, repeating only an error
/// code OAuth defines; anything else leaves it waiting.
pub fn oauth_callback(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let target = if text.starts_with('/') {
        text.to_owned()
    } else {
        format!("{}?{text}", loopback::CALLBACK_PATH)
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };
    let Ok(request) = Request::get(uri.clone())
        .header(header::HOST, format!("127.0.0.1:{LOGIN_PORT}"))
        .body(axum::body::Body::empty())
    else {
        return;
    };
    let (router, outcome) = loopback::unbound(LOGIN_STATE, LOGIN_PORT);
    let status = block_on(async {
        use tower::ServiceExt;
        router.oneshot(request).await.map(|r| r.status())
    })
    .expect("the router answers");
    let outcome = outcome();

    let mut last = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        last.insert(k.into_owned(), v.into_owned());
    }
    let ours = uri.path() == loopback::CALLBACK_PATH
        && last.get("state").map(String::as_str) == Some(LOGIN_STATE);
    let error = last.get("error");
    let code = last.get("code").filter(|c| !c.is_empty());
    match &outcome {
        Some(Ok(got)) => {
            assert!(ours && error.is_none(), "a code was taken from {target:?}");
            assert_eq!(Some(got.expose()), code.map(String::as_str), "{target:?}");
        }
        Some(Err(loopback::CallbackError::Denied { error: shown })) => {
            assert!(
                ours && error.is_some(),
                "a refusal was taken from {target:?}"
            );
            let defined = shown.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            assert!(
                defined || shown == "an error code that OAuth does not define",
                "{shown:?}"
            );
            if defined {
                assert_eq!(Some(shown), error);
            }
        }
        Some(Err(other)) => panic!("{other:?} from {target:?}"),
        None => assert!(
            !(ours && (error.is_some() || code.is_some())),
            "the login still waits after {target:?} ({status})"
        ),
    }
    assert_eq!(
        status == StatusCode::OK,
        outcome.is_some(),
        "{status} for {target:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harnesses are not vacuous: a good request reaches the routes and a bad one does not;
    /// a good callback ends the login.
    #[test]
    fn the_harnesses_see_what_passes() {
        let local: SocketAddr = LOCALS[0].parse().unwrap();
        let get =
            |host: &str| format!("GET /v1/credentials/a%20b HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let passed = serve_connection(get("localhost:9911").as_bytes(), local);
        assert_eq!(passed.len(), 1);
        assert!(serve_connection(get("evil.example:9911").as_bytes(), local).is_empty());
        let two = format!("{}{}", get("[::1]:9911"), get("127.0.0.1:9911"));
        assert_eq!(serve_connection(two.as_bytes(), local).len(), 2);

        let (router, outcome) = loopback::unbound(LOGIN_STATE, LOGIN_PORT);
        let request = Request::get(format!("/oauth/callback?code=c0de&state={LOGIN_STATE}"))
            .header(header::HOST, format!("127.0.0.1:{LOGIN_PORT}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let status = block_on(tower::ServiceExt::oneshot(router, request))
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(outcome().unwrap().unwrap().expose(), "c0de");
    }
}
