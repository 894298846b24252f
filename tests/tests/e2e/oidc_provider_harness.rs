//! The tests' OpenID provider works, without credd: a hand-made relying party (discovery, PKCE S256,
//! a loopback redirect on a port of its own, the token endpoint, the device grant) logs in through
//! it with the scripted browser approving, verifies the ID tokens, refreshes (with and without
//! rotation), meets the refusals credd must handle (`invalid_grant` after the IdP forgot the
//! grant or saw a retired refresh token again, `access_denied` after the user cancelled), and
//! reads the provider's counts. Each test has a provider of its own.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use credd_tests::http::{self, Reply};
use credd_tests::oidc_provider::{DEVICE_GRANT, OidcProvider, Options};
use credd_tests::{POLL_INTERVAL, wait_until};

/// The scopes credd asks for.
const SCOPE: &str = "openid email offline_access";

/// What [`LoopbackCallback`] answers.
const SIGNED_IN: &str = "signed in";

/// How long a test waits for the browser's request at its loopback callback.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(10);

/// The relying party's side, as credd does it: endpoints from the discovery document.
struct Client<'a> {
    idp: &'a OidcProvider,
    discovery: Value,
}

/// A PKCE pair: the verifier credd keeps and its S256 challenge.
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Pkce {
        let verifier = random_token();
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Pkce {
            verifier,
            challenge,
        }
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("random bytes from the OS");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl<'a> Client<'a> {
    fn new(idp: &'a OidcProvider) -> Client<'a> {
        Client {
            idp,
            discovery: idp.discovery(),
        }
    }

    /// The discovery document's `name` (an absolute URL under the issuer).
    fn endpoint(&self, name: &str) -> String {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("the discovery document has no {name}: {}", self.discovery))
            .to_owned()
    }

    fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Reply {
        let url = self.endpoint(endpoint);
        let path = url
            .strip_prefix(&self.idp.issuer())
            .unwrap_or_else(|| panic!("{endpoint} {url} is not under the issuer"));
        let body = serde_urlencoded::to_string(form).expect("encode a form");
        http::request_with_body(
            self.idp.addr(),
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
    }

    fn authorization_url(&self, redirect_uri: &str, pkce: &Pkce, state: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.idp.client_id()),
            ("redirect_uri", redirect_uri),
            ("scope", SCOPE),
            ("state", state),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .expect("encode a query");
        format!("{}?{query}", self.endpoint("authorization_endpoint"))
    }

    fn exchange_code(&self, code: &str, redirect_uri: &str, verifier: &str) -> Reply {
        self.post(
            "token_endpoint",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", self.idp.client_id()),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ],
        )
    }

    fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "token_endpoint",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", self.idp.client_id()),
                ("refresh_token", refresh_token),
            ],
        )
    }

    fn device_authorization(&self) -> Value {
        let reply = self.post(
            "device_authorization_endpoint",
            &[("client_id", self.idp.client_id()), ("scope", SCOPE)],
        );
        assert_eq!(reply.status, 200, "device authorization: {reply}");
        reply.json()
    }

    fn poll_device(&self, device_code: &str) -> Reply {
        self.post(
            "token_endpoint",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", self.idp.client_id()),
                ("device_code", device_code),
            ],
        )
    }

    /// A whole code flow: the browser approves as `login`; the tokens of the exchange.
    fn log_in(&self, login: &str) -> Value {
        let callback = LoopbackCallback::start();
        let pkce = Pkce::new();
        let url = self.authorization_url(&callback.redirect_uri(), &pkce, "s1");
        let body = self
            .idp
            .authorize(&url, login)
            .expect("the login is approved");
        assert_eq!(body, SIGNED_IN);
        let code = query_param(&callback.received(), "code").expect("the callback has a code");
        tokens(&self.exchange_code(&code, &callback.redirect_uri(), &pkce.verifier))
    }
}

/// The JSON of a 200 token answer, with an ID token and a refresh token.
#[track_caller]
fn tokens(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "a token answer: {reply}");
    let json = reply.json();
    for field in ["id_token", "access_token", "refresh_token"] {
        assert!(json[field].is_string(), "no {field}: {reply}");
    }
    assert_eq!(json["token_type"], "Bearer", "{reply}");
    json
}

/// The `error` of a refused token request, checking its shape: 400 and an OAuth error object.
#[track_caller]
fn oauth_error(reply: &Reply) -> String {
    assert_eq!(reply.status, 400, "a refused token request: {reply}");
    let json = reply.json();
    assert!(json["error_description"].is_string(), "{reply}");
    json["error"].as_str().expect("an error code").to_owned()
}

fn query_param(path_or_url: &str, name: &str) -> Option<String> {
    let query = path_or_url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .expect("a well-formed query")
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// credd's loopback redirect target, in small: a listener on a port of its own that answers one
/// request with [`SIGNED_IN`] and hands over the request's path.
struct LoopbackCallback {
    port: u16,
    received: mpsc::Receiver<String>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackCallback {
    fn start() -> LoopbackCallback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback callback");
        listener
            .set_nonblocking(true)
            .expect("make the callback listener non-blocking");
        let port = listener
            .local_addr()
            .expect("the callback's address")
            .port();
        let (tx, received) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if start.elapsed() < CALLBACK_DEADLINE => {
                        std::thread::sleep(POLL_INTERVAL)
                    }
                    Err(_) => return,
                }
            };
            stream.set_nonblocking(false).expect("a blocking stream");
            stream
                .set_read_timeout(Some(CALLBACK_DEADLINE))
                .expect("a read timeout");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{SIGNED_IN}",
                SIGNED_IN.len()
            );
            let _ = tx.send(path);
        });
        LoopbackCallback {
            port,
            received,
            thread: Some(thread),
        }
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/callback", self.port)
    }

    /// The path (and query) the browser opened.
    fn received(&self) -> String {
        self.received
            .recv_timeout(CALLBACK_DEADLINE)
            .expect("the browser opened the loopback callback")
    }
}

impl Drop for LoopbackCallback {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `jwt` with its payload's `sub` changed and the signature kept.
fn with_other_subject(jwt: &str, sub: &str) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS in compact form: {jwt}");
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("the payload is base64url");
    let mut claims: Value = serde_json::from_slice(&payload).expect("the payload is JSON");
    claims["sub"] = sub.into();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[test]
fn discovery_offers_what_credd_needs_at_the_loopback_issuer() {
    let idp = OidcProvider::start(Options::default());
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], idp.issuer(), "{discovery}");
    let list = |name: &str| -> Vec<String> {
        serde_json::from_value(discovery[name].clone())
            .unwrap_or_else(|e| panic!("{name} is not a list of strings ({e}): {discovery}"))
    };
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    for grant in ["authorization_code", "refresh_token", DEVICE_GRANT] {
        assert!(
            list("grant_types_supported").iter().any(|g| g == grant),
            "{discovery}"
        );
    }
    for scope in ["openid", "email", "offline_access"] {
        assert!(
            list("scopes_supported").iter().any(|s| s == scope),
            "{discovery}"
        );
    }
    assert!(
        list("id_token_signing_alg_values_supported")
            .iter()
            .any(|a| a == "RS256")
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
    ] {
        let url = discovery[endpoint].as_str().unwrap_or_default();
        assert!(url.starts_with(&idp.issuer()), "{endpoint}: {discovery}");
    }
}

#[test]
fn a_code_flow_with_pkce_on_any_loopback_port_gives_tokens_that_verify() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let callback = LoopbackCallback::start();
    let pkce = Pkce::new();
    let url = client.authorization_url(&callback.redirect_uri(), &pkce, "state-1");

    let started = Instant::now();
    assert_eq!(idp.authorize(&url, "alice").as_deref(), Ok(SIGNED_IN));
    eprintln!("one authorize walk: {:?}", started.elapsed());
    let path = callback.received();
    assert!(path.starts_with("/oauth/callback?"), "{path}");
    assert_eq!(query_param(&path, "state").as_deref(), Some("state-1"));
    assert_eq!(query_param(&path, "iss"), Some(idp.issuer()));
    let code = query_param(&path, "code").expect("the callback has a code");

    let tokens = tokens(&client.exchange_code(&code, &callback.redirect_uri(), &pkce.verifier));
    assert_eq!(tokens["scope"], SCOPE, "{tokens}");
    assert_eq!(tokens["expires_in"], 3600, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let claims = idp.verify_id_token(id_token);
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["email"], "alice@acme.example", "{claims}");
    assert_eq!(claims["aud"], "credd", "{claims}");
    assert_eq!(claims["iss"], idp.issuer(), "{claims}");
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(3600)
    );

    let forged = with_other_subject(id_token, "mallory");
    let refused = idp
        .check_id_token(&forged)
        .expect_err("a forged ID token is refused");
    assert!(refused.contains("InvalidSignature"), "{refused}");
    assert!(idp.check_id_token("not.a.jwt").is_err());

    // A code is good once.
    let again = client.exchange_code(&code, &callback.redirect_uri(), &pkce.verifier);
    assert_eq!(oauth_error(&again), "invalid_grant");
    let stats = idp.stats();
    assert_eq!(stats.authorization_requests, 1, "{stats:?}");
    assert_eq!(
        stats.token_requests_for("authorization_code"),
        2,
        "{stats:?}"
    );
    assert_eq!(
        stats.token_errors_for("authorization_code", "invalid_grant"),
        1,
        "{stats:?}"
    );
}

#[test]
fn pkce_is_required_and_its_verifier_checked() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);

    // Without a challenge the provider sends the browser back with the error.
    let callback = LoopbackCallback::start();
    let pkce = Pkce::new();
    let url = client.authorization_url(&callback.redirect_uri(), &pkce, "s");
    let without_pkce = url
        .split('&')
        .filter(|p| !p.starts_with("code_challenge"))
        .collect::<Vec<_>>()
        .join("&");
    idp.authorize(&without_pkce, "alice")
        .expect("the browser reaches the callback");
    let path = callback.received();
    assert_eq!(
        query_param(&path, "error").as_deref(),
        Some("invalid_request"),
        "{path}"
    );
    assert_eq!(query_param(&path, "code"), None, "{path}");

    // With one, the code is only good with its verifier.
    let callback = LoopbackCallback::start();
    let url = client.authorization_url(&callback.redirect_uri(), &pkce, "s");
    idp.authorize(&url, "alice").expect("the login is approved");
    let code = query_param(&callback.received(), "code").expect("a code");
    let wrong = client.exchange_code(&code, &callback.redirect_uri(), &Pkce::new().verifier);
    assert_eq!(oauth_error(&wrong), "invalid_grant");
}

#[test]
fn a_redirect_other_than_the_registered_loopback_path_is_refused_on_the_providers_page() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let pkce = Pkce::new();
    for redirect_uri in [
        "http://127.0.0.1:4321/elsewhere",
        "http://localhost:4321/oauth/callback",
        "http://192.0.2.1:4321/oauth/callback",
    ] {
        let url = client.authorization_url(redirect_uri, &pkce, "s");
        let refused = idp.authorize(&url, "alice").expect_err(redirect_uri);
        assert!(
            refused.contains("redirect_uri"),
            "{redirect_uri}: {refused}"
        );
    }
}

#[test]
fn a_refresh_rotates_and_a_retired_refresh_token_revokes_the_whole_grant() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let first = client.log_in("alice");
    let first_refresh = first["refresh_token"].as_str().expect("a refresh token");

    let second = tokens(&client.refresh(first_refresh));
    let second_refresh = second["refresh_token"].as_str().expect("a refresh token");
    assert_ne!(
        second_refresh, first_refresh,
        "rotation gives a new refresh token"
    );
    let claims = idp.verify_id_token(second["id_token"].as_str().expect("an ID token"));
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["email"], "alice@acme.example", "{claims}");

    // Seeing the retired one again, the provider assumes theft and ends the grant: the current
    // refresh token dies with it (two refreshes racing with one token end the login).
    assert_eq!(oauth_error(&client.refresh(first_refresh)), "invalid_grant");
    assert_eq!(
        oauth_error(&client.refresh(second_refresh)),
        "invalid_grant"
    );
    let stats = idp.stats();
    assert_eq!(stats.token_requests_for("refresh_token"), 3, "{stats:?}");
    assert_eq!(
        stats.token_errors_for("refresh_token", "invalid_grant"),
        2,
        "{stats:?}"
    );
}

#[test]
fn without_rotation_the_refresh_token_stays_and_keeps_working() {
    let idp = OidcProvider::start(Options {
        rotate_refresh_tokens: false,
        ..Options::default()
    });
    let client = Client::new(&idp);
    let first = client.log_in("alice");
    let refresh_token = first["refresh_token"].as_str().expect("a refresh token");
    for _ in 0..2 {
        let refreshed = tokens(&client.refresh(refresh_token));
        assert_eq!(refreshed["refresh_token"], refresh_token, "{refreshed}");
    }
}

#[test]
fn forgetting_the_grants_makes_the_next_refresh_invalid_grant() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let first = client.log_in("alice");
    let refresh_token = first["refresh_token"].as_str().expect("a refresh token");

    idp.forget_grants();
    let refused = client.refresh(refresh_token);
    assert_eq!(oauth_error(&refused), "invalid_grant");
    assert_eq!(
        refused.json()["error_description"],
        "grant request is invalid",
        "{refused}"
    );
    // A new login works again.
    client.log_in("alice");
}

#[test]
fn the_device_flow_is_approved_by_the_scripted_user() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let device = client.device_authorization();
    assert_eq!(
        device["verification_uri"],
        idp.verification_uri(),
        "{device}"
    );
    assert_eq!(device["interval"], 1, "{device}");
    let device_code = device["device_code"].as_str().expect("a device code");
    let user_code = device["user_code"].as_str().expect("a user code");

    assert_eq!(
        oauth_error(&client.poll_device(device_code)),
        "authorization_pending"
    );
    let wrong = idp
        .approve_device("BCDF-GHJK", "bob")
        .expect_err("an unknown user code");
    assert!(wrong.contains("BCDF-GHJK"), "{wrong}");
    idp.approve_device(user_code, "bob")
        .expect("the device login is approved");

    let approved = tokens(&client.poll_device(device_code));
    let claims = idp.verify_id_token(approved["id_token"].as_str().expect("an ID token"));
    assert_eq!(claims["sub"], "bob", "{claims}");
    assert_eq!(claims["email"], "bob@acme.example", "{claims}");
    let refresh_token = approved["refresh_token"].as_str().expect("a refresh token");
    let refreshed = tokens(&client.refresh(refresh_token));
    idp.verify_id_token(refreshed["id_token"].as_str().expect("an ID token"));

    let stats = idp.stats();
    assert_eq!(stats.device_authorizations, 1, "{stats:?}");
    assert_eq!(stats.authorization_requests, 0, "{stats:?}");
    assert_eq!(stats.token_requests_for(DEVICE_GRANT), 2, "{stats:?}");
    assert_eq!(
        stats.token_errors_for(DEVICE_GRANT, "authorization_pending"),
        1,
        "{stats:?}"
    );
    assert_eq!(stats.token_requests_for("refresh_token"), 1, "{stats:?}");
}

#[test]
fn a_user_who_cancels_is_access_denied_in_both_flows() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);

    let callback = LoopbackCallback::start();
    let url = client.authorization_url(&callback.redirect_uri(), &Pkce::new(), "s9");
    let denied = idp
        .deny(&url, "alice")
        .expect("the browser reaches the callback");
    assert_eq!(denied.status, 200, "{denied:?}");
    assert_eq!(
        denied.query("error").as_deref(),
        Some("access_denied"),
        "{denied:?}"
    );
    assert_eq!(denied.query("state").as_deref(), Some("s9"), "{denied:?}");
    assert_eq!(denied.query("code"), None, "{denied:?}");
    assert!(callback.received().contains("error=access_denied"));

    let device = client.device_authorization();
    let device_code = device["device_code"].as_str().expect("a device code");
    let user_code = device["user_code"].as_str().expect("a user code");
    idp.deny_device(user_code, "alice")
        .expect("the user cancels");
    assert_eq!(
        oauth_error(&client.poll_device(device_code)),
        "access_denied"
    );
}

#[test]
fn the_browser_command_logs_in_as_credd_would_start_it() {
    let idp = OidcProvider::start(Options::default());
    let client = Client::new(&idp);
    let callback = LoopbackCallback::start();
    let url = client.authorization_url(&callback.redirect_uri(), &Pkce::new(), "s");
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = dir.path().join("browser.log");

    // As credd's client runs `$BROWSER`: split at whitespace, the URL appended.
    let browser = OidcProvider::browser_command("carol", Some(&log));
    let mut words = browser.split_whitespace();
    let output = Command::new(words.next().expect("a program"))
        .args(words)
        .arg(&url)
        .env_clear()
        .output()
        .expect("run the $BROWSER command");
    assert!(output.status.success(), "{browser}: {output:?}");
    assert!(callback.received().contains("code="));
    let steps = read(&log);
    assert!(steps.contains("\"outcome\": \"callback\""), "{steps}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn lifetimes_and_the_client_id_follow_the_options() {
    let idp = OidcProvider::start(Options {
        client_id: "credd-staging".to_owned(),
        id_token_ttl: Duration::from_secs(1),
        access_token_ttl: Duration::from_secs(2),
        ..Options::default()
    });
    let client = Client::new(&idp);
    let tokens = client.log_in("alice");
    assert_eq!(tokens["expires_in"], 2, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let claims = idp.verify_id_token(id_token);
    assert_eq!(claims["aud"], "credd-staging", "{claims}");
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(1)
    );
    wait_until(Duration::from_secs(3), "the ID token to expire", || {
        idp.check_id_token(id_token).is_err()
    });
    let expired = idp
        .check_id_token(id_token)
        .expect_err("an expired ID token");
    assert!(expired.contains("ExpiredSignature"), "{expired}");
}
