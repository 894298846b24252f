//! Secrets stay secret: after a day's worth of commands (login, credentials, status, errors,
//! logout) with the daemon logging at trace level, no secret the daemon ever held shows up in
//! its log, in `credd status`, in an error message, or in a file outside the runtime dir.
//! moto's auth is off so the MFA session's own secrets are part of the check.

use std::fs;
use std::time::Duration;

use credd_tests::proxy::ProxyMode;
use credd_tests::stack::{Access, STAGING_AND_AUDIT, Stack, Toml, files_containing};
use credd_tests::world::CmdOutput;

const WARM: Duration = Duration::from_secs(10);
/// A distinctive one-time code, to look for afterwards.
const CODE: &str = "902741";

#[test]
fn secrets_never_appear_in_the_log_status_or_errors() {
    let mut stack = Stack::new(Access::Mfa);
    stack.world.set_env("RUST_LOG", "trace");
    stack.world.set_env("CREDD_LOG", "trace");
    stack.write_config(Toml {
        profiles: STAGING_AND_AUDIT,
        ..Toml::default()
    });
    stack.world.start_daemon();
    let world = &stack.world;
    // Everything the user or a script would read, except the credentials they asked for.
    let mut shown: Vec<CmdOutput> = Vec::new();

    shown.push(world.credd(&["credential-process", "staging"]));
    shown.push(world.credd(&["login", "--mfa-code", "12ab"]));
    shown.push(
        world
            .credd_stdin(&["login", "--mfa-code", "-"], &format!("{CODE}\n"))
            .assert_success()
            .clone(),
    );
    let session: serde_json::Value = serde_json::from_slice(
        &fs::read(world.runtime_dir.join("session.json")).expect("the saved session"),
    )
    .expect("session.json is JSON");
    let mut secrets = vec![
        (
            "the IAM user's secret key",
            stack.user().secret_access_key.clone(),
        ),
        ("the MFA code", CODE.to_owned()),
    ];
    for field in ["secret_access_key", "session_token"] {
        let value = session[field].as_str().expect("saved session field");
        secrets.push(("the MFA session", value.to_owned()));
    }
    for profile in ["staging", "prod-audit"] {
        world.wait_profile_state(profile, "fresh", WARM);
        let creds = world.credential_process(profile).expect(profile);
        secrets.push(("a role's secret key", creds.keys.secret_access_key));
        secrets.push((
            "a role's session token",
            creds
                .keys
                .session_token
                .expect("role credentials have a token"),
        ));
    }

    shown.push(world.credd(&["status"]));
    shown.push(world.credd(&["status", "--json"]));
    shown.push(world.credd(&["profiles", "--json"]));
    shown.push(world.credd(&["credential-process", "no-such-profile"]));
    // STS errors travel into status and error messages: make some.
    stack.proxy().set_mode(ProxyMode::Down);
    stack.write_config(Toml {
        profiles: &format!(
            "{STAGING_AND_AUDIT}\n[profiles.ops]\nrole_arn = \"arn:aws:iam::222222222222:role/Ops\"\n"
        ),
        ..Toml::default()
    });
    shown.push(world.credd(&["reload"]));
    shown.push(world.credd(&["credential-process", "ops"]));
    world.wait_profile_state("ops", "failing", WARM);
    shown.push(world.credd(&["status", "--json"]));
    shown.push(world.credd(&["login", "--mfa-code", "000000"]));
    stack.proxy().set_mode(ProxyMode::Pass);
    shown.push(world.credd(&["logout"]));
    shown.push(world.credd(&["credential-process", "staging"]));
    shown.push(world.credd(&["status", "--json"]));
    stack.world.stop_daemon();

    let log = stack.world.daemon_log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the daemon logged at a verbose level, or this test proves little:\n{log}"
    );
    for (what, secret) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{what} is in the daemon log"
        );
        for out in &shown {
            assert!(
                !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
                "{what} is shown to the user: {out}"
            );
        }
        let session_file = stack.world.runtime_dir.join("session.json");
        let on_disk: Vec<_> = files_containing(&stack.world.root, secret)
            .into_iter()
            .filter(|p| *p != stack.world.credentials_file() && *p != session_file)
            .collect();
        assert!(on_disk.is_empty(), "{what} is written to {on_disk:?}");
    }
}
