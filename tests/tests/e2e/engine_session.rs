//! The MFA session's life: it survives a daemon restart without a new prompt (kept only in the
//! runtime dir, 0600); `credd logout` forgets it and every role credential at once, even with a
//! refresh or a login under way; and a session STS calls expired asks for a new login.
//! moto's auth is off here: with it on, moto rejects the keys of its own GetSessionToken.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use credd_tests::bins::client_bin;
use credd_tests::proxy::ProxyMode;
use credd_tests::stack::{Access, MFA_CODE, STAGING_AND_AUDIT, Stack, Toml, files_containing};
use credd_tests::wait_until;
use credd_tests::world::{CmdOutput, ProcessCredentials};

const PROFILES: [&str; 2] = ["staging", "prod-audit"];
const WARM: Duration = Duration::from_secs(5);

#[test]
fn restart_keeps_the_mfa_session_without_a_new_login() {
    let mut stack = Stack::staging_and_audit(Access::Mfa);
    stack.login_with_mfa();
    let before = stack.world.status();
    let session_file = stack.world.runtime_dir.join("session.json");
    let mode = fs::metadata(&session_file)
        .expect("the MFA session is kept for restarts")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "session.json mode {mode:o}");
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&session_file).expect("read session.json"))
            .expect("session.json is JSON");
    let session_secret = saved["secret_access_key"]
        .as_str()
        .expect("the saved session has its secret key")
        .to_owned();
    let session_token = saved["session_token"]
        .as_str()
        .expect("the saved session has its token")
        .to_owned();

    stack.world.stop_daemon();
    stack.world.start_daemon();

    // Straight after the restart: no login, no new GetSessionToken, credentials come.
    for profile in PROFILES {
        stack.world.wait_profile_state(profile, "fresh", WARM);
        let creds = stack
            .world
            .credential_process(profile)
            .unwrap_or_else(|out| panic!("{profile} after a restart without login: {out}"));
        assert!(creds.keys.access_key_id.starts_with("ASIA"), "{creds:?}");
    }
    assert_eq!(
        stack.proxy().calls("GetSessionToken"),
        1,
        "the restart must not need a new MFA login"
    );
    let after = stack.world.status();
    for field in ["logged_in", "identity", "expires_at"] {
        assert_eq!(
            after["access"][field], before["access"][field],
            "access.{field} survives the restart"
        );
    }

    // The session is on disk only in the runtime dir: nothing in the state or config dirs
    // (nor anywhere else in the world but session.json) holds it.
    for secret in [&session_secret, &session_token] {
        for dir in [
            &stack.world.state_dir,
            &stack.world.home.join(".config"),
            &stack.world.root,
        ] {
            let found: Vec<_> = files_containing(dir, secret)
                .into_iter()
                .filter(|path| *path != session_file)
                .collect();
            assert!(
                found.is_empty(),
                "the session secret is written to {found:?}"
            );
        }
    }
}

#[test]
fn logout_forgets_every_credential_and_the_saved_session() {
    let mut stack = Stack::staging_and_audit(Access::Mfa);
    stack.login_with_mfa();
    let session_file = stack.world.runtime_dir.join("session.json");
    assert!(session_file.exists(), "the MFA session was saved");
    let mut served = Vec::new();
    for profile in PROFILES {
        stack.world.wait_profile_state(profile, "fresh", WARM);
        served.push(stack.world.credential_process(profile).expect("served"));
    }

    let out = stack.world.credd(&["logout"]);
    out.assert_success();
    assert!(
        out.stdout.contains("forgotten"),
        "logout says what it did: {out}"
    );
    assert!(!session_file.exists(), "logout deletes session.json");

    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert_eq!(status["access"]["identity"], serde_json::Value::Null);
    for profile in PROFILES {
        let p = stack.world.profile_status(profile);
        assert_eq!(p["state"], "cold", "{p:#}");
        assert_eq!(p["expires_at"], serde_json::Value::Null, "{p:#}");
        let start = Instant::now();
        let out = stack
            .world
            .credential_process(profile)
            .expect_err("nothing is served after logout");
        assert!(start.elapsed() < credd_tests::STALL, "{out}");
        out.assert_code(1);
        assert!(out.stderr.contains("`credd login`"), "{out}");
        for creds in &served {
            assert!(
                !out.stdout.contains(&creds.keys.access_key_id),
                "{profile}: {out}"
            );
        }
    }

    // A restart does not bring the forgotten session back.
    let assume_calls = stack.proxy().calls("AssumeRole");
    stack.world.stop_daemon();
    stack.world.start_daemon();
    assert_eq!(stack.world.status()["access"]["logged_in"], false);
    stack
        .world
        .credential_process("staging")
        .expect_err("still logged out after a restart")
        .assert_code(1);
    assert_eq!(
        stack.proxy().calls("AssumeRole"),
        assume_calls,
        "logged out: no STS calls"
    );
    assert_eq!(stack.proxy().calls("GetSessionToken"), 1);
}

/// Logs in again with STS slow, and logs out while staging's AssumeRole is in flight, then
/// waits for that call's answer to reach the daemon. Returns the `credd login` process, which
/// answers only once its warm-up gives up.
fn logout_while_a_login_warms_up(stack: &Stack) -> Child {
    stack.login_with_mfa();
    stack.world.wait_profile_state("staging", "fresh", WARM);
    stack.world.credd(&["logout"]).assert_success();

    stack
        .proxy()
        .set_mode(ProxyMode::Delay(Duration::from_millis(300)));
    let assume_calls = stack.proxy().calls("AssumeRole");
    let answered = stack.proxy().answered("AssumeRole");
    let login = stack
        .world
        .command(client_bin())
        .args(["login", "--mfa-code", MFA_CODE])
        .env("CREDD_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn credd login");
    wait_until(
        Duration::from_secs(10),
        "staging's AssumeRole in flight",
        || stack.proxy().calls("AssumeRole") > assume_calls,
    );
    stack.world.credd(&["logout"]).assert_success();
    wait_until(
        Duration::from_secs(10),
        "the AssumeRole in flight to be answered",
        || stack.proxy().answered("AssumeRole") > answered,
    );
    login
}

#[test]
fn a_login_overtaken_by_a_logout_does_not_claim_to_be_logged_in() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let login = logout_while_a_login_warms_up(&stack)
        .wait_with_output()
        .expect("wait for credd login");
    let login = CmdOutput {
        code: login.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&login.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&login.stderr).into_owned(),
    };
    login.assert_code(1);
    assert!(
        login.stderr.contains("logged out") && !login.stdout.contains("logged in"),
        "the login lost to the logout and must say so: {login}"
    );
}

/// Logs in, then has STS answer `ExpiredToken` (the session ended early: revoked, clock skew)
/// to the next call, made for a profile added now; waits until the daemon drops the session.
/// Returns staging's credentials, cached before.
fn expire_the_session(stack: &Stack) -> ProcessCredentials {
    stack.login_with_mfa();
    stack.world.wait_profile_state("staging", "fresh", WARM);
    let staging = stack.world.credential_process("staging").expect("staging");

    stack.proxy().set_mode(ProxyMode::Reject {
        status: 400,
        code: "ExpiredToken".into(),
        message: "The security token included in the request is expired".into(),
    });
    stack.write_config(Toml {
        profiles: &format!(
            "{STAGING_AND_AUDIT}\n[profiles.ops]\nrole_arn = \"arn:aws:iam::222222222222:role/Ops\"\n"
        ),
        ..Toml::default()
    });
    stack.world.credd(&["reload"]).assert_success();
    wait_until(WARM, "the session to be dropped as expired", || {
        let access = &stack.world.status()["access"];
        access["logged_in"] == false
            && access["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("expired"))
    });
    staging
}

#[test]
fn a_session_sts_calls_expired_asks_for_a_new_login_and_keeps_serving_the_cache() {
    let stack = Stack::staging_and_audit(Access::Mfa);
    let staging = expire_the_session(&stack);
    let out = stack
        .world
        .credential_process("ops")
        .expect_err("nothing for ops without a session");
    out.assert_code(1);
    assert!(
        out.stderr.contains("expired") && out.stderr.contains("`credd login`"),
        "the error says the session ended and what to do: {out}"
    );
    // What is cached is still good AWS credentials: it keeps being served.
    let cached = stack
        .world
        .credential_process("staging")
        .expect("staging from cache");
    assert_eq!(cached.keys, staging.keys);

    stack.proxy().set_mode(ProxyMode::Pass);
    stack.login_with_mfa();
    stack.world.wait_profile_state("ops", "fresh", WARM);
    stack
        .world
        .credential_process("ops")
        .expect("ops after a new login");
}

#[test]
fn a_session_sts_calls_expired_is_not_restored_by_a_restart() {
    let mut stack = Stack::staging_and_audit(Access::Mfa);
    expire_the_session(&stack);
    let session_file = stack.world.runtime_dir.join("session.json");
    assert!(!session_file.exists(), "the dead session is still saved");
    // (With STS unreachable after the restart, nothing would correct a restored session.)
    stack.proxy().set_mode(ProxyMode::Down);
    stack.world.stop_daemon();
    stack.world.start_daemon();
    let status = stack.world.status();
    assert_eq!(
        status["access"]["logged_in"], false,
        "a session STS called expired must not come back: {status:#}"
    );
}
