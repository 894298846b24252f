//! The HTTP port: taken by another user while the daemon is down, the token the owner's SDKs
//! sent there, the container routes another user reaches with it, and the service manager's
//! socket that keeps the port the owner's across restarts.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use super::{ATTACKER, Attacker, as_attacker};
use crate::http_support::{served, served_on};
use credd_tests::bins::daemon_bin;
use credd_tests::stack::{READY_DEADLINE, Stack};
use credd_tests::{free_port, system_python};

const FETCH: &str = include_str!("scripts/fetch.py");
const SQUATTER: &str = include_str!("scripts/squatter.py");

/// `GET path` from another user's program (with `headers`): `answer STATUS CODE` or
/// `no answer: WHY`.
fn fetch_as_attacker(addr: SocketAddr, path: &str, headers: &[&str]) -> String {
    let out = as_attacker(system_python())
        .args(["-c", FETCH])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(path)
        .args(headers)
        .output()
        .expect("run the attacker's request");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The squatter on `port` as the attacker, recording the tokens it is sent in `record`; its
/// first line (`listening`, or `taken: ...`).
fn squat(port: u16, record: &std::path::Path) -> (Attacker, String) {
    let mut squatter = Attacker::spawn(
        as_attacker(system_python())
            .args(["-c", SQUATTER])
            .arg(port.to_string())
            .arg(record),
    );
    let line = squatter.wait_for_line();
    (squatter, line.trim().to_owned())
}

#[test]
fn another_user_who_held_the_port_while_the_daemon_was_down_gets_nothing_with_what_it_collected() {
    credd_tests::require_root("acting as another user");
    let port = free_port();
    let mut served = served_on(&format!("127.0.0.1:{port}"), "");
    let addr = served.addr();
    let old = served.token();
    served.world.let_others_through();
    let record = served.world.root.join("squatter-record");
    std::fs::write(&record, "").expect("create the record");
    std::os::unix::fs::chown(&record, Some(ATTACKER), Some(ATTACKER)).expect("chown");

    // The daemon restarts; another user's program takes the port first.
    served.world.stop_daemon();
    let (squatter, line) = squat(port, &record);
    assert_eq!(
        line, "listening",
        "the port is free while the daemon is down"
    );
    // What remains without the service's socket: an SDK asking meanwhile sends its token there
    // (and would take the squatter's keys).
    let reply = served.request("GET", "/v1/credentials/staging", &[("Authorization", &old)]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        std::fs::read_to_string(&record)
            .expect("read the record")
            .trim(),
        old
    );
    // The daemon will not start behind it, and says who holds the port and what to do.
    let failed = served
        .world
        .try_start_daemon(&[])
        .expect_err("the port is taken");
    for said in [
        &format!("cannot listen on {addr}: another user, uid {ATTACKER} (nobody)"),
        "holds that port",
        "credd service install",
    ] {
        assert!(failed.log.contains(said), "{said:?} in\n{failed}");
    }

    // The squatter lets go; the daemon comes back, with a new token.
    drop(squatter);
    served.world.start_daemon();
    served.wait_all_fresh(READY_DEADLINE);
    let new = served.token();
    assert_ne!(new, old, "a new token at every start");
    let mine = |token: &str| {
        served
            .get_with_token("/v1/credentials/staging", token)
            .status
    };
    assert_eq!(mine(&old), 401, "the collected token is dead");
    assert_eq!(mine(&new), 200);
    // Another user with the collected token, or even the new one: the container routes serve
    // the owner's programs only.
    for token in [&old, &new] {
        assert_eq!(
            fetch_as_attacker(
                addr,
                "/v1/credentials/staging",
                &[&format!("Authorization: {token}")]
            ),
            "answer 403 ForeignUser"
        );
        assert_eq!(
            fetch_as_attacker(
                addr,
                "/v1/credentials",
                &[&format!("Authorization: {token}")]
            ),
            "answer 403 ForeignUser"
        );
    }
    assert_eq!(fetch_as_attacker(addr, "/healthz", &[]), "answer 200 -");
    let log = served.world.daemon_log();
    assert_eq!(
        log.matches("refused a credentials request from another user")
            .count(),
        1,
        "once a minute, not once each: {log}"
    );
}

#[test]
fn a_uid_named_in_allow_uids_is_served_with_the_token() {
    credd_tests::require_root("acting as another user");
    let served = served(&format!("allow_uids = [{ATTACKER}]"));
    let token = served.token();
    let auth = format!("Authorization: {token}");
    assert_eq!(
        fetch_as_attacker(served.addr(), "/v1/credentials/staging", &[&auth]),
        "answer 200 -"
    );
    assert_eq!(
        fetch_as_attacker(
            served.addr(),
            "/v1/credentials/staging",
            &["Authorization: wrong"]
        ),
        "answer 401 Unauthorized",
        "the token is still needed"
    );
}

/// The real `systemd-socket-activate` binds the port and starts the daemon at the first
/// connection, as systemd's `credd.socket` does: the daemon serves on the socket it was handed.
#[test]
fn a_daemon_started_by_socket_activation_serves_on_the_socket_it_was_handed() {
    let port = free_port();
    let mut stack = stack_on(port);
    let mut command = stack.world.command("systemd-socket-activate");
    command.arg("--listen").arg(format!("127.0.0.1:{port}"));
    // It starts the daemon with an environment of its own: the world's is passed by name.
    for (key, _) in stack.world.env() {
        command.arg("--setenv").arg(key);
    }
    command.arg(daemon_bin()).arg("--foreground");
    stack.world.spawn_daemon(command);
    // Nothing runs until a client knocks; its request waits in the queue meanwhile.
    let knock = std::thread::spawn(move || {
        wait_for_listener(port);
        credd_tests::http::request(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "GET",
            "/healthz",
            &[],
        )
    });
    let knocked = knock.join().expect("the first client");
    assert_eq!(
        (knocked.status, knocked.body.as_str()),
        (200, "ok"),
        "{knocked}"
    );
    stack
        .world
        .wait_daemon_ready()
        .unwrap_or_else(|failed| panic!("{failed}"));
    stack.wait_all_fresh(READY_DEADLINE);
    assert_eq!(
        stack.addr().port(),
        port,
        "status names the socket it serves on"
    );
    assert_eq!(stack.get_authorized("/v1/credentials/staging").status, 200);
    let log = stack.world.daemon_log();
    assert!(!log.contains("not on [daemon] listen"), "{log}");
}

/// What systemd and launchd do: the service manager holds the listening socket and hands it to
/// each daemon it starts. Here the test holds it, through two daemons: between them another
/// user cannot take the port.
#[test]
fn while_the_service_manager_holds_the_socket_a_restart_never_frees_the_port() {
    credd_tests::require_root("acting as another user");
    let held = TcpListener::bind("127.0.0.1:0").expect("bind the held socket");
    let port = held.local_addr().expect("its address").port();
    let mut stack = stack_on(port);
    stack.world.let_others_through();
    let record = stack.world.root.join("squatter-record");
    let start_with_socket = |world: &mut credd_tests::world::World| {
        world.spawn_daemon(activated(world.command("/bin/sh"), &held));
        world
            .wait_daemon_ready()
            .unwrap_or_else(|failed| panic!("{failed}"));
    };
    start_with_socket(&mut stack.world);
    stack.wait_all_fresh(READY_DEADLINE);
    assert_eq!(stack.get_authorized("/v1/credentials/staging").status, 200);
    stack.world.stop_daemon();
    let (_squatter, line) = squat(port, &record);
    assert_eq!(
        line, "taken: OSError",
        "another user cannot bind the port while the daemon is down"
    );
    start_with_socket(&mut stack.world);
    stack.wait_all_fresh(READY_DEADLINE);
    assert_eq!(stack.get_authorized("/v1/credentials/staging").status, 200);
}

/// alice's staging and audit profiles against moto, listening on `port`; no daemon yet.
fn stack_on(port: u16) -> Stack {
    Stack::builder()
        .direct()
        .listen(&format!("127.0.0.1:{port}"))
        .toml(credd_tests::stack::Toml {
            top: "default_profile = \"staging\"",
            profiles: credd_tests::stack::STAGING_AND_AUDIT,
            ..Default::default()
        })
        .build()
}

/// `command` (a `/bin/sh`) made to run credd-daemon with `socket` as fd 3 and `LISTEN_PID` /
/// `LISTEN_FDS` set, as systemd passes a socket unit's listener.
fn activated(mut command: Command, socket: &TcpListener) -> Command {
    let fd = socket.as_raw_fd();
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --foreground")
        .arg(daemon_bin());
    // SAFETY: dup2 is async-signal-safe; it leaves fd 3 without close-on-exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Waits until something listens on `port` (systemd-socket-activate binds it when it starts).
fn wait_for_listener(port: u16) {
    credd_tests::wait_until(Duration::from_secs(10), "the socket to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

#[test]
fn reset_token_and_logout_lock_out_every_holder_of_the_old_token() {
    let served = served("");
    let get = |token: &str| {
        served
            .get_with_token("/v1/credentials/staging", token)
            .status
    };
    let first = served.token();
    assert_eq!(get(&first), 200);
    let out = served.world.credd(&["reset-token"]);
    out.assert_success();
    assert!(out.stdout.contains("HTTP API token replaced"), "{out}");
    let second = served.token();
    assert_ne!(second, first);
    assert_eq!(get(&first), 401, "the leaked token is dead");
    assert_eq!(get(&second), 200);

    served.world.credd(&["logout"]).assert_success();
    let third = served.token();
    assert_ne!(third, second, "logout replaces the token too");
    assert_eq!(get(&second), 401);
    assert_eq!(
        get(&third),
        503,
        "the new token gets in (and finds no login)"
    );
}
