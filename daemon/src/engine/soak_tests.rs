//! The soak: 24 simulated hours of three engines, one per kind of access session (an IAM user
//! with MFA whose `mfa_command` renews the session; Identity Center, as the AWS CLI left it; web
//! identity through credd's own OpenID login and the provider's refresh token), each with a few
//! profiles and one chained, while STS, Identity Center and the OpenID provider fail at random:
//! down, erroring, slow (past the SDK's time limits too), throttling, dating credentials by a
//! wrong clock (already expired, nearly expired, ten years ahead), and the provider rotating its
//! signing key while its token endpoint fails. Every [`REQUEST_EVERY`] each profile is asked for
//! through the vending point the HTTP routes use ([`Vending::vend`]), and:
//!
//! - no credential ever leaves with less than the daemon's outage floor
//!   ([`schedule::OUTAGE_FLOOR`]) left on the simulated wall clock at that moment, neither by the
//!   `Expiration` it carries nor by when the fake service really ends it (a skewed `Expiration`
//!   must not fool the daemon into serving a dead credential);
//! - after each failure episode every profile is fresh again within [`recovery_bound`];
//! - each engine's calls (to STS, Identity Center, the OpenID provider) in each hour stay within
//!   [`CallBound`]: every slot's (profile's, session's) scheduled refreshes, from the schedule's
//!   own functions, plus, for each hour a failure episode touches, the retries its backoff
//!   allows, each as many HTTP attempts as the SDK's limits allow.
//!
//! Episodes never overlap, and a quiet spell longer than the recovery bound follows each, so each
//! recovery is measured on its own. The run is seeded: `CREDD_SOAK_SEED=N` draws the same
//! episodes again (the seed is printed on failure), `CREDD_SOAK_HOURS=H` changes its length. The
//! engine's own jitter is seeded too, but not the SDK's retry jitter nor the order in which
//! `tokio::select!` polls, so recoveries and call counts vary by a few between two runs of one
//! seed; what is asserted holds for every run. With `--nocapture` it prints a summary: calls per
//! hour per source, each episode and its recovery, requests served and refused.
//!
//! `cargo test -p credd-daemon --lib engine::soak_tests -- --nocapture`; 24 simulated hours take
//! about 8 s of real time in a debug build on a 2-core machine under a load of 12.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use credd_proto::{BrowserLogin, LoginMethod, ProfileState, Secret};
use tokio::sync::watch;

use super::tests::{credentials_file, start_wired, t0, wiring};
use super::{Engine, LoginStart, WALL_CHECK, Wiring, schedule};
use crate::access::command::Runner;
use crate::access::sso::{Registration, SsoToken, cache};
use crate::clock::Clock;
use crate::config::Config;
use crate::testing::oidc::{self, FakeIdp, IdpReply};
use crate::testing::sts::{Call, FakeSts, Reply};
use crate::vend::{Caller, Route, Vended, Vending};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Each profile is asked for this often.
const REQUEST_EVERY: Duration = Duration::from_secs(10);
/// The first episode starts after this (every profile has been fresh by then).
const WARM_UP: Duration = Duration::from_secs(10 * 60);
const DEFAULT_SEED: u64 = 23;

/// The roles' and the sessions' lifetimes, as the configs below ask for them.
const ROLE_LIFE: Duration = HOUR;
const MFA_SESSION: Duration = Duration::from_secs(12 * 3600);
const IC_TOKEN_LIFE: Duration = HOUR;
const WEB_SESSION: Duration = HOUR;

const START_URL: &str = "https://acme.awsapps.com/start";

/// Which outside service an episode takes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Service {
    Sts,
    IdentityCenter,
    Idp,
}

/// How it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Connection refused.
    Down,
    /// 5xx.
    ServerError,
    /// Answers after this long (past the SDK's per-attempt limit from 5 s on).
    Slow(Duration),
    /// `Throttling` (STS), `TooManyRequestsException` (Identity Center).
    Throttling,
    /// Credentials (or the ID token) whose expiry is moved by this many seconds: a wrong clock.
    Skewed(i64),
    /// The provider's signing key changes at the start, and its token endpoint fails meanwhile.
    KeysRotated,
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    service: Service,
    fault: Fault,
    /// Since the start of the run.
    start: Duration,
    end: Duration,
}

/// The run's episodes, as a pure function of time: what each fake is to answer now.
struct Weather {
    start: SystemTime,
    clock: Clock,
    episodes: Vec<Episode>,
}

impl Weather {
    fn active(&self, service: Service) -> Option<Fault> {
        let now = self
            .clock
            .now()
            .duration_since(self.start)
            .unwrap_or_default();
        self.episodes
            .iter()
            .find(|e| e.service == service && e.start <= now && now < e.end)
            .map(|e| e.fault)
    }

    fn sts(&self, _call: &Call) -> Reply {
        match self.active(Service::Sts) {
            None | Some(Fault::KeysRotated) => Reply::Normal,
            Some(Fault::Down) => Reply::Unreachable,
            Some(Fault::ServerError) => Reply::Error(503, "ServiceUnavailable"),
            Some(Fault::Slow(d)) => Reply::Delayed(d, Box::new(Reply::Normal)),
            Some(Fault::Throttling) => Reply::Error(400, "Throttling"),
            Some(Fault::Skewed(secs)) => Reply::Skewed(secs),
        }
    }

    fn identity_center(&self, _call: &Call) -> Reply {
        match self.active(Service::IdentityCenter) {
            None | Some(Fault::KeysRotated) => Reply::Normal,
            Some(Fault::Down) => Reply::Unreachable,
            Some(Fault::ServerError) => Reply::Error(500, "InternalServerException"),
            Some(Fault::Slow(d)) => Reply::Delayed(d, Box::new(Reply::Normal)),
            Some(Fault::Throttling) => Reply::Error(429, "TooManyRequestsException"),
            Some(Fault::Skewed(secs)) => Reply::Skewed(secs),
        }
    }

    fn idp(&self, call: &oidc::IdpCall) -> IdpReply {
        match self.active(Service::Idp) {
            None => IdpReply::Normal,
            Some(Fault::Down) => IdpReply::Unreachable,
            Some(Fault::ServerError) => IdpReply::Status(503),
            Some(Fault::Slow(d)) => IdpReply::Delayed(d, Box::new(IdpReply::Normal)),
            Some(Fault::Throttling) => IdpReply::Status(429),
            Some(Fault::Skewed(secs)) => IdpReply::Skewed(secs),
            Some(Fault::KeysRotated) if call.endpoint == "token" => IdpReply::Status(503),
            Some(Fault::KeysRotated) => IdpReply::Normal,
        }
    }
}

/// How many kinds of failure [`draw_episodes`] knows.
const KINDS: u32 = 18;

/// Episodes drawn from `rng` over `length`: a quiet spell longer than the recovery bound, then one
/// service failing one way for 1 to 45 minutes, and again; every kind of failure in a shuffled
/// order before any comes again (a day holds them all).
fn draw_episodes(rng: &mut fastrand::Rng, length: Duration) -> Vec<Episode> {
    let mut episodes = Vec::new();
    let mut t = WARM_UP;
    let quiet_min = recovery_bound() + 5 * MIN;
    let mut kinds: Vec<u32> = Vec::new();
    loop {
        let quiet = quiet_min + Duration::from_secs(rng.u64(0..=45 * 60));
        let last = Duration::from_secs(rng.u64(60..=45 * 60));
        let start = t + quiet;
        let end = start + last;
        if end + recovery_bound() > length {
            return episodes;
        }
        if kinds.is_empty() {
            kinds = (0..KINDS).collect();
            rng.shuffle(&mut kinds);
        }
        let slow = Duration::from_secs([2, 4, 6, 15, 30][rng.usize(0..5)]);
        let (service, fault) = match kinds.pop().unwrap_or_default() {
            0 => (Service::Sts, Fault::Down),
            1 => (Service::Sts, Fault::ServerError),
            2 => (Service::Sts, Fault::Slow(slow)),
            3 => (Service::Sts, Fault::Throttling),
            // Already expired, by one to three hours.
            4 => (Service::Sts, Fault::Skewed(-(rng.i64(3600..=3 * 3600)))),
            // Between the floor and min_remaining: servable only as a last resort.
            5 => (Service::Sts, Fault::Skewed(-50 * 60)),
            // Ten years ahead.
            6 => (Service::Sts, Fault::Skewed(10 * 365 * 86_400)),
            7 => (Service::IdentityCenter, Fault::Down),
            8 => (Service::IdentityCenter, Fault::ServerError),
            9 => (Service::IdentityCenter, Fault::Slow(slow)),
            10 => (Service::IdentityCenter, Fault::Throttling),
            11 => (
                Service::IdentityCenter,
                Fault::Skewed(-(rng.i64(3600..=3 * 3600))),
            ),
            12 => (Service::Idp, Fault::Down),
            13 => (Service::Idp, Fault::ServerError),
            14 => (Service::Idp, Fault::Slow(slow)),
            15 => (Service::Idp, Fault::Throttling),
            16 => (Service::Idp, Fault::KeysRotated),
            // An ID token that expired two hours ago.
            _ => (Service::Idp, Fault::Skewed(-2 * 3600)),
        };
        episodes.push(Episode {
            service,
            fault,
            start,
            end,
        });
        t = end;
    }
}

/// After an episode ends, every profile is fresh again within this: the session's renewal (or
/// the daemon's own login) retries within [`schedule::BACKOFF_MAX`], checked every
/// [`WALL_CHECK`]; then the profile it signs for, then the one chained through that, each within
/// a backoff; each step's call may take the SDK's whole time limit (or the identity provider's
/// client's), and a chained refresh that found its signer not ready waits for it.
fn recovery_bound() -> Duration {
    let call = crate::sts::LIMITS
        .operation
        .max(crate::access::web_identity::HTTP_TIMEOUT);
    3 * (schedule::BACKOFF_MAX + call) + WALL_CHECK + super::CHAIN_WAIT
}

/// How many attempts a slot that fails for `failing` makes: one at once, then one after each
/// backoff, at their shortest (`jitter_unit` 0).
fn attempts_within(failing: Duration) -> u64 {
    let mut t = Duration::ZERO;
    let mut n: u32 = 0;
    while t <= failing {
        n += 1;
        t += schedule::backoff(n, 0.0);
    }
    u64::from(n)
}

/// Scheduled refreshes an hour of a credential of `life` under `min_remaining` (the soonest
/// refresh: all the jitter), counting one more for the hour's edges.
fn refreshes_per_hour(life: Duration, min_remaining: Duration) -> u64 {
    let at = schedule::refresh_at(t0(), t0() + life, min_remaining, 1.0);
    let every = at
        .duration_since(t0())
        .unwrap_or(MIN)
        .max(Duration::from_secs(1));
    HOUR.as_secs().div_ceil(every.as_secs()) + 1
}

/// Renewals an hour of a session (or token) of `life`, counting one more for the hour's edges.
fn renewals_per_hour(life: Duration) -> u64 {
    let end = t0() + life;
    let every = schedule::renew_at(end, life)
        .duration_since(t0())
        .unwrap_or(MIN)
        .max(Duration::from_secs(1));
    HOUR.as_secs().div_ceil(every.as_secs()) + 1
}

/// One engine's bound on calls an hour: `steady` calls whatever happens, and for an hour an
/// episode touches, `per_attempt` calls for each of the `failing_slots`' attempts while it
/// lasts (and its recovery after).
///
/// With the schedule as it is: 1-hour role credentials under the default 30-minute
/// `min_remaining` refresh 24 to 25 minutes after issue, at most 4 in an hour (3, and one for the
/// hour's edges); the 12-hour MFA session is renewed 20 minutes before its end (2 an hour at
/// most, edges counted), Identity Center's 1-hour token and web identity's 1-hour session a third
/// of their life ahead, every 40 minutes (3). So, calm: the IAM user 3 × 4 + 2 = 14 calls an hour,
/// Identity Center 3 × 4 + 3 + 1 (who the user is) = 16, web identity 2 × 4 + 3 × 4 (refresh
/// grant, AssumeRoleWithWebIdentity, discovery and key set after a rotation) = 20. A slot that
/// fails for an hour tries at most 32 times (backoff from 0.5 s doubling to its 150 s floor with
/// no jitter), each try as many HTTP requests as the SDK's attempts (2).
struct CallBound {
    steady: u64,
    failing_slots: u64,
    per_attempt: u64,
}

impl CallBound {
    fn for_hour(&self, failing: Duration) -> u64 {
        if failing.is_zero() {
            self.steady
        } else {
            self.steady + self.failing_slots * self.per_attempt * attempts_within(failing)
        }
    }
}

/// One engine under soak: its access source's kind, its profiles, its fakes, its vending point.
struct Soaked {
    name: &'static str,
    engine: Engine,
    sts: FakeSts,
    idp: Option<FakeIdp>,
    vending: Vending,
    profiles: Vec<&'static str>,
    bound: CallBound,
    vended: Arc<AtomicU64>,
    served: u64,
    refused: BTreeMap<String, u64>,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

/// An engine over `text` in `dir`, with STS (and Identity Center) failing as `weather` says and a
/// vending point whose hook counts what leaves.
fn soaked(
    name: &'static str,
    dir: tempfile::TempDir,
    text: &str,
    wiring: Wiring,
    sts: FakeSts,
    profiles: Vec<&'static str>,
    bound: CallBound,
) -> Soaked {
    let (engine, tx) = start_wired(dir.path(), text, wiring);
    let vended = Arc::new(AtomicU64::new(0));
    let counted = vended.clone();
    let vending = Vending::new(
        engine.clone(),
        tx.subscribe(),
        &dir.path().join("state.json"),
        Arc::new(move |_: &Vended<'_>| {
            counted.fetch_add(1, Ordering::Relaxed);
        }),
    );
    Soaked {
        name,
        engine,
        sts,
        idp: None,
        vending,
        profiles,
        bound,
        vended,
        served: 0,
        refused: BTreeMap::new(),
        _config: tx,
        _dir: dir,
    }
}

fn scripted_sts(clock: &Clock, weather: &Arc<Weather>) -> (FakeSts, crate::sts::Sts) {
    let (fake, sts) = FakeSts::new(clock);
    let w = weather.clone();
    let issuer = fake.clone();
    fake.script(move |call| {
        // As STS does, whatever its Expiration said.
        if issuer
            .true_expiry(&call.access_key_id)
            .is_some_and(|t| t <= call.at)
        {
            return Reply::Error(400, "ExpiredToken");
        }
        w.sts(call)
    });
    let w = weather.clone();
    fake.script_sso(move |call| w.identity_center(call));
    (fake, sts)
}

const ROLES: &str = "[profiles.staging]\nrole_arn = \"arn:aws:iam::222222222222:role/Administrator\"\n\n\
     [profiles.auditor]\nrole_arn = \"arn:aws:iam::333333333333:role/Auditor\"\n\n\
     [profiles.deep]\nrole_arn = \"arn:aws:iam::444444444444:role/Deploy\"\nvia = \"staging\"\n";

/// An IAM user with MFA, its session (12 h) renewed by `mfa_command`, and three role profiles,
/// one chained.
fn iam_user(clock: &Clock, weather: &Arc<Weather>) -> Soaked {
    let dir = tempfile::tempdir().expect("a temp dir");
    let credentials = credentials_file(dir.path());
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"iam-user\"\n\
         aws_profile = \"access\"\nmfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n\
         mfa_command = [\"ykman\", \"oath\", \"accounts\", \"code\", \"aws\"]\n\
         session_duration = \"12h\"\n\n{ROLES}"
    );
    let (fake, sts) = scripted_sts(clock, weather);
    let codes = Arc::new(AtomicU64::new(0));
    let ykman = Runner::Scripted(Arc::new(move |_argv: &[String]| {
        let n = codes.fetch_add(1, Ordering::SeqCst);
        Ok(Secret::new(format!("{:06}", 100_000 + n % 900_000)))
    }));
    let wiring = Wiring {
        commands: ykman,
        ..wiring(dir.path(), clock, sts, Some(credentials))
    };
    let min_remaining = crate::config::DEFAULT_MIN_REMAINING;
    let roles = refreshes_per_hour(ROLE_LIFE, min_remaining);
    let bound = CallBound {
        // Three AssumeRole refreshes, GetSessionToken renewals.
        steady: 3 * roles + renewals_per_hour(MFA_SESSION),
        failing_slots: 4,
        per_attempt: u64::from(crate::sts::LIMITS.max_attempts),
    };
    soaked(
        "iam-user (MFA)",
        dir,
        &text,
        wiring,
        fake,
        vec!["staging", "auditor", "deep"],
        bound,
    )
}

/// Identity Center as `aws sso login` left it (the session lasts longer than the run), two
/// permission sets and a role chained through one.
fn identity_center(clock: &Clock, weather: &Arc<Weather>, length: Duration) -> Soaked {
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"sso\"\n\
         sso_session = \"acme\"\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\n\n\
         [profiles.admin]\nsso_account_id = \"222222222222\"\nsso_role_name = \"AdministratorAccess\"\n\n\
         [profiles.readonly]\nsso_account_id = \"333333333333\"\nsso_role_name = \"ReadOnly\"\n\n\
         [profiles.sso-deep]\nrole_arn = \"arn:aws:iam::444444444444:role/Deploy\"\nvia = \"admin\"\n"
    );
    let (fake, sts) = scripted_sts(clock, weather);
    fake.sso().set(|s| {
        s.access_token_ttl = IC_TOKEN_LIFE;
        s.role_ttl = ROLE_LIFE;
        s.session_length = length + 12 * HOUR;
    });
    let (at, rt, expires_at) = fake.sso().issue("us-east-1", clock.now());
    let token = SsoToken {
        access_token: Secret::new(at),
        expires_at,
        issued_at: clock.now(),
        session_start: None,
        refresh_token: Some(Secret::new(rt)),
        registration: Some(Registration {
            client_id: "cli-client".into(),
            client_secret: Secret::new("cli-secret"),
            expires_at: clock.now() + 90 * 24 * HOUR,
            pkce: None,
        }),
        region: "us-east-1".into(),
    };
    cache::write(
        &cache::path(&dir.path().join("sso-cache"), "acme"),
        START_URL,
        &token,
    )
    .expect("write the AWS CLI's cache");
    let wiring = wiring(dir.path(), clock, sts, None);
    let min_remaining = crate::config::DEFAULT_MIN_REMAINING;
    let roles = refreshes_per_hour(ROLE_LIFE, min_remaining);
    let bound = CallBound {
        // Three refreshes (GetRoleCredentials, AssumeRole), CreateToken renewals, and who the
        // user is (GetCallerIdentity) once per session.
        steady: 3 * roles + renewals_per_hour(IC_TOKEN_LIFE) + 1,
        failing_slots: 4,
        // A portal call may first renew the token: both with the SDK's attempts.
        per_attempt: 2 * u64::from(crate::sts::LIMITS.max_attempts),
    };
    soaked(
        "Identity Center",
        dir,
        &text,
        wiring,
        fake,
        vec!["admin", "readonly", "sso-deep"],
        bound,
    )
}

/// Web identity through credd's own OpenID login (the device grant, approved at once), its 1-hour
/// session renewed with the refresh token, and two roles, one chained.
fn web_identity(clock: &Clock, weather: &Arc<Weather>) -> Soaked {
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"web-identity\"\n\
         role_arn = \"arn:aws:iam::111111111111:role/AccessFromIdP\"\n\
         oidc_issuer = \"{}\"\noidc_client_id = \"{}\"\nsession_duration = \"1h\"\n\n\
         [profiles.web]\nrole_arn = \"arn:aws:iam::222222222222:role/Administrator\"\n\n\
         [profiles.web-deep]\nrole_arn = \"arn:aws:iam::444444444444:role/Deploy\"\nvia = \"web\"\n",
        oidc::ISSUER,
        oidc::CLIENT_ID
    );
    let (fake, sts) = scripted_sts(clock, weather);
    let (idp, http) = FakeIdp::new(clock);
    let w = weather.clone();
    idp.script(move |call| w.idp(call));
    let wiring = Wiring {
        oidc_http: http,
        ..wiring(dir.path(), clock, sts, None)
    };
    let min_remaining = crate::config::DEFAULT_MIN_REMAINING;
    let roles = refreshes_per_hour(ROLE_LIFE, min_remaining);
    let bound = CallBound {
        // Two AssumeRole refreshes; each renewal a refresh grant and AssumeRoleWithWebIdentity,
        // after a key rotation also discovery and the key set again.
        steady: 2 * roles + 4 * renewals_per_hour(WEB_SESSION),
        failing_slots: 3,
        // A renewal: discovery, key set, token endpoint, discovery and key set again, STS.
        per_attempt: 4 + u64::from(crate::sts::LIMITS.max_attempts),
    };
    let mut soaked = soaked(
        "web identity (OpenID)",
        dir,
        &text,
        wiring,
        fake,
        vec!["web", "web-deep"],
        bound,
    );
    soaked.idp = Some(idp);
    soaked
}

impl Soaked {
    fn all_fresh(&self) -> bool {
        self.engine
            .profile_status()
            .iter()
            .all(|p| p.state == ProfileState::Fresh)
    }

    fn status(&self) -> String {
        self.engine
            .profile_status()
            .iter()
            .map(|p| format!("{}: {:?} {:?}", p.name, p.state, p.last_error))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Every call to the outside, with when it was made.
    fn calls(&self) -> Vec<SystemTime> {
        let mut at: Vec<SystemTime> = self.sts.calls().iter().map(|c| c.at).collect();
        if let Some(idp) = &self.idp {
            at.extend(idp.calls().iter().map(|c| c.at));
        }
        at
    }

    /// Asks for every profile once, as the container route does, and checks what leaves.
    async fn ask(&mut self, clock: &Clock, seed: u64) {
        for profile in self.profiles.clone() {
            let result = self
                .vending
                .vend(
                    Route::Container,
                    Some(profile.to_owned()),
                    &Caller::default(),
                )
                .await;
            let now = clock.now();
            let at = now.duration_since(t0()).unwrap_or_default();
            let vend = match result {
                Ok(v) => v,
                Err(e) => {
                    let kind = match &e {
                        super::EngineError::LoginRequired { .. } => "not logged in",
                        super::EngineError::Unavailable { .. } => "unavailable",
                        _ => "other",
                    };
                    *self.refused.entry(kind.to_owned()).or_default() += 1;
                    continue;
                }
            };
            self.served += 1;
            let c = &vend.credentials;
            let left = c.expiration.duration_since(now).unwrap_or_default();
            assert!(
                left >= schedule::OUTAGE_FLOOR,
                "seed {seed}: {} served {profile} at {at:?} with {left:?} left by its Expiration, \
                 under the floor {:?}",
                self.name,
                schedule::OUTAGE_FLOOR
            );
            let truth = self
                .sts
                .true_expiry(&c.creds.access_key_id)
                .unwrap_or_else(|| panic!("seed {seed}: {profile}'s key was never issued"));
            let really_left = truth.duration_since(now).unwrap_or_default();
            assert!(
                really_left >= schedule::OUTAGE_FLOOR,
                "seed {seed}: {} served {profile} at {at:?} with {really_left:?} really left \
                 (its Expiration says {left:?}), under the floor {:?}",
                self.name,
                schedule::OUTAGE_FLOOR
            );
        }
    }
}

/// Prints the seed when the soak fails, so that the run can be replayed.
struct SeedOnPanic(u64);

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the soak failed with CREDD_SOAK_SEED={}", self.0);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn a_simulated_day_of_failing_services_never_serves_a_dead_credential_and_always_recovers() {
    let seed = env_u64("CREDD_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let _seed = SeedOnPanic(seed);
    let length = HOUR * u32::try_from(env_u64("CREDD_SOAK_HOURS").unwrap_or(24)).unwrap_or(24);
    let mut rng = fastrand::Rng::with_seed(seed);
    let clock = Clock::simulated(t0());
    let weather = Arc::new(Weather {
        start: t0(),
        clock: clock.clone(),
        episodes: draw_episodes(&mut rng, length),
    });
    let mut sources = vec![
        iam_user(&clock, &weather),
        identity_center(&clock, &weather, length),
        web_identity(&clock, &weather),
    ];
    // The user approves web identity's device login at once (the provider does).
    let web = &sources[2].engine;
    let device = BrowserLogin {
        method: Some(LoginMethod::Device),
        display: false,
        region: None,
    };
    match web.login(None, device).await.expect("the login starts") {
        LoginStart::Pending(_) => {
            web.login_wait().await.expect("the login completes");
        }
        LoginStart::Done(_) => {}
    }

    // Recovery of each episode: when every profile was fresh again after its end.
    let mut recovered: Vec<Option<Duration>> = vec![None; weather.episodes.len()];
    let mut rotated = vec![false; weather.episodes.len()];
    let bound = recovery_bound();
    let mut next = t0();
    while clock.now() < t0() + length {
        let at = clock.now().duration_since(t0()).unwrap_or_default();
        for (i, e) in weather.episodes.iter().enumerate() {
            if e.fault == Fault::KeysRotated && e.start <= at && !rotated[i] {
                rotated[i] = true;
                for s in &sources {
                    if let Some(idp) = &s.idp {
                        idp.rotate_keys();
                    }
                }
            }
        }
        for s in &mut sources {
            s.ask(&clock, seed).await;
        }
        let at = clock.now().duration_since(t0()).unwrap_or_default();
        if at >= WARM_UP && weather.episodes.iter().all(|e| at < e.start || at >= e.end) {
            // Calm: the last episode to end must have recovered within the bound.
            if let Some(i) = weather.episodes.iter().rposition(|e| e.end <= at)
                && recovered[i].is_none()
            {
                let e = weather.episodes[i];
                if sources.iter().all(Soaked::all_fresh) {
                    recovered[i] = Some(at - e.end);
                } else {
                    assert!(
                        at - e.end <= bound,
                        "seed {seed}: {e:?} ended {:?} ago and not every profile is fresh \
                         (bound {bound:?}): {}",
                        at - e.end,
                        sources
                            .iter()
                            .map(|s| format!("{}: {}", s.name, s.status()))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
            } else if weather.episodes.iter().all(|e| at < e.start) {
                assert!(
                    sources.iter().all(Soaked::all_fresh),
                    "seed {seed}: not every profile fresh after the warm-up"
                );
            }
        }
        next += REQUEST_EVERY;
        let wait = next.duration_since(clock.now()).unwrap_or_default();
        clock.sleep(wait).await;
    }

    let mut summary = format!(
        "soak: seed {seed}, {} simulated hours, a request for each profile every {:?}, {} \
         episodes, recovery bound {:?}\n",
        length.as_secs() / 3600,
        REQUEST_EVERY,
        weather.episodes.len(),
        bound
    );
    for (e, r) in weather.episodes.iter().zip(&recovered) {
        let _ = writeln!(
            summary,
            "  {:>5.1} h  {:?} {:?} for {}s: every profile fresh {}",
            e.start.as_secs_f64() / 3600.0,
            e.service,
            e.fault,
            (e.end - e.start).as_secs(),
            r.map_or("(not measured)".to_owned(), |r| format!(
                "{}s after its end",
                r.as_secs()
            ))
        );
    }
    for s in &sources {
        let calls = s.calls();
        let mut per_hour = vec![0u64; usize::try_from(length.as_secs() / 3600).unwrap_or(0)];
        for at in &calls {
            let h = at.duration_since(t0()).unwrap_or_default().as_secs() / 3600;
            if let Some(n) = per_hour.get_mut(usize::try_from(h).unwrap_or(usize::MAX)) {
                *n += 1;
            }
        }
        for (h, n) in per_hour.iter().enumerate() {
            let hour_start = HOUR * u32::try_from(h).unwrap_or(0);
            let hour_end = hour_start + HOUR;
            // How long episodes (and their recoveries) overlap this hour.
            let failing: Duration = weather
                .episodes
                .iter()
                .map(|e| {
                    let from = e.start.max(hour_start);
                    let to = (e.end + bound).min(hour_end);
                    to.saturating_sub(from)
                })
                .sum();
            // The first hour also logs in and warms every profile.
            let extra = if h == 0 { s.bound.steady } else { 0 };
            let allowed = s.bound.for_hour(failing) + extra;
            assert!(
                *n <= allowed,
                "seed {seed}: {} made {n} calls in hour {h}, over its bound {allowed} \
                 ({:?} of failures)",
                s.name,
                failing
            );
        }
        let refused: u64 = s.refused.values().sum();
        let _ = writeln!(
            summary,
            "  {}: {} calls, per hour min {} / median {} / max {} (bound when calm {}, in an \
             hour of failures {}); requests served {}, refused {refused} {:?}",
            s.name,
            calls.len(),
            per_hour.iter().min().unwrap_or(&0),
            {
                let mut sorted = per_hour.clone();
                sorted.sort_unstable();
                sorted.get(sorted.len() / 2).copied().unwrap_or(0)
            },
            per_hour.iter().max().unwrap_or(&0),
            s.bound.steady,
            s.bound.for_hour(HOUR),
            s.served,
            s.refused
        );
        assert_eq!(
            s.vended.load(Ordering::Relaxed),
            s.served,
            "every credential that left went through the vending hook"
        );
    }
    println!("{summary}");
    if length >= 24 * HOUR {
        assert!(
            weather.episodes.len() >= KINDS as usize,
            "seed {seed}: a day held only {} episodes: not every kind of failure",
            weather.episodes.len()
        );
    }
    // Web identity renewed its session with the refresh token all along, and fetched the
    // provider's keys again after each rotation.
    let idp = sources[2].idp.as_ref().expect("the provider");
    let calls = idp.calls();
    let refreshes = calls
        .iter()
        .filter(|c| c.grant.as_deref() == Some("refresh_token"))
        .count();
    assert!(
        refreshes as u64 >= length.as_secs() / 3600,
        "seed {seed}: {refreshes} refresh grants"
    );
    for e in weather
        .episodes
        .iter()
        .filter(|e| e.fault == Fault::KeysRotated)
    {
        assert!(
            calls
                .iter()
                .any(|c| c.endpoint == "jwks" && t0() + e.start <= c.at),
            "seed {seed}: the keys were never fetched again after {e:?}"
        );
    }
    for (e, r) in weather.episodes.iter().zip(&recovered) {
        assert!(
            r.is_some(),
            "seed {seed}: never saw every profile fresh after {e:?}"
        );
    }
}

// What the soak found, each on its own: a clock that is wrong (ours or the service's) must
// neither keep dead credentials nor make the daemon call again at once, and a session renewed
// after it lapsed must start the profiles that went idle.

const STAGING_ARN: &str = "arn:aws:iam::222222222222:role/Administrator";

/// An IAM user's key (no MFA) and staging, with STS answering as `script` says.
fn key_and_staging(
    script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
) -> (
    Engine,
    FakeSts,
    Clock,
    watch::Sender<Arc<Config>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let credentials = credentials_file(dir.path());
    let clock = Clock::simulated(t0());
    let (fake, sts) = FakeSts::new(&clock);
    fake.script(script);
    let text = super::tests::config_text("", super::tests::STAGING_ONLY);
    let (engine, tx) = start_wired(
        dir.path(),
        &text,
        wiring(dir.path(), &clock, sts, Some(credentials)),
    );
    (engine, fake, clock, tx, dir)
}

/// Web identity from a token file (1-hour sessions) and staging, with STS answering as `script`
/// says.
fn token_file_and_staging(
    script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
) -> (
    Engine,
    FakeSts,
    Clock,
    watch::Sender<Arc<Config>>,
    tempfile::TempDir,
) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("a temp dir");
    let token_file = dir.path().join("token");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"iss":"https://login.acme.example","sub":"alice","aud":"credd"}"#);
    std::fs::write(&token_file, format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"))
        .expect("write the token file");
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"web-identity\"\n\
         role_arn = \"arn:aws:iam::111111111111:role/AccessFromIdP\"\n\
         token_file = \"{}\"\nsession_duration = \"1h\"\n\n\
         [profiles.staging]\nrole_arn = \"{STAGING_ARN}\"\n",
        token_file.display()
    );
    let clock = Clock::simulated(t0());
    let (fake, sts) = FakeSts::new(&clock);
    fake.script(script);
    let (engine, tx) = start_wired(dir.path(), &text, wiring(dir.path(), &clock, sts, None));
    (engine, fake, clock, tx, dir)
}

fn fresh(engine: &Engine, profile: &str) -> bool {
    engine
        .profile_status()
        .iter()
        .any(|p| p.name == profile && p.state == ProfileState::Fresh)
}

fn elapsed(clock: &Clock) -> Duration {
    clock.now().duration_since(t0()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn an_expiration_beyond_the_duration_asked_for_is_not_believed() {
    // STS (or this machine's clock) is ten years off: the credentials still last the hour asked.
    let (engine, sts, clock, _config, _dir) = key_and_staging(|call| match call.action.as_str() {
        "AssumeRole" => Reply::Skewed(10 * 365 * 86_400),
        _ => Reply::Normal,
    });
    super::tests::until(&clock, "staging fresh", || fresh(&engine, "staging")).await;
    let served = engine.credentials("staging").await.expect("served");
    let asked = sts.calls_of("AssumeRole")[0].at;
    assert!(
        served.expiration <= asked + ROLE_LIFE,
        "believed an Expiration {:?} past the hour asked for",
        served.expiration.duration_since(asked)
    );
    // So it is refreshed on the hour's schedule, and never served past its real end.
    while elapsed(&clock) < 3 * HOUR {
        let c = engine.credentials("staging").await.expect("served");
        let really = sts.true_expiry(&c.creds.access_key_id).expect("issued");
        assert!(really.duration_since(clock.now()).unwrap_or_default() >= 30 * MIN);
        clock.sleep(MIN).await;
    }
    assert!(
        sts.calls_of("AssumeRole").len() >= 7,
        "refreshed every 24-25 minutes"
    );
}

#[test]
fn granted_at_most_caps_only_a_later_expiration() {
    use crate::creds::AwsCredentials;
    let key = |exp| AwsCredentials {
        expiration: Some(exp),
        ..AwsCredentials::long_lived("ASIA", &Secret::new("s"))
    };
    let cap = key(t0() + 10 * HOUR).granted_at_most(t0(), HOUR);
    assert_eq!(cap.expiration, Some(t0() + HOUR));
    let sooner = key(t0() + MIN).granted_at_most(t0(), HOUR);
    assert_eq!(
        sooner.expiration,
        Some(t0() + MIN),
        "an earlier one is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn credentials_that_arrive_expired_back_off_instead_of_refreshing_at_once() {
    // For its first ten minutes STS dates what it issues two hours back. (After 200 calls it
    // stops, so that the bug this guards against fails the test rather than hang it: the refresh
    // would come again at once, without simulated time ever passing.)
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let (engine, sts, clock, _config, _dir) = key_and_staging(move |call| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        if call.action == "AssumeRole" && call.at < t0() + 10 * MIN && n < 200 {
            Reply::Skewed(-2 * 3600)
        } else {
            Reply::Normal
        }
    });
    clock.sleep(MIN).await;
    let first = sts.calls_of("AssumeRole").len() as u64;
    assert!(
        first <= attempts_within(MIN),
        "{first} AssumeRole calls in the first minute: the backoff allows {}",
        attempts_within(MIN)
    );
    assert!(
        engine.credentials("staging").await.is_err(),
        "nothing servable came"
    );
    let status = engine.profile_status();
    assert_eq!(status[0].state, ProfileState::Failing);
    assert!(
        status[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("less than min_remaining")),
        "{:?}",
        status[0].last_error
    );
    super::tests::until(&clock, "staging fresh", || fresh(&engine, "staging")).await;
    let wrong = sts
        .calls_of("AssumeRole")
        .iter()
        .filter(|c| c.at < t0() + 10 * MIN)
        .count();
    let allowed = attempts_within(10 * MIN);
    assert!(
        wrong as u64 <= allowed,
        "{wrong} AssumeRole calls in the ten wrong minutes: the backoff allows {allowed}"
    );
    assert!(
        elapsed(&clock) <= 10 * MIN + schedule::BACKOFF_MAX + WALL_CHECK,
        "fresh again within a backoff of the clock coming right: {:?}",
        elapsed(&clock)
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_brings_a_session_already_over_backs_off() {
    // From 30 to 60 minutes STS dates web identity's sessions three hours back.
    let (engine, sts, clock, _config, _dir) = token_file_and_staging(|call| {
        let wrong = call.at >= t0() + 30 * MIN && call.at < t0() + HOUR;
        if call.action == "AssumeRoleWithWebIdentity" && wrong {
            Reply::Skewed(-3 * 3600)
        } else {
            Reply::Normal
        }
    });
    super::tests::until(&clock, "staging fresh", || fresh(&engine, "staging")).await;
    clock.sleep(59 * MIN - elapsed(&clock)).await;
    let renewals = sts
        .calls_of("AssumeRoleWithWebIdentity")
        .iter()
        .filter(|c| c.at >= t0() + 30 * MIN)
        .count();
    // The first renewal is due 40 minutes in: 19 minutes of backoff, not one every few seconds.
    let allowed = attempts_within(19 * MIN);
    assert!(
        (1..=allowed as usize).contains(&renewals),
        "{renewals} renewals in the 19 wrong minutes: the backoff allows {allowed}"
    );
    let info = engine.access_info();
    assert!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.contains("had already ended when it came")),
        "{:?}",
        info.last_error
    );
    // The session made at the start lasted its hour; the next good renewal brings it back.
    super::tests::until(&clock, "staging fresh again", || {
        engine.access_info().logged_in && fresh(&engine, "staging")
    })
    .await;
    assert!(
        elapsed(&clock) <= HOUR + schedule::BACKOFF_MAX + 2 * WALL_CHECK,
        "back {:?} after the start",
        elapsed(&clock)
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_renewed_after_it_lapsed_starts_the_idle_profiles_again() {
    // STS is down from 30 minutes to 100: the 1-hour session cannot be renewed and ends.
    let (engine, _sts, clock, _config, _dir) = token_file_and_staging(|call| {
        if call.at >= t0() + 30 * MIN && call.at < t0() + 100 * MIN {
            Reply::Unreachable
        } else {
            Reply::Normal
        }
    });
    super::tests::until(&clock, "staging fresh", || fresh(&engine, "staging")).await;
    clock.sleep(95 * MIN - elapsed(&clock)).await;
    assert!(!engine.access_info().logged_in, "the session lapsed");
    clock.sleep(5 * MIN).await;
    // Nothing but the renewal can wake the profile's idle worker (no wall-clock jump, no chain).
    super::tests::until(&clock, "staging fresh again", || fresh(&engine, "staging")).await;
    let back = elapsed(&clock) - 100 * MIN;
    assert!(
        back <= schedule::BACKOFF_MAX + 2 * WALL_CHECK,
        "staging fresh {back:?} after STS came back"
    );
}

#[test]
fn the_call_bound_is_what_its_doc_says() {
    let min_remaining = crate::config::DEFAULT_MIN_REMAINING;
    assert_eq!(refreshes_per_hour(ROLE_LIFE, min_remaining), 4);
    assert_eq!(renewals_per_hour(MFA_SESSION), 2);
    assert_eq!(renewals_per_hour(IC_TOKEN_LIFE), 3);
    assert_eq!(attempts_within(HOUR), 32);
}
