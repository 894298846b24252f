//! The security review's attacks, run for real as a second local user (uid 65534, needing root
//! as CI runs the suite) and as a web page would: one module per door.
//!
//! - [`local_files`]: runtime and state dirs, an impostor daemon, planted files and symlinks, the
//!   token cache;
//! - [`floods`]: floods of the HTTP port and of IMDS, and the owner's dual-stack programs;
//! - [`http_port`]: the port taken while the daemon is down, the token it collected, and the
//!   service manager's socket that keeps the port;
//! - [`login`]: the browser login's loopback listener and what the browser is handed;
//! - [`console`]: `credd console`'s one-shot page and what the browser is handed;
//! - [`browser`]: a web page in the owner's own browser (a real headless Chromium) against the
//!   HTTP port and a pending login's listener.
//!
//! Each asserts what the attacker does not get, and what the owner must never see (a refusal, a
//! time-out, a stall of a second); figures are printed (`-- --nocapture`), and measured properly
//! by `credd-bench`. The floods run alone ([`credd_tests::turns::alone`]), first in the run
//! (`alone::attacks::`, see the binary's `alone` module).

mod browser;
mod console;
pub(crate) mod floods;
mod http_port;
mod local_files;
pub(crate) mod login;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use credd_tests::stack::OFFLINE_CONFIG;
use credd_tests::system_python;
use credd_tests::world::World;

/// The attacker: the nobody user.
const ATTACKER: u32 = 65534;
const FLOOD: &str = include_str!("scripts/flood.py");
use credd_tests::STALL;

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
    /// Starts `command` (made with [`as_attacker`]) with its stdout piped.
    fn spawn(command: &mut Command) -> Attacker {
        Attacker(
            command
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the attacker's program"),
        )
    }

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

/// The longest a flood runs: it stops when [`flood_stats`] asks, once the owner is measured.
const FLOOD_CAP_SECONDS: u64 = 30;

/// The flood script as the attacker against `addr`; returns when it has started. It floods
/// until [`flood_stats`].
fn flood(addr: SocketAddr, mode: &str, connections: usize) -> Attacker {
    let mut attacker = Attacker(
        as_attacker(system_python())
            .args(["-c", FLOOD])
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
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

/// The most descriptors a process had open while it was watched (sampled every 20 ms on a
/// thread of its own): what a flood could make the daemon hold, whatever the machine's speed.
struct DescriptorWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<usize>,
}

impl DescriptorWatch {
    fn start(pid: u32) -> DescriptorWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut most = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(open_descriptors(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        DescriptorWatch { stop, sampler }
    }

    /// The most seen.
    fn most(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.sampler.join().expect("the sampler")
    }
}

/// Descriptors `pid` has open now.
fn open_descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}
