//! An MFA session with `mfa_command` on the simulated clock, against the scripted STS: the daemon
//! logs in by itself and renews the session ahead of each end for hours, never asking anyone;
//! a code STS refuses (one already used) is retried after the next TOTP step; a `credd login`
//! without a code runs the command, one with a code uses that code.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credd_proto::Secret;
use tokio::sync::watch;

use super::tests::{STAGING_ONLY, config_text, credentials_file, start_engine_with, t0, until};
use super::{Engine, EngineError};
use crate::access::AccessError;
use crate::access::command::{CommandError, Runner};
use crate::access::iam_user::mfa_command::TOTP_STEP;
use crate::clock::Clock;
use crate::config::Config;
use crate::testing::notifier::Recorder;
use crate::testing::sts::{Call, FakeSts, Reply};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const MFA_SERIAL: &str = "arn:aws:iam::111111111111:mfa/alice";
/// AWS's answer to a code used twice within its step.
const CODE_REUSED: &str = "MultiFactorAuthentication failed with invalid MFA one time pass code. ";

/// What the scripted `ykman` does.
#[derive(Default)]
struct Ykman {
    runs: AtomicU32,
    /// When set, runs fail with this on stderr (the YubiKey is unplugged).
    failing: Mutex<Option<&'static str>>,
}

impl Ykman {
    /// `aws:1000NN` for the NN-th run: a new code each time, as the steps go by.
    fn run(&self, argv: &[String]) -> Result<Secret, CommandError> {
        assert_eq!(argv, ["ykman", "oath", "accounts", "code", "aws"]);
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(why) = *self.failing.lock().unwrap() {
            return Err(CommandError::Failed {
                what: "mfa_command",
                program: "ykman".into(),
                status: "exit status: 1".into(),
                last_line: Some(why.into()),
            });
        }
        Ok(Secret::new(format!("aws:{}", 100_000 + n)))
    }

    fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }
}

struct Sim {
    engine: Engine,
    sts: FakeSts,
    clock: Clock,
    ykman: Arc<Ykman>,
    notices: Recorder,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// alice's key, her MFA device with `mfa_command`, sessions of `duration`, and staging.
    fn start(duration: &str, script: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let credentials = credentials_file(dir.path());
        let text = config_text(
            &format!(
                "mfa_serial = \"{MFA_SERIAL}\"\n\
                 mfa_command = [\"ykman\", \"oath\", \"accounts\", \"code\", \"aws\"]\n\
                 session_duration = \"{duration}\"\n"
            ),
            STAGING_ONLY,
        );
        let clock = Clock::simulated(t0());
        let (sts, client) = FakeSts::new(&clock);
        sts.script(script);
        let ykman = Arc::new(Ykman::default());
        let runner = {
            let ykman = ykman.clone();
            Runner::Scripted(Arc::new(move |argv: &[String]| ykman.run(argv)))
        };
        let notices = Recorder::new(&clock);
        let (engine, tx) = start_engine_with(
            dir.path(),
            &text,
            &clock,
            client,
            Some(credentials),
            runner,
            Arc::new(notices.clone()),
        );
        Sim {
            engine,
            sts,
            clock,
            ykman,
            notices,
            _config: tx,
            _dir: dir,
        }
    }

    async fn until(&self, what: &str, done: impl Fn(&Sim) -> bool) {
        until(&self.clock, what, || done(self)).await;
    }

    fn tokens(&self) -> Vec<Call> {
        self.sts.calls_of("GetSessionToken")
    }

    fn since_start(&self) -> Duration {
        self.clock.now().duration_since(t0()).unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn an_mfa_session_with_mfa_command_renews_itself_for_hours_and_nobody_is_asked() {
    let sim = Sim::start("1h", |_| Reply::Normal);
    // Nobody logs in: the daemon does, with the command's code.
    sim.until("staging served", |s| {
        !s.sts.calls_of("AssumeRole").is_empty()
    })
    .await;
    let first = &sim.tokens()[0];
    assert_eq!(first.param("SerialNumber"), Some(MFA_SERIAL));
    assert_eq!(first.param("TokenCode"), Some("100001"));
    assert_eq!(first.param("DurationSeconds"), Some("3600"));
    let info = sim.engine.access_info();
    assert_eq!(info.renews.as_deref(), Some("with mfa_command ykman"));
    assert_eq!(
        info.warning, None,
        "a session that renews itself ends never"
    );

    let start = sim.clock.now();
    let mut served = 0;
    while sim.clock.now() < start + 10 * HOUR {
        let creds = sim.engine.credentials("staging").await;
        let creds = creds
            .unwrap_or_else(|e| panic!("staging not served after {:?}: {e}", sim.since_start()));
        assert!(creds.remaining(sim.clock.now()) >= 30 * MIN);
        let info = sim.engine.access_info();
        assert!(info.logged_in, "the session never lapses");
        assert_eq!(info.warning, None);
        served += 1;
        sim.clock.sleep(MIN).await;
    }
    let tokens = sim.tokens();
    // A third of the hour (20 min) ahead: every 40 minutes, each with the next code.
    assert!(
        (15..=17).contains(&tokens.len()),
        "{} GetSessionToken calls in 10 h",
        tokens.len()
    );
    for (i, pair) in tokens.windows(2).enumerate() {
        let gap = pair[1].at.duration_since(pair[0].at).unwrap();
        assert!(
            (40 * MIN..40 * MIN + 10 * super::WALL_CHECK).contains(&gap),
            "renewal {} came {gap:?} after the one before",
            i + 1
        );
    }
    let codes: Vec<String> = (1..=tokens.len())
        .map(|n| (100_000 + n).to_string())
        .collect();
    let sent: Vec<&str> = tokens.iter().filter_map(|c| c.param("TokenCode")).collect();
    assert_eq!(sent, codes, "each run's code, once");
    assert_eq!(
        sim.ykman.runs() as usize,
        tokens.len(),
        "one run per renewal"
    );
    // The profile is signed by the session of the moment.
    let keys: std::collections::BTreeSet<_> = sim
        .sts
        .calls_of("AssumeRole")
        .iter()
        .map(|c| c.access_key_id.clone())
        .collect();
    assert!(keys.len() >= 10, "signed by {} MFA sessions", keys.len());
    assert!(sim.notices.shown().is_empty(), "{:?}", sim.notices.shown());
    assert!(served >= 600);
}

#[tokio::test(start_paused = true)]
async fn a_refused_code_is_retried_after_the_next_step_and_the_session_lasts_meanwhile() {
    // The first renewal's code is refused (AWS: already used), the second is taken.
    let sim = Sim::start("1h", |call| {
        if call.action == "GetSessionToken" && call.param("TokenCode") == Some("100002") {
            Reply::ErrorWithMessage(403, "AccessDenied", CODE_REUSED)
        } else {
            Reply::Normal
        }
    });
    sim.until("logged in", |s| s.engine.access_info().logged_in)
        .await;
    sim.until("the refused renewal", |s| s.tokens().len() == 2)
        .await;
    let refused_at = sim.tokens()[1].at;
    assert_eq!(refused_at.duration_since(t0()).unwrap(), 40 * MIN);
    sim.until("status says why", |s| {
        s.engine.access_info().last_error.is_some()
    })
    .await;
    let info = sim.engine.access_info();
    assert!(info.logged_in, "still valid until its end");
    let last_error = info.last_error.as_deref().unwrap_or_default();
    assert!(
        last_error.starts_with("renewing the access session: the MFA code was refused for device ")
            && last_error.ends_with(
                "(STS: MultiFactorAuthentication failed with invalid MFA one time pass code. )"
            ),
        "{last_error}"
    );
    sim.until("the retry", |s| s.tokens().len() == 3).await;
    let retry = sim.tokens()[2].at.duration_since(refused_at).unwrap();
    assert!(
        (TOTP_STEP..=TOTP_STEP + super::WALL_CHECK).contains(&retry),
        "retried {retry:?} later: not within the refused code's step"
    );
    sim.until("renewed", |s| s.engine.access_info().last_error.is_none())
        .await;
    assert_eq!(sim.ykman.runs(), 3);
    assert!(sim.engine.credentials("staging").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_command_that_keeps_failing_backs_off_says_why_and_warns_before_the_end() {
    let sim = Sim::start("1h", |_| Reply::Normal);
    sim.until("logged in", |s| s.engine.access_info().logged_in)
        .await;
    *sim.ykman.failing.lock().unwrap() = Some("no YubiKey detected");
    sim.until("a failed renewal", |s| s.ykman.runs() >= 2).await;
    let info = sim.engine.access_info();
    assert!(info.logged_in);
    assert_eq!(
        info.last_error.as_deref(),
        Some(
            "renewing the access session: mfa_command `ykman` failed (exit status: 1): no \
             YubiKey detected"
        )
    );
    assert!(
        sim.notices.shown().is_empty(),
        "a passing failure is not told"
    );
    // A few more failures: now it will not renew itself by its end; the user is told.
    sim.until("the warning", |s| !s.notices.shown().is_empty())
        .await;
    let (at, notice) = sim.notices.shown()[0].clone();
    assert!(
        at.duration_since(t0()).unwrap() < 41 * MIN,
        "warned {:?} after the login",
        at.duration_since(t0()).unwrap()
    );
    assert!(
        notice
            .summary
            .starts_with("credd: the AWS access session ends in "),
        "{notice:?}"
    );
    assert!(sim.engine.access_info().warning.is_some());
    // Backing off: far fewer runs than timer ticks until the end.
    sim.until("the end", |s| !s.engine.access_info().logged_in)
        .await;
    let runs = sim.ykman.runs();
    assert!((5..=16).contains(&runs), "{runs} runs in 20 minutes");
    // Plugged in again: the next retry logs in again by itself.
    *sim.ykman.failing.lock().unwrap() = None;
    sim.until("logged in again", |s| s.engine.access_info().logged_in)
        .await;
    assert_eq!(sim.notices.shown().len(), 1, "{:?}", sim.notices.shown());
}

#[tokio::test(start_paused = true)]
async fn credd_login_runs_the_command_unless_given_a_code() {
    let sim = Sim::start("12h", |_| Reply::Normal);
    sim.until("logged in", |s| s.engine.access_info().logged_in)
        .await;
    // Past the first code's step: a login now gets a new code.
    sim.clock.sleep(MIN).await;
    sim.engine.login_direct(None).await.expect("login");
    assert_eq!(sim.tokens()[1].param("TokenCode"), Some("100002"));
    sim.clock.sleep(MIN).await;
    sim.engine
        .login_direct(Some(Secret::new("654321")))
        .await
        .expect("login with a code");
    assert_eq!(sim.tokens()[2].param("TokenCode"), Some("654321"));
    assert_eq!(sim.ykman.runs(), 2, "a given code wins");
    *sim.ykman.failing.lock().unwrap() = Some("no YubiKey detected");
    match sim.engine.login_direct(None).await {
        Err(EngineError::Access(AccessError::Command(e))) => {
            assert_eq!(
                e.to_string(),
                "mfa_command `ykman` failed (exit status: 1): no YubiKey detected"
            );
        }
        other => panic!("{:?}", other.map(|o| o.ready)),
    }
}
