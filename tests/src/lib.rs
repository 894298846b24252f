//! Harness for credd's end-to-end tests: the real binaries run in a private temp world ([`world`]),
//! against moto as the STS emulator ([`moto`], one shared server per test process), optionally
//! behind a fault-injecting proxy ([`proxy`]), with a fake IAM Identity Center
//! ([`identity_center`]) handing out moto's credentials, a real SAML IdP ([`saml_idp`]) and a real
//! OpenID provider ([`oidc_provider`]);
//! [`stack`] puts them together the way scenarios need them, with the daemon's HTTP API ([`http`])
//! and real SDKs ([`sdk`]) pointed at it; a Docker engine, image and networks ([`docker`]) for the
//! scenarios of containers; a headless Chromium ([`chromium`]) for a web page's attacks.
//! Tests are plain synchronous `#[test]` functions; helpers here hide ports, processes and waiting.

pub mod bench;
pub mod bins;
pub mod chromium;
pub mod docker;
pub mod federation;
pub mod http;
pub mod identity_center;
pub mod install;
pub mod keyring;
pub mod moto;
pub mod oidc_provider;
pub mod packaging;
pub mod proxy;
pub mod saml_idp;
pub mod sdk;
pub mod server;
pub mod session_bus;
pub mod shells;
pub mod stack;
pub mod terminal;
pub mod turns;
pub mod world;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the owner must never see, and the only latency a test asserts: a request that takes a
/// second (the dropped-SYN retransmit a full accept queue causes, a time-out, a request held for
/// something slow). A debug build on a loaded 2-core machine answers in tens of milliseconds at
/// worst; latency figures are `credd-bench`'s, on the release build.
pub const STALL: Duration = Duration::from_secs(1);

/// How often [`wait_until`] re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `f` every [`POLL_INTERVAL`] until it returns true; panics naming `what` once `deadline`
/// has passed. Use this instead of sleeping: a condition is waited for, never a fixed time.
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it). Another process can
/// still take it before it is used: a server started on it should retry with a new one on failure.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of a freshly bound listener")
        .port()
}

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_dir() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Tests that act as another user (uid 65534) need root; without it they fail saying so rather
/// than pass having checked nothing.
#[track_caller]
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{what} needs root (run the suite as root, as CI does)"
    );
}

/// The system's `python3` (not the venv's): one any user can run, for tests acting as another.
pub fn system_python() -> PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("a system python3 (/usr/bin/python3)")
}

/// `command.output()` for a program written a moment ago (a copied binary, a script): while
/// another thread of the test process is starting a child, that child holds every descriptor
/// the process has open, the program's while it was being written among them, until it execs;
/// running the program meanwhile fails with "Text file busy" (ETXTBSY). Retried until
/// [`BUSY_DEADLINE`]: a child execs within milliseconds, a loaded machine's within a second.
pub fn output_of_fresh_program(
    command: &mut std::process::Command,
) -> std::io::Result<std::process::Output> {
    let start = Instant::now();
    loop {
        match command.output() {
            Err(e)
                if e.raw_os_error() == Some(libc::ETXTBSY) && start.elapsed() < BUSY_DEADLINE =>
            {
                std::thread::sleep(POLL_INTERVAL);
            }
            result => return result,
        }
    }
}

/// How long [`output_of_fresh_program`] retries a program that is busy.
const BUSY_DEADLINE: Duration = Duration::from_secs(10);
