//! What the bench programs (`credd-bench`, `credd-scale-bench`) measure alike: a process's CPU
//! and RSS from `/proc`, a client command's wall time, the TCP connections open to a port.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::world::World;

/// User + system CPU seconds of process `pid`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    (field(11) + field(12)) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `RssAnon`, `VmHWM`...), 0 if absent.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// RSS in KiB now, and CPU use over `over` as a percentage of one core.
pub fn idle(pid: u32, over: Duration) -> (u64, f64) {
    let before = cpu_seconds(pid);
    std::thread::sleep(over);
    let used = cpu_seconds(pid) - before;
    (status_kib(pid, "VmRSS"), used / over.as_secs_f64() * 100.0)
}

/// `credd ARGS` run `runs` times (process start to exit, daemon running, stdout to /dev/null):
/// median, p90 and min in ms.
pub fn client_wall_time(world: &World, args: &[&str], runs: usize) -> (f64, f64, f64) {
    try_client_wall_time(world, args, runs)
        .unwrap_or_else(|| panic!("credd {} failed", args.join(" ")))
}

/// [`client_wall_time`], or `None` when the command fails (e.g. a flag an older `credd` lacks).
pub fn try_client_wall_time(world: &World, args: &[&str], runs: usize) -> Option<(f64, f64, f64)> {
    let runs = runs.max(1);
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = world
            .command(crate::bins::client_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("run credd {}: {e}", args.join(" ")));
        if !out.success() {
            return None;
        }
        times.push(start.elapsed());
    }
    times.sort();
    Some((ms(times[runs / 2]), ms(times[runs * 9 / 10]), ms(times[0])))
}

/// Established TCP connections (IPv4 and IPv6) to `port` on this machine: e.g. from the daemon
/// to an STS proxy that nothing else talks to.
pub fn connections_to(port: u16) -> usize {
    let remote = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    // local, remote, state (01: established)
                    cols.get(2).is_some_and(|r| r.ends_with(&remote)) && cols.get(3) == Some(&"01")
                })
                .map(|_| ())
                .collect::<Vec<_>>()
        })
        .count()
}
