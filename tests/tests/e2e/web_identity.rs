//! credd with the company's OpenID provider (`source = "web-identity"`), end to end against a
//! real one (npm `oidc-provider`): the browser login through the loopback redirect and the device
//! grant, the ID token credd sends to STS checked against the provider's keys, every profile
//! served to real SDKs, one authorization however many logins and requests pile up, the refresh
//! token renewing the session (with rotation) until the provider refuses it, the errors a user
//! meets, and `token_file` / `token_command` for tokens another tool provides.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use credd_tests::oidc_provider::{self, OidcProvider, Options};
use credd_tests::proxy::{ProxyMode, UNSIGNED};
use credd_tests::stack::{
    ACCESS_FROM_IDP, ADMIN, AUDITOR, Access, READY_DEADLINE, STAGING_AND_AUDIT, Stack,
    StackBuilder, Toml, assert_all_but_one_joined, assert_all_served, assert_login_required,
    assumed_role_arn, files_containing, finish_logins, now_unix,
};
use credd_tests::wait_until;
use credd_tests::world::CmdOutput;

/// The user who signs in at the provider; the session name is their email.
const LOGIN: &str = "alice";
const EMAIL: &str = "alice@acme.example";
const DEFAULT_PROFILE: &str = "default_profile = \"staging\"";
/// From the approval to `credd login` exiting: the token exchange, AssumeRoleWithWebIdentity
/// and the warm-up of every profile.
const LOGIN_DEADLINE: Duration = Duration::from_secs(20);
const ROUTES: [&str; 3] = [
    "/v1/credentials",
    "/v1/credentials/staging",
    "/v1/credentials/prod-audit",
];

fn builder(options: Options) -> StackBuilder<'static> {
    Stack::builder()
        .access(Access::WebIdentity)
        .oidc(options)
        .toml(Toml {
            top: DEFAULT_PROFILE,
            profiles: STAGING_AND_AUDIT,
            ..Toml::default()
        })
}

/// A web identity stack whose `$BROWSER` signs in as [`LOGIN`] (its steps logged to the
/// returned file); the daemon started.
fn browser_stack(options: Options) -> (Stack, PathBuf) {
    let mut stack = builder(options).build();
    let log = stack.world.root.join("browser.log");
    stack
        .world
        .set_env("BROWSER", &OidcProvider::browser_command(LOGIN, Some(&log)));
    stack.world.set_env("DISPLAY", ":0");
    stack.world.start_daemon();
    (stack, log)
}

/// `credd login --device-code`, approved at the provider as [`LOGIN`].
fn device_login(stack: &Stack) -> CmdOutput {
    let (login, pending) = stack.pending_login(&["--device-code"]);
    let code = pending["user_code"].as_str().expect("a user code");
    stack
        .oidc()
        .approve_device(code, LOGIN)
        .unwrap_or_else(|e| panic!("approving the device code: {e}"));
    login.wait(LOGIN_DEADLINE)
}

/// The ID tokens credd sent to STS, in order.
fn sent_tokens(stack: &Stack) -> Vec<String> {
    stack
        .proxy()
        .params("AssumeRoleWithWebIdentity")
        .iter()
        .map(|p| p.get("WebIdentityToken").cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_browser_login_at_the_identity_provider_serves_every_profile_to_every_sdk() {
    let (stack, browser_log) = browser_stack(Options::default());
    let provider = stack.oidc();
    let world = &stack.world;
    assert_eq!(world.status()["access"]["logged_in"], false);

    let began = Instant::now();
    let login = world.spawn_credd(&["login"]).wait(LOGIN_DEADLINE);
    let took = began.elapsed();
    assert!(
        login.success(),
        "{login}\n--- browser ---\n{}\n--- provider ---\n{}",
        std::fs::read_to_string(&browser_log).unwrap_or_default(),
        provider.log()
    );
    assert!(
        login.stderr.contains(&format!(
            "sign in to your identity provider ({})",
            provider.issuer()
        )),
        "{login}"
    );
    let session = assumed_role_arn(ACCESS_FROM_IDP, EMAIL);
    assert!(
        login.stdout.contains(&format!(
            "logged in as {session} ({EMAIL} at {})",
            provider.issuer()
        )) && login
            .stdout
            .contains("renewed with the identity provider's refresh token")
            && login.stdout.contains("2 profiles ready"),
        "{login}"
    );

    // One authorization code, one exchange; what credd sent STS is the provider's own ID token
    // for credd, about alice, and nothing signed it.
    let stats = provider.stats();
    assert_eq!(stats.authorization_requests, 1, "{stats:?}");
    assert_eq!(
        stats.token_requests_for("authorization_code"),
        1,
        "{stats:?}"
    );
    let proxy = stack.proxy();
    assert_eq!(proxy.calls("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(
        proxy.calls_in_region("AssumeRoleWithWebIdentity", UNSIGNED),
        1
    );
    let sent = &proxy.params("AssumeRoleWithWebIdentity")[0];
    assert_eq!(sent["RoleArn"], ACCESS_FROM_IDP);
    assert_eq!(sent["RoleSessionName"], EMAIL);
    assert_eq!(sent["DurationSeconds"], "3600");
    let claims = provider.verify_id_token(&sent["WebIdentityToken"]);
    assert_eq!(claims["sub"], LOGIN, "{claims:#}");
    assert_eq!(claims["aud"], provider.client_id(), "{claims:#}");
    assert_eq!(claims["email"], EMAIL, "{claims:#}");

    // Every profile to every SDK: assumed with the access role's credentials (moto checks who
    // they are), named after the user.
    for (route, arn) in [
        ("/v1/credentials", assumed_role_arn(ADMIN, EMAIL)),
        ("/v1/credentials/staging", assumed_role_arn(ADMIN, EMAIL)),
        (
            "/v1/credentials/prod-audit",
            assumed_role_arn(AUDITOR, EMAIL),
        ),
    ] {
        let (rust, boto3) = stack.sdk_callers(route);
        assert_eq!((&rust, &boto3), (&arn, &arn), "{route}");
    }

    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], true, "{status:#}");
    assert_eq!(access["identity"], session.as_str(), "{status:#}");
    assert_eq!(access["warning"], serde_json::Value::Null, "{status:#}");
    let federation = &access["federation"];
    assert_eq!(
        federation["provider"],
        provider.issuer().as_str(),
        "{status:#}"
    );
    assert_eq!(federation["role_arn"], ACCESS_FROM_IDP, "{status:#}");
    assert_eq!(
        federation["who"],
        format!("{EMAIL} at {}", provider.issuer()).as_str()
    );
    assert_eq!(
        access["renews"],
        "with the identity provider's refresh token"
    );
    let ends = access["expires_at"].as_u64().unwrap_or_default();
    assert!(ends.abs_diff(now_unix() + 3600) < 120, "{status:#}");
    let text = world.credd(&["status"]);
    assert!(
        text.stdout.contains("identity provider:")
            && text
                .stdout
                .contains("renewal  renewed with the identity provider's refresh token"),
        "{text}"
    );

    // A second `credd login` opens no second tab: the session renews itself.
    world.credd(&["login"]).assert_success();
    assert_eq!(provider.stats().authorization_requests, 1);
    eprintln!("browser login at the OpenID provider: `credd login` done in {took:?}");
}

#[test]
fn three_logins_and_two_hundred_cold_requests_share_one_device_authorization() {
    const REQUESTS: usize = 200;
    const LOGINS: usize = 3;
    let stack = builder(Options::default()).start();
    let provider = stack.oidc();
    stack.addr();

    let began = Instant::now();
    let (answers, logins) =
        stack.logins_during_burst(LOGINS, &["--device-code"], REQUESTS, &ROUTES);
    let prompted = began.elapsed();
    let (slowest, median) = assert_login_required(&answers, "while logged out");
    assert_eq!(
        provider.stats().device_authorizations,
        1,
        "{}",
        provider.log()
    );
    let code = logins[0].1["user_code"]
        .as_str()
        .expect("a code")
        .to_owned();
    for (_, pending) in &logins {
        assert_eq!(pending["user_code"], code.as_str(), "{pending}");
        assert_eq!(pending["method"], "device");
    }
    assert_all_but_one_joined(&logins);

    provider
        .approve_device(&code, LOGIN)
        .expect("approve the device code");
    let approved = Instant::now();
    finish_logins(logins, LOGIN_DEADLINE);
    let logged_in = approved.elapsed();
    let (served_slowest, served_median) = assert_all_served(&stack.burst(REQUESTS, &ROUTES));
    assert_eq!(provider.stats().device_authorizations, 1);
    assert!(
        provider
            .stats()
            .token_requests_for(oidc_provider::DEVICE_GRANT)
            >= 1
    );
    assert_eq!(stack.proxy().calls("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(
        stack.proxy().calls("AssumeRole"),
        2,
        "staging and prod-audit, once each"
    );
    eprintln!(
        "web identity single flight: {REQUESTS} logged-out requests + {LOGINS} device logins -> \
         1 device authorization, 1 AssumeRoleWithWebIdentity; 503s slowest {slowest:?} median \
         {median:?}; prompts within {prompted:?}; logins done {logged_in:?} after the approval; \
         {REQUESTS} requests after: slowest {served_slowest:?} median {served_median:?}"
    );
}

/// The access role's credentials, as the proxy shortens them for the renewal scenario.
const SHORT_SESSION: Duration = Duration::from_secs(12);

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn the_refresh_token_renews_the_session_until_the_provider_refuses_it() {
    let stack = builder(Options::default()).start();
    let provider = stack.oidc();
    let world = &stack.world;
    stack
        .proxy()
        .set_lifetime("AssumeRoleWithWebIdentity", SHORT_SESSION);
    device_login(&stack).assert_success();

    // Renewed a third of its life ahead, twice: the second refresh uses the token the first
    // rotated in (the provider ends the whole login when a used one comes back).
    let began = Instant::now();
    let mut served = 0;
    wait_until(Duration::from_secs(40), "two background renewals", || {
        let reply = stack.get_authorized("/v1/credentials/staging");
        assert_eq!(reply.status, 200, "served throughout: {reply}");
        served += 1;
        stack.proxy().calls("AssumeRoleWithWebIdentity") >= 3
    });
    let took = began.elapsed();
    let stats = provider.stats();
    assert_eq!(stats.token_requests_for("refresh_token"), 2, "{stats:?}");
    assert_eq!(
        stats.token_errors_for("refresh_token", "invalid_grant"),
        0,
        "{stats:?}"
    );
    assert_eq!(stats.device_authorizations, 1, "no new login");
    let tokens = sent_tokens(&stack);
    assert_eq!(tokens.len(), 3);
    assert_ne!(tokens[0], tokens[2], "a new ID token each time");
    for t in &tokens {
        provider.verify_id_token(t);
    }
    let status = world.status();
    assert_eq!(status["access"]["logged_in"], true, "{status:#}");
    assert_eq!(status["access"]["warning"], serde_json::Value::Null);

    // The provider ends the login: the session lasts until its end, says why, then asks for a
    // login; `credd login` brings it back.
    provider.forget_grants();
    wait_until(Duration::from_secs(30), "the refused refresh", || {
        world.status()["access"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no longer renews"))
    });
    let status = world.status();
    let error = status["access"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the identity provider no longer renews this login (invalid_grant")
            && error.contains("run `credd login` before"),
        "{status:#}"
    );
    assert_eq!(status["access"]["renews"], serde_json::Value::Null);
    wait_until(Duration::from_secs(30), "the session to end", || {
        world.status()["access"]["logged_in"] == false
    });
    device_login(&stack).assert_success();
    assert_eq!(world.status()["access"]["logged_in"], true);
    eprintln!(
        "{}-s access sessions: 2 background renewals (refresh grant + AssumeRoleWithWebIdentity) \
         {took:?} after the login, {served} requests served meanwhile",
        SHORT_SESSION.as_secs()
    );
}

#[test]
fn login_errors_say_what_to_do_and_the_daemon_keeps_running() {
    let (stack, _) = browser_stack(Options::default());
    let world = &stack.world;

    // Declined at the provider.
    let (login, pending) = stack.pending_login(&["--device-code"]);
    let code = pending["user_code"].as_str().expect("a code");
    stack
        .oidc()
        .deny_device(code, LOGIN)
        .expect("deny the device code");
    let out = login.wait(LOGIN_DEADLINE);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("the login was declined at the identity provider"),
        "{out}"
    );

    // STS refuses the token (no IAM OIDC provider for this issuer, say).
    stack.proxy().set_mode(ProxyMode::Reject {
        status: 400,
        code: "InvalidIdentityToken".into(),
        message: "No OpenIDConnect provider found in your account".into(),
    });
    let out = world.spawn_credd(&["login"]).wait(LOGIN_DEADLINE);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "STS did not accept the ID token from {}: the access account needs an IAM OIDC \
             identity provider for this issuer",
            stack.oidc().issuer()
        )) && out.stderr.contains("No OpenIDConnect provider found"),
        "{out}"
    );
    stack.proxy().set_mode(ProxyMode::Pass);

    // An issuer that cannot be reached: said at once, naming it.
    let toml = format!(
        "{DEFAULT_PROFILE}\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \
         \"web-identity\"\nrole_arn = \"{ACCESS_FROM_IDP}\"\noidc_issuer = \
         \"http://127.0.0.1:1\"\noidc_client_id = \"credd\"\n{STAGING_AND_AUDIT}"
    );
    world.write_config(&toml);
    wait_until(READY_DEADLINE, "the new issuer applied", || {
        world.status()["access"]["federation"]["provider"] == "http://127.0.0.1:1"
    });
    let began = Instant::now();
    let out = world.credd(&["login", "--device-code"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("the identity provider http://127.0.0.1:1 cannot be reached"),
        "{out}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );
    world.credd(&["status"]).assert_success();
}

/// A JWT as another tool leaves it (moto checks no signature; the tests check what was sent).
fn jwt(sub: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(format!(
        r#"{{"iss":"https://ci.acme.example","sub":"{sub}","aud":"sts.amazonaws.com"}}"#
    ));
    format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl")
}

#[test]
fn a_token_another_tool_keeps_fresh_logs_in_by_itself_and_a_failing_command_says_why() {
    let stack = builder(Options::default()).build();
    let world = &stack.world;
    let token_file = world.root.join("ci-token");
    std::fs::write(&token_file, jwt("ci-runner-7")).expect("write the token");
    let access = |way: &str| {
        format!(
            "{DEFAULT_PROFILE}\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \
             \"web-identity\"\nrole_arn = \"{ACCESS_FROM_IDP}\"\n{way}\n{STAGING_AND_AUDIT}"
        )
    };
    world.write_config(&access(&format!(
        "token_file = {:?}",
        token_file.display().to_string()
    )));
    let mut stack = stack;
    stack.world.start_daemon();
    let world = &stack.world;
    // No `credd login`: the daemon reads the file and logs in by itself.
    wait_until(READY_DEADLINE, "staging served", || {
        world.status()["access"]["logged_in"] == true
    });
    assert_eq!(
        stack.served_identity("staging").as_deref(),
        Ok(assumed_role_arn(ADMIN, "ci-runner-7").as_str())
    );
    assert_eq!(sent_tokens(&stack), [jwt("ci-runner-7")]);
    let status = world.status();
    assert_eq!(
        status["access"]["federation"]["provider"],
        format!("token_file {}", token_file.display()).as_str()
    );

    // A command instead; one that fails says its last stderr line, never its output.
    let script = world.root.join("token-cmd");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'partial-secret-output'\necho 'fetching token' >&2\necho 'not \
         authorized: run acme-login first' >&2\nexit 4\n",
    )
    .expect("write the script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    world.write_config(&access(&format!(
        "token_command = [{:?}]",
        script.display().to_string()
    )));
    wait_until(READY_DEADLINE, "the command source applied", || {
        world.status()["access"]["federation"]["provider"]
            .as_str()
            .is_some_and(|p| p.starts_with("token_command"))
    });
    let out = world.credd(&["login"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("exit status: 4): not authorized: run acme-login first"),
        "{out}"
    );
    assert!(!out.to_string().contains("partial-secret-output"), "{out}");
    assert!(
        files_containing(&world.root, "partial-secret-output")
            .iter()
            .all(|f| *f == script),
        "the command's stdout is kept nowhere"
    );

    // One that prints a token on stderr as it fails: status, the log and the error hide it.
    let leaked = jwt("leaked-on-stderr");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho 'refused token {leaked} (expired)' >&2\nexit 5\n"),
    )
    .expect("write the script");
    let out = world.credd(&["login"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("refused token [hidden] (expired)"),
        "{out}"
    );
    assert!(!out.to_string().contains(&leaked), "{out}");
    assert!(!world.daemon_log().contains(&leaked));
    assert!(!world.status().to_string().contains(&leaked));

    // One that leaves a helper running in the background with its output still open (an
    // agent it starts): the login is done when the command is, not when the helper lets go.
    let helper_pid = world.root.join("helper.pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 120 &\necho $! > '{}'\necho '{}'\n",
            helper_pid.display(),
            jwt("ci-runner-8")
        ),
    )
    .expect("write the script");
    let start = Instant::now();
    world.credd(&["login"]).assert_success();
    eprintln!(
        "login with a command that left a helper holding its stdout: {:?}",
        start.elapsed()
    );
    assert_eq!(
        stack.served_identity("staging").as_deref(),
        Ok(assumed_role_arn(ADMIN, "ci-runner-8").as_str())
    );
    let pid: i32 = std::fs::read_to_string(&helper_pid)
        .expect("the helper's pid")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill(2) of the helper this test's script started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn a_fifo_planted_at_token_file_fails_the_login_at_once() {
    credd_tests::require_root("acting as another user");
    let mut stack = builder(Options::default()).build();
    stack.world.let_others_through();
    let shared = stack.world.root.join("shared");
    std::fs::create_dir(&shared).expect("a shared dir");
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod 1777");
    let token_file = shared.join("token");
    // Another user gets there first with a FIFO: opening it for reading would wait for a writer
    // that never comes.
    let plant = std::process::Command::new("mkfifo")
        .arg(&token_file)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("mkfifo as the attacker");
    assert!(plant.status.success(), "{plant:?}");
    stack.world.write_config(&format!(
        "{DEFAULT_PROFILE}\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \
         \"web-identity\"\nrole_arn = \"{ACCESS_FROM_IDP}\"\ntoken_file = {:?}\n{STAGING_AND_AUDIT}",
        token_file.display().to_string()
    ));
    stack.world.start_daemon();
    let start = Instant::now();
    let out = stack.world.credd(&["login"]);
    out.assert_code(1);
    assert!(out.stderr.contains("is not a regular file"), "{out}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    stack.assert_still_serving();
}

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn a_restart_keeps_the_session_and_renews_it_with_the_saved_refresh_token() {
    use std::os::unix::fs::PermissionsExt;

    let mut stack = builder(Options::default()).start();
    stack
        .proxy()
        .set_lifetime("AssumeRoleWithWebIdentity", SHORT_SESSION);
    device_login(&stack).assert_success();
    let session_file = stack.world.runtime_dir.join("session.json");
    let mode = std::fs::metadata(&session_file)
        .expect("the session and its refresh token are kept for restarts")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    stack.world.stop_daemon();
    stack.world.start_daemon();
    // The saved refresh token renews the session (ended or not by now): no new login.
    wait_until(
        Duration::from_secs(30),
        "a renewal after the restart",
        || {
            stack.proxy().calls("AssumeRoleWithWebIdentity") >= 2
                && stack.world.status()["access"]["logged_in"] == true
        },
    );
    let stats = stack.oidc().stats();
    assert_eq!(stats.device_authorizations, 1, "{stats:?}");
    assert_eq!(stats.token_requests_for("refresh_token"), 1, "{stats:?}");
    stack
        .world
        .wait_profile_state("staging", "fresh", READY_DEADLINE);
    // Nothing of it outside the runtime dir.
    let token = sent_tokens(&stack).pop().expect("an ID token");
    let outside: Vec<_> = files_containing(&stack.world.root, &token)
        .into_iter()
        .filter(|f| !f.starts_with(&stack.world.runtime_dir))
        .collect();
    assert!(outside.is_empty(), "the ID token in {outside:?}");
}

#[test]
fn a_token_file_another_user_could_write_is_never_used() {
    use std::os::unix::fs::PermissionsExt;
    credd_tests::require_root("chown-ing the token file to another user");

    let stack = builder(Options::default()).build();
    let world = &stack.world;
    let token_file = world.root.join("planted-token");
    std::fs::write(&token_file, jwt("mallory")).expect("write the token");
    world.write_config(&format!(
        "{DEFAULT_PROFILE}\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \
         \"web-identity\"\nrole_arn = \"{ACCESS_FROM_IDP}\"\ntoken_file = {:?}\n{STAGING_AND_AUDIT}",
        token_file.display().to_string()
    ));
    let mut stack = stack;
    // Another local user (nobody) owns the file: they could put their token in it.
    std::os::unix::fs::chown(&token_file, Some(65534), Some(65534)).expect("chown");
    stack.world.start_daemon();
    let world = &stack.world;
    let out = world.credd(&["login"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("belongs to another user (uid 65534)"),
        "{out}"
    );
    // Ours, but writable by anyone.
    std::os::unix::fs::chown(&token_file, Some(0), Some(0)).expect("chown back");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = world.credd(&["login"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("is writable by others (mode 666)"),
        "{out}"
    );
    assert_eq!(
        stack.proxy().calls("AssumeRoleWithWebIdentity"),
        0,
        "the planted token never reaches STS"
    );
    // Made private: used.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    world.credd(&["login"]).assert_success();
    assert_eq!(stack.proxy().calls("AssumeRoleWithWebIdentity"), 1);
}
