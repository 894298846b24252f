//! The security review's attacks, run for real: a second local user (uid 65534) plants a runtime
//! dir and an impostor daemon, floods the HTTP port, hammers IMDS; planted files and symlinks wait
//! in a runtime dir that was open to others; the owner's own dual-stack (Java) program uses IMDS.
//! Each scenario asserts what the owner still gets (and how fast) and what the attacker does not.
//!
//! The floods measure the owner's latency while they run, so each runs alone
//! ([`credd_tests::turns::alone`]: no other test's world exists meanwhile) and prints its figures
//! (`-- --nocapture` shows them).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http_support::{offline, served};
use credd_tests::stack::{
    Access, MFA_CODE, OFFLINE_CONFIG, STAGING_AND_AUDIT, Stack, Toml, files_containing,
};
use credd_tests::system_python;
use credd_tests::wait_until;
use credd_tests::world::World;

/// The attacker: the nobody user.
const ATTACKER: u32 = 65534;
const IMPOSTOR: &str = include_str!("attack_scripts/impostor.py");
const FLOOD: &str = include_str!("attack_scripts/flood.py");
/// A command run as the attacker, with nothing of ours in its environment.
fn as_attacker(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .uid(ATTACKER)
        .gid(ATTACKER)
        .stdin(Stdio::null());
    command
}

/// A process of the attacker's, killed when dropped.
struct Attacker(Child);

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Attacker {
    /// Waits for its first line of output (e.g. `listening`).
    fn wait_for_line(&mut self) -> String {
        let stdout = self.0.stdout.as_mut().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the attacker's output");
        line
    }
}

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

/// A world with the offline config (no STS needed) and no daemon yet.
fn offline_world() -> World {
    let world = World::new();
    world.write_config(OFFLINE_CONFIG);
    world
}

/// A directory anyone may write into, like /tmp, inside the world.
fn shared_tmp(world: &World) -> PathBuf {
    world.let_others_through();
    let dir = world.root.join("tmp");
    fs::create_dir(&dir).expect("create the shared tmp");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    dir
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

/// SIGTERM to a daemon started outside the world's usual paths.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

/// Latency of the owner's credential requests, each on a new connection as SDKs make them.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn measure(served: &Stack, requests: usize, spacing: Duration) -> Latencies {
        let token = served.token();
        let request = format!(
            "GET /v1/credentials/staging HTTP/1.1\r\nHost: {}\r\nAuthorization: {token}\r\n\
             Connection: close\r\n\r\n",
            served.addr()
        );
        let mut all = Vec::with_capacity(requests);
        for _ in 0..requests {
            let start = Instant::now();
            let answer = exchange(served.addr(), request.as_bytes());
            all.push(start.elapsed());
            assert!(
                answer.starts_with("HTTP/1.1 200 "),
                "the owner was refused: {answer}"
            );
            std::thread::sleep(spacing);
        }
        all.sort();
        Latencies(all)
    }

    fn percentile(&self, p: usize) -> Duration {
        self.0[(self.0.len() - 1) * p / 100]
    }

    fn max(&self) -> Duration {
        *self.0.last().expect("samples")
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} median={:?} p95={:?} max={:?}",
            self.0.len(),
            self.percentile(50),
            self.percentile(95),
            self.max()
        )
    }
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The longest a flood runs: it stops when [`flood_stats`] asks, once the owner is measured.
const FLOOD_CAP_SECONDS: u64 = 30;

/// The flood script as the attacker against `served`; returns when it has started. It floods
/// until [`flood_stats`].
fn flood(served: &Stack, mode: &str, connections: usize) -> Attacker {
    let mut attacker = Attacker(
        as_attacker(system_python())
            .args(["-c", FLOOD, "127.0.0.1"])
            .arg(served.addr().port().to_string())
            .arg(mode)
            .arg(connections.to_string())
            .arg(FLOOD_CAP_SECONDS.to_string())
            .arg("--until-stdin-closes")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the flood as the attacker"),
    );
    assert_eq!(attacker.wait_for_line(), "started\n", "the flood began");
    attacker
}

/// Stops the flood; what it counted.
fn flood_stats(mut attacker: Attacker) -> serde_json::Value {
    drop(attacker.0.stdin.take());
    let line = attacker.wait_for_line();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("flood stats {line:?}: {e}"))
}

/// CPU seconds the daemon has used so far (user + system).
fn daemon_cpu(world: &World) -> f64 {
    let pid = world.daemon_pid().expect("the daemon runs");
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read the daemon's stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm ends with )")
        .1
        .split_whitespace()
        .collect();
    // After the comm: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The owner's bound while a stranger floods with requests (the review saw 20 s timeouts;
/// normally ~1 ms).
const FLOODED_P95: Duration = Duration::from_millis(10);
/// The slowest answer: under 10 ms in a release build (`credd-bench`); this debug build, on 2
/// cores shared with the attacker, gets some room. The review saw 20 s.
const FLOODED_MAX: Duration = Duration::from_millis(50);
/// While a stranger reconnects as fast as it can, the owner's connection waits in the kernel's
/// accept queue behind the stranger's (about 40 µs of kernel work each, debug build or not):
/// release p99 is under 5 ms (`credd-bench`); this debug build on 2 shared cores sees up to
/// ~20 ms. Well below a dropped SYN's 1 s retransmit, which a shallower queue let happen.
const CONNECT_FLOOD_P95: Duration = Duration::from_millis(30);
const CONNECT_FLOOD_MAX: Duration = Duration::from_millis(100);

#[test]
fn a_stranger_flooding_the_http_port_does_not_slow_the_owner() {
    credd_tests::require_root("acting as another user");
    let _turn = credd_tests::turns::alone();
    let served = served("");
    let quiet = Latencies::measure(&served, 50, Duration::from_millis(5));
    eprintln!("owner, no flood: {quiet}");

    // The review's first attack: 1,030 keep-alive connections, /healthz every 3 s.
    let attack = flood(&served, "keepalive", 1030);
    let keepalive = Latencies::measure(&served, 150, Duration::from_millis(20));
    let stats = flood_stats(attack);
    eprintln!("owner, 1030 keep-alive connections flooding: {keepalive}; attacker: {stats}");
    assert!(
        stats["closed_by_daemon"].as_u64() > Some(1000),
        "the stranger's connections beyond its quota were refused: {stats}"
    );

    // The second: 2,000 idle connections, reconnecting whenever they are closed.
    let attack = flood(&served, "idle", 2000);
    let idle = Latencies::measure(&served, 150, Duration::from_millis(20));
    let stats = flood_stats(attack);
    eprintln!("owner, 2000 idle reconnecting connections: {idle}; attacker: {stats}");

    for (what, l) in [("keep-alive flood", &keepalive), ("idle flood", &idle)] {
        assert!(
            l.percentile(95) < CONNECT_FLOOD_P95 && l.max() < CONNECT_FLOOD_MAX,
            "the owner's requests during the {what}: {l}"
        );
    }
    served.assert_still_serving();
    let refusals = served
        .world
        .daemon_log()
        .matches("refused HTTP connections from uid 65534")
        .count();
    assert!(
        (1..=2).contains(&refusals),
        "refusals are logged once a minute, not per connection: {refusals} lines"
    );
}

#[test]
fn a_flood_of_refused_imds_requests_is_cheap_and_quiet() {
    credd_tests::require_root("acting as another user");
    let _turn = credd_tests::turns::alone();
    let served = served("imds = true");
    let before = daemon_cpu(&served.world);
    let started = Instant::now();
    let attack = flood(&served, "imds", 8);
    let during = Latencies::measure(&served, 150, Duration::from_millis(20));
    let stats = flood_stats(attack);
    let cpu = daemon_cpu(&served.world) - before;
    let wall = started.elapsed().as_secs_f64();
    let answered = stats["answers"].as_u64().unwrap_or(0);
    eprintln!(
        "owner during the IMDS flood: {during}; attacker: {stats}; daemon used {cpu:.2} CPU-s \
         in {wall:.1} s"
    );
    assert!(answered > 100, "the flood was answered (403): {stats}");
    assert!(
        cpu / wall < 0.25,
        "the daemon spent {cpu:.2} CPU-s in {wall:.1} s refusing (the review saw 2 cores)"
    );
    assert!(
        during.percentile(95) < FLOODED_P95 && during.max() < FLOODED_MAX,
        "the owner's requests during the IMDS flood: {during}"
    );
    let log = served.world.daemon_log();
    let refusals = log.matches("refused an IMDS request").count();
    assert!(
        (1..=2).contains(&refusals),
        "{refusals} log lines for {answered} refused requests"
    );
}

#[test]
fn the_owners_dual_stack_programs_are_served_by_imds_and_the_attackers_are_not() {
    credd_tests::require_root("acting as another user");
    let served = offline("imds = true");
    const SCRIPT: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.connect(("::ffff:127.0.0.1", port))
s.sendall(b"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
          b"X-aws-ec2-metadata-token-ttl-seconds: 60\r\nConnection: close\r\n\r\n" % port)
answer = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.split(b" ")[1].decode())
"#;
    let port = served.addr().port().to_string();
    let status = |command: &mut Command| {
        let out = command
            .args(["-c", SCRIPT, &port])
            .output()
            .expect("run python3");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        status(&mut Command::new(system_python())),
        "200",
        "the owner"
    );
    assert_eq!(
        status(&mut as_attacker(system_python())),
        "403",
        "the attacker"
    );

    // A real Java program, which uses dual-stack sockets by default.
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/attack_scripts/DualStackImds.java");
    let out = Command::new("java")
        .arg(&source)
        .arg(served.url())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run java (the machine has a JDK)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "token 200\nlist 200\nrole staging\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
fn reset_token_and_logout_lock_out_every_holder_of_the_old_token() {
    let served = served("");
    let get = |token: &str| {
        served
            .request(
                "GET",
                "/v1/credentials/staging",
                &[("Authorization", token)],
            )
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

#[test]
fn the_background_daemons_log_is_rotated_not_grown_forever() {
    let world = offline_world();
    fs::create_dir_all(&world.state_dir).expect("state dir");
    let log = world.state_dir.join("daemon.log");
    // Weeks of an old daemon's log.
    let old = "2026-11-01T00:00:00Z  WARN an old line\n".repeat(120_000);
    fs::write(&log, &old).expect("write the old log");
    world.credd_autostart(&["status"]).assert_success();
    wait_until(Duration::from_secs(5), "the log to rotate", || {
        log.with_extension("log.1").exists()
    });
    let current = fs::read_to_string(&log).expect("read the new log");
    assert!(current.len() < 64 * 1024, "{} bytes", current.len());
    assert!(current.contains("credd-daemon ready"), "{current}");
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
