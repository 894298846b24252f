//! A real OpenID provider for the `source = "web-identity"` tests: npm's `oidc-provider`
//! ([`OIDC_PROVIDER_VERSION`], installed once into `target/oidc-provider`), run by
//! `tests/js/oidc_provider.mjs` with one public native client, PKCE S256, refresh tokens for
//! `offline_access`, the device flow, and test-only routes (statistics, forgetting every grant).
//!
//! Each test starts a provider of its own ([`OidcProvider::start`], about 0.3 s), so its counts and
//! grants are its own. The user's side is `tests/py/oidc_browser.py`, a scripted browser that signs
//! in and consents (or cancels) through the provider's own pages with plain HTTP: the methods here
//! run it, and [`OidcProvider::browser_command`] is the same script as credd's `$BROWSER`. A
//! provider exits when its stdin closes, so none outlives the test process, however that ends.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http;
use crate::install::{install_once, run_install_step, target_dir};
use crate::moto::read_log;
use crate::{free_port, system_python};

/// The oidc-provider the tests run. Pinned so every machine runs the provider the tests were
/// written against; changing this line makes the next test run reinstall it.
pub const OIDC_PROVIDER_VERSION: &str = "9.13.3";

/// The native client's id unless [`Options::client_id`] says otherwise.
pub const DEFAULT_CLIENT_ID: &str = "credd";

/// The device authorization grant's `grant_type` (RFC 8628).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long the provider may take to serve (node's start and a 2048-bit RSA key).
const START_DEADLINE: Duration = Duration::from_secs(20);

/// Attempts at starting a provider: the port from [`free_port`] can be taken before node binds it.
const START_ATTEMPTS: usize = 3;

/// The `package.json` of `target/oidc-provider`, before npm adds the dependency.
const PACKAGE_JSON: &str = r#"{
  "name": "credd-tests-oidc-provider",
  "description": "credd's end-to-end tests' OpenID provider, installed by tests/src/oidc_provider.rs",
  "private": true
}
"#;

/// How a provider is set up; [`Options::default`] is a typical IdP with long-lived tokens.
#[derive(Debug, Clone)]
pub struct Options {
    /// The public native client's id: the ID tokens' `aud`.
    pub client_id: String,
    /// How long an ID token is valid (whole seconds).
    pub id_token_ttl: Duration,
    /// How long an access token is valid (whole seconds).
    pub access_token_ttl: Duration,
    /// How long a refresh token is valid from its issue (whole seconds); with rotation each new
    /// one gets the whole time again.
    pub refresh_token_ttl: Duration,
    /// Whether each refresh answers with a new refresh token and retires the one used. Presenting
    /// a retired one again is then taken as theft: the provider revokes the whole grant.
    pub rotate_refresh_tokens: bool,
    /// The `interval` of device authorization answers: how long a client waits between polls
    /// (oidc-provider sends none, which means 5 s; this keeps device-flow tests quick).
    pub device_poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            id_token_ttl: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            rotate_refresh_tokens: true,
            device_poll_interval: Duration::from_secs(1),
        }
    }
}

/// What the provider counted since it started (`GET /test/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Stats {
    /// Requests to the authorization endpoint (not the resumes after each login or consent form).
    pub authorization_requests: u64,
    /// Requests to the device authorization endpoint.
    pub device_authorizations: u64,
    /// Token endpoint requests by `grant_type`, answered or refused.
    pub token_requests: BTreeMap<String, u64>,
    /// Refused token endpoint requests by `grant_type`, then by OAuth `error` code.
    pub token_errors: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Stats {
    /// Token endpoint requests with this `grant_type`.
    pub fn token_requests_for(&self, grant_type: &str) -> u64 {
        self.token_requests.get(grant_type).copied().unwrap_or(0)
    }

    /// Token endpoint requests with this `grant_type` refused with this `error`.
    pub fn token_errors_for(&self, grant_type: &str, error: &str) -> u64 {
        self.token_errors
            .get(grant_type)
            .and_then(|errors| errors.get(error))
            .copied()
            .unwrap_or(0)
    }
}

/// Where a browser walk ended: the loopback `redirect_uri`, as the browser opened it.
#[derive(Debug, Clone, Deserialize)]
pub struct Callback {
    /// The redirect's full URL, with the provider's `code`/`error`, `state` and `iss`.
    pub url: String,
    /// What the callback server (credd's) answered.
    pub status: u16,
    pub body: String,
}

impl Callback {
    /// The value of query parameter `name` of [`Callback::url`] (`code`, `error`, `state`...).
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.url.split_once('?').map_or("", |(_, q)| q);
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_else(|e| panic!("the callback URL {} has a bad query: {e}", self.url))
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }
}

/// A running provider; dropping it kills the process and waits for it.
pub struct OidcProvider {
    port: u16,
    options: Options,
    /// node's stderr: a file without a name, read with `read_at` (see [`read_log`]).
    log: File,
    child: Child,
    /// Kept open: node's stdout is never written again, but must not be a closed pipe.
    _stdout: BufReader<ChildStdout>,
    jwks: OnceLock<JwkSet>,
}

impl OidcProvider {
    /// Installs oidc-provider if needed, then starts a provider with `options` on a free port.
    pub fn start(options: Options) -> OidcProvider {
        ensure_installed();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log = tempfile::tempfile()
                .unwrap_or_else(|e| panic!("create the OpenID provider's log: {e}"));
            match start_server(port, &options, &log) {
                Ok((child, stdout)) => {
                    return OidcProvider {
                        port,
                        options,
                        log,
                        child,
                        _stdout: stdout,
                        jwks: OnceLock::new(),
                    };
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("the OpenID provider did not start after {START_ATTEMPTS} attempts: {last_failure}")
    }

    /// `http://127.0.0.1:PORT`: the issuer, and where everything is served.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The provider's address, for raw requests ([`http::request_with_body`]).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The public native client's id.
    pub fn client_id(&self) -> &str {
        &self.options.client_id
    }

    /// What the provider was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Where a user enters a device flow's user code (the answers' `verification_uri`).
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.issuer())
    }

    /// What node printed so far (oidc-provider's warnings, its `server_error`s).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        self.get_json("/.well-known/openid-configuration")
    }

    /// What the provider counted so far.
    pub fn stats(&self) -> Stats {
        serde_json::from_value(self.get_json("/test/stats"))
            .unwrap_or_else(|e| panic!("the OpenID provider's /test/stats: {e}"))
    }

    /// Drops every grant, session and token the provider holds, as an administrator revoking the
    /// user's sessions would: the next refresh is refused with `invalid_grant`, and the next
    /// login needs the user again.
    pub fn forget_grants(&self) {
        let reply = http::request_with_body(self.addr(), "POST", "/test/forget-grants", &[], "");
        assert_eq!(reply.status, 200, "POST /test/forget-grants: {reply}");
    }

    /// A user's browser on `authorization_url` (what credd opens): signs in as `login`,
    /// consents, follows the provider's redirects to the loopback `redirect_uri` and opens that
    /// too. Ok(the body the callback answered with a 2xx); Err(what went wrong) when the walk did
    /// not reach the callback or the callback answered otherwise.
    pub fn authorize(&self, authorization_url: &str, login: &str) -> Result<String, String> {
        let callback = self.walk_to_callback(authorization_url, login, &[])?;
        if (200..300).contains(&callback.status) {
            Ok(callback.body)
        } else {
            Err(format!(
                "the callback {} answered {}: {}",
                callback.url, callback.status, callback.body
            ))
        }
    }

    /// [`OidcProvider::authorize`], but the user presses Cancel on the consent page: the provider
    /// redirects to the callback with `error=access_denied`. Ok(what the callback answered,
    /// whatever its status).
    pub fn deny(&self, authorization_url: &str, login: &str) -> Result<Callback, String> {
        self.walk_to_callback(authorization_url, login, &["--deny"])
    }

    /// The device flow's user side: enters `user_code` at the verification URI, confirms, signs
    /// in as `login` and consents. Err(why) when the provider does not take the code or the walk
    /// goes elsewhere.
    pub fn approve_device(&self, user_code: &str, login: &str) -> Result<(), String> {
        self.walk_device(user_code, login, &[], "approved")
    }

    /// [`OidcProvider::approve_device`], but the user presses Cancel on the consent page: the
    /// client's next poll is refused with `access_denied`.
    pub fn deny_device(&self, user_code: &str, login: &str) -> Result<(), String> {
        self.walk_device(user_code, login, &["--deny"], "denied")
    }

    /// The `$BROWSER` for credd's login: the scripted browser signing in as `login` (and
    /// consenting), appending each step to `log` if given (credd starts its browser detached, so
    /// the log is where a failed walk shows).
    pub fn browser_command(login: &str, log: Option<&Path>) -> String {
        let mut words = vec![
            system_python().display().to_string(),
            browser_script().display().to_string(),
            "--login".to_owned(),
            login.to_owned(),
        ];
        if let Some(log) = log {
            words.extend(["--log".to_owned(), log.display().to_string()]);
        }
        // credd splits $BROWSER at whitespace (as the xdg convention has it).
        if let Some(word) = words
            .iter()
            .find(|w| w.is_empty() || w.contains(char::is_whitespace))
        {
            panic!("a $BROWSER word cannot be empty or hold whitespace: {word:?}");
        }
        words.join(" ")
    }

    /// [`OidcProvider::check_id_token`], panicking with why a token is not valid.
    #[track_caller]
    pub fn verify_id_token(&self, jwt: &str) -> Value {
        self.check_id_token(jwt)
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Checks an ID token as a relying party must: an RS256 signature by a key of the provider's
    /// JWKS (from the discovery document's `jwks_uri`), `iss` the issuer, `aud` the client id,
    /// `exp` not past (no leeway). Ok(its claims), or Err(why not).
    pub fn check_id_token(&self, jwt: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| format!("the ID token is not a JWT: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!(
                "the ID token is signed with {:?}, not RS256",
                header.alg
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| "the ID token's header has no kid".to_owned())?;
        let jwk = self
            .jwks()
            .find(&kid)
            .ok_or_else(|| format!("the provider's JWKS has no key {kid:?}"))?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| format!("the provider's key {kid:?} is not usable: {e}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.set_issuer(&[self.issuer()]);
        validation.set_audience(&[self.client_id()]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("the ID token is not valid: {e}"))
    }

    /// The provider's signing keys, fetched once through the discovery document.
    fn jwks(&self) -> &JwkSet {
        self.jwks.get_or_init(|| {
            let discovery = self.discovery();
            let uri = discovery["jwks_uri"]
                .as_str()
                .unwrap_or_else(|| panic!("the discovery document has no jwks_uri: {discovery}"));
            let path = uri
                .strip_prefix(&self.issuer())
                .unwrap_or_else(|| panic!("jwks_uri {uri} is not under {}", self.issuer()));
            serde_json::from_value(self.get_json(path))
                .unwrap_or_else(|e| panic!("the provider's JWKS at {uri}: {e}"))
        })
    }

    fn get_json(&self, path: &str) -> Value {
        let reply = http::request(self.addr(), "GET", path, &[]);
        assert_eq!(
            reply.status, 200,
            "GET {path} from the OpenID provider: {reply}"
        );
        reply.json()
    }

    fn walk_to_callback(&self, url: &str, login: &str, flags: &[&str]) -> Result<Callback, String> {
        let mut args = vec!["--login", login];
        args.extend(flags);
        args.push(url);
        let outcome = run_browser(&args)?;
        if outcome["outcome"] != "callback" {
            return Err(format!("the browser walk ended elsewhere: {outcome}"));
        }
        serde_json::from_value(outcome.clone())
            .map_err(|e| format!("the browser's callback outcome {outcome}: {e}"))
    }

    fn walk_device(
        &self,
        user_code: &str,
        login: &str,
        flags: &[&str],
        end: &str,
    ) -> Result<(), String> {
        let uri = self.verification_uri();
        let mut args = vec!["--login", login];
        args.extend(flags);
        args.extend(["--device", &uri, user_code]);
        let outcome = run_browser(&args)?;
        if outcome["outcome"] == end {
            Ok(())
        } else {
            Err(format!("the device walk ended {outcome}, not {end}"))
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        // Already gone is fine: the point is that no provider outlives its owner.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/py/oidc_browser.py`.
pub fn browser_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("oidc_browser.py")
}

/// Runs the scripted browser with `args`; Ok(its outcome object) unless it failed.
fn run_browser(args: &[&str]) -> Result<Value, String> {
    let script = browser_script();
    let mut command = Command::new(system_python());
    command.env_clear().env("LANG", "C.UTF-8");
    let output = command
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let outcome: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "{} {args:?} printed no outcome ({e}; {})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            script.display(),
            output.status
        )
    })?;
    if outcome["outcome"] == "error" {
        return Err(format!(
            "the scripted browser failed: {}",
            outcome["error"].as_str().unwrap_or_default()
        ));
    }
    Ok(outcome)
}

fn install_dir() -> PathBuf {
    target_dir("oidc-provider")
}

/// Installs [`OIDC_PROVIDER_VERSION`] into `target/oidc-provider` with npm unless it is there (see
/// [`install_once`]: test threads and test processes run this at the same time).
fn ensure_installed() {
    let pinned = format!("oidc-provider@{OIDC_PROVIDER_VERSION}");
    let probe = "node_modules/oidc-provider/package.json";
    install_once(&install_dir(), &pinned, probe, "oidc-provider", |dir| {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let manifest = dir.join("package.json");
        if !manifest.exists() {
            fs::write(&manifest, PACKAGE_JSON)
                .unwrap_or_else(|e| panic!("write {}: {e}", manifest.display()));
        }
        run_install_step(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--save-exact"])
                .arg(&pinned)
                .current_dir(dir),
            "npm install",
        );
    });
}

/// Spawns `oidc_provider.mjs` on `port` and waits for its `listening PORT` line; Err (with the
/// log) if it exits or is slow. Its stdin is how it notices that the test process is gone.
fn start_server(
    port: u16,
    options: &Options,
    log: &File,
) -> Result<(Child, BufReader<ChildStdout>), String> {
    let stderr = log
        .try_clone()
        .map_err(|e| format!("share the OpenID provider's log: {e}"))?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("js")
        .join("oidc_provider.mjs");
    let config = json!({
        "modules": install_dir(),
        "port": port,
        "client_id": options.client_id,
        "id_token_ttl": whole_seconds(options.id_token_ttl, "id_token_ttl"),
        "access_token_ttl": whole_seconds(options.access_token_ttl, "access_token_ttl"),
        "refresh_token_ttl": whole_seconds(options.refresh_token_ttl, "refresh_token_ttl"),
        "rotate_refresh_tokens": options.rotate_refresh_tokens,
        "device_poll_interval": whole_seconds(options.device_poll_interval, "device_poll_interval"),
    });
    let mut command = Command::new("node");
    // No NODE_OPTIONS or the like from the developer's environment.
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let mut child = command
        .arg(&script)
        .arg(config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "spawn node {} (is Node.js installed?): {e}",
                script.display()
            )
        });
    let stdout = child.stdout.take().expect("node's stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line).map(|_| line);
        // Err: start_server gave up waiting already.
        let _ = ready_tx.send((read, stdout));
    });
    let failure = match ready_rx.recv_timeout(START_DEADLINE) {
        Ok((Ok(line), stdout)) if line.trim() == format!("listening {port}") => {
            return Ok((child, stdout));
        }
        Ok((Ok(line), _)) if line.is_empty() => {
            let status = child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            format!("exited ({status})")
        }
        Ok((Ok(line), _)) => format!("printed {line:?} instead of `listening {port}`"),
        Ok((Err(e), _)) => format!("could not be read from: {e}"),
        Err(_) => format!("did not serve within {START_DEADLINE:?}"),
    };
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "the OpenID provider on port {port} {failure}:\n{}",
        read_log(log)
    ))
}

fn whole_seconds(duration: Duration, what: &str) -> u64 {
    assert!(
        duration.as_secs() >= 1 && duration.subsec_nanos() == 0,
        "the OpenID provider's {what} must be whole seconds, at least 1: {duration:?}"
    );
    duration.as_secs()
}
