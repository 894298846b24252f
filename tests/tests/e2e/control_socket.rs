//! The control socket as a peer sees it: its place on disk (0700 dir, 0600 socket), the framed,
//! versioned protocol spoken directly (bad frames get an error reply and a closed connection while
//! everyone else is still served), the peer-uid check, and the daemon's lifecycle around the
//! socket (stale socket of a killed daemon, SIGTERM/SIGINT, a second daemon).
//!
//! No STS is needed: the worlds hold no access key, so the daemon never calls one.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use credd_proto::{
    ErrorCode, MAX_FRAME, PROTOCOL_VERSION, Request, Response, decode_response, encode_request,
    read_frame,
};
use credd_tests::bins::{client_bin, daemon_bin};
use credd_tests::world::World;
use credd_tests::{system_python, wait_until};

use credd_tests::stack::OFFLINE_CONFIG as CONFIG;

/// Our name in frames we send.
const SOFTWARE: &str = "credd-tests 0.0.0";
/// How long a raw connection waits for the daemon's answer before the test fails.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// The nobody user: someone other than the daemon's owner.
const OTHER_UID: u32 = 65534;

/// A world with the standard config and a running daemon.
fn running_world() -> World {
    let mut world = World::new();
    world.write_config(CONFIG);
    world.start_daemon();
    world
}

fn connect(world: &World) -> UnixStream {
    let stream = UnixStream::connect(world.socket_path())
        .unwrap_or_else(|e| panic!("connect to {}: {e}", world.socket_path().display()));
    stream
        .set_read_timeout(Some(REPLY_DEADLINE))
        .expect("set a read timeout");
    stream
}

/// A frame around a hand-made body: 4-byte big-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .expect("test bodies are small")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// Sends `bytes` and decodes the one response frame that comes back.
fn send(stream: &mut UnixStream, bytes: &[u8]) -> Response {
    stream
        .write_all(bytes)
        .expect("write to the control socket");
    let body = read_frame(stream).expect("a response frame from the daemon");
    decode_response(SOFTWARE, &body).expect("a response this crate's protocol version decodes")
}

fn ask(stream: &mut UnixStream, request: &Request) -> Response {
    send(stream, &encode_request(SOFTWARE, request))
}

fn error_reply(response: Response) -> (ErrorCode, String) {
    match response {
        Response::Error(e) => (e.code, e.message),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// The daemon closed its end: the next read sees end-of-file (or a reset), not a timeout.
#[track_caller]
fn assert_closed_by_daemon(stream: &mut UnixStream) {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected the connection closed, got {n} more bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the connection closed, got {e}"),
    }
}

/// The owner is still served on a fresh connection.
#[track_caller]
fn assert_still_serving(world: &World) {
    let mut other = connect(world);
    match ask(&mut other, &Request::Profiles) {
        Response::Profiles { profiles, .. } => assert_eq!(profiles.len(), 2),
        other => panic!("expected the profiles, got {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn signal_daemon(world: &World, signal: libc::c_int) {
    let pid = world.daemon_pid().expect("the world's daemon is running");
    let pid = libc::pid_t::try_from(pid).expect("a pid fits in pid_t");
    // SAFETY: kill(2) on the pid of the world's own daemon child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

#[test]
fn runtime_dir_is_created_0700_and_the_socket_is_0600() {
    let mut world = World::new();
    world.write_config(CONFIG);
    fs::remove_dir(&world.runtime_dir).expect("remove the world's runtime dir");
    world.start_daemon();
    assert_eq!(mode(&world.runtime_dir), 0o700, "runtime dir");
    assert_eq!(mode(&world.socket_path()), 0o600, "control socket");
}

#[test]
fn runtime_dir_open_to_others_is_tightened_to_0700() {
    let mut world = World::new();
    world.write_config(CONFIG);
    chmod(&world.runtime_dir, 0o755);
    world.start_daemon();
    assert_eq!(mode(&world.runtime_dir), 0o700);
    assert_eq!(mode(&world.socket_path()), 0o600);
}

#[test]
fn one_connection_carries_several_requests() {
    let world = running_world();
    let mut stream = connect(&world);
    match ask(&mut stream, &Request::Status) {
        Response::Status(report) => {
            assert_eq!(report.current_profile.as_deref(), Some("staging"));
            assert_eq!(
                report.paths.socket,
                world.socket_path().display().to_string()
            );
        }
        other => panic!("expected a status report, got {other:?}"),
    }
    let switched = ask(
        &mut stream,
        &Request::Switch {
            profile: "prod-audit".into(),
        },
    );
    assert_eq!(
        switched,
        Response::Switched {
            previous: Some("staging".into()),
            current: "prod-audit".into()
        }
    );
}

#[test]
fn version_mismatch_reply_names_both_versions_and_closes_the_connection() {
    let world = running_world();
    let mut stream = connect(&world);
    let future = PROTOCOL_VERSION + 1;
    let body = format!(
        r#"{{"version":{future},"software":"credd 9.9.9","request":{{"command":"status"}}}}"#
    );
    let (code, message) = error_reply(send(&mut stream, &frame(body.as_bytes())));
    assert_eq!(code, ErrorCode::VersionMismatch, "{message}");
    assert!(
        message.contains(&format!("credd 9.9.9 speaks protocol {future}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "credd-daemon {} speaks protocol {PROTOCOL_VERSION}",
            env!("CARGO_PKG_VERSION")
        )),
        "{message}"
    );
    assert_closed_by_daemon(&mut stream);
    assert_still_serving(&world);
}

#[test]
fn a_peers_name_with_terminal_escapes_reaches_neither_the_reply_nor_the_log() {
    let world = running_world();
    let mut stream = connect(&world);
    // Clear the screen, retitle the terminal, ring the bell: what `cat daemon.log` would run.
    let body = r#"{"version":99,"software":"\u001b[2J\u001b]0;owned\u0007credd 9","request":{"command":"status"}}"#;
    let (code, message) = error_reply(send(&mut stream, &frame(body.as_bytes())));
    assert_eq!(code, ErrorCode::VersionMismatch, "{message}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(
        message.contains("?[2J?]0;owned?credd 9 speaks protocol 99"),
        "{message}"
    );
    assert_closed_by_daemon(&mut stream);
    wait_until(Duration::from_secs(5), "the refusal in the log", || {
        world.daemon_log().contains("bad control request")
    });
    let log = world.daemon_log();
    assert!(!log.contains('\u{1b}') && !log.contains('\u{7}'), "{log:?}");
}

#[test]
fn malformed_json_gets_an_error_reply_and_the_connection_closes() {
    let world = running_world();
    let mut stream = connect(&world);
    let (code, message) = error_reply(send(&mut stream, &frame(b"{this is not json")));
    assert_eq!(code, ErrorCode::MalformedRequest, "{message}");
    assert!(message.contains("unknown message"), "{message}");
    assert_closed_by_daemon(&mut stream);
    assert_still_serving(&world);
}

#[test]
fn unknown_command_from_a_newer_client_says_to_check_versions() {
    let world = running_world();
    let mut stream = connect(&world);
    let body = format!(
        r#"{{"version":{PROTOCOL_VERSION},"software":"credd 0.2.0","request":{{"command":"teleport"}}}}"#
    );
    let (code, message) = error_reply(send(&mut stream, &frame(body.as_bytes())));
    assert_eq!(code, ErrorCode::MalformedRequest, "{message}");
    assert!(message.contains("up to date"), "{message}");
    assert_closed_by_daemon(&mut stream);
    assert_still_serving(&world);
}

#[test]
fn oversized_length_header_is_refused_without_waiting_for_the_body() {
    let world = running_world();
    let mut stream = connect(&world);
    let announced = u32::try_from(MAX_FRAME + 1).expect("MAX_FRAME fits a u32");
    // Only the header: an answer proves the daemon did not wait for (or allocate) the body.
    let (code, message) = error_reply(send(&mut stream, &announced.to_be_bytes()));
    assert_eq!(code, ErrorCode::FrameTooLarge, "{message}");
    assert!(message.contains(&announced.to_string()), "{message}");
    assert_closed_by_daemon(&mut stream);

    let mut stream = connect(&world);
    let (code, _) = error_reply(send(&mut stream, &u32::MAX.to_be_bytes()));
    assert_eq!(code, ErrorCode::FrameTooLarge);
    assert_closed_by_daemon(&mut stream);
    assert_still_serving(&world);
}

#[test]
fn half_sent_frame_does_not_hold_up_other_clients() {
    let world = running_world();
    let request = encode_request(SOFTWARE, &Request::Profiles);
    let (head, tail) = request.split_at(6);
    let mut slow = connect(&world);
    slow.write_all(head)
        .expect("send the first bytes of a frame");

    // Meanwhile: a bad client is refused and a good one is served.
    let mut bad = connect(&world);
    error_reply(send(&mut bad, &frame(b"[]")));
    assert_closed_by_daemon(&mut bad);
    assert_still_serving(&world);

    // The slow client was never cut off: the rest of its frame gets its answer.
    match send(&mut slow, tail) {
        Response::Profiles { current, .. } => assert_eq!(current.as_deref(), Some("staging")),
        other => panic!("expected the profiles, got {other:?}"),
    }
}

/// Connects as another user, sends the hex-encoded frame, prints `connected` once connected,
/// then `answered` if any byte came back, `dropped` if the daemon closed the connection.
const PEER_SCRIPT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
print("connected", flush=True)
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
    data = s.recv(4)
except (BrokenPipeError, ConnectionResetError):
    data = b""
print("answered" if data else "dropped", flush=True)
"#;

/// Runs [`PEER_SCRIPT`] as `uid` (None: as ourselves) with `python`; returns its stdout.
fn peer_sends_status(world: &World, python: &Path, uid: Option<u32>) -> String {
    let frame = encode_request(SOFTWARE, &Request::Status);
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(PEER_SCRIPT)
        .arg(world.socket_path())
        .arg(hex)
        .env_clear()
        .current_dir("/");
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {} as uid {uid:?}: {e}", python.display()));
    assert!(
        out.status.success(),
        "peer script as uid {uid:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn another_user_is_dropped_even_when_the_socket_is_open_to_all() {
    credd_tests::require_root("acting as another user");
    let python = &system_python();
    let world = running_world();
    // Undo the file-system protection so only the daemon's own peer check stands in the way.
    world.let_others_through();
    chmod(&world.runtime_dir, 0o777);
    chmod(&world.socket_path(), 0o666);

    assert_eq!(
        peer_sends_status(&world, python, None),
        "connected\nanswered\n",
        "the owner, through the same script, is answered"
    );
    assert_eq!(
        peer_sends_status(&world, python, Some(OTHER_UID)),
        "connected\ndropped\n",
        "uid {OTHER_UID} reached the socket, and the daemon dropped it"
    );
    assert_still_serving(&world);
    wait_until(
        Duration::from_secs(5),
        "the log to name the refused uid",
        || world.daemon_log().contains(&format!("uid={OTHER_UID}")),
    );
    assert!(
        world
            .daemon_log()
            .contains("refused a control connection from another user"),
        "{}",
        world.daemon_log()
    );
}

/// Whether a user other than the owner can run `path` (o+x on it and every dir above it).
#[test]
fn another_users_credd_will_not_talk_through_a_runtime_dir_that_is_not_its_own() {
    credd_tests::require_root("acting as another user");
    let world = running_world();
    world.let_others_through();
    chmod(&world.runtime_dir, 0o777);
    chmod(&world.socket_path(), 0o666);
    // A copy the other user can run wherever the checkout lives (e.g. under a 0700 home).
    let credd = world.root.join("credd-for-others");
    fs::copy(client_bin(), &credd).expect("copy credd into the world");
    chmod(&credd, 0o755);

    let out = credd_tests::output_of_fresh_program(
        world
            .command(&credd)
            .arg("status")
            .env("CREDD_NO_AUTOSTART", "1")
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .current_dir("/"),
    )
    .expect("run credd as another user");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "the other user saw: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "refusing to talk to credd-daemon through {}: it belongs to uid 0 (root), not to you",
            world.runtime_dir.display()
        )),
        "{stderr}"
    );
    assert_still_serving(&world);
}

#[test]
fn killed_daemon_leaves_a_stale_socket_that_the_next_start_replaces() {
    let mut world = running_world();
    world.credd(&["status"]).assert_success();
    signal_daemon(&world, libc::SIGKILL);
    let status = world.wait_daemon_exit(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        world.socket_path().exists(),
        "SIGKILL leaves the socket file"
    );
    let err = UnixStream::connect(world.socket_path()).expect_err("nobody listens any more");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");

    world.start_daemon();
    let status = world.credd(&["--json", "status"]);
    let pid = status.assert_success().json()["pid"].as_u64();
    assert_eq!(
        pid,
        world.daemon_pid().map(u64::from),
        "the new daemon answers"
    );
    assert!(
        world.daemon_log().contains("removing stale control socket"),
        "{}",
        world.daemon_log()
    );
}

fn signal_shuts_down_cleanly(signal: libc::c_int) {
    let mut world = running_world();
    // Answered status: the daemon is past start-up, its signal handlers are in place.
    world.credd(&["status"]).assert_success();
    signal_daemon(&world, signal);
    let status = world.wait_daemon_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after signal {signal}: {status}\n{}",
        world.daemon_log()
    );
    assert!(
        !world.socket_path().exists(),
        "the socket is removed on shutdown"
    );
    let log = world.daemon_log();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    // Nothing left behind stands in the way of the next start.
    world.start_daemon();
    world.credd(&["status"]).assert_success();
}

#[test]
fn sigterm_shuts_down_cleanly_and_removes_the_socket() {
    signal_shuts_down_cleanly(libc::SIGTERM);
}

#[test]
fn sigint_shuts_down_cleanly_and_removes_the_socket() {
    signal_shuts_down_cleanly(libc::SIGINT);
}

#[test]
fn second_daemon_on_the_same_runtime_dir_refuses_to_start() {
    let world = running_world();
    let expected = format!(
        "another credd-daemon is already running for this runtime dir ({})",
        world.runtime_dir.display()
    );
    let foreground = world.run(daemon_bin(), &["--foreground"], None);
    foreground.assert_code(1);
    assert!(foreground.stderr.contains(&expected), "{foreground}");

    // The background launcher hears the same reason from its child.
    let background = world.run(daemon_bin(), &[], None);
    background.assert_code(1);
    assert!(background.stderr.contains(&expected), "{background}");

    assert!(world.daemon_running(), "the first daemon is untouched");
    assert_still_serving(&world);
}

/// The daemon's cap on connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a client queued behind full slots is watched for a premature answer or refusal.
const QUEUED_WATCH: Duration = Duration::from_millis(300);

fn answered_profiles(stream: &mut UnixStream) -> bool {
    matches!(ask(stream, &Request::Profiles), Response::Profiles { .. })
}

#[test]
fn client_beyond_the_connection_limit_waits_for_a_slot_instead_of_being_refused() {
    let world = running_world();
    let pid = world.daemon_pid().expect("the world's daemon is running");
    let descriptors = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    // What the daemon holds with no client: once the connections of the world's own `credd`
    // runs are closed (the same count for 100 ms).
    let mut before = descriptors();
    credd_tests::wait_until(REPLY_DEADLINE, "the daemon's descriptors to settle", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = descriptors();
        std::mem::replace(&mut before, now) == now
    });
    // Every slot held by a connection in the middle of a request (one byte of a frame sent).
    let mut busy: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut stream = connect(&world);
            stream.write_all(&[0]).expect("start a frame");
            stream
        })
        .collect();
    // Every one of them taken by the daemon (however loaded the machine), so every slot really
    // is busy; then a moment for it to read those first bytes.
    credd_tests::wait_until(
        REPLY_DEADLINE,
        "the daemon to take every connection",
        || descriptors() >= before + MAX_CONNECTIONS,
    );
    std::thread::sleep(Duration::from_millis(200));

    // One more is queued: neither answered nor refused while every slot is taken...
    let mut queued = connect(&world);
    queued
        .write_all(&encode_request(SOFTWARE, &Request::Profiles))
        .expect("send a request");
    queued
        .set_read_timeout(Some(QUEUED_WATCH))
        .expect("set a read timeout");
    let mut byte = [0u8; 1];
    let early = queued.read(&mut byte);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "while every slot was taken the extra client got {early:?}"
    );
    // ...and is answered as soon as a slot frees.
    busy.pop();
    queued
        .set_read_timeout(Some(REPLY_DEADLINE))
        .expect("set a read timeout");
    let body = read_frame(&mut queued).expect("the queued client's answer");
    assert!(matches!(
        decode_response(SOFTWARE, &body),
        Ok(Response::Profiles { .. })
    ));
}

#[test]
fn idle_connections_filling_every_slot_do_not_delay_the_next_client() {
    let world = running_world();
    // Every slot held by a connection that was answered once and then stays open, idle: the
    // review saw `credd status` wait 28 s behind 64 of these.
    let _idle: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut stream = connect(&world);
            assert!(answered_profiles(&mut stream));
            stream
        })
        .collect();
    // Idle means idle for a moment: a client that has just connected keeps its slot.
    std::thread::sleep(Duration::from_millis(1100));
    let start = std::time::Instant::now();
    world.credd(&["status"]).assert_success();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "credd status took {took:?} behind idle connections"
    );
}

#[test]
fn a_burst_of_clients_far_beyond_the_connection_limit_is_answered_in_full() {
    let world = running_world();
    let burst = 4 * MAX_CONNECTIONS;
    let barrier = std::sync::Barrier::new(burst);
    let answered = std::thread::scope(|s| {
        let clients: Vec<_> = (0..burst)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    answered_profiles(&mut connect(&world))
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("a client thread"))
            .filter(|&served| served)
            .count()
    });
    assert_eq!(answered, burst, "{}", world.daemon_log());
}

#[test]
fn runtime_dir_that_is_a_symlink_is_refused() {
    let mut world = World::new();
    world.write_config(CONFIG);
    let elsewhere = world.root.join("elsewhere");
    fs::create_dir(&elsewhere).expect("create the symlink's target");
    chmod(&elsewhere, 0o700);
    fs::remove_dir(&world.runtime_dir).expect("remove the world's runtime dir");
    std::os::unix::fs::symlink(&elsewhere, &world.runtime_dir).expect("plant a symlink");
    let failed = world
        .try_start_daemon(&[])
        .expect_err("a symlinked runtime dir must be refused");
    assert!(
        failed.log.contains(&format!(
            "runtime dir {}: exists and is not a directory",
            world.runtime_dir.display()
        )),
        "{failed}"
    );
    assert!(
        fs::read_dir(&elsewhere).expect("list").next().is_none(),
        "nothing was created behind the symlink"
    );
}

#[test]
fn runtime_dir_owned_by_another_user_is_refused() {
    credd_tests::require_root("giving a dir away");
    let mut world = World::new();
    world.write_config(CONFIG);
    std::os::unix::fs::chown(&world.runtime_dir, Some(OTHER_UID), Some(OTHER_UID))
        .expect("give the runtime dir to another user");
    let failed = world
        .try_start_daemon(&[])
        .expect_err("a runtime dir of another user must be refused");
    assert!(
        failed
            .log
            .contains(&format!("belongs to uid {OTHER_UID}, not to you")),
        "{failed}"
    );
    assert!(failed.log.contains("CREDD_RUNTIME_DIR"), "{failed}");
    assert!(!world.socket_path().exists());
}

#[test]
fn sighup_rereads_the_config_and_keeps_serving() {
    let world = running_world();
    world.credd(&["status"]).assert_success();
    signal_daemon(&world, libc::SIGHUP);
    wait_until(Duration::from_secs(5), "the SIGHUP to be logged", || {
        world.daemon_log().contains("SIGHUP: re-reading the config")
    });
    assert!(world.daemon_running());
    assert_still_serving(&world);
}

#[test]
fn http_port_in_use_refuses_start_naming_the_port_and_a_later_start_succeeds() {
    let mut world = World::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("take a port");
    let port = taken.local_addr().expect("its address").port();
    world.write_config(&CONFIG.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")));
    let failed = world.try_start_daemon(&[]).expect_err("the port is taken");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(1), "{failed}");
    assert!(
        failed
            .log
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{failed}"
    );
    assert!(failed.log.contains("[daemon] listen"), "{failed}");

    drop(taken);
    world.start_daemon();
    world.credd(&["status"]).assert_success();
}
