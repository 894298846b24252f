//! Identity Center in the engine, on the simulated clock against the scripted Identity Center
//! ([`crate::testing::sso`]): one authorization however many ask, a session kept alive by
//! refresh tokens for hours, the AWS CLI's cache both ways, the session's end, lost roles and a
//! Region that is down.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::{BrowserLogin, LoginMethod, ProfileState, Secret};
use tokio::sync::watch;

use super::tests::{start_engine, t0};
use super::{Engine, EngineError, LoginStart};
use crate::access::sso::{SsoToken, cache};
use crate::clock::Clock;
use crate::config::Config;
use crate::testing::sts::{Call, FakeSts};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const START_URL: &str = "https://acme.awsapps.com/start";

const STAGING: &str = "[profiles.staging]\nsso_account_id = \"222222222222\"\nsso_role_name = \"AdministratorAccess\"\n";

struct Sim {
    engine: Engine,
    aws: FakeSts,
    clock: Clock,
    cache_dir: std::path::PathBuf,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

struct Setup {
    /// More `[access]` lines.
    access: &'static str,
    profiles: &'static str,
    /// What the AWS CLI left in its cache before the daemon started.
    cli_login: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            access: "",
            profiles: STAGING,
            cli_login: false,
        }
    }
}

impl Sim {
    fn start(setup: Setup, settings: impl FnOnce(&mut crate::testing::sso::SsoSettings)) -> Sim {
        let dir = tempfile::tempdir().expect("a temp dir");
        let text = format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"sso\"\n\
             sso_session = \"acme\"\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\n\
             {}\n{}",
            setup.access, setup.profiles
        );
        let clock = Clock::simulated(t0());
        let (aws, sts) = FakeSts::new(&clock);
        aws.sso().set(settings);
        let cache_dir = dir.path().join("sso-cache");
        if setup.cli_login {
            let (at, rt, expires_at) = aws.sso().issue("us-east-1", t0());
            cli_writes(&cache_dir, &at, &rt, expires_at);
        }
        let (engine, tx) = start_engine(dir.path(), &text, &clock, sts, None);
        Sim {
            engine,
            aws,
            clock,
            cache_dir,
            _config: tx,
            _dir: dir,
        }
    }

    async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await;
    }

    async fn until(&self, what: &str, done: impl Fn(&Sim) -> bool) {
        super::tests::until(&self.clock, what, || done(self)).await;
    }

    fn calls(&self, action: &str) -> Vec<Call> {
        self.aws.calls_of(action)
    }

    fn grants(&self, grant: &str) -> usize {
        self.calls("CreateToken")
            .iter()
            .filter(|c| c.param("grantType") == Some(grant))
            .count()
    }

    fn fresh(&self, profile: &str) -> bool {
        self.engine
            .profile_status()
            .iter()
            .any(|p| p.name == profile && p.state == ProfileState::Fresh)
    }

    fn cache_file(&self) -> std::path::PathBuf {
        cache::path(&self.cache_dir, "acme")
    }

    /// `credd login` with the device grant, approved at once.
    async fn device_login(&self) {
        let start = self
            .engine
            .login(None, device())
            .await
            .expect("the login starts");
        assert!(matches!(start, LoginStart::Pending(_)));
        self.aws.sso().approve_devices();
        self.engine.login_wait().await.expect("the login completes");
    }
}

fn device() -> BrowserLogin {
    BrowserLogin {
        method: Some(LoginMethod::Device),
        display: false,
        region: None,
    }
}

/// What `aws sso login` would leave in the cache.
fn cli_writes(dir: &std::path::Path, at: &str, rt: &str, expires_at: SystemTime) {
    let token = SsoToken {
        access_token: Secret::new(at),
        expires_at,
        issued_at: SystemTime::UNIX_EPOCH,
        session_start: None,
        refresh_token: Some(Secret::new(rt)),
        registration: Some(crate::access::sso::Registration {
            client_id: "cli-client".into(),
            client_secret: Secret::new("cli-secret"),
            expires_at: t0() + 90 * 24 * HOUR,
            pkce: None,
        }),
        region: "us-east-1".into(),
    };
    cache::write(&cache::path(dir, "acme"), START_URL, &token).expect("write the cache");
}

#[tokio::test(start_paused = true)]
async fn three_hundred_requests_and_five_logins_while_logged_out_start_one_authorization() {
    let sim = Sim::start(Setup::default(), |_| {});
    let mut requests = Vec::new();
    for _ in 0..300 {
        let engine = sim.engine.clone();
        requests.push(tokio::spawn(
            async move { engine.credentials("staging").await },
        ));
    }
    let mut logins = Vec::new();
    for _ in 0..5 {
        let engine = sim.engine.clone();
        logins.push(tokio::spawn(async move {
            match engine.login(None, device()).await {
                Ok(LoginStart::Pending(a)) => Some(a),
                _ => None,
            }
        }));
    }
    let mut prompts = Vec::new();
    for l in logins {
        prompts.push(
            l.await
                .unwrap()
                .expect("every login gets the authorization"),
        );
    }
    for r in requests {
        assert!(
            matches!(r.await.unwrap(), Err(EngineError::LoginRequired { .. })),
            "a request never waits on the user"
        );
    }
    assert_eq!(sim.calls("RegisterClient").len(), 1);
    assert_eq!(sim.calls("StartDeviceAuthorization").len(), 1);
    assert!(prompts.iter().all(|p| p.user_code == prompts[0].user_code));
    assert_eq!(prompts.iter().filter(|p| !p.joined).count(), 1);
    // Every waiting `credd login` is answered by the one approval.
    let mut waits = Vec::new();
    for _ in 0..5 {
        let engine = sim.engine.clone();
        waits.push(tokio::spawn(async move { engine.login_wait().await }));
    }
    sim.sleep(Duration::from_secs(3)).await;
    sim.aws.sso().approve_devices();
    for w in waits {
        w.await.unwrap().expect("logged in");
    }
    let mut served = Vec::new();
    for _ in 0..300 {
        let engine = sim.engine.clone();
        served.push(tokio::spawn(
            async move { engine.credentials("staging").await },
        ));
    }
    for s in served {
        s.await.unwrap().expect("served after the approval");
    }
    assert_eq!(
        sim.calls("GetRoleCredentials").len(),
        1,
        "one portal call for all of them"
    );
    assert!(sim.grants("urn:ietf:params:oauth:grant-type:device_code") >= 1);
    // The login is shared with the AWS CLI.
    let shared = cache::read(&sim.cache_file(), START_URL, "us-east-1")
        .unwrap()
        .unwrap();
    assert!(shared.refresh_token.is_some() && shared.registration.is_some());
    // A second `credd login` while the session has hours left opens no new tab.
    let again = sim.engine.login(None, device()).await.unwrap();
    assert!(matches!(again, LoginStart::Done(_)));
    assert_eq!(sim.calls("StartDeviceAuthorization").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_minute_tokens_are_refreshed_all_hour_without_a_login_until_the_session_really_ends() {
    let sim = Sim::start(Setup::default(), |s| {
        s.access_token_ttl = 2 * MIN;
        s.session_length = 3 * HOUR;
    });
    sim.device_login().await;
    let ends_at = sim
        .engine
        .access_info()
        .sso
        .unwrap()
        .session_ends_at
        .unwrap();
    assert!(
        ends_at.abs_diff(crate::clock::unix(t0() + 8 * HOUR)) <= 5,
        "login time + session_duration (8h, the config's; the organization's is 3h here)"
    );
    // A restart finds the login time in the shared cache file.
    let cached = cache::read(&sim.cache_file(), START_URL, "us-east-1")
        .unwrap()
        .unwrap();
    assert!(cached.session_start.is_some());
    let end = t0() + 2 * HOUR + 50 * MIN;
    while sim.clock.now() < end {
        let c = sim
            .engine
            .credentials("staging")
            .await
            .expect("served all along");
        assert!(
            c.remaining(sim.clock.now()) >= 30 * MIN,
            "never under min_remaining"
        );
        assert!(sim.engine.access_info().logged_in);
        sim.sleep(MIN).await;
    }
    assert_eq!(
        sim.calls("StartDeviceAuthorization").len(),
        1,
        "never asked again"
    );
    let refreshes = sim.grants("refresh_token");
    // 2-minute tokens renew 40 s ahead: one refresh every 80 s.
    assert!(
        (115..=135).contains(&refreshes),
        "{refreshes} refreshes in 2h50m"
    );
    let roles = sim.calls("GetRoleCredentials").len();
    assert!(
        (6..=8).contains(&roles),
        "{roles} GetRoleCredentials in 2h50m of 1-hour credentials"
    );
    // The organization's session ends at 3 h: one clear LoginRequired, cached credentials last.
    sim.until("the session's end", |s| !s.engine.access_info().logged_in)
        .await;
    let info = sim.engine.access_info();
    assert!(
        info.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("Identity Center session has ended"),
        "{info:?}"
    );
    // What was cached is served while it lasts; then the login is needed.
    assert!(sim.engine.credentials("staging").await.is_ok());
    sim.sleep(HOUR).await;
    match sim.engine.credentials("staging").await {
        Err(EngineError::LoginRequired { detail }) => {
            assert!(detail.unwrap_or_default().contains("Identity Center"));
        }
        other => panic!(
            "expected LoginRequired, got {:?}",
            other.map(|_| "credentials")
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn a_login_the_aws_cli_cached_is_used_and_a_token_an_sdk_refreshed_is_picked_up() {
    let sim = Sim::start(
        Setup {
            cli_login: true,
            ..Setup::default()
        },
        |s| s.access_token_ttl = HOUR,
    );
    sim.until("staging fresh", |s| s.fresh("staging")).await;
    assert!(
        sim.calls("StartDeviceAuthorization").is_empty(),
        "not asked again"
    );
    assert!(
        sim.calls("RegisterClient").is_empty(),
        "the CLI's registration is reused"
    );
    // Before credd renews (20 minutes ahead), botocore refreshes the file itself and rotates the
    // refresh token: credd must take up the new token, not refresh with the dead one.
    sim.sleep(30 * MIN).await;
    let (at, rt, expires_at) = sim.aws.sso().issue("us-east-1", sim.clock.now());
    cli_writes(&sim.cache_dir, &at, &rt, expires_at);
    sim.sleep(20 * MIN).await;
    assert_eq!(
        sim.grants("refresh_token"),
        0,
        "took up botocore's token instead"
    );
    sim.sleep(2 * HOUR).await;
    assert!(sim.grants("refresh_token") >= 2);
    assert!(
        sim.engine.access_info().logged_in,
        "refreshed with the rotated token"
    );
    let shared = cache::read(&sim.cache_file(), START_URL, "us-east-1")
        .unwrap()
        .unwrap();
    assert!(
        shared.left(sim.clock.now()) > 15 * MIN,
        "botocore finds a token it need not refresh"
    );
    assert_eq!(shared.registration.unwrap().client_id, "cli-client");
}

#[tokio::test(start_paused = true)]
async fn a_revoked_grant_ends_the_session_with_a_clear_error() {
    let sim = Sim::start(Setup::default(), |_| {});
    sim.device_login().await;
    sim.until("staging fresh", |s| s.fresh("staging")).await;
    sim.aws.sso().revoke_all();
    sim.until("the session's end", |s| !s.engine.access_info().logged_in)
        .await;
    let info = sim.engine.access_info();
    let error = info.last_error.unwrap_or_default();
    assert!(
        error.contains("InvalidGrantException: invalid_grant (scripted)"),
        "the code and SSO OIDC's error_description: {error}"
    );
    // The AWS CLI's cache file still holds the refused token: it is not taken up again, by a
    // request or by `credd login`, which starts a new authorization.
    sim.sleep(Duration::from_secs(5)).await;
    assert!(!sim.engine.look_for_outside_login());
    assert!(!sim.engine.access_info().logged_in);
    let again = sim.engine.login(None, device()).await.expect("a login");
    assert!(matches!(again, LoginStart::Pending(_)));
    assert_eq!(sim.calls("StartDeviceAuthorization").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_role_the_user_lost_is_named_with_its_account() {
    let sim = Sim::start(Setup::default(), |s| {
        s.forbidden
            .insert(("222222222222".into(), "AdministratorAccess".into()));
    });
    sim.device_login().await;
    let err = sim
        .engine
        .credentials("staging")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("AdministratorAccess")
            && text.contains("222222222222")
            && text.contains("removed"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn role_arn_profiles_are_assumed_with_the_access_role_and_chain_on() {
    let sim = Sim::start(
        Setup {
            access: "sso_account_id = \"111111111111\"\nsso_role_name = \"AccessAdmin\"\n",
            profiles: concat!(
                "[profiles.staging]\nsso_account_id = \"222222222222\"\nsso_role_name = \"AdministratorAccess\"\n",
                "[profiles.prod]\nrole_arn = \"arn:aws:iam::333333333333:role/Deployer\"\n",
                "[profiles.audit]\nrole_arn = \"arn:aws:iam::444444444444:role/Auditor\"\nvia = \"staging\"\n",
            ),
            ..Setup::default()
        },
        |_| {},
    );
    sim.device_login().await;
    sim.until("every profile fresh", |s| {
        s.fresh("staging") && s.fresh("prod") && s.fresh("audit")
    })
    .await;
    let roles: Vec<String> = sim
        .calls("GetRoleCredentials")
        .iter()
        .map(|c| c.param("role_name").unwrap_or_default().to_owned())
        .collect();
    assert!(
        roles.contains(&"AccessAdmin".to_owned())
            && roles.contains(&"AdministratorAccess".to_owned())
    );
    let assumes = sim.calls("AssumeRole");
    let prod = assumes
        .iter()
        .find(|c| c.param("RoleArn") == Some("arn:aws:iam::333333333333:role/Deployer"))
        .expect("prod assumed");
    assert!(
        prod.access_key_id.starts_with("ASIASSO"),
        "signed by the access role"
    );
    let audit = assumes
        .iter()
        .find(|c| c.param("RoleArn") == Some("arn:aws:iam::444444444444:role/Auditor"))
        .expect("audit assumed");
    assert!(
        audit.access_key_id.starts_with("ASIASSO"),
        "signed by staging's Identity Center credentials"
    );
    // CloudTrail shows the user, whichever kind of profile signed.
    assert_eq!(prod.param("RoleSessionName"), Some("alice"));
    assert_eq!(audit.param("RoleSessionName"), Some("alice"));
    // The internal slot is not a profile.
    assert!(
        !sim.engine
            .profile_names()
            .iter()
            .any(|n| n.starts_with('.'))
    );
    assert!(sim.engine.credentials(".access-role").await.is_err());
    // Nor is it counted as one by `credd login` ("3 profiles ready", not 4).
    match sim.engine.login(None, device()).await {
        Ok(LoginStart::Done(outcome)) => assert_eq!((outcome.ready, outcome.total), (3, 3)),
        _ => panic!("a login while the session lasts is done at once"),
    }
}

#[tokio::test(start_paused = true)]
async fn when_the_home_region_is_down_an_authorized_replica_serves() {
    let sim = Sim::start(
        Setup {
            access: "sso_replicas = [{ region = \"eu-west-1\", start_url = \"https://acme-eu.awsapps.com/start\" }]\n",
            ..Setup::default()
        },
        |s| s.role_ttl = HOUR,
    );
    sim.device_login().await;
    let info = sim.engine.access_info().sso.unwrap();
    assert_eq!(
        info.regions
            .iter()
            .map(|r| r.authorized)
            .collect::<Vec<_>>(),
        [true, false],
        "the replica needs its own authorization"
    );
    // `credd login --region eu-west-1`.
    let start = sim
        .engine
        .login(
            None,
            BrowserLogin {
                region: Some("eu-west-1".into()),
                ..device()
            },
        )
        .await
        .unwrap();
    let LoginStart::Pending(prompt) = start else {
        panic!("the replica needs an authorization")
    };
    assert_eq!(prompt.region.as_deref(), Some("eu-west-1"));
    sim.aws.sso().approve_devices();
    sim.engine.login_wait().await.unwrap();
    assert!(
        sim.engine
            .access_info()
            .sso
            .unwrap()
            .regions
            .iter()
            .all(|r| r.authorized)
    );
    sim.aws.sso().set(|s| {
        s.down.insert("us-east-1".into());
    });
    sim.sleep(40 * MIN).await;
    let c = sim
        .engine
        .credentials("staging")
        .await
        .expect("served from the replica");
    assert_eq!(c.region, "eu-west-1");
}

#[tokio::test(start_paused = true)]
async fn the_sessions_end_is_warned_of_an_hour_ahead_and_survives_a_restart() {
    let sim = Sim::start(
        Setup {
            access: "session_duration = \"3h\"\n",
            ..Setup::default()
        },
        |s| s.session_length = 3 * HOUR,
    );
    sim.device_login().await;
    assert!(sim.engine.access_info().warning.is_none());
    sim.sleep(2 * HOUR + MIN).await;
    let info = sim.engine.access_info();
    assert!(info.logged_in);
    assert!(
        info.warning
            .as_deref()
            .unwrap_or_default()
            .contains("ends in 59m"),
        "{info:?}"
    );
    // What a restarted daemon finds in the cache file gives the same end.
    let restored = sim
        .engine
        .identity_center()
        .unwrap()
        .from_cli_cache()
        .unwrap();
    assert_eq!(
        restored.expected_end.map(crate::clock::unix),
        info.sso.unwrap().session_ends_at
    );
}

#[tokio::test(start_paused = true)]
async fn steady_state_costs_one_and_a_half_token_refreshes_an_hour_and_two_and_a_half_calls_a_profile()
 {
    let sim = Sim::start(
        Setup {
            access: "session_duration = \"24h\"\nsso_account_id = \"111111111111\"\nsso_role_name = \"AccessAdmin\"\n",
            profiles: concat!(
                "[profiles.staging]\nsso_account_id = \"222222222222\"\nsso_role_name = \"AdministratorAccess\"\n",
                "[profiles.prod]\nrole_arn = \"arn:aws:iam::333333333333:role/Deployer\"\n",
            ),
            ..Setup::default()
        },
        |s| s.session_length = 24 * HOUR,
    );
    sim.device_login().await;
    // Past the first cycle, then ten hours of steady state.
    sim.sleep(2 * HOUR).await;
    let count = |sim: &Sim| {
        let roles = sim.calls("GetRoleCredentials");
        let of = |role: &str| {
            roles
                .iter()
                .filter(|c| c.param("role_name") == Some(role))
                .count()
        };
        (
            sim.grants("refresh_token"),
            of("AdministratorAccess"),
            of("AccessAdmin"),
            sim.calls("AssumeRole").len(),
            sim.calls("GetCallerIdentity").len(),
        )
    };
    let before = count(&sim);
    sim.sleep(10 * HOUR).await;
    let after = count(&sim);
    let per_hour = |a: usize, b: usize| (b - a) as f64 / 10.0;
    let refresh = per_hour(before.0, after.0);
    let staging = per_hour(before.1, after.1);
    let access_role = per_hour(before.2, after.2);
    let prod = per_hour(before.3, after.3);
    let identity = per_hour(before.4, after.4);
    eprintln!(
        "per hour: CreateToken(refresh) {refresh}, GetRoleCredentials staging {staging}, \
         access role {access_role} (+ GetCallerIdentity {identity}), AssumeRole prod {prod}"
    );
    assert!((1.4..=1.6).contains(&refresh), "{refresh}");
    assert!((2.3..=2.6).contains(&staging), "{staging}");
    assert!((2.3..=2.6).contains(&access_role), "{access_role}");
    assert!((2.3..=2.6).contains(&prod), "{prod}");
    assert!(identity <= access_role + 0.2, "{identity}");
    assert_eq!(sim.calls("StartDeviceAuthorization").len(), 1);
}

#[test]
fn renewal_starts_a_third_of_the_life_ahead_at_most_twenty_minutes() {
    let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let token = |issued: u64, expires: u64| SsoToken {
        access_token: Secret::new("a"),
        expires_at: t(expires),
        issued_at: t(issued),
        session_start: None,
        refresh_token: None,
        registration: None,
        region: "us-east-1".into(),
    };
    assert_eq!(super::sso::renew_token_at(&token(0, 3600)), t(2400));
    assert_eq!(super::sso::renew_token_at(&token(0, 120)), t(80));
    assert_eq!(
        super::sso::renew_token_at(&token(0, 8 * 3600)),
        t(8 * 3600 - 1200)
    );
    // Read from the cache (issue time unknown): the full 20 minutes.
    assert_eq!(
        super::sso::renew_token_at(&token(0, 1_000_000)),
        t(1_000_000 - 1200)
    );
}
