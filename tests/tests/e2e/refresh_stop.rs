//! `credd refresh`, `credd stop` and what `credd status` shows of them, against the real
//! binaries and moto: a refresh serves new credentials at once (one STS call per profile; that
//! however many ask share it is unit-tested on the simulated clock in the daemon's
//! `engine::tests`), a refresh that needs a login says so without asking, `credd stop` ends the
//! daemon cleanly and says so when there is none; status shows each profile's own region, the
//! STS Region labelled as such, and colour on a terminal only.

use std::time::Duration;

use credd_tests::bins::client_bin;
use credd_tests::stack::{ADMIN, AUDITOR, Access, Stack};
use credd_tests::terminal::Terminal;
use credd_tests::world::World;

const WARM: Duration = Duration::from_secs(20);

fn assume_calls_for(stack: &Stack, role_arn: &str) -> usize {
    stack
        .proxy()
        .params("AssumeRole")
        .iter()
        .filter(|p| p["RoleArn"] == role_arn)
        .count()
}

/// The access key ID the HTTP API serves for `profile` now.
fn served_key(stack: &Stack, profile: &str) -> String {
    let reply = stack.get_authorized(&format!("/v1/credentials/{profile}"));
    reply.json()["AccessKeyId"]
        .as_str()
        .unwrap_or_else(|| panic!("no AccessKeyId for {profile}: {reply:?}"))
        .to_owned()
}

#[test]
fn credd_refresh_serves_new_credentials_at_once_with_one_sts_call() {
    let stack = Stack::staging_and_audit(Access::Key);
    stack.wait_all_fresh(WARM);
    let world = &stack.world;
    let before = served_key(&stack, "staging");
    let calls = assume_calls_for(&stack, ADMIN);

    // No profile named: the current one (the config's default_profile is not set, so switch).
    world.credd(&["switch", "staging"]).assert_success();
    let out = world.credd(&["refresh"]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("staging: refreshed, expires "),
        "{out}"
    );
    assert!(out.stdout.contains("[STS "), "{out}");
    assert_eq!(assume_calls_for(&stack, ADMIN), calls + 1, "one AssumeRole");
    let after = served_key(&stack, "staging");
    assert_ne!(after, before, "the served credentials changed");
    // And they are real: moto (auth on) knows them.
    stack.served_identity("staging").expect("moto accepts them");

    // --all, as JSON: each profile's new expiry.
    let audit_calls = assume_calls_for(&stack, AUDITOR);
    let all = world.credd(&["--json", "refresh", "--all"]);
    let outcomes = all.assert_success().json()["outcomes"].clone();
    let names: Vec<&str> = outcomes
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| o["profile"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["prod-audit", "staging"], "{all}");
    for o in outcomes.as_array().unwrap() {
        assert!(o["expires_at"].as_u64().is_some(), "{all}");
        assert!(o["error"].is_null(), "{all}");
    }
    assert_eq!(assume_calls_for(&stack, AUDITOR), audit_calls + 1);
    assert_ne!(served_key(&stack, "staging"), after);
}

#[test]
fn credd_refresh_that_needs_a_login_says_so_and_asks_nothing() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let world = &stack.world;
    let sts_calls = || {
        let proxy = stack.proxy();
        proxy.calls("AssumeRole") + proxy.calls("GetSessionToken")
    };
    let before = sts_calls();
    let out = world.credd(&["refresh", "staging"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("staging: not refreshed (a login is needed first)")
            && out.stderr.contains("run `credd login`"),
        "{out}"
    );
    assert_eq!(sts_calls(), before, "no STS call");

    // A typo names the close profile.
    let typo = world.credd(&["refresh", "stagign"]);
    typo.assert_code(1);
    assert!(typo.stderr.contains("did you mean \"staging\"?"), "{typo}");

    // Once logged in, the same refresh works.
    stack.login_with_mfa();
    world.credd(&["refresh", "staging"]).assert_success();
}

#[test]
fn credd_refresh_of_a_refused_role_reports_sts_s_reason() {
    let stack = Stack::staging_and_audit(Access::Key);
    stack.wait_all_fresh(WARM);
    stack.proxy().reject_action(
        "AssumeRole",
        403,
        "AccessDenied",
        "not authorized to assume",
    );
    let out = stack.world.credd(&["refresh", "staging"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("staging: not refreshed: ") && out.stderr.contains("AccessDenied"),
        "{out}"
    );
    // Status then shows when it is retried (the first backoff is short: on a busy machine its
    // time may have come already).
    let text = stack.world.credd(&["status"]);
    let shown = &text.assert_success().stdout;
    assert!(
        shown.contains("next retry ") || shown.contains("retrying now"),
        "{text}"
    );
    assert!(
        shown.contains("last error: ") && shown.contains("AccessDenied"),
        "{text}"
    );
    stack.proxy().pass_action("AssumeRole");
}

#[test]
fn credd_stop_ends_the_daemon_cleanly_and_a_second_stop_says_none_runs() {
    let mut world = World::new();
    world.write_config(credd_tests::stack::OFFLINE_CONFIG);
    world.start_daemon();
    let pid = world.daemon_pid().expect("started");
    let out = world.credd(&["stop"]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!("stopped credd-daemon (pid {pid})\n"),
        "{out}"
    );
    // `credd stop` returns once the daemon is gone.
    assert!(!world.socket_path().exists(), "the socket is removed");
    let status = world.wait_daemon_exit(Duration::from_secs(10));
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(world.daemon_log().contains("`credd stop`: stopping"));

    let again = world.credd(&["stop"]);
    again.assert_success();
    assert!(
        again.stderr.contains("credd-daemon is not running")
            && again.stderr.contains("nothing to stop"),
        "{again}"
    );
    let json = world.credd(&["--json", "stop"]);
    assert_eq!(json.assert_success().json()["running"], false, "{json}");
}

#[test]
fn status_shows_each_profile_s_region_and_colours_only_a_terminal() {
    let stack = Stack::staging_and_audit(Access::Key);
    stack.wait_all_fresh(WARM);
    let world = &stack.world;
    let status = world.status();
    let staging = status["profiles"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "staging"))
        .expect("staging")
        .clone();
    assert_eq!(staging["region"], "us-west-2", "{staging:#}");

    // To a pipe: no colour, the profile's region, the STS Region labelled.
    let piped = world.credd(&["status"]);
    let text = &piped.assert_success().stdout;
    assert!(!text.contains('\x1b'), "{text:?}");
    let line = text
        .lines()
        .find(|l| l.trim_start_matches([' ', '*']).starts_with("staging "))
        .unwrap_or_else(|| panic!("no staging line:\n{text}"));
    assert!(line.contains("fresh     us-west-2  expires in "), "{line}");
    assert!(line.contains("[STS "), "{line}");
    assert!(text.contains("profiles:\n"), "{text}");

    // On a terminal: coloured, unless NO_COLOR says no.
    let on_terminal = |no_color: bool| {
        let terminal = Terminal::open();
        let mut command = world.command(client_bin());
        command
            .arg("status")
            .env("CREDD_NO_AUTOSTART", "1")
            .env("TERM", "xterm-256color")
            .stdout(terminal.stdio())
            .stderr(terminal.stdio());
        if no_color {
            command.env("NO_COLOR", "1");
        }
        terminal.attach(&mut command);
        let status = command.status().expect("run credd status");
        assert!(status.success(), "{status:?}");
        terminal.wait_for("paths:", Duration::from_secs(10))
    };
    let coloured = on_terminal(false);
    assert!(coloured.contains("\x1b[32mfresh"), "{coloured:?}");
    let plain = on_terminal(true);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("fresh"), "{plain:?}");
}
