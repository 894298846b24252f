//! The file system: runtime and state dirs another user could enter or write into, an impostor
//! daemon in the owner's place, planted files and symlinks, the AWS CLI's token cache.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{ATTACKER, Attacker, as_attacker, offline_world, shared_tmp};
use credd_tests::stack::{Access, MFA_CODE, STAGING_AND_AUDIT, Stack, Toml, files_containing};
use credd_tests::system_python;
use credd_tests::wait_until;
use credd_tests::world::World;

const IMPOSTOR: &str = include_str!("scripts/impostor.py");

/// The impostor daemon listening at `socket`, as the attacker (`make_dir`: it creates the
/// socket's directory first, 0755).
fn impostor(socket: &Path, make_dir: bool) -> Attacker {
    let python = system_python();
    let mut child = Attacker(
        as_attacker(&python)
            .args(["-c", IMPOSTOR])
            .arg(socket)
            .arg(if make_dir { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the impostor as the attacker"),
    );
    assert_eq!(child.wait_for_line(), "listening\n", "the impostor is up");
    child
}

/// `(connections, bytes)` the impostor at `dir` has received.
fn impostor_received(dir: &Path) -> (u64, u64) {
    let text = fs::read_to_string(dir.join("received")).expect("the impostor's record");
    let mut parts = text.split_whitespace().map(|n| n.parse().expect("a count"));
    (
        parts.next().expect("connections"),
        parts.next().expect("bytes"),
    )
}

/// SIGTERM to a daemon started outside the world's usual paths.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

#[test]
fn an_impostor_in_a_runtime_dir_of_another_user_gets_nothing_from_the_client() {
    credd_tests::require_root("acting as another user");
    let mut world = offline_world();
    // What the old default was without XDG_RUNTIME_DIR: a guessable name in the shared /tmp,
    // which the attacker took first.
    let taken = shared_tmp(&world).join("credd-0");
    let _impostor = impostor(&taken.join("control.sock"), true);
    world.set_env("CREDD_RUNTIME_DIR", &taken.display().to_string());
    let refusal = format!(
        "refusing to talk to credd-daemon through {}: it belongs to uid {ATTACKER} (nobody), not to you",
        taken.display()
    );
    for args in [
        &["login", "--mfa-code", MFA_CODE][..],
        &["credential-process", "staging"],
        &["exec", "staging", "--", "true"],
        &["env"],
    ] {
        let out = world.credd(args);
        out.assert_code(1);
        assert!(out.stderr.contains(&refusal), "credd {args:?}: {out}");
        assert!(out.stdout.is_empty(), "credd {args:?}: {out}");
    }
    // Nor does it start a daemon of its own there (which would refuse the dir anyway).
    let out = world.credd_autostart(&["status"]);
    out.assert_code(1);
    assert!(out.stderr.contains(&refusal), "{out}");
    assert_eq!(
        impostor_received(&taken),
        (0, 0),
        "the impostor was never even connected to"
    );
}

#[test]
fn an_impostor_listening_on_the_owners_socket_path_gets_no_byte() {
    credd_tests::require_root("acting as another user");
    let world = offline_world();
    // The attacker's listener ends up at the owner's socket path (a socket keeps its listener
    // when renamed): the directory checks pass, only the peer check can catch it. The lair is
    // beside the runtime dir: a rename cannot cross file systems.
    world.let_others_through();
    let lair = world.runtime_dir.parent().expect("a parent").join("lair");
    fs::create_dir(&lair).expect("create the lair");
    fs::set_permissions(&lair, fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let _impostor = impostor(&lair.join("control.sock"), false);
    fs::rename(lair.join("control.sock"), world.socket_path()).expect("move the socket in");
    for args in [
        &["login", "--mfa-code", MFA_CODE][..],
        &["credential-process", "staging"],
        &["env", "--json"],
    ] {
        let out = world.credd(args);
        out.assert_code(1);
        assert!(
            out.stderr.contains(&format!(
                "refusing to talk to credd-daemon through {}: the process listening on it runs as \
                 uid {ATTACKER} (nobody), not as you",
                world.socket_path().display()
            )),
            "credd {args:?}: {out}"
        );
    }
    wait_until(
        Duration::from_secs(5),
        "the impostor to count 3 connections",
        || impostor_received(&lair).0 == 3,
    );
    assert_eq!(
        impostor_received(&lair).1,
        0,
        "nothing was sent: not the MFA code, not a request"
    );
}

#[test]
fn without_xdg_runtime_dir_the_runtime_dir_is_private_under_home_not_in_tmp() {
    let world = offline_world();
    let run = |args: &[&str]| {
        let out = world
            .command(credd_tests::bins::client_bin())
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("CREDD_RUNTIME_DIR")
            .env("TMPDIR", "/tmp")
            .output()
            .expect("run credd");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let expected = world.home.join(".cache").join("credd").join("run");
    let (code, stdout, stderr) = run(&["status", "--json"]);
    assert_eq!(code, Some(0), "the daemon autostarts there: {stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("status JSON");
    // Outside the world's marked runtime dir, so World's drop would miss it: stopped here.
    let _stop = StopOnDrop(status["pid"].as_i64().expect("pid") as i32);
    assert_eq!(
        status["paths"]["runtime_dir"],
        expected.display().to_string()
    );
    let meta = fs::symlink_metadata(&expected).expect("the runtime dir");
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), credd_proto::paths::current_uid());
}

#[test]
fn a_runtime_dir_others_could_write_into_is_refused_and_nothing_planted_is_used() {
    credd_tests::require_root("acting as another user");
    let mut world = offline_world();
    let bashrc = world.home.join(".bashrc");
    fs::write(&bashrc, "# the owner's shell\n").expect("write .bashrc");
    // CREDD_RUNTIME_DIR at a loose directory the attacker has been busy in.
    let loose = shared_tmp(&world).join("loose");
    fs::create_dir(&loose).expect("create the loose dir");
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o777)).expect("chmod 777");
    let plant = |name: &str| {
        let out = as_attacker("ln")
            .arg("-s")
            .arg(&bashrc)
            .arg(loose.join(name))
            .output()
            .expect("ln as the attacker");
        assert!(out.status.success(), "{out:?}");
    };
    for pid in 1..=64 {
        plant(&format!("http.tmp.{pid}"));
    }
    plant("http.token");
    let out = as_attacker("sh")
        .arg("-c")
        .arg(r#"echo '{"source":"iam-user","aws_profile":"access","access_key_id":"ASIAATTACKER","secret_access_key":"x","expires_at":4102444800,"identity_arn":"arn:aws:iam::666666666666:user/mallory"}' > "$0""#)
        .arg(loose.join("session.json"))
        .output()
        .expect("plant a session");
    assert!(out.status.success(), "{out:?}");
    world.set_env("CREDD_RUNTIME_DIR", &loose.display().to_string());

    let failed = world
        .try_start_daemon(&[])
        .expect_err("a runtime dir others could write into is refused");
    assert!(
        failed.log.contains(&format!(
            "runtime dir {} was writable by others (mode 0777) and holds http.tmp.1",
            loose.display()
        )),
        "{failed}"
    );
    assert!(
        failed.log.contains("another user could have planted them"),
        "{failed}"
    );
    assert_eq!(
        fs::read_to_string(&bashrc).expect("read .bashrc"),
        "# the owner's shell\n",
        "nothing was written through a planted symlink"
    );
    assert_eq!(
        fs::metadata(&loose).expect("stat").mode() & 0o777,
        0o700,
        "the door is closed even so"
    );

    // Emptied (by the user, as the message says), it is used.
    fs::remove_dir_all(&loose).expect("empty it");
    fs::create_dir(&loose).expect("recreate");
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o777)).expect("chmod 777");
    world.start_daemon();
    assert_eq!(fs::metadata(&loose).expect("stat").mode() & 0o777, 0o700);
    world.credd(&["status"]).assert_success();
}

#[test]
fn planted_or_foreign_files_in_the_runtime_dir_are_not_restored() {
    credd_tests::require_root("giving files away");
    let mut stack = Stack::start(Access::Mfa, Toml::default());
    stack.login_with_mfa();
    let session = stack.world.runtime_dir.join("session.json");
    let token = stack.world.token_file();
    assert!(session.exists(), "saved on tmpfs");
    stack.world.stop_daemon();
    // Another user's session file and token: neither is believed.
    std::os::unix::fs::chown(&session, Some(ATTACKER), Some(ATTACKER)).expect("chown session");
    let old_token = stack.world.http_token();
    std::os::unix::fs::chown(&token, Some(ATTACKER), Some(ATTACKER)).expect("chown token");
    stack.world.start_daemon();
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], false, "{status:#}");
    assert_ne!(
        stack.world.http_token(),
        old_token,
        "a new token of our own"
    );
    assert_eq!(
        fs::metadata(&token).expect("stat").uid(),
        credd_proto::paths::current_uid()
    );
    let log = stack.world.daemon_log();
    assert!(log.contains("it belongs to another user"), "{log}");

    // A session file that is a symlink (to a copy of a real session) is not followed either.
    stack.login_with_mfa();
    stack.world.stop_daemon();
    let elsewhere = stack.world.root.join("session-copy.json");
    fs::copy(&session, &elsewhere).expect("copy the session");
    fs::remove_file(&session).expect("remove it");
    std::os::unix::fs::symlink(&elsewhere, &session).expect("plant a symlink");
    stack.world.start_daemon();
    assert_eq!(stack.world.status()["access"]["logged_in"], false);
    assert!(stack.world.daemon_log().contains("it is a symlink"));
}

#[test]
fn on_persistent_disk_the_mfa_session_is_kept_in_memory_only() {
    let mut stack = Stack::builder()
        .access(Access::Mfa)
        .world(World::on_disk())
        .toml(Toml {
            profiles: STAGING_AND_AUDIT,
            ..Toml::default()
        })
        .start();
    stack.login_with_mfa();
    let status = stack.world.status();
    let storage = status["access"]["session_storage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        storage.starts_with("memory only: ") && storage.contains("not tmpfs"),
        "{status:#}"
    );
    let text = stack
        .world
        .credd(&["status"])
        .assert_success()
        .stdout
        .clone();
    assert!(text.contains("session:  kept in memory only"), "{text}");
    assert!(!stack.world.runtime_dir.join("session.json").exists());
    let creds = stack
        .world
        .credential_process("staging")
        .expect("credentials");
    assert!(
        files_containing(&stack.world.root, &creds.keys.secret_access_key).is_empty(),
        "no secret anywhere on disk"
    );
    stack.world.stop_daemon();
    stack.world.start_daemon();
    assert_eq!(
        stack.world.status()["access"]["logged_in"],
        false,
        "a restart needs a new login"
    );
}

#[test]
fn the_background_daemons_log_is_rotated_not_grown_forever() {
    let world = offline_world();
    fs::create_dir_all(&world.state_dir).expect("state dir");
    let log = world.state_dir.join("daemon.log");
    // Weeks of an old daemon's log.
    let old = "2026-11-01T00:00:00Z  WARN an old line\n".repeat(120_000);
    fs::write(&log, &old).expect("write the old log");
    world.credd_autostart(&["status"]).assert_success();
    // The daemon answers `status` as soon as its socket listens, a moment before it logs that
    // it is ready: wait for the line, in the new file.
    wait_until(Duration::from_secs(10), "the log to rotate", || {
        log.with_extension("log.1").exists()
            && fs::read_to_string(&log).is_ok_and(|l| l.contains("credd-daemon ready"))
    });
    let current = fs::read_to_string(&log).expect("read the new log");
    assert!(current.len() < 64 * 1024, "{} bytes", current.len());
    assert_eq!(
        fs::metadata(log.with_extension("log.1"))
            .expect("stat")
            .len(),
        old.len() as u64
    );
    assert_eq!(fs::metadata(&log).expect("stat").mode() & 0o077, 0);
}

#[test]
fn a_foreign_world_readable_or_linked_token_cache_is_not_taken_up() {
    credd_tests::require_root("giving files away");
    use credd_tests::identity_center::{Op, Options};
    let mut stack = Stack::builder()
        .access(Access::SSO_DEVICE)
        .identity_center(Options::default())
        .toml(Toml {
            profiles: credd_tests::stack::SSO_PROFILES,
            ..Toml::default()
        })
        .build();
    // A real login of the AWS CLI's (played by botocore), in the shared cache file.
    crate::identity_center_fake::run_script(
        &stack.world,
        stack.identity_center(),
        "login",
        serde_json::json!({
            "start_url": stack.identity_center().start_url(),
            "session": credd_tests::stack::SSO_SESSION,
        }),
    );
    let cache = stack.sso_cache_file();
    /// What the log says, and how the file was spoiled.
    type Spoil<'a> = (&'a str, &'a dyn Fn(&Path));
    let attempts: [Spoil; 3] = [
        ("it belongs to another user", &|f| {
            std::os::unix::fs::chown(f, Some(ATTACKER), Some(ATTACKER)).expect("chown");
        }),
        ("others may read or write it", &|f| {
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).expect("chmod");
        }),
        ("it is a symlink", &|f| {
            let elsewhere = f.with_extension("elsewhere");
            fs::rename(f, &elsewhere).expect("move it");
            std::os::unix::fs::symlink(&elsewhere, f).expect("plant a symlink");
        }),
    ];
    let pristine = fs::read(&cache).expect("the CLI's token");
    for (why, spoil) in attempts {
        let _ = fs::remove_file(&cache);
        let _ = fs::remove_file(cache.with_extension("elsewhere"));
        fs::write(&cache, &pristine).expect("restore");
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o600)).expect("chmod");
        spoil(&cache);
        stack.world.start_daemon();
        // A request looks for a CLI login too: still nothing taken up.
        assert!(
            stack.world.credential_process("sso-admin").is_err(),
            "{why}"
        );
        let status = stack.world.status();
        assert_eq!(status["access"]["logged_in"], false, "{why}: {status:#}");
        let log = stack.world.daemon_log();
        assert!(
            log.contains(why) && log.contains("not using the AWS CLI token cache"),
            "{why}: {log}"
        );
        assert_eq!(
            stack.identity_center().calls(Op::GetRoleCredentials),
            0,
            "{why}: the token never left the daemon"
        );
        stack.world.stop_daemon();
    }
}

#[test]
fn a_state_dir_another_user_could_write_into_is_refused_and_nothing_planted_is_used() {
    credd_tests::require_root("acting as another user");
    let mut world = offline_world();
    let bashrc = world.home.join(".bashrc");
    fs::write(&bashrc, "# the owner's shell\n").expect("write .bashrc");
    // A state dir the attacker made first, with the current profile of their choosing and the
    // log linked to a file of the owner's.
    let state = shared_tmp(&world).join("credd-state");
    let plant = as_attacker("sh")
        .arg("-c")
        .arg(
            r#"mkdir -m 777 "$0" && echo '{"current_profile":"prod-audit"}' > "$0/state.json" \
               && chmod 666 "$0/state.json" && ln -s "$1" "$0/daemon.log""#,
        )
        .arg(&state)
        .arg(&bashrc)
        .output()
        .expect("plant as the attacker");
    assert!(plant.status.success(), "{plant:?}");
    world.set_env("CREDD_STATE_DIR", &state.display().to_string());
    let foreign = format!(
        "state dir {} belongs to uid {ATTACKER}, not to you",
        state.display()
    );
    let failed = world
        .try_start_daemon(&[])
        .expect_err("a state dir of another user is refused");
    assert!(failed.log.contains(&foreign), "{failed}");
    assert!(failed.log.contains("set CREDD_STATE_DIR"), "{failed}");
    // The background start (what `credd` does when no daemon runs) refuses it before it opens
    // the log there.
    let out = world.credd_autostart(&["status"]);
    out.assert_code(1);
    assert!(out.stderr.contains(&foreign), "{out}");

    // The owner's own directory, but open to everyone and holding files: refused too.
    fs::remove_dir_all(&state).expect("clear it");
    fs::create_dir(&state).expect("recreate");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).expect("chmod 777");
    let plant = as_attacker("sh")
        .arg("-c")
        .arg(r#"ln -s "$1" "$0/daemon.log""#)
        .arg(&state)
        .arg(&bashrc)
        .output()
        .expect("plant as the attacker");
    assert!(plant.status.success(), "{plant:?}");
    let out = world.credd_autostart(&["status"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "state dir {} was writable by others (mode 0777) and holds daemon.log",
            state.display()
        )),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(&bashrc).expect("read .bashrc"),
        "# the owner's shell\n",
        "no log line was written through the planted link"
    );

    // A state file that is not a private file of the owner's is ignored (the profile is the
    // config's default, not the planted one).
    fs::remove_dir_all(&state).expect("clear it");
    fs::create_dir(&state).expect("recreate");
    fs::write(
        state.join("state.json"),
        r#"{"current_profile":"prod-audit"}"#,
    )
    .expect("plant");
    fs::set_permissions(state.join("state.json"), fs::Permissions::from_mode(0o666))
        .expect("chmod 666");
    world.start_daemon();
    assert_eq!(world.status()["current_profile"], "staging");
    assert_eq!(fs::metadata(&state).expect("stat").mode() & 0o777, 0o700);
    assert!(
        world.daemon_log().contains("ignoring the state file"),
        "{}",
        world.daemon_log()
    );
}
