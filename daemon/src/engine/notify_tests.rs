//! When the desktop notifications fire, on the simulated clock against the scripted STS: an hour
//! and ten minutes before an MFA session that will not renew itself ends, once; when a profile
//! has failed to refresh for 5 minutes, once per failing streak; never with `notify = false`
//! (live), while status says the same either way.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::Secret;
use tokio::sync::watch;

use super::tests::{credentials_file, start_engine_with, t0, until};
use super::{Engine, WALL_CHECK};
use crate::access::command::Runner;
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::desktop::Notice;
use crate::testing::notifier::Recorder;
use crate::testing::sts::{Call, FakeSts, Reply};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const STAGING: &str = "arn:aws:iam::222222222222:role/Administrator";

struct Sim {
    engine: Engine,
    sts: FakeSts,
    clock: Clock,
    notices: Recorder,
    config: watch::Sender<Arc<Config>>,
    dir: tempfile::TempDir,
    duration: &'static str,
}

/// alice with her MFA device (no mfa_command), `daemon` lines in `[daemon]`, sessions of
/// `duration`.
fn config_text(daemon: &str, duration: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n{daemon}\n[access]\nsource = \"iam-user\"\n\
         aws_profile = \"access\"\nmfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n\
         session_duration = \"{duration}\"\n\n[profiles.staging]\nrole_arn = \"{STAGING}\"\n"
    )
}

impl Sim {
    async fn logged_in(daemon: &str, duration: &'static str) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let credentials = credentials_file(dir.path());
        let clock = Clock::simulated(t0());
        let (sts, client) = FakeSts::new(&clock);
        let notices = Recorder::new(&clock);
        let (engine, config) = start_engine_with(
            dir.path(),
            &config_text(daemon, duration),
            &clock,
            client,
            Some(credentials),
            Runner::System,
            Arc::new(notices.clone()),
        );
        engine
            .login_direct(Some(Secret::new("123456")))
            .await
            .expect("login");
        Sim {
            engine,
            sts,
            clock,
            notices,
            config,
            dir,
            duration,
        }
    }

    async fn until(&self, what: &str, done: impl Fn(&Sim) -> bool) {
        until(&self.clock, what, || done(self)).await;
    }

    fn shown(&self) -> Vec<(SystemTime, Notice)> {
        self.notices.shown()
    }

    /// Applies a new `[daemon]`, as a config edit would.
    fn set_daemon(&self, daemon: &str) {
        let text = config_text(daemon, self.duration);
        let config =
            config::parse(&self.dir.path().join("config.toml"), &text).expect("a valid config");
        self.config.send_replace(Arc::new(config));
    }

    /// STS's refusal names the caller and the role, with their account IDs.
    fn fail_staging(&self, failing: bool) {
        self.sts.script(move |call: &Call| {
            if failing && call.action == "AssumeRole" {
                Reply::ErrorWithMessage(403, "AccessDenied", DENIED)
            } else {
                Reply::Normal
            }
        });
    }
}

/// What STS says when a role's trust policy does not let the caller in.
const DENIED: &str = "User: arn:aws:iam::111111111111:user/alice is not authorized to perform: \
                      sts:AssumeRole on resource: arn:aws:iam::222222222222:role/Administrator";

#[tokio::test(start_paused = true)]
async fn the_end_of_an_mfa_session_is_told_an_hour_and_ten_minutes_ahead_once() {
    let sim = Sim::logged_in("", "3h").await;
    let warn_at = t0() + 3 * HOUR - 70 * MIN;
    sim.until("the notification", |s| !s.shown().is_empty())
        .await;
    let (at, notice) = sim.shown()[0].clone();
    let late = at.duration_since(warn_at).expect("not before");
    assert!(late <= WALL_CHECK, "shown {late:?} after its time");
    assert_eq!(
        notice,
        Notice {
            summary: "credd: the AWS access session ends in 1h 10m".into(),
            body: "Run `credd login` to renew it: without it, your profiles' credentials are \
                   not refreshed."
                .into(),
        }
    );
    // The same fact in status, from the same moment.
    let warning = sim.engine.access_info().warning.expect("status warns too");
    assert!(
        warning.starts_with("the access session ends in 1h 10m"),
        "{warning}"
    );
    // Once: not again until the end, nor after it.
    sim.clock.sleep(2 * HOUR).await;
    assert!(!sim.engine.access_info().logged_in);
    assert_eq!(sim.shown().len(), 1, "{:?}", sim.shown());
    // A new session is a new end to tell of.
    sim.engine
        .login_direct(Some(Secret::new("654321")))
        .await
        .expect("login");
    sim.until("the next notification", |s| s.shown().len() == 2)
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_profile_failing_for_5_minutes_is_told_once_per_streak() {
    let sim = Sim::logged_in("", "12h").await;
    sim.fail_staging(true);
    // The next scheduled refresh (about 25 minutes in) fails, and keeps failing.
    sim.until("a failing refresh", |s| {
        s.engine.profile_status()[0].last_error.is_some()
    })
    .await;
    let since = sim.clock.now();
    sim.until("the notification", |s| {
        s.shown().iter().any(|(_, n)| n.summary.contains("staging"))
    })
    .await;
    let (at, notice) = sim.shown()[0].clone();
    let after = at.duration_since(since).unwrap();
    assert!(
        (5 * MIN..=5 * MIN + WALL_CHECK).contains(&after),
        "told {after:?} after the first failure"
    );
    assert_eq!(notice.summary, "credd: profile staging is failing");
    // A notification shows on a locked screen: no account IDs or ARNs there.
    assert_eq!(
        notice.body,
        format!(
            "Its credentials have failed to refresh for {}: STS in us-east-1: AccessDenied: \
             User: <ARN> is not authorized to perform: sts:AssumeRole on resource: <ARN>",
            super::session::span(after)
        )
    );
    // Status says it all, and since when.
    let error = sim.engine.profile_status()[0].last_error.clone().unwrap();
    // (5 minutes and the few seconds the notice took, in the one duration style.)
    assert!(
        error.starts_with(&format!(
            "STS in us-east-1: AccessDenied: {DENIED} (failing for 5m"
        )) && error.ends_with(')'),
        "{error}"
    );
    // Once per streak: 20 more minutes of failures say nothing new.
    sim.clock.sleep(20 * MIN).await;
    assert_eq!(sim.shown().len(), 1, "{:?}", sim.shown());
    // It recovers; a later streak is told of again.
    sim.fail_staging(false);
    sim.until("fresh again", |s| {
        s.engine.profile_status()[0].last_error.is_none()
    })
    .await;
    sim.fail_staging(true);
    sim.until("the second streak told", |s| s.shown().len() == 2)
        .await;
}

#[tokio::test(start_paused = true)]
async fn notify_false_tells_nothing_but_status_says_the_same_and_it_applies_live() {
    let sim = Sim::logged_in("notify = false", "3h").await;
    sim.fail_staging(true);
    sim.clock.sleep(2 * HOUR).await;
    assert!(sim.shown().is_empty(), "{:?}", sim.shown());
    assert!(sim.engine.access_info().warning.is_some());
    let error = sim.engine.profile_status()[0].last_error.clone().unwrap();
    assert!(
        error.contains("AccessDenied") && error.contains("(failing for "),
        "{error}"
    );
    // Turned on by an edit: the next streak is told of.
    sim.set_daemon("notify = true");
    sim.fail_staging(false);
    sim.until("fresh again", |s| {
        s.engine.profile_status()[0].last_error.is_none()
    })
    .await;
    sim.fail_staging(true);
    sim.until("told", |s| !s.shown().is_empty()).await;
    assert_eq!(
        sim.shown()[0].1.summary,
        "credd: profile staging is failing"
    );
}
