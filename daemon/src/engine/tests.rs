//! The engine's timing and single-flight behaviour, on a simulated clock under tokio's paused
//! time and against the scripted STS ([`crate::testing::sts`]): hours of refresh cycles, backoffs
//! and session lifetimes in milliseconds of real time. The real SDK client builds, signs and
//! parses every call; only the server is scripted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::Secret;
use tokio::sync::watch;

use super::{Engine, EngineError, WALL_CHECK, Wiring, schedule};
use crate::access::AccessError;
use crate::access::command::Runner;
use crate::access::persist::SessionStore;
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::desktop::Notifier;
use crate::sts::Sts;
use crate::testing::notifier::Recorder;
use crate::testing::sts::{Call, FakeSts, Reply, USER_ARN};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// The IAM user's long-lived key, in the simulated shared credentials file.
pub(super) const KEY_ID: &str = "AKIAALICEFAKEKEY0001";
const STAGING: &str = "arn:aws:iam::222222222222:role/Administrator";
const AUDITOR: &str = "arn:aws:iam::333333333333:role/Auditor";
const MFA_SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";

/// When every simulated clock starts.
pub(super) fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// An engine over the config `text` on `clock`, reaching STS (and Identity Center) through
/// `sts`, with its files in `dir`: the saved session, the SSO token cache (`sso-cache`) and the
/// config; the sender keeps the config alive. Jitter is seeded, so runs repeat.
pub(super) fn start_engine(
    dir: &Path,
    text: &str,
    clock: &Clock,
    sts: Sts,
    credentials_file: Option<PathBuf>,
) -> (Engine, watch::Sender<Arc<Config>>) {
    start_wired(dir, text, wiring(dir, clock, sts, credentials_file))
}

/// [`start_engine`] with the access source's commands run by `commands` and the desktop
/// notifications going to `notifier`.
pub(super) fn start_engine_with(
    dir: &Path,
    text: &str,
    clock: &Clock,
    sts: Sts,
    credentials_file: Option<PathBuf>,
    commands: Runner,
    notifier: Arc<dyn Notifier>,
) -> (Engine, watch::Sender<Arc<Config>>) {
    start_wired(
        dir,
        text,
        Wiring {
            commands,
            notifier,
            ..wiring(dir, clock, sts, credentials_file)
        },
    )
}

/// What [`start_engine`] wires in: no IAM, the system's commands, notices to a [`Recorder`].
pub(super) fn wiring(
    dir: &Path,
    clock: &Clock,
    sts: Sts,
    credentials_file: Option<PathBuf>,
) -> Wiring {
    Wiring {
        clock: clock.clone(),
        sts,
        rng: fastrand::Rng::with_seed(7),
        credentials_file,
        sso_cache_dir: Some(dir.join("sso-cache")),
        iam: None,
        organizations: None,
        commands: Runner::System,
        notifier: Arc::new(Recorder::new(clock)),
        oidc_http: Default::default(),
    }
}

/// An engine over the config `text` with `wiring`, its session saved in `dir`.
pub(super) fn start_wired(
    dir: &Path,
    text: &str,
    wiring: Wiring,
) -> (Engine, watch::Sender<Arc<Config>>) {
    let config = config::parse(&dir.join("config.toml"), text).expect("a valid config");
    let (tx, rx) = watch::channel(Arc::new(config));
    let engine = Engine::start(
        rx,
        SessionStore::new(&dir.join("session.json"), true),
        wiring,
    );
    (engine, tx)
}

/// alice's long-lived key ([`KEY_ID`]) as profile `access` of a shared credentials file in
/// `dir`, as the configs here name it; its path.
pub(super) fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        format!(
            "[access]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = fake-long-lived-secret\n"
        ),
    )
    .expect("write the credentials file");
    path
}

/// An engine on a simulated clock with a scripted STS; dropped, its tasks go with the runtime.
struct Sim {
    engine: Engine,
    sts: FakeSts,
    clock: Clock,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

/// An iam-user config reading alice's key from [`credentials_file`]: `access`, more `[access]`
/// lines, and `profiles`.
pub(super) fn config_text(access: &str, profiles: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"iam-user\"\naws_profile = \"access\"\n{access}\n{profiles}"
    )
}

pub(super) const STAGING_ONLY: &str =
    "[profiles.staging]\nrole_arn = \"arn:aws:iam::222222222222:role/Administrator\"\n";

impl Sim {
    fn start(access: &str, profiles: &str) -> Sim {
        Sim::start_scripted(access, profiles, |_| Reply::Normal)
    }

    /// With `script` in place before the engine makes its first call.
    fn start_scripted(
        access: &str,
        profiles: &str,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let credentials = credentials_file(dir.path());
        let clock = Clock::simulated(t0());
        let (sts, client) = FakeSts::new(&clock);
        sts.script(script);
        let (engine, tx) = start_engine(
            dir.path(),
            &config_text(access, profiles),
            &clock,
            client,
            Some(credentials),
        );
        Sim {
            engine,
            sts,
            clock,
            _config: tx,
            _dir: dir,
        }
    }

    /// Simulated time since the start.
    fn elapsed(&self) -> Duration {
        self.clock.now().duration_since(t0()).unwrap()
    }

    async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await;
    }

    async fn until(&self, what: &str, done: impl Fn(&Sim) -> bool) {
        until(&self.clock, what, || done(self)).await;
    }

    fn fresh(&self, profile: &str) -> bool {
        self.engine
            .profile_status()
            .iter()
            .any(|p| p.name == profile && p.state == credd_proto::ProfileState::Fresh)
    }

    fn assumes(&self, role: &str) -> Vec<Call> {
        self.sts
            .calls_of("AssumeRole")
            .into_iter()
            .filter(|c| c.param("RoleArn") == Some(role))
            .collect()
    }
}

/// Waits (simulated time, up to a day, looking every simulated second) until `done`.
pub(super) async fn until(clock: &Clock, what: &str, done: impl Fn() -> bool) {
    let deadline = clock.now() + 24 * HOUR;
    while !done() {
        assert!(clock.now() < deadline, "waited a simulated day for {what}");
        clock.sleep(Duration::from_secs(1)).await;
    }
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_hour_credentials_are_refreshed_every_24_to_25_minutes_and_requests_never_call_sts() {
    let sim = Sim::start("", STAGING_ONLY);
    sim.until("the first credentials", |s| !s.assumes(STAGING).is_empty())
        .await;
    let end = sim.clock.now() + 10 * HOUR;
    let mut served = 0;
    while sim.clock.now() < end {
        let c = sim.engine.credentials("staging").await.expect("served");
        assert!(
            c.remaining(sim.clock.now()) >= 30 * MIN,
            "served under min_remaining"
        );
        served += 1;
        sim.sleep(MIN).await;
    }
    let calls = sim.assumes(STAGING);
    let gaps = gaps(&calls);
    assert!(
        gaps.iter().all(|g| (24 * MIN..=25 * MIN).contains(g)),
        "refresh gaps: {gaps:?}"
    );
    assert!(
        (24..=25).contains(&calls.len()),
        "{} AssumeRole calls in 10 h, for {served} requests",
        calls.len()
    );
    assert!(
        gaps.windows(2).any(|w| w[0] != w[1]),
        "the jitter is drawn afresh for each credential: {gaps:?}"
    );
    assert_eq!(
        calls[0].access_key_id, KEY_ID,
        "signed by the long-lived key"
    );
    assert_eq!(calls[0].param("RoleSessionName"), Some("alice"));
    assert_eq!(calls[0].param("DurationSeconds"), Some("3600"));
}

#[tokio::test(start_paused = true)]
async fn profiles_issued_together_spread_their_refreshes_over_the_jitter_window() {
    let profiles: String = (0..20)
        .map(|i| format!("[profiles.p{i}]\nrole_arn = \"arn:aws:iam::222222222222:role/R{i}\"\n"))
        .collect();
    let sim = Sim::start("", &profiles);
    sim.until("20 profiles refreshed twice", |s| {
        s.sts.calls_of("AssumeRole").len() >= 40
    })
    .await;
    let mut second: Vec<Duration> = (0..20)
        .map(|i| {
            let calls = sim.assumes(&format!("arn:aws:iam::222222222222:role/R{i}"));
            gaps(&calls)[0]
        })
        .collect();
    second.sort();
    assert!(
        second.first().unwrap() >= &(24 * MIN) && second.last().unwrap() <= &(25 * MIN),
        "{second:?}"
    );
    let spread = *second.last().unwrap() - *second.first().unwrap();
    assert!(
        spread >= 30 * Duration::from_secs(1),
        "spread only {spread:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn many_requests_for_a_cold_profile_make_one_sts_call() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| {
        if c.action == "AssumeRole" {
            Reply::Delayed(Duration::from_millis(200), Box::new(Reply::Normal))
        } else {
            Reply::Normal
        }
    });
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let engine = sim.engine.clone();
            tokio::spawn(async move { engine.credentials("staging").await })
        })
        .collect();
    for r in requests {
        r.await.unwrap().expect("every request is served");
    }
    assert_eq!(sim.assumes(STAGING).len(), 1);
    assert_eq!(sim.sts.calls_of("GetCallerIdentity").len(), 1, "one login");
    // Still one call per refresh once the credentials lapse while requests keep coming.
    sim.until("the refresh", |s| s.assumes(STAGING).len() == 2)
        .await;
    assert_eq!(sim.sts.calls_of("GetCallerIdentity").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_backs_off_exponentially_up_to_five_minutes_then_recovers() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| match c.action.as_str() {
        "AssumeRole" => Reply::Error(403, "AccessDenied"),
        _ => Reply::Normal,
    });
    sim.until("12 attempts", |s| s.assumes(STAGING).len() >= 12)
        .await;
    for (n, gap) in gaps(&sim.assumes(STAGING)).into_iter().enumerate() {
        let full = schedule::backoff(n as u32 + 1, 1.0);
        assert!(
            gap >= full / 2 && gap <= full + Duration::from_millis(100),
            "gap {} was {gap:?}, expected {:?}..{full:?}",
            n + 1,
            full / 2
        );
    }
    match sim.engine.credentials("staging").await {
        Err(EngineError::Unavailable { detail, .. }) => {
            let detail = detail.expect("the last error");
            assert!(detail.contains("AccessDenied"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sim.sts.script(|_| Reply::Normal);
    sim.until("the recovery", |s| s.fresh("staging")).await;
    assert!(sim.elapsed() < HOUR, "within one capped backoff");
}

#[tokio::test(start_paused = true)]
async fn a_logout_during_a_refresh_keeps_nothing_it_returns() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| {
        if c.action == "AssumeRole" {
            Reply::Delayed(Duration::from_secs(2), Box::new(Reply::Normal))
        } else {
            Reply::Normal
        }
    });
    sim.until("the AssumeRole in flight", |s| {
        !s.assumes(STAGING).is_empty()
    })
    .await;
    sim.engine.logout();
    sim.sleep(10 * MIN).await;
    assert_eq!(sim.assumes(STAGING).len(), 1, "nothing after the logout");
    assert!(sim.engine.profile_status()[0].expires_at.is_none());
    assert!(matches!(
        sim.engine.credentials("staging").await,
        Err(EngineError::LoginRequired { .. })
    ));
    assert!(!sim.engine.access_info().logged_in);
}

const MFA: &str =
    "mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\nsession_duration = \"2h\"\n";

#[tokio::test(start_paused = true)]
async fn a_request_never_mistakes_another_request_looking_for_a_login_for_one() {
    let sim = Sim::start(MFA, STAGING_ONLY);
    // Another request looks whether a login is under way at this very moment (on the daemon's
    // multi-threaded runtime, hundreds do at once).
    let _looking = sim
        .engine
        .inner
        .login_lock
        .try_read()
        .expect("no login is under way");
    let asked = tokio::time::Instant::now();
    match sim.engine.credentials("staging").await {
        Err(EngineError::LoginRequired { .. }) => {}
        other => panic!("expected LoginRequired, got {other:?}"),
    }
    assert_eq!(asked.elapsed(), Duration::ZERO, "answered at once");
}

#[tokio::test(start_paused = true)]
async fn an_mfa_session_is_used_until_its_end_warned_of_an_hour_ahead_then_login_is_required() {
    let sim = Sim::start(MFA, STAGING_ONLY);
    assert!(matches!(
        sim.engine.login_direct(None).await,
        Err(EngineError::Access(AccessError::MfaRequired { .. }))
    ));
    assert!(matches!(
        sim.engine.login_direct(Some(Secret::new("12345x"))).await,
        Err(EngineError::Access(AccessError::MalformedMfaCode))
    ));
    assert!(
        sim.sts.calls().is_empty(),
        "nothing reaches STS before a code"
    );
    let outcome = sim
        .engine
        .login_direct(Some(Secret::new("123456")))
        .await
        .expect("login");
    assert_eq!((outcome.ready, outcome.total), (1, 1));
    let token = &sim.sts.calls_of("GetSessionToken")[0];
    assert_eq!(token.param("SerialNumber"), Some(MFA_SERIAL));
    assert_eq!(token.param("TokenCode"), Some("123456"));
    assert_eq!(token.param("DurationSeconds"), Some("7200"));
    assert_eq!(token.access_key_id, KEY_ID);
    let assume = &sim.assumes(STAGING)[0];
    assert!(
        assume.access_key_id.starts_with("ASIAFAKE"),
        "AssumeRole is signed by the MFA session, not the key: {}",
        assume.access_key_id
    );
    let info = sim.engine.access_info();
    assert_eq!(info.identity.as_deref(), Some(USER_ARN));
    assert_eq!(info.warning, None);

    sim.sleep(61 * MIN).await;
    let warning = sim
        .engine
        .access_info()
        .warning
        .expect("warned an hour ahead");
    assert!(warning.contains("credd login"), "{warning}");

    // The session ends; the role credentials it signed last their own hour, and no refresh
    // is tried without a session.
    sim.sleep(HOUR).await;
    assert!(!sim.engine.access_info().logged_in);
    let session_end = t0() + 2 * HOUR;
    let assumes = sim.assumes(STAGING);
    assert!(assumes.iter().all(|c| c.at < session_end), "{assumes:?}");
    sim.sleep(HOUR).await;
    assert_eq!(
        sim.assumes(STAGING).len(),
        assumes.len(),
        "the workers idle"
    );
    match sim.engine.credentials("staging").await {
        Err(EngineError::LoginRequired { detail }) => {
            assert_eq!(detail.as_deref(), Some("the access session has expired"));
        }
        other => panic!("expected LoginRequired, got {other:?}"),
    }
    assert!(!sim.engine.access_info().logged_in);
}

#[tokio::test(start_paused = true)]
async fn a_session_sts_calls_expired_is_dropped_at_once() {
    let sim = Sim::start(MFA, STAGING_ONLY);
    sim.engine
        .login_direct(Some(Secret::new("123456")))
        .await
        .expect("login");
    sim.sts.script(|c| match c.action.as_str() {
        "AssumeRole" => Reply::Error(400, "ExpiredToken"),
        _ => Reply::Normal,
    });
    sim.until("the refresh", |s| s.assumes(STAGING).len() == 2)
        .await;
    sim.sleep(Duration::from_secs(1)).await;
    let info = sim.engine.access_info();
    assert!(!info.logged_in);
    assert_eq!(
        info.last_error.as_deref(),
        Some("the access session has expired")
    );
    sim.sleep(HOUR).await;
    assert_eq!(
        sim.assumes(STAGING).len(),
        2,
        "no retries without a session"
    );
}

#[tokio::test(start_paused = true)]
async fn in_an_outage_cached_credentials_are_served_until_five_minutes_are_left() {
    let sim = Sim::start("", STAGING_ONLY);
    sim.until("the first credentials", |s| !s.assumes(STAGING).is_empty())
        .await;
    let issued = sim.clock.now();
    sim.sts.script(|c| match c.action.as_str() {
        "AssumeRole" => Reply::Error(503, "ServiceUnavailable"),
        _ => Reply::Normal,
    });
    // Past min_remaining (30 min left at 30 min): the late refresh does not make anyone wait.
    sim.sleep(35 * MIN).await;
    let asked = tokio::time::Instant::now();
    let c = sim.engine.credentials("staging").await.expect("degraded");
    assert_eq!(asked.elapsed(), Duration::ZERO, "served without waiting");
    assert_eq!(c.expiration, sim.assumes(STAGING)[0].at + HOUR);
    assert!(sim.assumes(STAGING).len() > 2, "retrying meanwhile");

    sim.sleep((issued + 56 * MIN).duration_since(sim.clock.now()).unwrap())
        .await;
    match sim.engine.credentials("staging").await {
        Err(EngineError::Unavailable { detail, .. }) => {
            assert!(detail.unwrap_or_default().contains("ServiceUnavailable"));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sim.sts.script(|_| Reply::Normal);
    sim.until("the recovery", |s| s.fresh("staging")).await;
    assert!(
        sim.clock.now() < issued + 62 * MIN,
        "within one capped backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_region_fails_over_to_the_next() {
    let sim = Sim::start_scripted(
        "regions = [\"us-east-1\", \"us-west-2\"]",
        STAGING_ONLY,
        |c| {
            if c.region == "us-east-1" {
                Reply::Unreachable
            } else {
                Reply::Normal
            }
        },
    );
    sim.until("the profile", |s| s.fresh("staging")).await;
    let c = sim.engine.credentials("staging").await.expect("served");
    assert_eq!(c.region, "us-west-2");
    let regions: Vec<String> = sim
        .assumes(STAGING)
        .iter()
        .map(|c| c.region.clone())
        .collect();
    assert_eq!(
        regions,
        ["us-west-2"],
        "the region that answered the login is tried first"
    );
    let logins: Vec<String> = sim
        .sts
        .calls_of("GetCallerIdentity")
        .iter()
        .map(|c| c.region.clone())
        .collect();
    assert_eq!(logins.first().map(String::as_str), Some("us-east-1"));
    assert_eq!(logins.last().map(String::as_str), Some("us-west-2"));

    // A region that hangs costs its timeouts, then fails over too.
    sim.sts.script(|c| {
        if c.region == "us-east-1" {
            Reply::Hang
        } else {
            Reply::Normal
        }
    });
    sim.until("the next refresh", |s| {
        s.assumes(STAGING)
            .iter()
            .filter(|c| c.region == "us-west-2")
            .count()
            == 2
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn after_the_machine_slept_past_a_refresh_it_happens_at_once() {
    let sim = Sim::start("", STAGING_ONLY);
    sim.until("the first credentials", |s| !s.assumes(STAGING).is_empty())
        .await;
    sim.sleep(10 * MIN).await;
    // Asleep for 40 minutes: the refresh (due 24-25 min after issue) was missed, and the
    // monotonic timer still has 14 minutes to go.
    sim.clock.suspend(40 * MIN);
    let woke = sim.clock.now();
    sim.sleep(WALL_CHECK + Duration::from_millis(100)).await;
    let calls = sim.assumes(STAGING);
    assert_eq!(calls.len(), 2, "refreshed without waiting for the timer");
    assert!(calls[1].at <= woke + WALL_CHECK + Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_chained_profile_is_signed_by_the_profile_it_goes_via() {
    let profiles = format!(
        "{STAGING_ONLY}[profiles.audit]\nrole_arn = \"{AUDITOR}\"\nvia = \"staging\"\nduration = \"1h\"\n"
    );
    let sim = Sim::start("", &profiles);
    let audit = sim.engine.credentials("audit").await.expect("served");
    let staging = sim.engine.credentials("staging").await.expect("served");
    let call = &sim.assumes(AUDITOR)[0];
    assert_eq!(call.access_key_id, staging.creds.access_key_id);
    assert_eq!(
        audit.assumed_arn,
        "arn:aws:sts::333333333333:assumed-role/Auditor/alice"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cold_request_waits_at_most_cold_wait_for_a_slow_sts_and_the_refresh_goes_on() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| match c.action.as_str() {
        "AssumeRole" => Reply::Delayed(3 * Duration::from_secs(1), Box::new(Reply::Normal)),
        _ => Reply::Normal,
    });
    sim.until("logged in", |s| s.engine.access_info().logged_in)
        .await;
    let asked = tokio::time::Instant::now();
    match sim.engine.credentials("staging").await {
        Err(EngineError::Unavailable { profile, .. }) => assert_eq!(profile, "staging"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(asked.elapsed() <= super::COLD_WAIT + Duration::from_millis(10));
    sim.until("the slow answer", |s| s.fresh("staging")).await;
    assert_eq!(
        sim.assumes(STAGING).len(),
        1,
        "the same call, not a second one"
    );
}

#[tokio::test(start_paused = true)]
async fn a_daemon_started_during_an_outage_logs_in_by_itself_once_sts_returns() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |_| Reply::Unreachable);
    sim.sleep(10 * MIN).await;
    let attempts = sim.sts.calls_of("GetCallerIdentity").len();
    assert!(
        (4..40).contains(&attempts),
        "login retried with backoff: {attempts} attempts in 10 min"
    );
    match sim.engine.credentials("staging").await {
        Err(EngineError::LoginRequired { detail }) => {
            let detail = detail.expect("why");
            assert!(detail.contains("ConnectionFailed"), "{detail}");
        }
        other => panic!("expected LoginRequired, got {other:?}"),
    }
    sim.sts.script(|_| Reply::Normal);
    let back = sim.clock.now();
    sim.until("the login", |s| s.fresh("staging")).await;
    assert!(sim.clock.now() <= back + schedule::BACKOFF_MAX + MIN);
}

#[tokio::test(start_paused = true)]
async fn credd_refresh_asked_many_times_at_once_makes_one_sts_call_and_new_credentials() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| {
        if c.action == "AssumeRole" {
            Reply::Delayed(Duration::from_millis(200), Box::new(Reply::Normal))
        } else {
            Reply::Normal
        }
    });
    let first = sim.engine.credentials("staging").await.expect("served");
    sim.sleep(MIN).await;
    let asks: Vec<_> = (0..20)
        .map(|_| {
            let engine = sim.engine.clone();
            tokio::spawn(async move { engine.refresh_now("staging").await })
        })
        .collect();
    let mut keys = Vec::new();
    for ask in asks {
        let c = ask.await.unwrap().expect("refreshed");
        keys.push(c.creds.access_key_id.clone());
    }
    assert_eq!(sim.assumes(STAGING).len(), 2, "one call for twenty asks");
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "all see the same result"
    );
    assert_ne!(keys[0], first.creds.access_key_id, "new credentials");
    let served = sim.engine.credentials("staging").await.expect("served");
    assert_eq!(
        served.creds.access_key_id, keys[0],
        "the new ones are served"
    );
}

#[tokio::test(start_paused = true)]
async fn credd_refresh_of_a_failing_profile_skips_the_backoff_and_reports_the_error() {
    let sim = Sim::start_scripted("", STAGING_ONLY, |c| match c.action.as_str() {
        "AssumeRole" => Reply::Error(403, "AccessDenied"),
        _ => Reply::Normal,
    });
    sim.until("3 attempts", |s| s.assumes(STAGING).len() >= 3)
        .await;
    let before = sim.assumes(STAGING).len();
    let e = sim
        .engine
        .refresh_now("staging")
        .await
        .expect_err("still refused");
    assert!(e.to_string().contains("AccessDenied"), "{e}");
    assert_eq!(
        sim.assumes(STAGING).len(),
        before + 1,
        "at once, not after the backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn credd_refresh_without_a_session_says_to_log_in_and_calls_nothing() {
    let sim = Sim::start(&format!("mfa_serial = \"{MFA_SERIAL}\""), STAGING_ONLY);
    sim.sleep(MIN).await;
    let calls = sim.sts.calls().len();
    match sim.engine.refresh_now("staging").await {
        Err(EngineError::LoginRequired { .. }) => {}
        other => panic!("expected LoginRequired, got {:?}", other.map(|_| ())),
    }
    assert_eq!(sim.sts.calls().len(), calls);
    match sim.engine.refresh_now("nope").await {
        Err(EngineError::UnknownProfile { .. }) => {}
        other => panic!("expected UnknownProfile, got {:?}", other.map(|_| ())),
    }
}
