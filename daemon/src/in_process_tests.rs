//! The whole daemon in one test process, on the test doubles: a daemon on a temp dir with the
//! scripted STS and a simulated clock, its control socket served by [`control::serve`] and its
//! HTTP API by [`http::serve`] on 127.0.0.1:0. The control socket is driven through the `credd`
//! crate's own client library, as the CLI drives it; the HTTP routes with plain HTTP/1.1 over
//! TCP, as an SDK does. Every credential that leaves is recorded by the vending hook.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use credd::connection::Connection;
use credd::error::ClientError;
use credd::trust::Distrust;
use credd_proto::paths::{Paths, current_uid};
use credd_proto::{ErrorCode, Request, Response};
use tokio::sync::watch;

use crate::access::command::Runner;
use crate::access::persist::SessionStore;
use crate::clock::Clock;
use crate::daemon::{Daemon, Wiring};
use crate::http_token::HttpToken;
use crate::state::{State, StateFile};
use crate::testing::notifier::Recorder;
use crate::testing::sts::FakeSts;
use crate::vend::{Caller, Route, Vended};
use crate::{config, control, engine, http, listener, runtime_dir};

const STAGING: &str = "222222222222";
const AUDITOR: &str = "333333333333";
/// `follow_window` of the config below; the roles' credentials live an hour.
const WINDOW: Duration = Duration::from_secs(10 * 60);
/// A stall no machine should take: the daemon answers from its cache in microseconds.
const STALL: Duration = Duration::from_secs(60);

const CONFIG: &str = r#"default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"
imds = true
min_remaining = "5m"
follow_window = "10m"

[access]
source = "iam-user"
aws_profile = "access"

[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"

[profiles.auditor]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
"#;

/// When the simulated clock starts: far from the real time, so an expiry computed on the wrong
/// clock shows.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000)
}

/// A [`Vended`] kept.
#[derive(Debug, Clone)]
struct Record {
    route: Route,
    profile: String,
    current: bool,
    account_id: String,
    expiration: SystemTime,
    caller: Caller,
}

struct InProcess {
    daemon: Arc<Daemon>,
    paths: Paths,
    http: SocketAddr,
    /// The container routes' `Authorization`.
    token: String,
    vended: Arc<Mutex<Vec<Record>>>,
    clock: Clock,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `Expiration` of a credentials answer.
    fn expiration(&self) -> SystemTime {
        let json = self.json();
        let text = json["Expiration"].as_str().expect("an Expiration");
        humantime::parse_rfc3339(text).expect("RFC 3339")
    }
}

impl InProcess {
    /// The daemon, serving, with both profiles fresh.
    async fn start() -> InProcess {
        InProcess::start_with(CONFIG, &["staging", "auditor"]).await
    }

    /// The daemon on `config`, serving, once `fresh` are.
    async fn start_with(config: &str, fresh: &[&str]) -> InProcess {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path();
        let paths = Paths {
            config: root.join("config.toml"),
            config_named: false,
            runtime_dir: root.join("run"),
            state_dir: root.join("state"),
        };
        let credentials = root.join("credentials");
        std::fs::write(
            &credentials,
            "[access]\naws_access_key_id = AKIAALICEFAKEKEY0001\naws_secret_access_key = fake-long-lived-secret\n",
        )
        .unwrap();
        std::fs::write(&paths.config, config).unwrap();
        let config = config::load(&paths.config).expect("a valid config");

        let clock = Clock::simulated(t0());
        let (_fake, sts) = FakeSts::new(&clock);
        let vended: Arc<Mutex<Vec<Record>>> = Arc::default();
        let kept = vended.clone();
        let wiring = Wiring {
            engine: engine::Wiring {
                clock: clock.clone(),
                sts,
                rng: fastrand::Rng::with_seed(7),
                credentials_file: Some(credentials),
                sso_cache_dir: Some(root.join("sso-cache")),
                commands: Runner::System,
                notifier: Arc::new(Recorder::new(&clock)),
                iam: None,
                organizations: None,
                oidc_http: Default::default(),
            },
            vended: Arc::new(move |v: &Vended<'_>| {
                kept.lock().unwrap().push(Record {
                    route: v.route,
                    profile: v.profile.to_owned(),
                    current: v.current,
                    account_id: v.account_id.to_owned(),
                    expiration: v.expiration,
                    caller: *v.caller,
                });
            }),
            audit: false,
        };

        runtime_dir::ensure_private_dir(&paths.runtime_dir, runtime_dir::RUNTIME).unwrap();
        let token = HttpToken::create(&paths.token_file()).unwrap();
        let store = SessionStore::new(&paths.session_file(), true);
        let control_listener = runtime_dir::bind_control_socket(&paths.socket()).unwrap();
        let control_listener = tokio::net::UnixListener::from_std(control_listener).unwrap();
        let http_listener = listener::Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let http = http_listener.addr;

        let daemon = Arc::new(Daemon::new(paths.clone(), config, token, store, wiring));
        daemon.http_url.set(format!("http://{http}")).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(control::serve(
            control_listener,
            daemon.clone(),
            stop_rx.clone(),
        ));
        let state = Arc::new(http::HttpState::new(daemon.clone()));
        tokio::spawn(http::serve(http_listener, state, stop_rx));

        let token = std::fs::read_to_string(paths.token_file())
            .unwrap()
            .trim()
            .to_owned();
        let world = InProcess {
            daemon,
            paths,
            http,
            token,
            vended,
            clock,
            _stop: stop,
            _dir: dir,
        };
        world.until_fresh(fresh).await;
        world
    }

    async fn until_fresh(&self, profiles: &[&str]) {
        let start = Instant::now();
        loop {
            let status = self.daemon.engine.profile_status();
            let fresh = |name: &&str| {
                status
                    .iter()
                    .any(|p| p.name == *name && p.state == credd_proto::ProfileState::Fresh)
            };
            if profiles.iter().all(fresh) {
                return;
            }
            assert!(start.elapsed() < STALL, "never fresh: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One request through the `credd` client library, as the CLI sends it.
    async fn ask(&self, request: Request) -> Result<Response, ClientError> {
        let paths = self.paths.clone();
        tokio::task::spawn_blocking(move || Connection::open_existing(&paths)?.request(&request))
            .await
            .unwrap()
    }

    /// One HTTP/1.1 request, the connection closed after it.
    async fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.http);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\nContent-Length: 0\r\n\r\n");
        let addr = self.http;
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(STALL)).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = String::new();
            stream.read_to_string(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {head}"));
        Answer {
            status,
            body: body.to_owned(),
        }
    }

    async fn container(&self, path: &str) -> Answer {
        self.http("GET", path, &[("Authorization", &self.token)])
            .await
    }

    /// An IMDSv2 session token.
    async fn imds_token(&self) -> String {
        let answer = self
            .http(
                "PUT",
                "/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    async fn imds(&self, token: &str, path: &str) -> Answer {
        self.http("GET", path, &[("X-aws-ec2-metadata-token", token)])
            .await
    }

    fn vended(&self) -> Vec<Record> {
        self.vended.lock().unwrap().clone()
    }

    /// The simulated time around `f`: an expiry capped to the follow window during it lies
    /// within these, whole seconds (RFC 3339 and the control protocol drop the fraction).
    async fn timed<T>(&self, f: impl Future<Output = T>) -> (T, SystemTime, SystemTime) {
        let before = self.clock.now();
        let out = f.await;
        (out, before, self.clock.now())
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    crate::clock::unix(t)
}

/// `expiration` is the follow window's cap: within the window from when the request ran, on
/// the simulated clock.
fn assert_capped(expiration: SystemTime, before: SystemTime, after: SystemTime, what: &str) {
    assert!(
        expiration + Duration::from_secs(1) >= before + WINDOW && expiration <= after + WINDOW,
        "{what}: {} is not the follow window's cap ({} to {})",
        humantime::format_rfc3339(expiration),
        humantime::format_rfc3339(before + WINDOW),
        humantime::format_rfc3339(after + WINDOW),
    );
}

/// `expiration` is the credentials' own: well beyond the follow window (they live an hour).
fn assert_uncapped(expiration: SystemTime, after: SystemTime, what: &str) {
    assert!(
        expiration > after + WINDOW + Duration::from_secs(30 * 60),
        "{what}: {} looks capped",
        humantime::format_rfc3339(expiration),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_moves_every_following_route_and_the_vending_point_sees_each_caller() {
    let d = InProcess::start().await;

    // The default profile on the current container route, capped; a pinned one, not.
    let (current, before, after) = d.timed(d.container("/v1/credentials")).await;
    assert_eq!(current.status, 200, "{}", current.body);
    assert_eq!(current.json()["AccountId"], STAGING);
    assert_capped(current.expiration(), before, after, "container, current");
    assert_eq!(
        unix_secs(d.vended()[0].expiration),
        unix_secs(current.expiration()),
        "the vending point heard of the expiry the caller was told"
    );
    let (pinned, _, after) = d.timed(d.container("/v1/credentials/auditor")).await;
    assert_eq!(pinned.status, 200, "{}", pinned.body);
    assert_eq!(pinned.json()["AccountId"], AUDITOR);
    assert_uncapped(pinned.expiration(), after, "container, pinned");

    // The state file names the default from the start, before any switch: `credd prompt`
    // reads it.
    assert_eq!(
        State::load(&d.paths.state_file())
            .current_profile
            .as_deref(),
        Some("staging")
    );

    // The switch, through the client library; remembered in the state file.
    match d
        .ask(Request::Switch {
            profile: "auditor".into(),
        })
        .await
    {
        Ok(Response::Switched { previous, current }) => {
            assert_eq!(previous.as_deref(), Some("staging"));
            assert_eq!(current, "auditor");
        }
        other => panic!("not switched: {other:?}"),
    }
    assert_eq!(
        State::load(&d.paths.state_file())
            .current_profile
            .as_deref(),
        Some("auditor")
    );

    let (current, before, after) = d.timed(d.container("/v1/credentials")).await;
    assert_eq!(
        current.json()["AccountId"],
        AUDITOR,
        "the switch is followed"
    );
    assert_capped(
        current.expiration(),
        before,
        after,
        "container after the switch",
    );

    // IMDSv2: a token, the name list (the current profile), then its credentials.
    let token = d.imds_token().await;
    const ROLES: &str = "/latest/meta-data/iam/security-credentials";
    let list = d.imds(&token, ROLES).await;
    assert_eq!((list.status, list.body.as_str()), (200, "auditor"));
    let (imds, before, after) = d.timed(d.imds(&token, &format!("{ROLES}/auditor"))).await;
    assert_eq!(imds.status, 200, "{}", imds.body);
    assert_eq!(imds.json()["Code"], "Success");
    assert_capped(imds.expiration(), before, after, "IMDS");
    let extended = d
        .imds(
            &token,
            "/latest/meta-data/iam/security-credentials-extended/auditor",
        )
        .await;
    assert_eq!(extended.json()["AccountId"], AUDITOR);
    assert!(imds.json().get("AccountId").is_none(), "{}", imds.body);
    // Java v2 asks the ordinary route for the extended body with a header.
    let asked = d
        .http(
            "GET",
            &format!("{ROLES}/auditor"),
            &[
                ("X-aws-ec2-metadata-token", &token),
                ("X-amzn-extended", "1"),
            ],
        )
        .await;
    assert_eq!(asked.json()["AccountId"], AUDITOR, "{}", asked.body);
    assert_eq!(asked.json()["Code"], "Success");

    // credential-process: a named profile and the current one, never capped.
    for (profile, account) in [(Some("staging"), STAGING), (None, AUDITOR)] {
        let (answer, _, after) = d
            .timed(d.ask(Request::Credentials {
                profile: profile.map(str::to_owned),
            }))
            .await;
        match answer {
            Ok(Response::Credentials(c)) => {
                assert_eq!(c.account_id.as_deref(), Some(account));
                let expiration = SystemTime::UNIX_EPOCH + Duration::from_secs(c.expiration);
                assert_uncapped(expiration, after, "credential-process");
            }
            other => panic!("no credentials for {profile:?}: {other:?}"),
        }
    }

    // Every one of them went through the vending point, which knew the route and the caller.
    let vended = d.vended();
    let seen: Vec<(Route, &str, bool, &str)> = vended
        .iter()
        .map(|r| {
            (
                r.route,
                r.profile.as_str(),
                r.current,
                r.account_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Route::Container, "staging", true, STAGING),
            (Route::Container, "auditor", false, AUDITOR),
            (Route::Container, "auditor", true, AUDITOR),
            (Route::Imds, "auditor", false, AUDITOR),
            (Route::Imds, "auditor", false, AUDITOR),
            (Route::Imds, "auditor", false, AUDITOR),
            (Route::CredentialProcess, "staging", false, STAGING),
            (Route::CredentialProcess, "auditor", true, AUDITOR),
        ]
    );
    for record in &vended {
        assert_eq!(record.caller.uid, Some(current_uid()), "{record:?}");
        match record.route {
            Route::CredentialProcess | Route::Console => {
                assert_eq!(record.caller.pid, Some(std::process::id()), "{record:?}");
            }
            Route::Container | Route::Imds | Route::Docker => {
                assert_eq!(record.caller.pid, None, "not looked up on the request path");
                #[cfg(target_os = "linux")]
                assert!(record.caller.socket_inode.is_some(), "{record:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_profile_is_refused_on_every_route_and_nothing_is_vended() {
    let d = InProcess::start().await;

    let pinned = d.container("/v1/credentials/nope").await;
    assert_eq!(pinned.status, 404, "{}", pinned.body);
    assert_eq!(pinned.json()["code"], "UnknownProfile");
    assert!(
        pinned.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown profile \"nope\"") && m.contains("staging")),
        "{}",
        pinned.body
    );

    let token = d.imds_token().await;
    let imds = d
        .imds(&token, "/latest/meta-data/iam/security-credentials/nope")
        .await;
    assert_eq!(imds.status, 404, "{}", imds.body);
    assert_eq!(imds.json()["code"], "UnknownProfile");

    for request in [
        Request::Credentials {
            profile: Some("nope".into()),
        },
        Request::Switch {
            profile: "nope".into(),
        },
    ] {
        match d.ask(request.clone()).await {
            Ok(Response::Error(e)) => {
                assert_eq!(e.code, ErrorCode::UnknownProfile, "{request:?}");
                assert!(e.message.contains("unknown profile \"nope\""), "{e:?}");
            }
            other => panic!("{request:?} not refused: {other:?}"),
        }
    }
    assert_eq!(d.daemon.vending.current().as_deref(), Some("staging"));
    assert!(d.vended().is_empty(), "{:?}", d.vended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_talks_to_no_socket_or_runtime_dir_of_another_user() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let paths = |runtime_dir: std::path::PathBuf| Paths {
        config: dir.path().join("config.toml"),
        config_named: false,
        runtime_dir,
        state_dir: dir.path().join("state"),
    };

    // A runtime dir others may enter: refused before connecting.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    match Connection::open_existing(&paths(open.clone())) {
        Err(ClientError::Untrusted { path, why }) => {
            assert_eq!(path, open);
            assert_eq!(why, Distrust::OpenToOthers { mode: 0o755 });
        }
        Err(other) => panic!("not refused as untrusted: {other}"),
        Ok(_) => panic!("connected through a runtime dir open to others"),
    }

    #[cfg(target_os = "linux")]
    if current_uid() == 0 {
        another_users(&dir, paths);
    } else {
        eprintln!("skipped another user's socket and runtime dir: it takes root to make them");
    }
}

/// As root: a socket another user (nobody) listens on, in a private runtime dir of ours, and a
/// runtime dir of theirs.
#[cfg(target_os = "linux")]
fn another_users(dir: &tempfile::TempDir, paths: impl Fn(std::path::PathBuf) -> Paths) {
    use std::os::unix::fs::PermissionsExt;

    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (listener, theirs) = listen_as(65534);
    std::fs::rename(theirs.path().join("control.sock"), run.join("control.sock")).unwrap();
    match Connection::open_existing(&paths(run.clone())) {
        Err(ClientError::Untrusted { path, why }) => {
            assert_eq!(path, run.join("control.sock"));
            assert_eq!(why, Distrust::PeerIs(65534));
        }
        Err(other) => panic!("not refused as untrusted: {other}"),
        Ok(_) => panic!("connected to another user's socket"),
    }
    // Not a byte was sent.
    let (mut accepted, _) = listener.accept().unwrap();
    accepted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let _ = accepted.read_to_end(&mut got);
    assert!(got.is_empty(), "{} bytes reached the other user", got.len());

    // A runtime dir of another user: refused too.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    match Connection::open_existing(&paths(theirs)) {
        Err(ClientError::Untrusted { why, .. }) => assert_eq!(why, Distrust::OwnedBy(65534)),
        Err(other) => panic!("not refused as untrusted: {other}"),
        Ok(_) => panic!("connected through another user's runtime dir"),
    }
}

/// A Unix listener whose peer credentials are `uid`'s, at `control.sock` in a temp dir open to
/// all: made on a thread that takes `uid` as its
/// effective user for the bind (on Linux a thread's credentials are its own when changed with
/// the raw system call), then gives it back.
#[cfg(target_os = "linux")]
fn listen_as(uid: u32) -> (std::os::unix::net::UnixListener, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bound = dir.path().join("control.sock");
    let listener = std::thread::spawn(move || {
        let keep = libc::uid_t::MAX; // -1: unchanged
        // SAFETY: setresuid on this thread only; its real and saved ids stay root's, so the
        // effective one can be taken back.
        let set =
            |euid: libc::uid_t| unsafe { libc::syscall(libc::SYS_setresuid, keep, euid, keep) };
        assert_eq!(set(uid), 0, "{}", std::io::Error::last_os_error());
        let listener = std::os::unix::net::UnixListener::bind(&bound);
        assert_eq!(set(0), 0, "{}", std::io::Error::last_os_error());
        listener.unwrap()
    })
    .join()
    .unwrap();
    (listener, dir)
}

/// The IAM user with MFA: nothing is served until `credd login` with a code, which the control
/// socket asks for; a malformed code is refused as one, and the SDK routes say to log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_needs_a_code_asks_for_it_and_each_refusal_says_what_to_do() {
    const SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";
    let config = CONFIG.replace(
        "aws_profile = \"access\"\n",
        &format!("aws_profile = \"access\"\nmfa_serial = \"{SERIAL}\"\n"),
    );
    let d = InProcess::start_with(&config, &[]).await;

    let refused = d.container("/v1/credentials").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["code"], "LoginRequired");
    match d
        .ask(Request::Credentials {
            profile: Some("staging".into()),
        })
        .await
    {
        Ok(Response::Error(e)) => assert_eq!(e.code, ErrorCode::LoginRequired, "{}", e.message),
        other => panic!("served before a login: {other:?}"),
    }

    let login = |code: Option<&str>| Request::Login {
        mfa_code: code.map(credd_proto::Secret::new),
        browser: credd_proto::BrowserLogin::default(),
    };
    match d.ask(login(None)).await {
        Ok(Response::MfaRequired { serial }) => assert_eq!(serial, SERIAL),
        other => panic!("no code asked for: {other:?}"),
    }
    match d.ask(login(Some("12ab56"))).await {
        Ok(Response::Error(e)) => assert_eq!(e.code, ErrorCode::InvalidMfaCode, "{}", e.message),
        other => panic!("a malformed code was not refused: {other:?}"),
    }
    match d.ask(login(Some("123456"))).await {
        Ok(Response::LoggedIn { access, .. }) => assert!(access.logged_in, "{access:?}"),
        other => panic!("not logged in: {other:?}"),
    }
    d.until_fresh(&["staging", "auditor"]).await;
    let served = d.container("/v1/credentials").await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.json()["AccountId"], STAGING);
}
