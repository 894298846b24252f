//! credd with IAM Identity Center, end to end: the real `credd login` (device code, and the
//! browser's loopback redirect driven by a real user agent), role credentials that moto (auth on)
//! checks reaching real SDKs, one authorization however many logins and requests pile up, Ctrl-C,
//! the errors a user meets and what they say to do, background token renewal, and secrets that
//! never leave the daemon (but for the AWS CLI's token cache).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use credd_tests::http::{self, query_param};
use credd_tests::identity_center::{
    ADMIN_ROLE, DeviceAuthorization, Grant, IdentityCenter, Op, Options, PROD_ACCOUNT,
    READ_ONLY_ROLE, SSO_USER, STAGING_ACCOUNT, assumed_role_arn,
};
use credd_tests::stack::assumed_role_arn as assumed_arn;
use credd_tests::stack::{
    ADMIN, AUDITOR, Access, Answer, PROMPT_DEADLINE, READY_DEADLINE, SSO_SESSION, SsoLogin, Stack,
    StackBuilder, Toml, assert_all_but_one_joined, assert_all_served, assert_login_required,
    assert_secrets_nowhere, finish_logins, now_unix,
};
use credd_tests::wait_until;
use credd_tests::world::CmdOutput;

/// [`SSO_PROFILES`], a `role_arn` profile assumed with the access role, and one chained from
/// an Identity Center profile.
const PROFILES: &str = concat!(
    credd_tests::sso_profiles!(),
    r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"

[profiles.audit]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
via = "sso-admin"
"#
);

const DEFAULT_PROFILE: &str = "default_profile = \"sso-admin\"";

/// From the approval to `credd login` exiting: the daemon's next poll (the fake asks for one a
/// second), the token, and the warm-up of every profile.
const LOGIN_DEADLINE: Duration = Duration::from_secs(20);

/// An Identity Center stack with [`PROFILES`], `sso_login` as given and the fake's `options`;
/// no daemon yet.
fn sso_builder(login: SsoLogin, options: Options) -> StackBuilder<'static> {
    Stack::builder()
        .access(Access::Sso {
            login: Some(login),
            access_role: true,
        })
        .identity_center(options)
        .toml(Toml {
            top: DEFAULT_PROFILE,
            profiles: PROFILES,
            ..Toml::default()
        })
}

/// [`sso_builder`] with the daemon started, logged out.
fn sso_stack(login: SsoLogin, options: Options) -> Stack {
    sso_builder(login, options).start()
}

/// Rewrites the config with [`PROFILES`] and `more` profiles, and has the daemon read it now.
#[track_caller]
fn add_profiles(stack: &Stack, more: &str) {
    stack.write_config(Toml {
        top: DEFAULT_PROFILE,
        profiles: &format!("{PROFILES}\n{more}"),
        ..Toml::default()
    });
    stack.world.credd(&["reload"]).assert_success();
}

/// The user opens the device verification URL (with its code) in a browser and approves.
#[track_caller]
fn approve_in_browser(fake: &IdentityCenter, device: &DeviceAuthorization) {
    let path = device
        .verification_uri_complete
        .strip_prefix(&fake.url())
        .unwrap_or_else(|| panic!("{device:?} is not at the fake"));
    let page = http::request(fake.addr(), "GET", path, &[]);
    assert_eq!(page.status, 200, "the approval page: {page}");
}

/// `credd login --device-code` as a user runs it: waits for the URL and code it prints, approves
/// them in the "browser", and returns how the login ended.
#[track_caller]
fn device_login(stack: &Stack) -> CmdOutput {
    let fake = stack.identity_center();
    let before = fake.succeeded(Op::StartDeviceAuthorization);
    let mut login = stack.world.spawn_credd(&["login", "--device-code"]);
    let device = fake.wait_device_authorization(before, PROMPT_DEADLINE);
    let shown = login.wait_for_stderr("Ctrl-C cancels", PROMPT_DEADLINE);
    assert!(
        shown.contains(&format!("\n    {}\n", device.verification_uri))
            && !shown.contains(&device.verification_uri_complete)
            && shown.contains(&format!("\n    {}\n", device.user_code)),
        "the login shows the verification URL and the code: {shown}"
    );
    approve_in_browser(fake, &device);
    login.wait(LOGIN_DEADLINE)
}

#[test]
fn a_device_login_once_serves_every_profile_to_every_sdk() {
    let stack = sso_stack(SsoLogin::Device, Options::default());
    let fake = stack.identity_center();
    let world = &stack.world;
    let status = world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");

    let login = device_login(&stack);
    login.assert_success();
    assert!(
        login.stdout.contains(&format!(
            "logged in to IAM Identity Center {SSO_SESSION} ({})",
            fake.start_url()
        )) && login.stdout.contains("4 profiles ready"),
        "{login}"
    );
    assert_eq!(fake.calls(Op::RegisterClient), 1, "{}", fake.log());
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 1);
    assert_eq!(fake.sessions_started(), 1);

    // Every SDK, every kind of profile: the Identity Center role itself, a role assumed with the
    // access role, and one chained from an Identity Center profile (moto checks each signature).
    let expected = [
        ("sso-admin", assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE)),
        (
            "sso-readonly",
            assumed_role_arn(PROD_ACCOUNT, READ_ONLY_ROLE),
        ),
        // Assumed with the access role's credentials, named after the Identity Center user.
        ("staging", assumed_arn(ADMIN, SSO_USER)),
    ];
    for (profile, arn) in &expected {
        let (rust, boto3) = stack.sdk_callers(&format!("/v1/credentials/{profile}"));
        assert_eq!((&rust, &boto3), (arn, arn), "{profile}");
    }
    // Chained from sso-admin's credentials, named after the Identity Center user too.
    let (rust, boto3) = stack.sdk_callers("/v1/credentials/audit");
    let auditor = assumed_arn(AUDITOR, SSO_USER);
    assert_eq!((&rust, &boto3), (&auditor, &auditor));
    // The current route serves the default profile.
    let (rust, boto3) = stack.sdk_callers("/v1/credentials");
    let admin = assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE);
    assert_eq!((&rust, &boto3), (&admin, &admin));
    assert_eq!(
        fake.succeeded(Op::GetRoleCredentials),
        3,
        "sso-admin, sso-readonly and the access role, once each: {}",
        fake.log()
    );

    // Status: the Identity Center side of the session, and every profile fresh.
    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], true, "{status:#}");
    assert_eq!(access["pending"], serde_json::Value::Null, "{status:#}");
    let sso = &access["sso"];
    assert_eq!(sso["session_name"], SSO_SESSION, "{status:#}");
    assert_eq!(sso["start_url"], fake.start_url().as_str(), "{status:#}");
    assert_eq!(sso["region"], "us-east-1", "{status:#}");
    assert_eq!(
        sso["cache_file"],
        stack.sso_cache_file().display().to_string(),
        "{status:#}"
    );
    let token_expires = sso["token_expires_at"].as_u64().unwrap_or_default();
    assert!(
        token_expires.abs_diff(now_unix() + 3600) < 120,
        "the 1-hour access token: {status:#}"
    );
    let session_ends = sso["session_ends_at"].as_u64().unwrap_or_default();
    assert!(
        session_ends.abs_diff(now_unix() + 8 * 3600) < 120,
        "the default 8 h session: {status:#}"
    );
    for p in status["profiles"].as_array().expect("profiles") {
        assert_eq!(p["state"], "fresh", "{p:#}");
        assert_eq!(p["last_error"], serde_json::Value::Null, "{p:#}");
    }
}

/// The authorization URL behind credd's start page `start` (what the browser is handed, with no
/// secret of the login in it), as the owner's browser gets it: the page's redirect.
#[track_caller]
fn authorization_url(start: &str) -> String {
    let (addr, path) = split_url(start);
    assert_eq!(
        path, "/oauth/start",
        "the browser is handed credd's start page: {start}"
    );
    let reply = http::request(addr, "GET", &path, &[]);
    assert_eq!(reply.status, 303, "{reply}");
    reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {reply}"))
        .to_owned()
}

/// `http://IP:PORT/...` → (IP:PORT, /...).
#[track_caller]
fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url} is not http://"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = authority
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {authority} is not IP:PORT ({e})"));
    (addr, path.to_owned())
}

/// The browser's loopback listener at `addr` no longer takes a callback: the connection is
/// refused, or the login is said to be over (409).
#[track_caller]
fn assert_callback_closed(addr: SocketAddr, path: &str) {
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
        let reply = http::request(addr, "GET", path, &[]);
        assert_eq!(
            reply.status, 409,
            "a callback after the login ended: {reply}"
        );
    }
}

/// A stack whose `$BROWSER` is the curl script: it follows `/authorize`'s redirect to the
/// loopback callback as a user's browser would.
fn browser_stack() -> Stack {
    let mut stack = sso_stack(SsoLogin::Browser, Options::default());
    let browser = stack.scripted_browser().display().to_string();
    stack.world.set_env("BROWSER", &browser);
    stack
}

#[test]
fn a_browser_login_goes_through_the_loopback_redirect_of_a_real_user_agent() {
    let stack = browser_stack();
    let fake = stack.identity_center();
    let (login, pending) = stack.pending_login(&["--browser"]);
    assert_eq!(pending["method"], "browser", "{pending}");
    assert_eq!(pending["browser_opened"], true, "{pending}");
    // The browser is handed credd's start page, which the curl "browser" follows to /authorize
    // and on to the callback, all on the login's listener (the redirect itself is checked, while
    // the login waits, in the next test).
    let start = pending["url"].as_str().unwrap_or_default().to_owned();
    let (listener, path) = split_url(&start);
    assert_eq!(path, "/oauth/start", "{pending}");
    let out = login.wait(LOGIN_DEADLINE);
    let result = out.assert_success().json();
    assert_eq!(
        (&result["profiles_ready"], &result["profiles"]),
        (&4.into(), &4.into()),
        "{out}"
    );
    assert_eq!(result["access"]["logged_in"], true, "{out}");

    assert_eq!(fake.succeeded(Op::Authorize), 1, "{}", fake.log());
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::AuthorizationCode)), 1);
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 0);
    assert_eq!(fake.sessions_started(), 1);
    assert_eq!(
        stack.served_identity("sso-admin").as_deref(),
        Ok(assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE).as_str())
    );
    assert_eq!(
        stack.served_identity("staging").as_deref(),
        Ok(assumed_arn(ADMIN, SSO_USER).as_str())
    );
    // The listener lived only while the login waited.
    assert_callback_closed(listener, "/oauth/callback?code=x&state=y");
}

#[test]
fn the_callback_refuses_a_wrong_state_keeps_waiting_and_ignores_a_replay() {
    let stack = sso_stack(SsoLogin::Browser, Options::default());
    let fake = stack.identity_center();
    let world = &stack.world;
    let (mut login, pending) = stack.pending_login(&["--no-open"]);
    assert_eq!(
        pending["method"], "browser",
        "sso_login = \"browser\": {pending}"
    );
    assert_eq!(pending["browser_opened"], false, "{pending}");
    let url = authorization_url(pending["url"].as_str().unwrap_or_default());
    let state = query_param(&url, "state");
    let (callback, callback_path) = split_url(&query_param(&url, "redirect_uri"));

    // The user signs in: the portal redirects the browser to the daemon with a code.
    let (portal, authorize_path) = split_url(&url);
    let authorize = http::request(portal, "GET", &authorize_path, &[]);
    assert_eq!(authorize.status, 302, "{authorize}");
    let location = authorize
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {authorize}"))
        .to_owned();
    assert_eq!(query_param(&location, "state"), state);
    let (_, real_callback) = split_url(&location);

    // Before the browser gets there, a link with another state (a stale tab, a forged link).
    for forged in [
        format!("{callback_path}?code=forged&state=not-{state}"),
        format!("{callback_path}?code=forged"),
    ] {
        let reply = http::request(callback, "GET", &forged, &[]);
        assert_eq!(reply.status, 400, "{forged}: {reply}");
    }
    assert!(
        !login.has_exited(),
        "the login keeps waiting: {}",
        login.stderr()
    );
    let status = world.status();
    assert_eq!(
        status["access"]["pending"]["method"], "browser",
        "{status:#}"
    );
    assert_eq!(fake.calls(Op::CreateToken(Grant::AuthorizationCode)), 0);

    // The real redirect ends the login.
    let reply = http::request(callback, "GET", &real_callback, &[]);
    assert_eq!(reply.status, 200, "{reply}");
    login.wait(LOGIN_DEADLINE).assert_success();
    let before = world.status();
    assert_eq!(before["access"]["logged_in"], true, "{before:#}");

    // The same redirect again (a reload, a replay) changes nothing.
    assert_callback_closed(callback, &real_callback);
    let after = world.status();
    assert_eq!(after["access"], before["access"]);
    assert_eq!(fake.calls(Op::CreateToken(Grant::AuthorizationCode)), 1);
    assert_eq!(fake.sessions_started(), 1);
    stack.assert_still_serving();
}

#[test]
fn a_login_denied_in_the_browser_fails_saying_so() {
    let stack = browser_stack();
    let fake = stack.identity_center();
    fake.set_authorize_denies(true);
    let out = stack
        .world
        .spawn_credd(&["login", "--browser"])
        .wait(LOGIN_DEADLINE);
    out.assert_code(1);
    assert!(
        out.stderr
            .ends_with("credd: the login was denied in the browser\n"),
        "{out}"
    );
    let status = stack.world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], false, "{status:#}");
    assert_eq!(access["pending"], serde_json::Value::Null, "{status:#}");
    assert_eq!(access["last_error"], "the login was denied in the browser");
    assert_eq!(fake.calls(Op::Authorize), 1, "{}", fake.log());
    assert_eq!(fake.calls(Op::CreateToken(Grant::AuthorizationCode)), 0);
    stack.assert_still_serving();
}

/// The routes of a burst: every profile and the current route.
const ROUTES: [&str; 5] = [
    "/v1/credentials",
    "/v1/credentials/sso-admin",
    "/v1/credentials/sso-readonly",
    "/v1/credentials/staging",
    "/v1/credentials/audit",
];

fn burst(stack: &Stack, n: usize) -> Vec<Answer> {
    stack.burst(n, &ROUTES)
}

#[test]
fn one_authorization_for_five_logins_and_three_hundred_cold_requests() {
    const REQUESTS: usize = 300;
    const LOGINS: usize = 5;
    let stack = sso_stack(SsoLogin::Device, Options::default());
    let fake = stack.identity_center();
    // Looked up (in `credd status`) before the clock starts.
    stack.addr();

    // Everything at once: the requests, and five `credd login`s in five terminals.
    let began = Instant::now();
    let (answers, logins) =
        stack.logins_during_burst(LOGINS, &["--device-code"], REQUESTS, &ROUTES);
    let prompted = began.elapsed();

    let (slowest, median) = assert_login_required(&answers, "while logged out");
    assert_eq!(fake.calls(Op::RegisterClient), 1, "{}", fake.log());
    assert_eq!(
        fake.calls(Op::StartDeviceAuthorization),
        1,
        "{}",
        fake.log()
    );
    let device = fake
        .last_device_authorization()
        .expect("the one authorization");
    for (_, pending) in &logins {
        assert_eq!(pending["user_code"], device.user_code.as_str(), "{pending}");
        assert_eq!(pending["url"], device.verification_uri.as_str());
    }
    assert_all_but_one_joined(&logins);
    // While the authorization waits for the user, requests are not held for it either.
    let waiting = burst(&stack, REQUESTS);
    let (waiting_slowest, waiting_median) =
        assert_login_required(&waiting, "while the login waits");

    approve_in_browser(fake, &device);
    let approved = Instant::now();
    finish_logins(logins, LOGIN_DEADLINE);
    let logged_in = approved.elapsed();

    let (served_slowest, served_median) = assert_all_served(&burst(&stack, REQUESTS));
    assert_eq!(fake.sessions_started(), 1);
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 1);
    assert_eq!(fake.calls(Op::CreateToken(Grant::RefreshToken)), 0);
    assert_eq!(
        fake.calls(Op::GetRoleCredentials),
        3,
        "one per Identity Center role (sso-admin, sso-readonly, the access role): {}",
        fake.log()
    );
    assert_eq!(stack.proxy().calls("AssumeRole"), 2, "staging and audit");
    eprintln!(
        "single flight: {REQUESTS} logged-out requests + {LOGINS} logins -> RegisterClient {}, \
         StartDeviceAuthorization {}, device-code polls {}; 503s: slowest {slowest:?}, median \
         {median:?}; all {LOGINS} prompts within {prompted:?}; {REQUESTS} requests while it \
         waited: slowest {waiting_slowest:?}, median {waiting_median:?}; all logins done \
         {logged_in:?} after the approval; {REQUESTS} requests after: slowest {served_slowest:?}, \
         median {served_median:?}; GetRoleCredentials {}, AssumeRole {}",
        fake.calls(Op::RegisterClient),
        fake.calls(Op::StartDeviceAuthorization),
        fake.calls(Op::CreateToken(Grant::DeviceCode)),
        fake.calls(Op::GetRoleCredentials),
        stack.proxy().calls("AssumeRole"),
    );
}

#[test]
fn ctrl_c_cancels_the_login_that_started_it_and_only_detaches_one_that_joined() {
    let stack = sso_stack(SsoLogin::Device, Options::default());
    let fake = stack.identity_center();
    let world = &stack.world;
    let (mut first, started) = stack.pending_login(&["--device-code"]);
    let (second, joined) = stack.pending_login(&["--device-code"]);
    assert_eq!(started["joined"], false, "{started}");
    assert_eq!(joined["joined"], true, "{joined}");
    assert_eq!(joined["user_code"], started["user_code"]);

    // Ctrl-C in the terminal of the login that joined: it stops waiting, nothing else changes.
    second.signal(libc::SIGINT);
    let out = second.wait(PROMPT_DEADLINE);
    out.assert_code(130);
    assert!(
        out.stderr
            .contains("stopped waiting; the login started elsewhere goes on"),
        "{out}"
    );
    let status = world.status();
    assert_eq!(
        status["access"]["pending"]["user_code"], started["user_code"],
        "{status:#}"
    );
    assert!(!first.has_exited(), "{}", first.stderr());

    // Ctrl-C in the terminal of the one that started it: the authorization is abandoned.
    first.signal(libc::SIGINT);
    let out = first.wait(PROMPT_DEADLINE);
    out.assert_code(130);
    assert!(out.stderr.ends_with("login cancelled\n"), "{out}");
    let status = world.status();
    assert_eq!(
        status["access"]["pending"],
        serde_json::Value::Null,
        "{status:#}"
    );
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert!(
        world
            .credd(&["status"])
            .assert_success()
            .stdout
            .contains("not logged in"),
    );

    // The next `credd login` starts afresh, with a new code.
    device_login(&stack).assert_success();
    assert_eq!(fake.succeeded(Op::StartDeviceAuthorization), 2);
    let device = fake.last_device_authorization().expect("the new one");
    assert_ne!(started["user_code"], device.user_code.as_str());
    assert_eq!(
        fake.sessions_started(),
        1,
        "the cancelled code was never redeemed"
    );
}

/// An Identity Center profile added while the daemon runs: its first refresh is a portal call.
const LATER: &str = r#"
[profiles.later]
sso_account_id = "222222222222"
sso_role_name = "ReadOnlyAccess"
"#;

/// A failed `credd login` says so well within this: no retrying for minutes.
const FAST_FAILURE: Duration = Duration::from_secs(5);

#[test]
fn a_revoked_session_says_to_run_credd_login_and_an_outage_keeps_cached_credentials_served() {
    let stack = sso_stack(SsoLogin::Device, Options::default());
    let fake = stack.identity_center();
    let world = &stack.world;
    device_login(&stack).assert_success();
    let admin = assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE);

    // An administrator ends every session; the next call to Identity Center finds out.
    fake.revoke_all();
    add_profiles(&stack, LATER);
    wait_until(READY_DEADLINE, "the session to end", || {
        world.status()["access"]["logged_in"] == false
    });
    let status = world.status();
    let ended = status["access"]["last_error"].as_str().unwrap_or_default();
    assert!(
        ended.starts_with("the Identity Center session has ended"),
        "{status:#}"
    );
    let text = world.credd(&["status"]);
    assert!(
        text.assert_success().stdout.contains(&format!(
            "access:   sso: not logged in ({ended}): run `credd login`"
        )),
        "{text}"
    );
    let out = world
        .credential_process("later")
        .expect_err("no session to get it with");
    assert!(
        out.stderr.contains("the Identity Center session has ended")
            && out.stderr.contains("run `credd login`"),
        "{out}"
    );
    // What is cached is still good AWS credentials: served while it lasts.
    assert_eq!(
        stack.served_identity("sso-admin").as_deref(),
        Ok(admin.as_str())
    );

    // Identity Center down: `credd login` says so at once; the daemon keeps serving.
    fake.set_down(true);
    let asked = Instant::now();
    let out = world.credd(&["login", "--device-code"]);
    let took = asked.elapsed();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("Identity Center in us-east-1 cannot be reached"),
        "{out}"
    );
    assert!(took < FAST_FAILURE, "the login took {took:?} to fail");
    assert_eq!(
        stack.served_identity("sso-admin").as_deref(),
        Ok(admin.as_str())
    );
    let reply = stack.get_authorized("/v1/credentials/staging");
    assert_eq!(reply.status, 200, "{reply}");
    stack.assert_still_serving();
    // The refused token is still in the AWS CLI's cache file: no request takes it up again.
    world
        .credential_process("later")
        .expect_err("still no session");
    assert_eq!(world.status()["access"]["logged_in"], false);

    // Back up: a new login, and the profile added meanwhile is served.
    fake.set_down(false);
    device_login(&stack).assert_success();
    assert_eq!(
        stack.served_identity("later").as_deref(),
        Ok(assumed_role_arn(STAGING_ACCOUNT, READ_ONLY_ROLE).as_str())
    );
    assert_eq!(fake.sessions_started(), 2);
    eprintln!("a login with Identity Center down failed after {took:?}");
}

#[test]
fn a_role_taken_away_fails_only_its_profile_naming_the_account_and_role() {
    let stack = sso_stack(SsoLogin::Device, Options::default());
    let fake = stack.identity_center();
    let world = &stack.world;
    fake.revoke_role(PROD_ACCOUNT, READ_ONLY_ROLE);
    let login = device_login(&stack);
    assert!(
        login
            .assert_success()
            .stdout
            .contains("3 of 4 profiles ready"),
        "{login}"
    );
    let p = world.profile_status("sso-readonly");
    assert_eq!(p["state"], "failing", "{p:#}");
    let error = p["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("role ReadOnlyAccess in account 333333333333"),
        "{p:#}"
    );
    let out = world
        .credential_process("sso-readonly")
        .expect_err("the role is gone");
    assert!(
        out.stderr
            .contains("role ReadOnlyAccess in account 333333333333"),
        "{out}"
    );
    assert_eq!(
        stack
            .served_identity("audit")
            .as_deref()
            .map(|a| a.starts_with(&assumed_arn(AUDITOR, ""))),
        Ok(true),
        "the other profiles are unaffected"
    );
    assert_eq!(world.status()["access"]["logged_in"], true);
    stack.assert_still_serving();
}

#[test]
fn a_wrong_start_url_fails_the_login_naming_sso_start_url_and_sso_region() {
    const WRONG: &str = "https://not-credd-test.awsapps.com/start";
    for login in [SsoLogin::Device, SsoLogin::Browser] {
        let mut stack = sso_builder(login, Options::default()).build();
        let config = std::fs::read_to_string(&stack.world.config_path).expect("the config");
        let config = config.replace(&stack.identity_center().start_url(), WRONG);
        stack.world.write_config(&config);
        stack.world.start_daemon();
        let fake = stack.identity_center();
        let world = &stack.world;

        let asked = Instant::now();
        let out = world.credd(&["login", "--no-open"]);
        out.assert_code(1);
        assert!(
            asked.elapsed() < FAST_FAILURE,
            "{login:?}: {:?}",
            asked.elapsed()
        );
        assert!(
            out.stderr.contains(WRONG) && out.stderr.contains("check sso_start_url and sso_region"),
            "{login:?}: {out}"
        );
        let status = world.status();
        assert_eq!(
            status["access"]["pending"],
            serde_json::Value::Null,
            "{status:#}"
        );
        assert_eq!(fake.sessions_started(), 0);
        stack.assert_still_serving();
    }
}

/// The access token's lifetime in the renewal scenario: renewed a quarter of it (3 s) before
/// it expires, so about every 9 s (the daemon looks every 5 s).
const SHORT_TOKEN: Duration = Duration::from_secs(12);

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn short_access_tokens_are_renewed_in_the_background_without_a_new_login() {
    let stack = sso_stack(
        SsoLogin::Device,
        Options {
            access_token_ttl: SHORT_TOKEN,
            ..Options::default()
        },
    );
    let fake = stack.identity_center();
    let world = &stack.world;
    device_login(&stack).assert_success();
    let cached = || -> serde_json::Value {
        let text = std::fs::read_to_string(stack.sso_cache_file()).expect("the token cache");
        serde_json::from_str(&text).expect("the token cache is JSON")
    };
    let first = cached();
    let first_expiry = world.status()["access"]["sso"]["token_expires_at"].clone();

    let began = Instant::now();
    let mut requests = 0;
    wait_until(
        Duration::from_secs(40),
        "two background renewals of the access token",
        || {
            let reply = stack.get_authorized("/v1/credentials/sso-admin");
            assert_eq!(reply.status, 200, "served throughout: {reply}");
            requests += 1;
            fake.succeeded(Op::CreateToken(Grant::RefreshToken)) >= 2
        },
    );
    let took = began.elapsed();
    assert_eq!(
        fake.calls(Op::CreateToken(Grant::RefreshToken)),
        2,
        "{}",
        fake.log()
    );
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 1, "no new login");
    assert_eq!(fake.sessions_started(), 1);

    // The renewed token is in the status and shared with the AWS CLI (rotated refresh token
    // included, or the next renewal would fail), and it works: a new profile gets credentials.
    let status = world.status();
    assert!(
        status["access"]["sso"]["token_expires_at"].as_u64() > first_expiry.as_u64(),
        "{status:#}"
    );
    let now = cached();
    assert_ne!(now["accessToken"], first["accessToken"]);
    assert_ne!(now["refreshToken"], first["refreshToken"]);
    add_profiles(&stack, LATER);
    assert_eq!(
        stack.served_identity("later").as_deref(),
        Ok(assumed_role_arn(STAGING_ACCOUNT, READ_ONLY_ROLE).as_str())
    );
    eprintln!(
        "{}-s access tokens: 2 background renewals {took:?} after the login, {requests} \
         requests served meanwhile",
        SHORT_TOKEN.as_secs()
    );
}

/// Profiles added in the secrets scenario: one the user may use, one they may not.
const LATER_AND_LOST: &str = r#"
[profiles.later]
sso_account_id = "222222222222"
sso_role_name = "ReadOnlyAccess"

[profiles.lost]
sso_account_id = "333333333333"
sso_role_name = "AdministratorAccess"
"#;

#[test]
fn no_token_code_or_client_secret_leaks_into_the_log_status_errors_or_output() {
    use std::os::unix::fs::PermissionsExt;

    let mut stack = sso_builder(SsoLogin::Device, Options::default()).build();
    stack.world.set_env("RUST_LOG", "trace");
    stack.world.set_env("CREDD_LOG", "trace");
    let browser = stack.scripted_browser().display().to_string();
    stack.world.set_env("BROWSER", &browser);
    stack.world.start_daemon();
    let fake = stack.identity_center();
    let world = &stack.world;
    // Everything the user or a script would read, except the credentials they asked for.
    let mut shown: Vec<CmdOutput> = Vec::new();
    let mut show = |out: &CmdOutput| shown.push(out.clone());

    show(&world.credd(&["credential-process", "sso-admin"]));
    // A device login (a device code, a registration's client secret, the first tokens).
    show(device_login(&stack).assert_success());
    for args in [
        &["login", "--json"][..],
        &["status"],
        &["status", "--json"],
        &["profiles", "--json"],
        &["credential-process", "staging"],
        &["env", "audit"],
    ] {
        show(world.credd(args).assert_success());
    }

    // The token cache is the AWS CLI's: 0600 in a 0700 directory.
    let cache = stack.sso_cache_file();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&cache), 0o600, "{}", cache.display());
    let cache_dir = cache.parent().expect("the cache dir");
    assert_eq!(mode(cache_dir), 0o700, "{}", cache_dir.display());

    // A refresh that rotates the refresh token, and a role the user may not have.
    fake.expire_access_tokens();
    add_profiles(&stack, LATER_AND_LOST);
    world.wait_profile_state("later", "fresh", READY_DEADLINE);
    world.wait_profile_state("lost", "failing", READY_DEADLINE);
    assert!(fake.succeeded(Op::CreateToken(Grant::RefreshToken)) >= 1);
    show(&world.credd(&["credential-process", "lost"]));
    show(&world.credd(&["status"]));

    // The session ends (revoked), found out by a profile added next; then a browser login (an
    // authorization code, a second registration).
    fake.revoke_all();
    add_profiles(
        &stack,
        &format!("{LATER_AND_LOST}\n[profiles.last]\nrole_arn = \"{AUDITOR}\"\n"),
    );
    wait_until(READY_DEADLINE, "the session to end", || {
        world.status()["access"]["logged_in"] == false
    });
    show(&world.credd(&["credential-process", "last"]));
    show(&world.credd(&["status", "--json"]));
    show(
        world
            .spawn_credd(&["login", "--browser"])
            .wait(LOGIN_DEADLINE)
            .assert_success(),
    );
    assert_eq!(fake.succeeded(Op::CreateToken(Grant::AuthorizationCode)), 1);

    // Logged out, then a login while Identity Center is down.
    show(world.credd(&["logout"]).assert_success());
    fake.set_down(true);
    show(&world.credd(&["login", "--device-code"]));
    show(&world.credd(&["status", "--json"]));
    show(&world.credd(&["status"]));
    let secrets = fake.issued_secrets();
    stack.world.stop_daemon();

    for kind in [
        "a client secret",
        "a device code",
        "an authorization code",
        "an access token",
        "a refresh token",
    ] {
        assert!(
            secrets.iter().any(|(what, _)| *what == kind),
            "the scenario handed out no {kind}"
        );
    }
    // The cache file was the one place on disk, and the logout removed it.
    assert_secrets_nowhere(&stack.world, &secrets, &shown);
    assert!(
        !cache.exists(),
        "credd logout removes the shared token cache"
    );
    eprintln!(
        "{} secrets checked against {} outputs and {} bytes of trace log",
        secrets.len(),
        shown.len(),
        stack.world.daemon_log().len()
    );
}
