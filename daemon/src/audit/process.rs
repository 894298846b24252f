//! What the OS tells of the program behind a caller: on Linux, `/proc`. Read on the audit thread,
//! never on the request path. A TCP caller is known by its socket's inode: the process holding it
//! is found by [`peer::pid_with_socket`] (newest pids first: a client that just connected is near
//! the top), once per connection, not per request. Another user's process tells little (its uid from
//! the connection); a process that has exited, nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use credd_proto::audit::{AuditVia, truncate_cmdline};

use crate::listener::peer;
use crate::vend::Caller;

/// The program as the audit log names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    pub pid: u32,
    pub uid: Option<u32>,
    pub exe: Option<PathBuf>,
    /// Scrubbed ([`scrub`]) and cut ([`truncate_cmdline`]).
    pub cmdline: Option<Vec<String>>,
    pub cgroup: Option<String>,
    pub container: Option<String>,
    /// Only when it is not the daemon's own.
    pub netns: Option<String>,
    pub ppid: Option<u32>,
    pub via: Option<AuditVia>,
}

/// What the audit thread learnt of a caller.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// `None`: not found (exited, another user's, over the walk budget, not Linux).
    pub program: Option<Arc<Program>>,
    /// `credd credential-process` itself, when the program is its parent.
    pub client_pid: Option<u32>,
}

/// New connections whose process may be looked up, per second: beyond it (a flood of fresh
/// connections), a connection's program is recorded as unknown rather than each one costing a
/// walk of every process's descriptors.
pub const WALKS_PER_SECOND: u32 = 64;

/// [`WALKS_PER_SECOND`], shared by the listener (a connection it accepts is looked up at once,
/// [`Resolver::accepted`]) and the audit thread (a caller it has not looked up yet, when a
/// credential is served to it): one budget for both. During a flood of fresh connections the
/// listener takes it all, so no credential served to a connection that was not looked up costs a
/// walk: that connection is closed by the time its event is read, and looking for a socket that
/// is gone walks every process's descriptors in vain (tens of milliseconds on a busy machine).
pub struct WalkBudget {
    started: Instant,
    /// The second (since `started`) the count is for.
    second: AtomicU64,
    left: AtomicU32,
}

impl WalkBudget {
    pub fn new() -> WalkBudget {
        WalkBudget {
            started: Instant::now(),
            second: AtomicU64::new(0),
            left: AtomicU32::new(WALKS_PER_SECOND),
        }
    }

    /// One walk, if this second's are not all spent.
    pub fn take(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.left.store(WALKS_PER_SECOND, Ordering::Relaxed);
        }
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Default for WalkBudget {
    fn default() -> Self {
        WalkBudget::new()
    }
}
/// Connections remembered (inode → program); forgotten all at once when full.
const REMEMBERED: usize = 4096;

pub struct Resolver {
    by_inode: HashMap<u64, Option<Arc<Program>>>,
    /// The pid that held the last socket found: a keep-alive client's next connection is its.
    last_hit: Option<u32>,
    budget: Arc<WalkBudget>,
    own_netns: Option<String>,
    own_uid: u32,
}

impl Resolver {
    /// `budget`: shared with the listener ([`WalkBudget`]).
    pub fn new(budget: Arc<WalkBudget>) -> Resolver {
        Resolver {
            by_inode: HashMap::new(),
            last_hit: None,
            budget,
            own_netns: netns("self"),
            own_uid: credd_proto::paths::current_uid(),
        }
    }

    /// The program behind `caller`; for `credential_process`, the parent of `credd
    /// credential-process` (the AWS CLI, boto3...), with the client's own pid beside it.
    pub fn resolve(&mut self, caller: &Caller, credential_process: bool) -> Resolved {
        if let Some(pid) = caller.pid {
            let Some(client) = self.read(pid) else {
                return Resolved::default();
            };
            if !credential_process {
                return Resolved {
                    program: Some(Arc::new(client)),
                    client_pid: None,
                };
            }
            let parent = client.ppid.filter(|p| *p > 1).and_then(|p| self.read(p));
            return match parent {
                Some(mut parent) => {
                    // The client inherits the environment it was started with.
                    parent.via = parent.via.or(client.via);
                    Resolved {
                        program: Some(Arc::new(parent)),
                        client_pid: Some(pid),
                    }
                }
                None => Resolved {
                    program: Some(Arc::new(client)),
                    client_pid: None,
                },
            };
        }
        let budget = self.budget.clone();
        self.by_socket(caller, || budget.take())
    }

    /// A TCP connection just accepted, whose walk the listener took from the budget already.
    pub fn accepted(&mut self, caller: &Caller) -> Resolved {
        self.by_socket(caller, || true)
    }

    /// The program holding the caller's socket: remembered, or looked for if `may_walk()`.
    fn by_socket(&mut self, caller: &Caller, may_walk: impl FnOnce() -> bool) -> Resolved {
        let Some(inode) = caller.socket_inode else {
            return Resolved::default();
        };
        if let Some(known) = self.by_inode.get(&inode) {
            return Resolved {
                program: known.clone(),
                client_pid: None,
            };
        }
        // Another user's descriptors are not readable (unless we are root): no walk for them.
        let strangers = caller.uid.is_some_and(|uid| uid != self.own_uid) && self.own_uid != 0;
        if strangers || !may_walk() {
            // Not remembered: a later request on the connection may find it.
            return Resolved::default();
        }
        let program = self
            .find_socket(inode)
            .and_then(|pid| self.read(pid))
            .map(Arc::new);
        if self.by_inode.len() >= REMEMBERED {
            self.by_inode.clear();
        }
        self.by_inode.insert(inode, program.clone());
        Resolved {
            program,
            client_pid: None,
        }
    }

    /// The process holding socket `inode`, the last one found tried first (a keep-alive
    /// client's next connection is its).
    fn find_socket(&mut self, inode: u64) -> Option<u32> {
        let pid = peer::pid_with_socket(inode, self.last_hit)?;
        self.last_hit = Some(pid);
        Some(pid)
    }

    /// What `/proc/PID` tells; `None` once the process is gone.
    #[cfg(target_os = "linux")]
    fn read(&self, pid: u32) -> Option<Program> {
        use std::os::unix::fs::MetadataExt;
        let dir = PathBuf::from(format!("/proc/{pid}"));
        // What names the program first: a client may exit while it is read.
        let exe = std::fs::read_link(dir.join("exe")).ok();
        let cmdline = std::fs::read(dir.join("cmdline"))
            .ok()
            .filter(|raw| !raw.is_empty())
            .map(|raw| {
                let args: Vec<String> = raw
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                truncate_cmdline(&scrub(&args))
            });
        let uid = std::fs::metadata(&dir).ok()?.uid();
        let stat = std::fs::read_to_string(dir.join("stat")).ok();
        let ppid = stat.as_deref().and_then(parent_pid);
        let cgroup = std::fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|text| cgroup_line(&text));
        let container = cgroup.as_deref().and_then(container_id);
        let netns = netns(&pid.to_string()).filter(|n| Some(n) != self.own_netns.as_ref());
        // Our own user's processes only: another's environment is not ours to read.
        let via = (uid == self.own_uid).then(|| via(&dir)).flatten();
        Some(Program {
            pid,
            uid: Some(uid),
            exe,
            cmdline,
            cgroup,
            container,
            netns,
            ppid,
            via,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&self, _pid: u32) -> Option<Program> {
        None
    }
}

/// `net:[4026531840]`, the network namespace of `/proc/<who>`.
fn netns(who: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{who}/ns/net"))
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// `CREDD_VIA` in the process's environment, read into a buffer that is wiped when dropped:
/// the environment may hold secrets; only the marker is kept.
#[cfg(target_os = "linux")]
fn via(dir: &std::path::Path) -> Option<AuditVia> {
    let environ = zeroize::Zeroizing::new(std::fs::read(dir.join("environ")).ok()?);
    let prefix = format!("{}=", AuditVia::ENV);
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .and_then(AuditVia::from_value)
}

/// The 4th field of `/proc/PID/stat`, after the command name (which may hold spaces and `)`).
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The cgroup v2 line of `/proc/PID/cgroup` (`0::/path`), else the first line.
fn cgroup_line(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with("0::"))
        .or_else(|| text.lines().next())
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
}

/// The container ID in a cgroup path, as the runtimes name their cgroups:
/// `docker-<64 hex>.scope` (Docker under systemd), `/docker/<id>` (cgroupfs),
/// `cri-containerd-<id>.scope` and `.../cri-containerd:<id>` (containerd), `libpod-<id>.scope`
/// (Podman), `crio-<id>.scope` (CRI-O). The innermost one wins.
pub fn container_id(cgroup: &str) -> Option<String> {
    let path = cgroup.splitn(3, ':').nth(2).unwrap_or(cgroup);
    let is_id = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let segments: Vec<&str> = path.split('/').collect();
    segments.iter().enumerate().rev().find_map(|(i, segment)| {
        let name = segment.strip_suffix(".scope").unwrap_or(segment);
        let after_colon = name.rsplit(':').next().unwrap_or(name);
        let prefixed = [
            "docker-",
            "cri-containerd-",
            "containerd-",
            "libpod-",
            "crio-",
        ]
        .iter()
        .find_map(|p| name.strip_prefix(p));
        let under_runtime = i > 0
            && matches!(
                segments[i - 1],
                "docker" | "containerd" | "libpod_parent" | "podman"
            );
        [
            prefixed,
            name.contains(':').then_some(after_colon),
            under_runtime.then_some(name),
        ]
        .into_iter()
        .flatten()
        .find(|id| is_id(id))
        .map(str::to_owned)
    })
}

/// Other programs' arguments without what looks like a secret: an `Authorization:` header's
/// value, the value of a `--password` / `--token` / `--secret` option (joined or the next
/// argument), and any run of 32 or more letters and digits with both in it (credd's HTTP token
/// as `curl -H "Authorization: $(cat ...)"` passes it, an AWS secret key, a session token).
pub fn scrub(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if std::mem::take(&mut hide_next) {
            out.push("***".to_owned());
            continue;
        }
        let lower = arg.to_ascii_lowercase();
        if let Some(at) = lower.find("authorization:") {
            out.push(format!("{} ***", &arg[..at + "authorization:".len()]));
            continue;
        }
        let secret_flag = |flag: &str| {
            flag.starts_with('-')
                && ["password", "passwd", "token", "secret"]
                    .iter()
                    .any(|w| flag.contains(w))
        };
        if let Some((flag, _)) = arg.split_once('=')
            && secret_flag(&flag.to_ascii_lowercase())
        {
            out.push(format!("{flag}=***"));
            continue;
        }
        if secret_flag(&lower) {
            hide_next = true;
        }
        out.push(hide_long_runs(arg));
    }
    out
}

fn hide_long_runs(arg: &str) -> String {
    let is_run = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/');
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(start) = rest.find(is_run) {
        out.push_str(&rest[..start]);
        let run_len = rest[start..]
            .find(|c| !is_run(c))
            .unwrap_or(rest.len() - start);
        let run = &rest[start..start + run_len];
        let secret_like = run.len() >= 32
            && run.bytes().any(|b| b.is_ascii_digit())
            && run.bytes().any(|b| b.is_ascii_alphabetic())
            // An absolute path of a few directories is a path (a secret key holds a `/` or two).
            && !(run.starts_with('/') && run.matches('/').count() >= 3);
        out.push_str(if secret_like { "***" } else { run });
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f0d1c0e9b8a7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0";

    #[test]
    fn container_ids_are_recognised_as_each_runtime_names_its_cgroups() {
        for cgroup in [
            format!("0::/system.slice/docker-{ID}.scope"),
            format!("0::/docker/{ID}"),
            format!("12:memory:/docker/{ID}"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope"),
            format!(
                "0::/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:{ID}"
            ),
            format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            ),
            format!("0::/machine.slice/libpod-{ID}.scope"),
            format!("0::/kubepods.slice/crio-{ID}.scope"),
        ] {
            assert_eq!(container_id(&cgroup).as_deref(), Some(ID), "{cgroup}");
        }
        for cgroup in [
            "0::/user.slice/user-1000.slice/session-2.scope",
            "0::/",
            "0::/system.slice/docker.service",
            &format!("0::/docker/{}", &ID[..12]),
        ] {
            assert_eq!(container_id(cgroup), None, "{cgroup}");
        }
    }

    #[test]
    fn the_cgroup_v2_line_is_kept_else_the_first() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n0::/credd-test\n";
        assert_eq!(cgroup_line(hybrid).as_deref(), Some("0::/credd-test"));
        assert_eq!(
            cgroup_line("4:memory:/x\n1:cpu:/\n").as_deref(),
            Some("4:memory:/x")
        );
        assert_eq!(cgroup_line(""), None);
    }

    #[test]
    fn the_parent_is_read_past_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_pid("42 (a b) c) S 17 42 42 0"), Some(17));
        assert_eq!(parent_pid("42 (curl) R 1 42"), Some(1));
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn secrets_in_other_programs_arguments_are_scrubbed() {
        let token = "0f".repeat(32);
        let args: Vec<String> = [
            "curl",
            "-H",
            &format!("Authorization: {token}"),
            "http://127.0.0.1:9911/v1/credentials",
            "--password",
            "hunter2",
            "--api-token=abc",
            &format!("x={token}y"),
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/home/alice/src/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/c",
            "/home/alice/src2/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/c",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            scrub(&args),
            [
                "curl",
                "-H",
                "Authorization: ***",
                "http://127.0.0.1:9911/v1/credentials",
                "--password",
                "***",
                "--api-token=***",
                "x=***",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/home/alice/src/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/c",
                "/home/alice/src2/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/c",
                "***",
            ]
        );
    }

    /// A TCP connection of this process (open while both ends are held), its socket's inode,
    /// and the caller a request on it would be.
    #[cfg(target_os = "linux")]
    fn own_connection() -> (std::net::TcpListener, std::net::TcpStream, u64, Caller) {
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let caller = Caller {
            socket_inode: Some(inode),
            ..Caller::default()
        };
        (listener, stream, inode, caller)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_listener_and_the_audit_thread_share_one_walk_budget() {
        let (_listener, _stream, inode, caller) = own_connection();
        let budget = Arc::new(WalkBudget::new());
        let mut resolver = Resolver::new(budget.clone());
        // The listener spent this second's walks on the connections it accepted (a flood).
        while budget.take() {}
        if budget.started.elapsed().as_secs() > 0 {
            return; // the second turned meanwhile (a very busy machine): nothing to tell
        }
        assert!(
            resolver.resolve(&caller, false).program.is_none(),
            "a credential served to a connection not looked up costs no walk"
        );
        assert!(!resolver.by_inode.contains_key(&inode), "not remembered");
        // A connection the listener looked up (its walk already counted) is found.
        let found = resolver.accepted(&caller).program.expect("found");
        assert_eq!(found.pid, std::process::id());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn our_own_process_is_read_whole_and_a_connection_is_found_once() {
        let me = std::process::id();
        let caller = Caller::unix(credd_proto::paths::current_uid(), Some(me as i32));
        let mut resolver = Resolver::new(Arc::new(WalkBudget::new()));
        let resolved = resolver.resolve(&caller, false);
        let program = resolved.program.expect("our own process");
        assert_eq!(program.pid, me);
        assert_eq!(program.exe, std::env::current_exe().ok());
        assert_eq!(program.netns, None, "our own namespace");
        assert!(program.cmdline.as_ref().is_some_and(|c| !c.is_empty()));
        assert_eq!(program.ppid, Some(std::os::unix::process::parent_id()));
        // credential-process: the parent is the program.
        let resolved = resolver.resolve(&caller, true);
        assert_eq!(resolved.client_pid, Some(me));
        assert_eq!(
            resolved.program.map(|p| p.pid),
            Some(std::os::unix::process::parent_id())
        );
        // A TCP connection of ours, by its socket's inode.
        let (_listener, _stream, inode, caller) = own_connection();
        let found = resolver.resolve(&caller, false).program.expect("found");
        assert_eq!(found.pid, me, "the process, not this test's thread");
        assert!(resolver.by_inode.contains_key(&inode), "remembered");
    }
}
