//! Web identity's self-renewing session on the simulated clock, against the scripted STS: the
//! token file is read again ahead of each end, the session never lapses while the profiles keep
//! refreshing from it, and a refused token backs off and ends the session with a reason.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::watch;

use super::tests::{start_engine, t0};
use super::{Engine, EngineError};
use crate::clock::Clock;
use crate::config::Config;
use crate::testing::sts::{Call, FakeSts, Reply};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const ACCESS_ROLE: &str = "arn:aws:iam::111111111111:role/AccessFromIdP";
const STAGING: &str = "arn:aws:iam::222222222222:role/Administrator";

/// A JWT as another tool would leave it (credd reads, STS verifies).
fn jwt(sub: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://login.acme.example","sub":"{sub}","email":"{sub}@acme.example","aud":"credd"}}"#
    ));
    format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl")
}

struct Sim {
    engine: Engine,
    sts: FakeSts,
    clock: Clock,
    token_file: std::path::PathBuf,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn start(script: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, jwt("alice")).expect("write the token file");
        let text = format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"web-identity\"\n\
             role_arn = \"{ACCESS_ROLE}\"\ntoken_file = \"{}\"\nsession_duration = \"1h\"\n\n\
             [profiles.staging]\nrole_arn = \"{STAGING}\"\n",
            token_file.display()
        );
        let clock = Clock::simulated(t0());
        let (sts, client) = FakeSts::new(&clock);
        sts.script(script);
        let (engine, tx) = start_engine(dir.path(), &text, &clock, client, None);
        Sim {
            engine,
            sts,
            clock,
            token_file,
            _config: tx,
            _dir: dir,
        }
    }

    async fn until(&self, what: &str, done: impl Fn(&Sim) -> bool) {
        super::tests::until(&self.clock, what, || done(self)).await;
    }

    fn exchanges(&self) -> Vec<Call> {
        self.sts.calls_of("AssumeRoleWithWebIdentity")
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_file_session_renews_itself_ahead_of_each_end_for_hours() {
    let sim = Sim::start(|_| Reply::Normal);
    sim.until("staging served", |s| {
        !s.sts.calls_of("AssumeRole").is_empty()
    })
    .await;
    let first = &sim.exchanges()[0];
    assert_eq!(first.param("RoleArn"), Some(ACCESS_ROLE));
    assert_eq!(first.param("RoleSessionName"), Some("alice@acme.example"));
    assert_eq!(first.param("DurationSeconds"), Some("3600"));
    assert_eq!(first.param("WebIdentityToken"), Some(jwt("alice").as_str()));
    assert_eq!(
        first.access_key_id, "",
        "AssumeRoleWithWebIdentity is unsigned"
    );
    let info = sim.engine.access_info();
    let federation = info.federation.clone().expect("federation info");
    assert_eq!(
        federation.who.as_deref(),
        Some("alice@acme.example at https://login.acme.example")
    );
    assert!(
        info.renews.unwrap().starts_with("by reading "),
        "renewal named"
    );
    assert_eq!(
        info.warning, None,
        "a self-renewing session is not warned about"
    );

    // The other tool rotates the token: the next renewal sends the new one.
    std::fs::write(&sim.token_file, jwt("alice-rotated")).unwrap();
    let start = sim.clock.now();
    while sim.clock.now() < start + 10 * HOUR {
        let creds = sim.engine.credentials("staging").await;
        let creds = creds.unwrap_or_else(|e| {
            panic!(
                "staging not served at {:?}: {e}",
                sim.clock.now().duration_since(t0())
            )
        });
        assert!(
            creds.remaining(sim.clock.now()) >= 30 * MIN,
            "served with min_remaining left"
        );
        assert!(
            sim.engine.access_info().logged_in,
            "the session never lapses"
        );
        sim.clock.sleep(MIN).await;
    }
    let exchanges = sim.exchanges();
    // Renewed a third of the hour (20 min) ahead: every 40 minutes.
    assert!(
        (15..=17).contains(&exchanges.len()),
        "{} exchanges in 10 hours",
        exchanges.len()
    );
    assert_eq!(
        exchanges.last().unwrap().param("WebIdentityToken"),
        Some(jwt("alice-rotated").as_str())
    );
    // The profile is signed by the session of the moment.
    let staging = sim.sts.calls_of("AssumeRole");
    assert!(staging.len() >= 20, "{} staging refreshes", staging.len());
    let keys: std::collections::BTreeSet<_> =
        staging.iter().map(|c| c.access_key_id.clone()).collect();
    assert!(keys.len() >= 10, "signed by {} access sessions", keys.len());
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_backs_off_ends_the_session_saying_why_and_a_good_one_brings_it_back() {
    let sim = Sim::start(|call| {
        if call.action == "AssumeRoleWithWebIdentity"
            && call
                .param("WebIdentityToken")
                .is_some_and(|t| t != jwt("alice"))
        {
            Reply::Error(400, "InvalidIdentityToken")
        } else {
            Reply::Normal
        }
    });
    sim.until("logged in", |s| s.engine.access_info().logged_in)
        .await;
    std::fs::write(&sim.token_file, jwt("mallory")).unwrap();
    sim.until("the session ended", |s| !s.engine.access_info().logged_in)
        .await;
    let ended = sim.clock.now().duration_since(t0()).unwrap();
    assert!(
        ended >= HOUR - MIN && ended <= HOUR + MIN,
        "ended after {ended:?}"
    );
    let refused = sim.exchanges().len() - 1;
    // Backoff from 5 s up to 5 min, half of it jitter.
    assert!(
        (2..=16).contains(&refused),
        "{refused} refused renewals in 20 minutes: backoff"
    );
    match sim.engine.credentials("staging").await {
        Err(EngineError::LoginRequired { .. }) => {}
        // Credentials assumed before the end may still be served while they last.
        Ok(c) => assert!(c.expiration > sim.clock.now()),
        Err(e) => panic!("unexpected {e}"),
    }
    let info = sim.engine.access_info();
    assert!(
        info.last_error.as_deref().is_some_and(|e| e.contains("expired") || e.contains("STS did not accept the ID token")),
        "{:?}",
        info.last_error
    );
    // The other tool puts a good token back: the next retry logs in again by itself.
    std::fs::write(&sim.token_file, jwt("alice")).unwrap();
    sim.until("logged in again", |s| s.engine.access_info().logged_in)
        .await;
    let back = sim.clock.now().duration_since(t0()).unwrap() - ended;
    assert!(
        back <= 6 * MIN,
        "back {back:?} after the end: within the backoff's 5 min cap"
    );
}
