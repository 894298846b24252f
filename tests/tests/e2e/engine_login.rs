//! Logging in with an IAM user key and an MFA device: the code reaches GetSessionToken with the
//! device's serial (in the next region if the first is down), every profile is warm right after,
//! and before that (or with a malformed or refused code, or with no way to ask for one) the user
//! gets a clear error at once, never a hang.
//! moto's auth is off here: with it on, moto rejects the keys of its own GetSessionToken.

use std::time::{Duration, Instant};

use credd_tests::proxy::ProxyMode;
use credd_tests::stack::{Access, MFA_CODE, STAGING_AND_AUDIT, Stack, Toml, now_unix};

const STAGING: &str = r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
"#;

/// A request that cannot be answered says so without a stall (what it says is checked too).
const FAST_FAILURE: Duration = credd_tests::STALL;

#[test]
fn login_with_mfa_carries_serial_and_code_and_warms_every_profile() {
    let stack = Stack::start(
        Access::Mfa,
        Toml {
            access: "session_duration = \"2h\"",
            profiles: STAGING_AND_AUDIT,
            ..Toml::default()
        },
    );
    let world = &stack.world;

    // Before login: a clear LoginRequired at once, and STS is not bothered.
    let status = world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert_eq!(
        status["access"]["mfa_serial"],
        stack.mfa_serial(),
        "{status:#}"
    );
    for profile in ["staging", "prod-audit"] {
        let start = Instant::now();
        let out = world
            .credential_process(profile)
            .expect_err("no credentials before login");
        assert!(
            start.elapsed() < FAST_FAILURE,
            "took {:?}: {out}",
            start.elapsed()
        );
        out.assert_code(1);
        assert!(
            out.stderr.contains("`credd login`"),
            "the error must say what to do: {out}"
        );
        assert_eq!(stack.world.profile_status(profile)["state"], "cold");
    }
    assert_eq!(stack.proxy().calls("GetSessionToken"), 0);
    assert_eq!(stack.proxy().calls("AssumeRole"), 0);

    let login = stack
        .world
        .credd(&["login", "--mfa-code", credd_tests::stack::MFA_CODE]);
    assert!(
        login.assert_success().stdout.contains("2 profiles ready"),
        "login waits for the warm-up and says how far it got: {login}"
    );

    let calls = stack.proxy().params("GetSessionToken");
    assert_eq!(calls.len(), 1, "one GetSessionToken per login: {calls:?}");
    assert_eq!(calls[0]["SerialNumber"], stack.mfa_serial());
    assert_eq!(calls[0]["TokenCode"], MFA_CODE);
    assert_eq!(calls[0]["DurationSeconds"], "7200", "session_duration = 2h");

    // Status shows who is logged in and when the session ends...
    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], true, "{status:#}");
    let identity = access["identity"].as_str().unwrap_or_default();
    assert!(
        identity.starts_with("arn:aws:"),
        "the access identity is shown: {status:#}"
    );
    let expires_at = access["expires_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("the session's end is shown: {status:#}"));
    let expected = now_unix() + 7200;
    assert!(
        expires_at.abs_diff(expected) < 120,
        "session ends at {expires_at}, expected about {expected}"
    );
    assert_eq!(access["sts_region"], "us-east-1", "{status:#}");
    let text = world.credd(&["status"]);
    text.assert_success();
    assert!(
        text.stdout.contains(identity) && text.stdout.contains("session ends in "),
        "status shows who is logged in and until when: {text}"
    );

    // ...and every profile was warmed by the login itself, before any request for it.
    for profile in ["staging", "prod-audit"] {
        let p = world.profile_status(profile);
        assert_eq!(p["state"], "fresh", "{p:#}");
        assert!(p["last_refresh"].is_u64(), "{p:#}");
        assert!(p["expires_at"].as_u64() > Some(now_unix() + 1800), "{p:#}");
        assert_eq!(p["last_error"], serde_json::Value::Null, "{p:#}");
    }
    assert_eq!(stack.proxy().calls("AssumeRole"), 2, "one per profile");

    let staging = world
        .credential_process("staging")
        .expect("staging after login");
    let arn = stack
        .moto()
        .caller_arn(
            &staging.keys.access_key_id,
            &staging.keys.secret_access_key,
            staging.keys.session_token.as_deref(),
        )
        .expect("moto knows the staging credentials");
    assert!(
        arn.starts_with("arn:aws:sts::222222222222:assumed-role/Administrator/"),
        "{arn}"
    );
    assert_eq!(staging.account_id.as_deref(), Some("222222222222"));
    assert_eq!(
        stack.proxy().calls("AssumeRole"),
        2,
        "served from cache, no STS call"
    );
}

#[test]
fn login_reads_the_code_from_stdin_and_refuses_bad_or_missing_codes_without_calling_sts() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let world = &stack.world;

    for bad in ["12ab", "12345", "1234567"] {
        let out = world.credd(&["login", "--mfa-code", bad]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("6 digits"),
            "a malformed code is explained: {out}"
        );
        assert!(!out.stderr.contains(bad), "the code is not echoed: {out}");
    }
    let out = world.credd_stdin(&["login", "--mfa-code", "-"], "\n");
    out.assert_code(1);
    assert!(out.stderr.contains("no MFA code"), "{out}");

    // No terminal to ask on (cron, CI, an editor plugin) and no code: say how to pass one.
    let out = world.credd_without_terminal(&["login"], None);
    out.assert_code(1);
    assert!(
        out.stderr.contains("--mfa-code -"),
        "the error must point at `--mfa-code -`: {out}"
    );
    assert_eq!(
        stack.proxy().calls("GetSessionToken"),
        0,
        "nothing reached STS"
    );
    assert_eq!(world.status()["access"]["logged_in"], false);

    world
        .credd_stdin(&["login", "--mfa-code", "-"], "654321\n")
        .assert_success();
    let calls = stack.proxy().params("GetSessionToken");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["TokenCode"], "654321", "the code read from stdin");
    assert_eq!(calls[0]["SerialNumber"], stack.mfa_serial());
    assert_eq!(
        calls[0]["DurationSeconds"], "43200",
        "session_duration defaults to 12h"
    );
    world.wait_profile_state("staging", "fresh", Duration::from_secs(5));
}

#[test]
fn mfa_login_falls_over_to_the_next_region() {
    let mut stack = Stack::new(Access::Mfa);
    stack.write_config(Toml {
        access: r#"regions = ["us-east-1", "us-west-2"]"#,
        profiles: STAGING,
        ..Toml::default()
    });
    stack.world.start_daemon();
    stack
        .proxy()
        .set_mode(ProxyMode::FailRegion("us-east-1".into()));
    stack.login_with_mfa();

    let status = stack.world.status();
    assert_eq!(status["access"]["sts_region"], "us-west-2", "{status:#}");
    assert!(
        stack
            .proxy()
            .calls_in_region("GetSessionToken", "us-east-1")
            >= 1
    );
    assert_eq!(
        stack
            .proxy()
            .calls_in_region("GetSessionToken", "us-west-2"),
        1
    );
    assert_eq!(stack.proxy().forwarded("GetSessionToken"), 1);
    assert_eq!(
        stack.world.profile_status("staging")["sts_region"],
        "us-west-2",
        "{status:#}"
    );
    stack.world.credential_process("staging").expect("staging");
}

#[test]
fn a_code_sts_refuses_is_reported_as_such_and_nothing_is_logged_in() {
    let stack = Stack::start(
        Access::Mfa,
        Toml {
            access: r#"regions = ["us-east-1", "us-west-2"]"#,
            profiles: STAGING,
            ..Toml::default()
        },
    );
    // What STS answers GetSessionToken for a wrong (well-formed) code.
    stack.proxy().set_mode(ProxyMode::Reject {
        status: 403,
        code: "AccessDenied".into(),
        message: "MultiFactorAuthentication failed with invalid MFA one time pass code.".into(),
    });
    let start = Instant::now();
    let out = stack.world.credd(&["login", "--mfa-code", "987654"]);
    out.assert_code(1);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a refusal is final, not retried: {:?}",
        start.elapsed()
    );
    assert!(
        out.stderr.contains("MFA code was refused"),
        "the user learns the code was wrong: {out}"
    );
    assert!(
        !out.stderr.contains("987654"),
        "the code is not echoed: {out}"
    );
    assert_eq!(
        stack.proxy().calls("GetSessionToken"),
        1,
        "no other region is tried for a wrong code"
    );
    // STS cannot say which: the message names both, and the serial in use.
    assert!(
        out.stderr.contains("wrong or already used")
            && out
                .stderr
                .contains(&format!("{} is not the MFA device", stack.mfa_serial())),
        "{out}"
    );
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert!(!stack.world.runtime_dir.join("session.json").exists());
}

#[test]
fn a_serial_that_is_no_device_of_the_user_is_reported_as_such_not_as_a_wrong_code() {
    let stack = Stack::start(
        Access::Mfa,
        Toml {
            profiles: STAGING,
            ..Toml::default()
        },
    );
    // What real STS answers GetSessionToken for a serial that is not the user's device (moto
    // checks no MFA: the proxy answers as STS would).
    stack.proxy().reject_action(
        "GetSessionToken",
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA \
         serial number is valid and associated with this user.",
    );
    let out = stack.world.credd(&["login", "--mfa-code", MFA_CODE]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "mfa_serial {} is not an MFA device of this IAM user",
            stack.mfa_serial()
        )),
        "{out}"
    );
    assert!(!out.stderr.contains("code was refused"), "{out}");
    assert_eq!(stack.world.status()["access"]["logged_in"], false);
    // With the serial fixed (here: STS answering again), the same login works.
    stack.proxy().pass_action("GetSessionToken");
    stack.login_with_mfa();
}

#[test]
fn a_refused_code_for_a_device_of_another_account_names_the_serial_as_the_fault() {
    // The user's own key, and a serial of another account: no code of it can work for alice.
    let stack = Stack::start(
        Access::Key,
        Toml {
            access: "mfa_serial = \"arn:aws:iam::999999999999:mfa/alice\"",
            profiles: STAGING,
            ..Toml::default()
        },
    );
    // What STS answers then (moto checks no MFA: the proxy answers as STS would).
    stack.proxy().reject_action(
        "GetSessionToken",
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed with invalid MFA one time pass code.",
    );
    let out = stack.world.credd(&["login", "--mfa-code", MFA_CODE]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "mfa_serial arn:aws:iam::999999999999:mfa/alice is not an MFA device of this IAM user"
        ) && out
            .stderr
            .contains("The device is in account 999999999999, the key is "),
        "{out}"
    );
}

#[test]
fn a_session_ending_within_the_hour_is_flagged_in_status() {
    let stack = Stack::start(
        Access::Mfa,
        Toml {
            access: "session_duration = \"15m\"",
            profiles: STAGING,
            ..Toml::default()
        },
    );
    stack.login_with_mfa();
    let status = stack.world.status();
    let warning = status["access"]["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("ends in") && warning.contains("credd login"),
        "a session with 15 min left says so and what to do: {status:#}"
    );
    let text = stack.world.credd(&["status"]);
    assert!(
        text.assert_success()
            .stdout
            .contains("warning:  the access session ends in"),
        "{text}"
    );
}
