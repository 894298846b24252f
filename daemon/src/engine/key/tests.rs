//! The key's age as the engine learns it, on the simulated clock against the scripted STS and
//! IAM: asked after a login and then once a day, never by a status request; a user who may not
//! list their keys gets no age and no retry storm; an MFA session's key is the one its login read.

use std::sync::Arc;
use std::time::Duration;

use credd_proto::Secret;
use tokio::sync::watch;

use super::super::tests::{
    KEY_ID, STAGING_ONLY, config_text, credentials_file, start_wired, t0, until, wiring,
};
use super::super::{Engine, Wiring};
use crate::access::iam_user::age::age_warning;
use crate::access::iam_user::rotate::RotateError;
use crate::clock::Clock;
use crate::config::Config;
use crate::testing::iam::{FakeIam, Reply as IamReply};
use crate::testing::sts::FakeSts;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

struct Sim {
    engine: Engine,
    iam: FakeIam,
    sts: FakeSts,
    clock: Clock,
    credentials: std::path::PathBuf,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// alice's key in a shared credentials file (`key = "file"`), made 100 days before t0;
    /// `access` is more of `[access]`.
    fn start(
        access: &str,
        script: impl Fn(&crate::testing::iam::Call) -> IamReply + Send + Sync + 'static,
    ) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let credentials = credentials_file(dir.path());
        let clock = Clock::simulated(t0());
        let (sts, sts_client) = FakeSts::new(&clock);
        let (iam, iam_client) = FakeIam::new(&clock);
        iam.add_key(KEY_ID, "fake-long-lived-secret", t0() - 100 * DAY);
        iam.script(script);
        let (engine, tx) = start_wired(
            dir.path(),
            &config_text(access, STAGING_ONLY),
            Wiring {
                iam: Some(iam_client),
                organizations: None,
                ..wiring(dir.path(), &clock, sts_client, Some(credentials.clone()))
            },
        );
        Sim {
            engine,
            iam,
            sts,
            clock,
            credentials,
            _config: tx,
            _dir: dir,
        }
    }

    fn list_calls(&self) -> usize {
        self.iam.calls_of("ListAccessKeys").len()
    }
}

#[tokio::test(start_paused = true)]
async fn the_key_age_is_asked_after_the_login_and_then_once_a_day() {
    let sim = Sim::start("", |_| IamReply::Normal);
    until(&sim.clock, "the key's age", || {
        sim.engine
            .key_info()
            .is_some_and(|k| k.created_at.is_some())
    })
    .await;
    let info = sim.engine.key_info().expect("an iam-user key");
    assert_eq!(
        info.stored_in,
        format!("file: {} [access]", sim.credentials.display())
    );
    assert_eq!(info.access_key_id.as_deref(), Some(KEY_ID));
    assert_eq!(info.created_at, Some(crate::clock::unix(t0() - 100 * DAY)));
    assert_eq!(
        info.warning.as_deref(),
        Some("the key is 100 days old: run `credd key rotate`")
    );
    // The key itself signs: there is no MFA session.
    assert_eq!(sim.iam.calls_of("ListAccessKeys")[0].signer, KEY_ID);
    // Status asks nothing; IAM is asked again a day later.
    for _ in 0..100 {
        let _ = sim.engine.access_info();
    }
    sim.clock.sleep(23 * HOUR).await;
    assert_eq!(sim.list_calls(), 1);
    sim.clock.sleep(HOUR + Duration::from_secs(10)).await;
    assert_eq!(sim.list_calls(), 2);
    assert_eq!(
        sim.engine
            .access_info()
            .key
            .and_then(|k| k.warning)
            .as_deref(),
        Some("the key is 101 days old: run `credd key rotate`")
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_who_may_not_list_keys_gets_no_age_and_no_retry_storm() {
    let sim = Sim::start("", |_| IamReply::Error(403, "AccessDenied"));
    until(&sim.clock, "the ListAccessKeys call", || {
        sim.list_calls() > 0
    })
    .await;
    sim.clock.sleep(6 * HOUR).await;
    assert_eq!(sim.list_calls(), 1, "once a day at most");
    let info = sim.engine.key_info().expect("an iam-user key");
    assert_eq!(info.access_key_id.as_deref(), Some(KEY_ID));
    assert_eq!((info.created_at, info.warning), (None, None));
    assert!(
        sim.engine.access_info().logged_in,
        "the session is not affected"
    );
}

#[tokio::test(start_paused = true)]
async fn iam_out_of_reach_is_asked_again_within_the_hour() {
    let sim = Sim::start("", |_| IamReply::Unreachable);
    until(&sim.clock, "the ListAccessKeys call", || {
        sim.list_calls() > 0
    })
    .await;
    let first = sim.list_calls();
    sim.iam.script(|_| IamReply::Normal);
    sim.clock.sleep(HOUR).await;
    assert!(sim.list_calls() > first);
    assert!(sim.engine.key_info().and_then(|k| k.created_at).is_some());
}

#[tokio::test(start_paused = true)]
async fn an_mfa_session_shows_the_key_its_login_read() {
    let sim = Sim::start(
        "mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"",
        |_| IamReply::Normal,
    );
    sim.clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(sim.list_calls(), 0, "nothing to ask before a login");
    assert_eq!(
        sim.engine.key_info().and_then(|k| k.access_key_id),
        None,
        "not read yet"
    );
    sim.engine
        .login_direct(Some(Secret::new("123456")))
        .await
        .expect("login");
    until(&sim.clock, "the key's age", || {
        sim.engine
            .key_info()
            .is_some_and(|k| k.created_at.is_some())
    })
    .await;
    assert_eq!(
        sim.engine
            .key_info()
            .and_then(|k| k.access_key_id)
            .as_deref(),
        Some(KEY_ID)
    );
    // The MFA session signs, not the key.
    let signer = &sim.iam.calls_of("ListAccessKeys")[0].signer;
    assert!(signer.starts_with("ASIAFAKE"), "{signer}");
    assert_eq!(sim.sts.calls_of("GetSessionToken").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_in_the_credentials_file_is_not_rotated_until_imported() {
    let sim = Sim::start("", |_| IamReply::Normal);
    let e = sim.engine.rotate_key().await.expect_err("key = file");
    assert!(matches!(e, RotateError::NotInKeychain(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("file: {} [access]", sim.credentials.display())),
        "{text}"
    );
    assert!(text.contains("`credd key import`"), "{text}");
    assert!(sim.iam.calls_of("CreateAccessKey").is_empty());
}

#[test]
fn a_key_past_90_days_is_flagged_with_its_age() {
    let now = t0();
    assert_eq!(age_warning(now - 12 * DAY, now), None);
    assert_eq!(
        age_warning(now - 90 * DAY, now),
        None,
        "90 days is still fine"
    );
    assert_eq!(
        age_warning(now - 90 * DAY - Duration::from_secs(1), now).as_deref(),
        Some("the key is 90 days old: run `credd key rotate`")
    );
    assert_eq!(
        age_warning(now - 120 * DAY - HOUR, now).as_deref(),
        Some("the key is 120 days old: run `credd key rotate`")
    );
    // A creation date ahead of the clock (skew) is no reason to warn.
    assert_eq!(age_warning(now + DAY, now), None);
}
