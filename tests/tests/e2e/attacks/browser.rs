//! A web page in the owner's own browser, for real: Debian's headless Chromium, running as the
//! daemon's user, loads the attacker's page (`pages/`), whose script tries every trick a page has
//! against credd's HTTP port (the container routes, current and pinned, and IMDS) and against a
//! pending login's loopback listener (complete it with a code of the attacker's, cancel it, start
//! it from the page, stall it), from four origins:
//!
//! - `cross-site`: a page of another site (`http://evil.test:PORT`) aiming at `127.0.0.1` and
//!   `localhost` (the browser sends `Origin` and `Sec-Fetch-Site`);
//! - `rebind-name`: the attacker's host name resolving to 127.0.0.1 (`rebind.test`), at credd's
//!   ports (an origin that is not potentially trustworthy: no `Sec-Fetch-*` is sent);
//! - `rebound-credd`, `rebound-login`: a full DNS rebinding: the page's own origin is
//!   `rebound.test` at credd's port (or the listener's), served by the attacker at 127.0.0.2 on
//!   that port, which sends every later connection of that origin on to credd at 127.0.0.1, so
//!   the page's requests are same-origin and it could read any answer.
//!
//! The page reports everything it observed to the attacker's server; the test checks that none of
//! it is a secret (the credentials, account ids and tokens it fetched itself), that nothing
//! changed (the current profile, the login still pending, the daemons still serving), and that
//! both daemons logged the refusals, once a minute. Then the page floods the login listener
//! (connections opened ahead under ever new host names, bursts of requests) while the owner's
//! browser asks it again and again and signs in: answered every time, the login completes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use credd_tests::chromium::Chromium;
use credd_tests::server::{ServerThread, lock};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::login::{
    LOGIN_DEADLINE, assert_still_pending, listener_of, owner_authorization_url, owner_signs_in,
    stack_recording_the_browser,
};
use crate::http_support::{STAGING_ARN, served};
use credd_tests::http::query_param;

const INDEX: &str = include_str!("pages/index.html");
const ATTACK_HTML: &str = include_str!("pages/attack.html");
const ATTACK_JS: &str = include_str!("pages/attack.js");

/// The page's scenarios (one frame each), as it names them.
const SCENARIOS: [&str; 4] = [
    "cross-site",
    "rebind-name",
    "rebound-credd",
    "rebound-login",
];

/// From starting Chromium to the last frame's report: a cold Chromium on a loaded 2-core machine
/// takes seconds to start, and the page makes some 1,500 requests, each given 8 s at most.
const REPORT_DEADLINE: Duration = Duration::from_secs(240);

/// How long the owner's browser keeps asking the login listener while the page floods it.
const OWNER_DURING_THE_FLOOD: Duration = Duration::from_secs(3);

/// Where the attacker's rebinding relays listen: the host name `rebound.test` resolves here.
const REBOUND: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[test]
fn a_web_page_in_the_owners_browser_learns_nothing_and_changes_nothing() {
    // Installed first (CI starts clean): the login below must not wait for apt-get.
    credd_tests::chromium::ensure_installed();
    // credd serving real credentials (moto, auth on) of two accounts, and IMDS.
    let served = served("imds = true");
    let credd = served.addr();
    // Another daemon, of an Identity Center login waiting in the owner's browser.
    let (login_stack, _) = stack_recording_the_browser();
    let (mut login, pending) = login_stack.pending_login(&["--browser"]);
    let start = pending["url"].as_str().expect("a URL").to_owned();
    let listener = listener_of(&start);

    let secrets = Secrets::of(&served, listener);
    let current = current_profile(&served);
    let state_before = login_stack.world.status()["access"].clone();

    let attacker = AttackerServer::start(credd, listener);
    let mut chromium = Chromium::open(
        &attacker.index_url(),
        &[
            ("evil.test", Ipv4Addr::LOCALHOST.into()),
            ("rebind.test", Ipv4Addr::LOCALHOST.into()),
            ("*.rebind.test", Ipv4Addr::LOCALHOST.into()),
            ("rebound.test", IpAddr::V4(REBOUND)),
        ],
    );
    let reports = attacker.wait_for_reports(&mut chromium);
    let observed: Vec<&Value> = reports
        .values()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .collect();
    let raw = serde_json::to_string(&reports).expect("the reports as JSON");
    secrets.assert_none_in(&raw);
    for (scenario, report) in &reports {
        eprintln!(
            "browser attack {scenario} ({}): {} attempts in {} ms; outcomes {}",
            report["origin"].as_str().unwrap_or_default(),
            report["results"].as_array().map_or(0, Vec::len),
            report["ms"],
            summary(report)
        );
    }
    let stalls: Vec<&&Value> = observed
        .iter()
        .filter(|r| {
            r["attempt"]
                .as_str()
                .is_some_and(|a| a.starts_with("stall"))
        })
        .collect();
    eprintln!(
        "browser attack: {} connections relayed to credd by the rebinding relays; {} of the \
         page's {} stalling requests to the login listener were refused (its 16 connections \
         were taken)",
        attacker.relayed(),
        stalls.iter().filter(|r| r["error"].is_string()).count(),
        stalls.len()
    );

    // It learnt nothing: no credential, account id, token or login secret in anything it saw.
    for result in &observed {
        let text = result.to_string();
        secrets.assert_none_in(&text);
        assert!(
            longest_hex_run(&text) < 32,
            "the page saw something like a token: {result}"
        );
        let status = result["status"].as_u64();
        assert!(
            status.is_none_or(|s| s == 0 || (400..500).contains(&s)),
            "the page was answered: {result}"
        );
        assert_ne!(result["type"], "opaqueredirect", "a redirect: {result}");
        assert_ne!(result["redirected"], true, "a redirect: {result}");
        let events = result["events"].to_string();
        assert!(!events.contains("open"), "a WebSocket opened: {result}");
        let attempt = result["attempt"].as_str().unwrap_or_default();
        if ["img", "script", "stylesheet"]
            .iter()
            .any(|tag| attempt.ends_with(tag))
        {
            assert_ne!(result["event"], "load", "{attempt} loaded: {result}");
        }
    }
    // The same-origin pages (full rebinding) could read every answer: each was a refusal.
    for scenario in ["rebound-credd", "rebound-login"] {
        let bodies: Vec<&str> = reports[scenario]["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["body"].as_str())
            .filter(|b| !b.is_empty())
            .collect();
        assert!(
            !bodies.is_empty(),
            "{scenario} read no answer: {:.4000}",
            reports[scenario].to_string()
        );
        for body in bodies {
            assert!(
                body.contains("ForbiddenHost") || body.contains("answers only as 127.0.0.1"),
                "{scenario} read {body}"
            );
        }
    }

    // The page still floods the listener (the cross-site frame, until told to stop): the owner's
    // browser is answered all the same, every time.
    let rounds_before = attacker.stall_rounds();
    let probe = Instant::now();
    let mut answered = 0;
    let rounds = || attacker.stall_rounds() - rounds_before;
    while probe.elapsed() < OWNER_DURING_THE_FLOOD || rounds() < 2 {
        assert!(
            probe.elapsed() < REPORT_DEADLINE,
            "the page stopped flooding: {} rounds",
            rounds()
        );
        let reply = credd_tests::http::send_raw(
            listener,
            format!("GET /oauth/start HTTP/1.1\r\nHost: {listener}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(
            reply.starts_with(b"HTTP/1.1 303"),
            "the owner's browser was refused while the page flooded the login listener, \
             after {answered} answers: {:?}",
            String::from_utf8_lossy(&reply)
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "browser attack: the owner's browser answered {answered} times in {:.1?} while the page \
         flooded the login listener ({} rounds of 8 connections opened ahead and 30 requests)",
        probe.elapsed(),
        rounds()
    );
    // The owner signs in meanwhile: it changed nothing, the login completes as the owner's.
    assert_still_pending(&login_stack.world, &mut login);
    assert_eq!(login_stack.world.status()["access"], state_before);
    assert_eq!(owner_signs_in(&start).status, 200);
    login.wait(LOGIN_DEADLINE).assert_success();
    assert_eq!(login_stack.world.status()["access"]["logged_in"], true);
    attacker.stop_stalling();
    drop(chromium);
    // credd serves its owner as before.
    assert_eq!(current_profile(&served), current);
    served.assert_still_serving();
    assert_eq!(
        served.served_identity("staging").as_deref(),
        Ok(STAGING_ARN)
    );

    // Both daemons logged the refusals, once a minute however many.
    let log = served.world.daemon_log();
    for line in [
        "refused requests from a web page",
        "refused requests for a host name that is not credd's",
    ] {
        let count = log.matches(line).count();
        assert!((1..=3).contains(&count), "{count} × {line:?}: {log}");
    }
    // Only the cross-site page's requests get past the Host check: its site is named.
    assert!(
        log.contains(&format!(
            "origin=Some(\"http://evil.test:{}\")",
            attacker.page.addr.port()
        )),
        "{log}"
    );
    let log = login_stack.world.daemon_log();
    for line in [
        "refused a login callback whose state is not the pending login's",
        "refused a request to a sign-in page for a host name that is not 127.0.0.1",
        "refused to start the sign-in for a web page",
    ] {
        let count = log.matches(line).count();
        assert!((1..=3).contains(&count), "{count} × {line:?}: {log}");
    }
    assert!(!log.contains("attackers-code"), "{log}");
}

/// `credd profiles`' current profile.
fn current_profile(served: &credd_tests::stack::Stack) -> Value {
    served
        .world
        .credd(&["--json", "profiles"])
        .assert_success()
        .json()["current"]
        .clone()
}

/// What the page must never see, fetched by the test itself with the token.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn of(served: &credd_tests::stack::Stack, listener: SocketAddr) -> Secrets {
        let mut secrets = vec![("the HTTP token".to_owned(), served.token())];
        for path in [
            "/v1/credentials",
            "/v1/credentials/staging",
            "/v1/credentials/deploy",
        ] {
            let reply = served.get_authorized(path);
            assert_eq!(reply.status, 200, "{path}: {reply}");
            let json = reply.json();
            for field in ["AccessKeyId", "SecretAccessKey", "Token", "AccountId"] {
                let value = json[field].as_str().unwrap_or_default();
                assert!(!value.is_empty(), "{path} has no {field}: {reply}");
                secrets.push((format!("{field} of {path}"), value.to_owned()));
            }
        }
        let imds = served.request(
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "600")],
        );
        assert_eq!(imds.status, 200, "{imds}");
        secrets.push(("an IMDS token".to_owned(), imds.body.clone()));
        // The login's secrets, as the owner's browser is sent on to the identity provider.
        let authorize = owner_authorization_url(listener);
        for name in ["state", "code_challenge"] {
            secrets.push((format!("the login's {name}"), query_param(&authorize, name)));
        }
        Secrets(secrets)
    }

    #[track_caller]
    fn assert_none_in(&self, text: &str) {
        for (what, secret) in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "the page saw {what}: {text:.4000}"
            );
        }
    }
}

/// The length of the longest run of hex digits in `text` (a token is 64).
fn longest_hex_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or_default()
}

/// How often each outcome came, e.g. `{"error TypeError: Failed to fetch": 40, "status 403": 12}`.
fn summary(report: &Value) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for result in report["results"].as_array().into_iter().flatten() {
        let outcome = if let Some(error) = result["error"].as_str() {
            format!("error {error}")
        } else if let Some(status) = result["status"].as_u64() {
            format!("status {status} {}", result["type"].as_str().unwrap_or(""))
        } else if let Some(event) = result["event"].as_str() {
            event.to_owned()
        } else if let Some(events) = result["events"].as_array() {
            format!("websocket {}", Value::from(events.clone()))
        } else {
            result["queued"].to_string()
        };
        *counts.entry(outcome.trim().to_owned()).or_default() += 1;
    }
    format!("{counts:?}")
}

/// The attacker's web server (`evil.test`, `rebind.test` at 127.0.0.1) and its two rebinding
/// relays (`rebound.test` at 127.0.0.2, on credd's port and on the listener's).
struct AttackerServer {
    page: ServerThread,
    _relays: Vec<ServerThread>,
    shared: Arc<Shared>,
    credd: SocketAddr,
    listener: SocketAddr,
}

#[derive(Default)]
struct Shared {
    /// Each report the page sent, in order.
    reports: Mutex<Vec<Value>>,
    /// Connections the relays sent on to credd.
    relayed: Mutex<usize>,
    /// Whether the page is to go on flooding the login listener once its attempts are done.
    keep_stalling: Mutex<bool>,
    /// How many rounds of that flood the page has asked for.
    stall_rounds: Mutex<usize>,
}

impl AttackerServer {
    fn start(credd: SocketAddr, listener: SocketAddr) -> AttackerServer {
        let shared = Arc::new(Shared::default());
        *lock(&shared.keep_stalling) = true;
        let page = serve(
            credd_tests::server::bind("attacker's web server"),
            shared.clone(),
            None,
        );
        let relays = [credd, listener]
            .into_iter()
            .map(|target| {
                let at = SocketAddr::from((REBOUND, target.port()));
                let relay = std::net::TcpListener::bind(at)
                    .unwrap_or_else(|e| panic!("bind the rebinding relay on {at}: {e}"));
                relay
                    .set_nonblocking(true)
                    .expect("make the relay non-blocking");
                serve(relay, shared.clone(), Some(target))
            })
            .collect();
        AttackerServer {
            page,
            _relays: relays,
            shared,
            credd,
            listener,
        }
    }

    /// The page Chromium opens: it frames the scenarios, passing this query on.
    fn index_url(&self) -> String {
        let port = self.page.addr.port();
        format!(
            "http://evil.test:{port}/?credd={}&login={}&report=http://evil.test:{port}",
            self.credd.port(),
            self.listener.port()
        )
    }

    fn relayed(&self) -> usize {
        *lock(&self.shared.relayed)
    }

    fn stall_rounds(&self) -> usize {
        *lock(&self.shared.stall_rounds)
    }

    /// Tells the page to stop flooding the login listener (at its next round).
    fn stop_stalling(&self) {
        *lock(&self.shared.keep_stalling) = false;
    }

    /// Each scenario's last report, once every one has said it is done; panics with Chromium's
    /// stderr if it exits, a scenario fails, or [`REPORT_DEADLINE`] passes (Chromium is killed
    /// when dropped).
    fn wait_for_reports(&self, chromium: &mut Chromium) -> BTreeMap<String, Value> {
        let started = Instant::now();
        loop {
            let reports = lock(&self.shared.reports).clone();
            let last: BTreeMap<String, Value> = reports
                .into_iter()
                .filter_map(|r| Some((r["scenario"].as_str()?.to_owned(), r)))
                .collect();
            if let Some(failed) = last.values().find(|r| r["phase"] == "failed") {
                panic!(
                    "the page failed: {failed}\n--- Chromium's stderr ---\n{}",
                    chromium.stderr()
                );
            }
            if SCENARIOS
                .iter()
                .all(|s| last.get(*s).is_some_and(|r| r["phase"] == "done"))
            {
                eprintln!(
                    "browser attack: every scenario reported {:.1?} after Chromium started",
                    started.elapsed()
                );
                return last;
            }
            let exited = chromium.has_exited();
            if exited || started.elapsed() > REPORT_DEADLINE {
                let phases: Vec<String> = last
                    .iter()
                    .map(|(s, r)| format!("{s}: {}", r["phase"]))
                    .collect();
                panic!(
                    "Chromium {} before every scenario reported (so far: {phases:?}); \
                     its profile: {}\n--- Chromium's stderr ---\n{}",
                    if exited { "exited" } else { "went on" },
                    chromium.dir().display(),
                    chromium.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Serves the attacker's pages on `listener`; with `relay_to`, a rebinding relay that sends
/// every connection whose request is not for one of the pages on to that address.
fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    relay_to: Option<SocketAddr>,
) -> ServerThread {
    ServerThread::start("attacker", listener, move |listener, mut stop| async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener");
        loop {
            let stream = tokio::select! {
                _ = &mut stop => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            tokio::spawn(connection(stream, shared.clone(), relay_to));
        }
    })
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, relay_to: Option<SocketAddr>) {
    if let Some(target) = relay_to {
        match first_path(&stream).await {
            Some(path) if is_page(&path) => {}
            Some(_) => {
                *lock(&shared.relayed) += 1;
                relay(stream, target).await;
                return;
            }
            None => return,
        }
    }
    let service = service_fn(move |req| answer(req, shared.clone()));
    // One request per connection: a relay decides by a connection's first request.
    let _ = http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The path of the request line at the start of `stream` (peeked: left to be read).
async fn first_path(stream: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 2048];
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]);
            return line.split(' ').nth(1).map(str::to_owned);
        }
        if n == buf.len() || Instant::now() > give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_page(path: &str) -> bool {
    let route = path.split('?').next().unwrap_or_default();
    ["/attack.html", "/attack.js", "/favicon.ico"].contains(&route)
}

/// Sends `stream` on to `target` both ways, as the browser's connection to credd.
async fn relay(mut stream: TcpStream, target: SocketAddr) {
    if let Ok(mut upstream) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    }
}

async fn answer(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = req.uri().path().to_owned();
    let page = |content_type: &str, body: &'static str| {
        Response::builder()
            .header("content-type", content_type)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("a response")
    };
    let response = match (req.method(), route.as_str()) {
        (&Method::GET, "/") => page("text/html; charset=utf-8", INDEX),
        (&Method::GET, "/attack.html") => page("text/html; charset=utf-8", ATTACK_HTML),
        (&Method::GET, "/attack.js") => page("text/javascript; charset=utf-8", ATTACK_JS),
        (&Method::GET, "/keep-stalling") => {
            let go = *lock(&shared.keep_stalling);
            if go {
                *lock(&shared.stall_rounds) += 1;
            }
            page("text/plain", if go { "yes" } else { "no" })
        }
        (&Method::POST, "/report") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let report = serde_json::from_slice(&body).unwrap_or_else(|e| {
                serde_json::json!({"scenario": "?", "phase": "failed", "error": format!("unreadable report ({e}): {}", String::from_utf8_lossy(&body))})
            });
            lock(&shared.reports).push(report);
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .expect("a response")
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .expect("a response"),
    };
    Ok(response)
}
