//! credd with a company's SAML identity provider (`source = "saml"`), end to end: `credd login`
//! has the daemon run the real IdP's `assertion_command` once, however many logins and requests
//! pile up, and trade the signed assertion for the access role with an unsigned
//! AssumeRoleWithSAML; every profile is then served to real SDKs; the session lasts what the
//! assertion (or the config) says and only `credd login` renews it; the errors a user meets say
//! what to do; `credd login --cancel` stops the command; and the assertion never leaves the
//! daemon (log, files, output).

use std::time::{Duration, Instant};

use base64::Engine as _;
use credd_tests::proxy::{ProxyMode, UNSIGNED};
use credd_tests::saml_idp::{SamlUser, decode_response, role_value};
use credd_tests::stack::{
    ACCESS_FROM_SAML, ADMIN, AUDITOR, Access, PROMPT_DEADLINE, READY_DEADLINE, SAML_PASSWORD,
    SAML_PROVIDER, STAGING_AND_AUDIT, Stack, StackBuilder, Toml, USER, assert_all_but_one_joined,
    assert_all_served, assert_login_required, assert_secrets_nowhere, assumed_role_arn,
    finish_logins, now_unix,
};
use credd_tests::wait_until;
use credd_tests::world::CmdOutput;

const DEFAULT_PROFILE: &str = "default_profile = \"staging\"";

/// A second role the IdP may offer alice, beside [`ACCESS_FROM_SAML`].
const READ_ONLY_FROM_SAML: &str = "arn:aws:iam::123456789012:role/ReadOnlyFromSAML";

/// A role the IdP never offers.
const NOT_OFFERED: &str = "arn:aws:iam::123456789012:role/NotOffered";

/// A whole `credd login`: the command (a few hundred ms), STS, the warm-up of every profile.
const LOGIN_DEADLINE: Duration = Duration::from_secs(20);
/// How long the slow command of the single-flight scenario holds its run open.
const HELD_OPEN: Duration = Duration::from_millis(2000);

/// The session's end as status shows it may differ from the expected one by this much (the
/// login's own time, seconds rounding).
const CLOCK_SLACK: u64 = 120;

/// The name the assertion's RoleSessionName gives alice's session (see
/// [`SamlUser::role_session_name`]); the profiles' RoleSessionName too.
fn session_name() -> String {
    alice().role_session_name()
}

/// alice with the single role [`ACCESS_FROM_SAML`] (what the stack's IdP has by default).
fn alice() -> SamlUser {
    SamlUser::new(
        USER,
        SAML_PASSWORD,
        role_value(ACCESS_FROM_SAML, SAML_PROVIDER),
    )
}

/// The config's parts: `staging` ([`ADMIN`]) and `prod-audit` ([`AUDITOR`] via staging), the
/// default profile staging, and `access` as extra `[access]` lines.
fn saml_toml(access: &str) -> Toml<'_> {
    Toml {
        top: DEFAULT_PROFILE,
        access,
        profiles: STAGING_AND_AUDIT,
        ..Toml::default()
    }
}

/// A SAML stack with [`saml_toml`]'s profiles; no daemon yet.
fn saml_builder() -> StackBuilder<'static> {
    Stack::builder().access(Access::Saml).toml(saml_toml(""))
}

/// Rewrites the config with `access` as the extra `[access]` lines, and has the daemon read it.
fn rewrite_config(stack: &Stack, access: &str) {
    stack.write_config(saml_toml(access));
    stack.world.credd(&["reload"]).assert_success();
}

/// `words` as a TOML array of strings.
fn toml_array(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Replaces the `assertion_command` of the written config with `command` (the stack writes the
/// plain command; a scenario may want the slow one).
fn set_assertion_command(stack: &Stack, command: &[String]) {
    let config = std::fs::read_to_string(&stack.world.config_path).expect("the config");
    let mut replaced = 0;
    let lines: Vec<String> = config
        .lines()
        .map(|line| {
            if line.starts_with("assertion_command = ") {
                replaced += 1;
                format!("assertion_command = {}", toml_array(command))
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(replaced, 1, "one assertion_command in {config}");
    stack.world.write_config(&(lines.join("\n") + "\n"));
}

/// A stack (as [`saml_builder`]) whose command waits `delay` once counted, before it signs in;
/// the daemon started, logged out.
fn slow_stack(delay: Duration) -> Stack {
    let mut stack = saml_builder().build();
    let slow = stack.saml().slow_assertion_command(USER, delay);
    set_assertion_command(&stack, &slow);
    stack.world.start_daemon();
    stack
}

/// One form parameter of the `i`th AssumeRoleWithSAML request the daemon sent.
#[track_caller]
fn saml_param(stack: &Stack, i: usize, name: &str) -> String {
    let params = stack.proxy().params("AssumeRoleWithSAML");
    let request = params
        .get(i)
        .unwrap_or_else(|| panic!("no AssumeRoleWithSAML #{i}: {params:?}"));
    request
        .get(name)
        .unwrap_or_else(|| panic!("AssumeRoleWithSAML #{i} has no {name}: {request:?}"))
        .clone()
}

/// Every SAMLAssertion the daemon sent to STS so far.
fn assertions_sent(stack: &Stack) -> Vec<String> {
    stack
        .proxy()
        .params("AssumeRoleWithSAML")
        .iter()
        .filter_map(|p| p.get("SAMLAssertion").cloned())
        .collect()
}

/// The status's `access.expires_at`, asserting it is about `seconds` from now.
#[track_caller]
fn assert_session_lasts(status: &serde_json::Value, seconds: u64) {
    let expires = status["access"]["expires_at"].as_u64().unwrap_or_default();
    assert!(
        expires.abs_diff(now_unix() + seconds) < CLOCK_SLACK,
        "a {seconds}-s session: {status:#}"
    );
}

/// The daemon still runs and answers, and `credd status` works.
#[track_caller]
fn assert_daemon_fine(stack: &Stack) {
    stack.assert_still_serving();
    stack.world.credd(&["status"]).assert_success();
}

#[test]
fn one_login_runs_the_command_once_and_every_profile_reaches_every_sdk() {
    let stack = saml_builder().start();
    let world = &stack.world;
    let idp = stack.saml();
    let command = idp.assertion_command(USER);
    let access_arn = assumed_role_arn(ACCESS_FROM_SAML, &session_name());

    // Before the login: the provider is known, no one is logged in, the command has not run.
    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["source"], "saml", "{status:#}");
    assert_eq!(access["logged_in"], false, "{status:#}");
    let provider = format!("assertion_command {}", command[0]);
    assert_eq!(access["federation"]["provider"], provider.as_str());
    assert_eq!(access["federation"]["who"], serde_json::Value::Null);
    assert_eq!(
        idp.runs(),
        0,
        "nothing runs the command before `credd login`"
    );

    let login = world.credd(&["login"]);
    login.assert_success();
    // The progress says what runs (the command line has no password: it is in the environment).
    assert!(
        login.stderr.contains(&format!(
            "credd-daemon is running assertion_command for a SAML assertion:\n\n    {}\n",
            command.join(" ")
        )),
        "{login}"
    );
    assert!(!login.stderr.contains(SAML_PASSWORD), "{login}");
    assert!(
        login.stdout.contains(&format!(
            "logged in as {access_arn} ({USER}); session ends "
        )) && login.stdout.contains(": run `credd login` again then\n")
            && login.stdout.contains("2 profiles ready"),
        "{login}"
    );
    assert_eq!(idp.runs(), 1);

    // One unsigned AssumeRoleWithSAML naming the role and the provider the assertion offers,
    // carrying the assertion as the command printed it, for the default hour.
    let proxy = stack.proxy();
    assert_eq!(proxy.calls("AssumeRoleWithSAML"), 1);
    assert_eq!(proxy.signers("AssumeRoleWithSAML"), [UNSIGNED]);
    assert_eq!(saml_param(&stack, 0, "RoleArn"), ACCESS_FROM_SAML);
    assert_eq!(saml_param(&stack, 0, "PrincipalArn"), SAML_PROVIDER);
    assert_eq!(saml_param(&stack, 0, "DurationSeconds"), "3600");
    let xml = decode_response(&saml_param(&stack, 0, "SAMLAssertion"));
    assert!(
        xml.contains(&role_value(ACCESS_FROM_SAML, SAML_PROVIDER)),
        "{xml}"
    );

    // Every SDK, every kind of profile: a role assumed with the SAML session, one chained from
    // it, and the current route (the default profile).
    let admin = assumed_role_arn(ADMIN, &session_name());
    for route in ["/v1/credentials/staging", "/v1/credentials"] {
        let (rust, boto3) = stack.sdk_callers(route);
        assert_eq!((&rust, &boto3), (&admin, &admin), "{route}");
    }
    let (rust, boto3) = stack.sdk_callers("/v1/credentials/prod-audit");
    let auditor = assumed_role_arn(AUDITOR, &session_name());
    assert_eq!((&rust, &boto3), (&auditor, &auditor));
    assert_eq!(
        proxy.calls("AssumeRole"),
        2,
        "staging and prod-audit, once each"
    );
    // staging is assumed with the SAML session's key, prod-audit with staging's.
    let staging_key = world
        .credential_process("staging")
        .unwrap_or_else(|out| panic!("staging: {out}"))
        .keys
        .access_key_id;
    let signers = proxy.signers("AssumeRole");
    assert_eq!(signers[1], staging_key, "{signers:?}");
    assert!(
        signers[0] != staging_key && signers[0] != UNSIGNED,
        "{signers:?}"
    );

    // Status: the SAML side of the session; an hour long, so nothing to warn about yet (a
    // session shorter than 4 hours is warned about in its last quarter).
    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], true, "{status:#}");
    assert_eq!(access["identity"], access_arn.as_str(), "{status:#}");
    assert_eq!(access["pending"], serde_json::Value::Null, "{status:#}");
    assert_eq!(
        access["federation"],
        serde_json::json!({
            "provider": provider,
            "role_arn": ACCESS_FROM_SAML,
            "who": USER,
        }),
        "{status:#}"
    );
    assert_eq!(access["renews"], serde_json::Value::Null, "{status:#}");
    assert_session_lasts(&status, 3600);
    assert_eq!(access["warning"], serde_json::Value::Null, "{status:#}");
    for p in status["profiles"].as_array().expect("profiles") {
        assert_eq!(p["state"], "fresh", "{p:#}");
    }

    // The IdP now grants two hours: the next `credd login` runs the command again and asks STS
    // for what the assertion allows.
    idp.set_users(&[SamlUser {
        session_duration: Some(7200),
        ..alice()
    }]);
    let renewed = world.credd(&["login", "--json"]);
    let result = renewed.assert_success().json();
    assert_eq!(result["access"]["logged_in"], true, "{renewed}");
    assert_eq!(idp.runs(), 2);
    assert_eq!(proxy.calls("AssumeRoleWithSAML"), 2);
    assert_eq!(saml_param(&stack, 1, "DurationSeconds"), "7200");
    // Status shows the end STS granted (moto: the assertion's SessionDuration, else an hour).
    let status = world.status();
    assert_session_lasts(&status, 7200);
    assert_eq!(
        status["access"]["warning"],
        serde_json::Value::Null,
        "two hours left: nothing to warn about yet: {status:#}"
    );
    // The profiles are still served, named after alice.
    assert_eq!(
        stack.served_identity("staging").as_deref(),
        Ok(admin.as_str())
    );

    // session_duration shorter than the assertion's: the shorter is asked for. Changing it
    // keeps the session; the next `credd login` asks for it. (moto grants the assertion's
    // SessionDuration whatever DurationSeconds says, so only the request shows it.)
    rewrite_config(&stack, "session_duration = \"30m\"\n");
    assert_eq!(world.status()["access"]["logged_in"], true);
    world.credd(&["login"]).assert_success();
    assert_eq!(idp.runs(), 3);
    assert_eq!(saml_param(&stack, 2, "DurationSeconds"), "1800");
}

/// The routes of a burst: the current route and every profile.
const ROUTES: [&str; 3] = [
    "/v1/credentials",
    "/v1/credentials/staging",
    "/v1/credentials/prod-audit",
];

#[test]
fn one_command_run_for_three_logins_and_two_hundred_cold_requests() {
    const REQUESTS: usize = 200;
    const LOGINS: usize = 3;
    let stack = slow_stack(HELD_OPEN);
    let idp = stack.saml();
    // Looked up (in `credd status`) before the clock starts.
    stack.addr();

    // Everything at once: three `credd login`s in three terminals, and the requests.
    let began = Instant::now();
    let (answers, logins) = stack.logins_during_burst(LOGINS, &[], REQUESTS, &ROUTES);
    let prompted = began.elapsed();
    // All of it happened while the one run was held open.
    let status = stack.world.status();
    assert_eq!(
        status["access"]["pending"]["method"], "command",
        "the command is still running: {status:#}"
    );

    let (slowest, median) = assert_login_required(&answers, "while the command runs");
    let command = stack
        .saml()
        .slow_assertion_command(USER, HELD_OPEN)
        .join(" ");
    for (_, pending) in &logins {
        assert_eq!(pending["method"], "command", "{pending}");
        assert_eq!(pending["provider"], "assertion_command", "{pending}");
        assert_eq!(pending["url"], command.as_str(), "{pending}");
    }
    assert_all_but_one_joined(&logins);
    // The command counts its run a moment after the daemon starts it (python's start-up).
    wait_until(PROMPT_DEADLINE, "the command to be counted", || {
        idp.runs() >= 1
    });
    assert_eq!(idp.runs(), 1, "one run however many logins asked");

    for result in finish_logins(logins, LOGIN_DEADLINE) {
        assert_eq!(
            (&result["profiles_ready"], &result["profiles"]),
            (&2.into(), &2.into()),
            "{result}"
        );
    }
    let logged_in = began.elapsed();
    assert_eq!(idp.runs(), 1);
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 1);

    let (served_slowest, served_median) = assert_all_served(&stack.burst(REQUESTS, &ROUTES));
    assert_eq!(idp.runs(), 1, "requests never run the command");
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 1);
    assert_eq!(
        stack.proxy().calls("AssumeRole"),
        2,
        "staging and prod-audit"
    );
    eprintln!(
        "SAML single flight: {LOGINS} logins + {REQUESTS} cold requests while the command was \
         held open {HELD_OPEN:?} -> command runs {}, AssumeRoleWithSAML {}; 503s: slowest \
         {slowest:?}, median {median:?}; all {LOGINS} prompts within {prompted:?}; all logins \
         done {logged_in:?} after the start; {REQUESTS} requests after: slowest \
         {served_slowest:?}, median {served_median:?}",
        idp.runs(),
        stack.proxy().calls("AssumeRoleWithSAML"),
    );
}

// ---- Errors, and the assertion kept secret -------------------------------------------------

/// Runs the daemon of `stack` logging at trace level (its SDK trace events are dropped by the
/// daemon itself), so a secret logged anywhere is found.
fn start_tracing(mut stack: Stack) -> Stack {
    stack.world.set_env("RUST_LOG", "trace");
    stack.world.set_env("CREDD_LOG", "trace");
    stack.world.start_daemon();
    stack
}

/// What shows that an assertion (any of them) got out: each the daemon sent to STS, the base64 of
/// `<samlp:Response` (the first 20 characters of every one this IdP signs), and the decoded XML's
/// telltales.
fn assertion_needles(stack: &Stack) -> Vec<String> {
    let mut needles = assertions_sent(stack);
    needles.push(base64::engine::general_purpose::STANDARD.encode("<samlp:Response"));
    needles.push("<samlp:Response".to_owned());
    needles.push("SignatureValue".to_owned());
    needles
}

/// No assertion in the daemon's log, in any file of the world (config, state, runtime dir), or
/// in anything `shown` to the user. Stops the daemon first (its log complete).
#[track_caller]
fn assert_assertion_nowhere(stack: &mut Stack, shown: &[CmdOutput]) {
    assert!(
        !assertions_sent(stack).is_empty(),
        "the scenario sent no assertion to STS, or this proves little"
    );
    let needles: Vec<(String, String)> = assertion_needles(stack)
        .into_iter()
        .map(|needle| {
            let what = format!("the assertion ({}...)", &needle[..needle.len().min(24)]);
            (what, needle)
        })
        .collect();
    stack.world.stop_daemon();
    assert_secrets_nowhere(&stack.world, &needles, shown);
}

/// `credd login` failing: exit code 1, the reason on stderr, quickly; nothing pending after.
#[track_caller]
fn failed_login(stack: &Stack) -> CmdOutput {
    let out = stack.world.credd(&["login"]);
    out.assert_code(1);
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert_eq!(
        status["access"]["pending"],
        serde_json::Value::Null,
        "{status:#}"
    );
    out
}

#[test]
fn a_failing_command_shows_its_last_stderr_line_and_the_next_login_works() {
    let mut stack = start_tracing(saml_builder().build());
    let world = &stack.world;
    let idp = stack.saml();
    let mut shown = Vec::new();

    // The password changed at the IdP: the command (still given the old one) fails.
    idp.set_users(&[SamlUser {
        password: "a-new-password".to_owned(),
        ..alice()
    }]);
    let out = failed_login(&stack);
    let reason =
        "saml_assertion: the IdP refused the login of alice: Incorrect username or password";
    assert!(
        out.stderr.contains("assertion_command `")
            && out.stderr.contains("` failed (exit status: 1): ")
            && out.stderr.trim_end().ends_with(reason),
        "{out}"
    );
    assert_eq!(idp.runs(), 1);
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 0);
    let status = world.status();
    let last_error = status["access"]["last_error"].as_str().unwrap_or_default();
    assert!(last_error.ends_with(reason), "{status:#}");
    shown.push(out);
    shown.push(world.credd(&["status"]));
    assert_daemon_fine(&stack);

    // The password set back: the next login runs the command again and works.
    idp.set_users(&[alice()]);
    let login = world.credd(&["login"]);
    login.assert_success();
    assert_eq!(idp.runs(), 2);
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 1);
    let status = world.status();
    assert_eq!(
        status["access"]["last_error"],
        serde_json::Value::Null,
        "the failure is forgotten: {status:#}"
    );
    shown.push(login);
    shown.push(world.credd(&["status", "--json"]));
    shown.push(world.credd(&["status"]));
    assert_assertion_nowhere(&mut stack, &shown);
}

#[test]
fn several_roles_need_role_arn_and_a_role_arn_not_offered_is_refused_naming_the_offered() {
    let two_roles = SamlUser {
        roles: vec![
            role_value(ACCESS_FROM_SAML, SAML_PROVIDER),
            role_value(READ_ONLY_FROM_SAML, SAML_PROVIDER),
        ],
        ..alice()
    };
    let mut stack = start_tracing(saml_builder().saml_users(vec![two_roles.clone()]).build());
    let world = &stack.world;
    let idp = stack.saml();
    let mut shown = Vec::new();

    // No role_arn: credd cannot choose, and says how to.
    let out = failed_login(&stack);
    assert!(
        out.stderr.contains(&format!(
            "the SAML assertion offers several roles; choose one with role_arn in [access]: \
             {ACCESS_FROM_SAML}, {READ_ONLY_FROM_SAML}"
        )),
        "{out}"
    );
    assert_eq!(idp.runs(), 1);
    assert_eq!(
        stack.proxy().calls("AssumeRoleWithSAML"),
        0,
        "refused before STS"
    );
    shown.push(out);
    shown.push(world.credd(&["status", "--json"]));
    assert_daemon_fine(&stack);

    // A role_arn the assertion does not offer: it says which ones it does.
    rewrite_config(&stack, &format!("role_arn = \"{NOT_OFFERED}\"\n"));
    let out = failed_login(&stack);
    assert!(
        out.stderr.contains(&format!(
            "the SAML assertion does not offer role_arn {NOT_OFFERED}; it offers: \
             {ACCESS_FROM_SAML}, {READ_ONLY_FROM_SAML}"
        )),
        "{out}"
    );
    let status = world.status();
    assert_eq!(
        status["access"]["federation"]["role_arn"], NOT_OFFERED,
        "{status:#}"
    );
    assert_eq!(idp.runs(), 2);
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 0);
    shown.push(out);
    shown.push(world.credd(&["status"]));
    assert_daemon_fine(&stack);

    // The same with a single role offered.
    idp.set_users(&[alice()]);
    let out = failed_login(&stack);
    assert!(
        out.stderr.contains(&format!(
            "the SAML assertion does not offer role_arn {NOT_OFFERED}; it offers: \
             {ACCESS_FROM_SAML}\n"
        )),
        "{out}"
    );
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 0);
    shown.push(out);

    // role_arn naming the offered role: the login goes through (one role: moto takes it).
    rewrite_config(&stack, &format!("role_arn = \"{ACCESS_FROM_SAML}\"\n"));
    let login = world.credd(&["login"]);
    login.assert_success();
    assert_eq!(saml_param(&stack, 0, "RoleArn"), ACCESS_FROM_SAML);
    assert_eq!(idp.runs(), 4);
    shown.push(login);
    assert_assertion_nowhere(&mut stack, &shown);
}

#[test]
fn sts_refusals_of_the_assertion_are_explained() {
    let mut stack = start_tracing(saml_builder().build());
    let world = &stack.world;
    let mut shown = Vec::new();
    let cases = [
        (
            400,
            "InvalidIdentityToken",
            format!(
                "STS did not accept the assertion: check that the IAM SAML provider \
                 {SAML_PROVIDER} holds your identity provider's current metadata (its signing \
                 certificate)"
            ),
        ),
        (
            403,
            "AccessDenied",
            format!(
                "STS refused {ACCESS_FROM_SAML}: its trust policy must allow \
                 sts:AssumeRoleWithSAML for {SAML_PROVIDER}, and its conditions (SAML:aud, ...) \
                 must match the assertion"
            ),
        ),
        (
            400,
            "IDPRejectedClaim",
            format!("STS refused {ACCESS_FROM_SAML}: its trust policy must allow"),
        ),
        (
            400,
            "ExpiredToken",
            "the assertion had expired when STS saw it (they are valid for minutes): check this \
             machine's clock, and that assertion_command prints a fresh one"
                .to_owned(),
        ),
    ];
    for (i, (status, code, advice)) in cases.iter().enumerate() {
        let message = format!("refused by the test ({code})");
        stack.proxy().set_mode(ProxyMode::Reject {
            status: *status,
            code: (*code).to_owned(),
            message: message.clone(),
        });
        let asked = Instant::now();
        let out = failed_login(&stack);
        let took = asked.elapsed();
        assert!(
            out.stderr.contains(advice.as_str())
                && out.stderr.contains(&format!("{code}: {message}")),
            "{code}: {out}"
        );
        assert!(took < Duration::from_secs(10), "{code}: took {took:?}");
        assert_eq!(
            stack.proxy().calls("AssumeRoleWithSAML"),
            i + 1,
            "{code}: one call, no retry"
        );
        let status = world.status();
        let last_error = status["access"]["last_error"].as_str().unwrap_or_default();
        assert!(last_error.contains(advice.as_str()), "{status:#}");
        shown.push(out);
        shown.push(world.credd(&["status"]));
        assert_daemon_fine(&stack);
    }
    // STS answers again: the next login works.
    stack.proxy().set_mode(ProxyMode::Pass);
    let login = world.credd(&["login"]);
    login.assert_success();
    shown.push(login);
    assert_eq!(stack.saml().runs(), cases.len() + 1);
    assert_assertion_nowhere(&mut stack, &shown);
}

// ---- Cancelling ------------------------------------------------------------------------------

/// Pids of the world's processes besides the daemon: its running command, waiting logins.
fn others_than_the_daemon(stack: &Stack) -> Vec<i32> {
    let daemon = stack.world.daemon_pid().map(|p| p as i32);
    stack
        .world
        .world_pids()
        .into_iter()
        .filter(|&pid| Some(pid) != daemon)
        .collect()
}

#[test]
fn login_cancel_stops_the_running_command_and_every_waiting_login() {
    // Held open far longer than the test: only the cancel ends it.
    let stack = slow_stack(Duration::from_secs(60));
    let world = &stack.world;
    let idp = stack.saml();
    let (first, started) = stack.pending_login(&[]);
    let (second, joined) = stack.pending_login(&[]);
    assert_eq!(started["joined"], false, "{started}");
    assert_eq!(joined["joined"], true, "{joined}");
    wait_until(PROMPT_DEADLINE, "the command to start", || idp.runs() == 1);
    let status = world.status();
    assert_eq!(
        status["access"]["pending"]["method"], "command",
        "{status:#}"
    );

    let asked = Instant::now();
    let cancel = world.credd(&["login", "--cancel"]);
    assert_eq!(cancel.assert_success().stdout, "login cancelled\n");
    for login in [first, second] {
        let out = login.wait(PROMPT_DEADLINE);
        out.assert_code(1);
        // `--json`: the error is the last line of stderr, as JSON.
        let error: serde_json::Value =
            serde_json::from_str(out.stderr.lines().last().unwrap_or(""))
                .unwrap_or_else(|e| panic!("the error is not JSON ({e}): {out}"));
        assert_eq!(error["code"], "LoginRequired", "{out}");
        assert_eq!(error["message"], "the login was cancelled", "{out}");
    }
    let ended = asked.elapsed();
    // The command itself is stopped, not left to finish its 60 s.
    wait_until(
        Duration::from_secs(5),
        "the cancelled command to be stopped",
        || others_than_the_daemon(&stack).is_empty(),
    );
    let stopped = asked.elapsed();

    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], false, "{status:#}");
    assert_eq!(access["pending"], serde_json::Value::Null, "{status:#}");
    assert_eq!(stack.proxy().calls("AssumeRoleWithSAML"), 0);
    assert!(
        world
            .credd(&["status"])
            .assert_success()
            .stdout
            .contains("not logged in"),
    );
    let reply = stack.get_authorized("/v1/credentials/staging");
    assert_eq!(reply.status, 503, "{reply}");
    // Nothing left to cancel.
    let again = world.credd(&["login", "--cancel", "--json"]);
    assert_eq!(again.assert_success().json()["cancelled"], false, "{again}");

    // The plain command back: the next login starts afresh and works.
    set_assertion_command(&stack, &idp.assertion_command(USER));
    world.credd(&["reload"]).assert_success();
    world.credd(&["login"]).assert_success();
    assert_eq!(idp.runs(), 2);
    stack.wait_logged_in(READY_DEADLINE);
    eprintln!(
        "SAML cancel: waiting logins ended {ended:?} and the command was stopped {stopped:?} \
         after `credd login --cancel`"
    );
}
