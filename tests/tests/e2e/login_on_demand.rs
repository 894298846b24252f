//! Logging in on demand: `credd exec` and `credd credential-process` that find the access session
//! missing ask for the MFA code (or show the Identity Center sign-in) on the controlling terminal
//! (`credd env`, run from shell rc files, never does: see `shell::`), even when their stdout and stderr are pipes (botocore runs
//! `credential_process` so), then go on; real SDKs get working credentials, and stdout carries
//! only what the caller reads. Without a terminal they fail at once saying to run `credd login`,
//! never after a timeout, and nothing reaches STS. Requests over HTTP never wait for the person
//! at the terminal. moto's auth is off for the MFA stacks (see `engine_login`).

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use credd_tests::bins::{client_bin, sdk_client_bin};
use credd_tests::http;
use credd_tests::identity_center::{ADMIN_ROLE, Op, STAGING_ACCOUNT, assumed_role_arn};
use credd_tests::moto::venv_python;
use credd_tests::sdk::BOTO3_CALLER;
use credd_tests::stack::{Access, MFA_CODE, PROMPT_DEADLINE, SSO_PROFILES, Stack, Toml};
use credd_tests::terminal::Terminal;
use credd_tests::world::{CmdOutput, Running};

/// From the answer at the terminal to the command's end: GetSessionToken (or the Identity Center
/// token), the warm-up of every profile, and the SDK's own STS call.
const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// Without a terminal the failure comes without a stall, the process's start included.
const AT_ONCE: Duration = credd_tests::STALL;

/// An HTTP request while the login waits at the terminal is answered (503) without a stall: were
/// it held for the person, it would wait until the code is typed, which comes after it.
const HTTP_AT_ONCE: Duration = credd_tests::STALL;

/// Who `staging`'s credentials are, but for the session name (moto, auth off, names the MFA
/// session's user after itself).
const STAGING_ROLE: &str = "arn:aws:sts::222222222222:assumed-role/Administrator/";

/// `program ARGS` in the stack's world with `terminal` as its controlling terminal and stdin, as
/// typed at a shell prompt; its stdout and stderr are captured apart from the terminal.
fn on_terminal(
    stack: &Stack,
    terminal: &Terminal,
    program: impl AsRef<OsStr>,
    args: &[&str],
) -> Running {
    let shown = format!(
        "{} {} (on a terminal)",
        program.as_ref().to_string_lossy(),
        args.join(" ")
    );
    let mut command = stack.world.command(program);
    command.args(args).env("CREDD_NO_AUTOSTART", "1");
    terminal.attach(&mut command);
    Running::start(command, shown)
}

fn sdk_client() -> String {
    sdk_client_bin().display().to_string()
}

fn credd() -> String {
    client_bin().display().to_string()
}

/// `credd exec staging -- sdk-client default` on `terminal`: the AWS SDK for Rust prints who it is.
fn exec_staging(stack: &Stack, terminal: &Terminal) -> Running {
    let sdk = sdk_client();
    on_terminal(
        stack,
        terminal,
        credd(),
        &["exec", "staging", "--", &sdk, "default"],
    )
}

/// Waits for the MFA prompt of `stack`'s device; meanwhile `route` must answer 503
/// `LoginRequired` at once (a request never waits for a person). Types the code.
#[track_caller]
fn answer_the_mfa_prompt(stack: &Stack, terminal: &Terminal, verb: &str, route: &str) {
    let prompt = format!("MFA code for {}: ", stack.mfa_serial());
    let screen = terminal.wait_for(&prompt, PROMPT_DEADLINE);
    assert!(
        screen.contains(&format!("{verb} needs the access session")),
        "the terminal says why it asks: {screen}"
    );
    let start = Instant::now();
    let reply = stack.get_authorized(route);
    let took = start.elapsed();
    assert_eq!(reply.assert_error(503), "LoginRequired");
    assert!(
        took < HTTP_AT_ONCE,
        "{route} took {took:?} while {verb} waited for the code"
    );
    eprintln!("measured: GET {route} while {verb} waits for the MFA code: 503 in {took:?}");
    terminal.type_line(MFA_CODE);
}

/// The caller ARN an SDK printed (`{"arn": ...}` on stdout) is `staging`'s role.
#[track_caller]
fn assert_staging(out: &CmdOutput) {
    let arn = out.json()["arn"].as_str().unwrap_or_default().to_owned();
    assert!(arn.starts_with(STAGING_ROLE), "{arn}: {out}");
}

/// What no output may hold: the code typed at the terminal.
#[track_caller]
fn assert_code_not_in(out: &CmdOutput) {
    assert!(
        !out.stdout.contains(MFA_CODE) && !out.stderr.contains(MFA_CODE),
        "the MFA code leaked: {out}"
    );
}

#[test]
fn exec_asks_for_the_mfa_code_on_the_terminal_then_runs_the_command() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let terminal = Terminal::open();
    let exec = exec_staging(&stack, &terminal);
    answer_the_mfa_prompt(&stack, &terminal, "`credd exec`", "/v1/credentials/staging");
    let out = exec.wait(RUN_DEADLINE);
    out.assert_success();
    // The AWS SDK for Rust, through its default chain, is the role: the command ran after the
    // login, not before it.
    assert_staging(&out);
    assert_code_not_in(&out);
    let screen = terminal.screen();
    assert!(
        screen.contains("logged in as ") && screen.contains("2 profiles ready"),
        "the terminal says what the login did: {screen}"
    );
    let calls = stack.proxy().params("GetSessionToken");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["TokenCode"], MFA_CODE);
    assert_eq!(calls[0]["SerialNumber"], stack.mfa_serial());
    // The file the logins on demand take turns with is private, whatever the umask.
    let turn = std::fs::metadata(stack.world.runtime_dir.join("login-on-demand.lock"))
        .expect("the turn file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&turn.permissions()) & 0o777,
        0o600
    );

    // Logged in: the next one runs at once, terminal or not.
    let out = stack
        .world
        .credd_without_terminal(&["exec", "staging", "--", &sdk_client(), "default"], None);
    assert_staging(out.assert_success());
    assert_eq!(stack.proxy().calls("GetSessionToken"), 1);
}

#[test]
fn credential_process_logs_in_on_the_terminal_while_its_stdout_carries_only_the_json() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let terminal = Terminal::open();
    // As botocore runs it: stdout and stderr are pipes, only /dev/tty reaches the person.
    let process = on_terminal(
        &stack,
        &terminal,
        credd(),
        &["credential-process", "staging"],
    );
    answer_the_mfa_prompt(
        &stack,
        &terminal,
        "`credd credential-process`",
        "/v1/credentials/staging",
    );
    let out = process.wait(RUN_DEADLINE);
    out.assert_success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {out}"));
    assert_eq!(json["Version"], 1, "{out}");
    assert_eq!(json["AccountId"], "222222222222", "{out}");
    assert_eq!(out.stderr, "", "{out}");
    assert_code_not_in(&out);

    // boto3 with credd as its credential_process, after the session is gone again: the prompt
    // reaches the person through boto3 and its pipes, and boto3 gets the role.
    stack.world.credd(&["logout"]).assert_success();
    stack.world.write_aws_config(&format!(
        "[profile staging]\ncredential_process = {} credential-process staging\n",
        credd()
    ));
    let terminal = Terminal::open();
    let mut command = stack.world.command(venv_python());
    command
        .args(["-c", BOTO3_CALLER])
        .env("AWS_PROFILE", "staging")
        .env("AWS_DEFAULT_REGION", "us-east-1");
    terminal.attach(&mut command);
    let boto3 = Running::start(command, "boto3 on a terminal".into());
    answer_the_mfa_prompt(
        &stack,
        &terminal,
        "`credd credential-process`",
        "/v1/credentials/staging",
    );
    let out = boto3.wait(RUN_DEADLINE);
    out.assert_success();
    assert_staging(&out);
    assert_eq!(out.json()["method"], "custom-process", "{out}");
    assert_eq!(stack.proxy().calls("GetSessionToken"), 2, "one per login");
}

#[test]
fn several_at_once_on_one_terminal_get_one_prompt() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let terminal = Terminal::open();
    // Terraform or `make -j`: three credential processes started together from one shell.
    let script = r#"
        for n in 1 2 3; do "$1" credential-process staging > "$HOME/creds-$n.json" & done
        wait
    "#;
    let shell = on_terminal(&stack, &terminal, "sh", &["-c", script, "sh", &credd()]);
    let prompt = format!("MFA code for {}: ", stack.mfa_serial());
    terminal.wait_for(&prompt, PROMPT_DEADLINE);
    terminal.type_line(MFA_CODE);
    shell.wait(RUN_DEADLINE).assert_success();
    let screen = terminal.screen();
    assert_eq!(
        screen.matches(&prompt).count(),
        1,
        "one prompt for all three: {screen}"
    );
    for n in 1..=3 {
        let path = stack.world.home.join(format!("creds-{n}.json"));
        let text = std::fs::read_to_string(&path).expect("the credentials were written");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("creds-{n}.json is not JSON ({e}): {text}"));
        assert_eq!(json["AccountId"], "222222222222", "{text}");
    }
    assert!(
        !screen.contains("waiting for the login"),
        "the others wait silently: the prompt is on their terminal already: {screen}"
    );
    assert_eq!(stack.proxy().calls("GetSessionToken"), 1, "{screen}");
}

#[test]
fn a_login_under_way_in_another_terminal_is_waited_for_not_asked_again() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let first = Terminal::open();
    let exec = exec_staging(&stack, &first);
    let prompt = format!("MFA code for {}: ", stack.mfa_serial());
    first.wait_for(&prompt, PROMPT_DEADLINE);
    let second = Terminal::open();
    let process = on_terminal(
        &stack,
        &second,
        credd(),
        &["credential-process", "prod-audit"],
    );
    second.wait_for(
        "credd: waiting for the login under way in another terminal.",
        PROMPT_DEADLINE,
    );
    first.type_line(MFA_CODE);
    exec.wait(RUN_DEADLINE).assert_success();
    let out = process.wait(RUN_DEADLINE);
    let json = out.assert_success().json();
    assert_eq!(json["AccountId"], "333333333333", "{out}");
    let screen = second.screen();
    assert!(
        !screen.contains("MFA code"),
        "asked once, on the first: {screen}"
    );
    assert_eq!(stack.proxy().calls("GetSessionToken"), 1);
}

#[test]
fn without_a_terminal_each_fails_at_once_saying_to_run_credd_login() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    // Only the session is missing: the daemon is up and knows the profiles.
    let cases: [&[&str]; 2] = [
        &["exec", "staging", "--", "sh", "-c", "echo the command ran"],
        &["credential-process", "staging"],
    ];
    for args in cases {
        let start = Instant::now();
        let out = stack.world.credd_without_terminal(args, None);
        let took = start.elapsed();
        eprintln!(
            "measured: credd {} without a terminal failed in {took:?}",
            args[0]
        );
        out.assert_code(1);
        assert!(took < AT_ONCE, "credd {} took {took:?}: {out}", args[0]);
        assert!(
            out.stderr.contains("not logged in")
                && out.stderr.contains("run `credd login`")
                && out.stderr.contains("no terminal here to log in on"),
            "the reason and what to do: {out}"
        );
        assert_eq!(out.stdout, "", "nothing ran, nothing to evaluate: {out}");
    }
    // After a logout the reason says so.
    stack.login_with_mfa();
    stack.world.credd(&["logout"]).assert_success();
    let out = stack
        .world
        .credd_without_terminal(&["exec", "staging", "--", "true"], None);
    out.assert_code(1);
    assert!(out.stderr.contains("not logged in (logged out)"), "{out}");
    assert_eq!(stack.proxy().calls("GetSessionToken"), 1, "only the login");
}

#[test]
fn exec_starts_the_identity_center_sign_in_on_the_terminal_and_runs_once_approved() {
    let stack = Stack::builder()
        .access(Access::SSO_DEVICE)
        .toml(Toml {
            profiles: SSO_PROFILES,
            ..Toml::default()
        })
        .start();
    let fake = stack.identity_center();
    let before = fake.succeeded(Op::StartDeviceAuthorization);
    let terminal = Terminal::open();
    let sdk = sdk_client();
    let exec = on_terminal(
        &stack,
        &terminal,
        credd(),
        &["exec", "sso-admin", "--", &sdk, "default"],
    );
    let device = fake.wait_device_authorization(before, PROMPT_DEADLINE);
    let screen = terminal.wait_for("Ctrl-C cancels", PROMPT_DEADLINE);
    assert!(
        screen.contains(&device.verification_uri) && screen.contains(&device.user_code),
        "the terminal shows where to approve: {screen}"
    );
    let start = Instant::now();
    let reply = stack.get_authorized("/v1/credentials/sso-admin");
    let took = start.elapsed();
    assert_eq!(reply.assert_error(503), "LoginRequired");
    assert!(
        took < HTTP_AT_ONCE,
        "took {took:?} while the sign-in waited"
    );
    eprintln!("measured: GET /v1/credentials/sso-admin while the sign-in waits: 503 in {took:?}");

    // The person approves in a browser.
    let path = device
        .verification_uri_complete
        .strip_prefix(&fake.url())
        .unwrap_or_else(|| panic!("{device:?} is not at the fake"));
    assert_eq!(http::request(fake.addr(), "GET", path, &[]).status, 200);
    let out = exec.wait(RUN_DEADLINE);
    out.assert_success();
    assert_eq!(
        out.json()["arn"],
        assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE),
        "{out}"
    );
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 1);
}
