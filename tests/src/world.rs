//! A private temp world for one test: its own HOME, XDG dirs, credd config/runtime/state dirs and
//! AWS files, a scrubbed environment for every process it spawns, and the daemon's lifecycle.
//! Dropping it kills every credd process of the world (also ones the client started) and removes it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use credd::connection::Connection;
use credd::error::ClientError;
use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::bins::{client_bin, daemon_bin};
use crate::moto::AwsKeys;
use crate::server::lock;
use crate::turns::{self, Turn};
use crate::{POLL_INTERVAL, wait_until};

/// A `credd` command that runs longer than this is killed and fails the test.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to accept connections on its control socket.
pub const DAEMON_START_DEADLINE: Duration = Duration::from_secs(15);
/// How long the daemon may take to exit after SIGTERM.
pub const DAEMON_STOP_DEADLINE: Duration = Duration::from_secs(10);
/// After `credd` exits, how long its stdout/stderr may stay open. Longer means a process it
/// started (an autostarted daemon) inherited them, and `$(credd env)` in a shell would hang.
const PIPE_CLOSE_DEADLINE: Duration = Duration::from_secs(5);

pub struct World {
    /// The temp dir everything lives in.
    pub root: PathBuf,
    /// `root/home`: HOME of every spawned process, also their working directory.
    pub home: PathBuf,
    /// `home/.config/credd/config.toml` (CREDD_CONFIG).
    pub config_path: PathBuf,
    /// 0700 (CREDD_RUNTIME_DIR): on tmpfs (`/dev/shm/credd-*/run`) where there is one, as
    /// `$XDG_RUNTIME_DIR` is on a real desktop, so the daemon may keep a session there; else
    /// `root/run`. [`World::on_disk`] gives one on disk.
    pub runtime_dir: PathBuf,
    /// `root/state` (CREDD_STATE_DIR), not created: the daemon makes it.
    pub state_dir: PathBuf,
    /// `home/.aws`.
    pub aws_dir: PathBuf,
    extra_env: Vec<(String, String)>,
    daemon: Mutex<Option<Child>>,
    // Last fields: removed after Drop::drop has killed the processes using them.
    _memory: Option<tempfile::TempDir>,
    _tmp: tempfile::TempDir,
    // Given back once the world is gone: a test waiting to run alone starts on a quiet machine.
    _turn: Turn,
}

/// Where worlds put their runtime dir when the system has a tmpfs for it.
const TMPFS: &str = "/dev/shm";

impl World {
    pub fn new() -> World {
        let memory = Path::new(TMPFS).is_dir().then(|| {
            tempfile::Builder::new()
                .prefix("credd-")
                .tempdir_in(TMPFS)
                .expect("create the test world's runtime dir on tmpfs")
        });
        World::with_runtime_parent(memory)
    }

    /// A world whose runtime dir is on persistent disk (the temp dir's file system): there the
    /// daemon must keep secrets in memory only.
    pub fn on_disk() -> World {
        World::with_runtime_parent(None)
    }

    fn with_runtime_parent(memory: Option<tempfile::TempDir>) -> World {
        let turn = turns::side_by_side();
        // Short prefix under the system temp dir: the control socket path must stay well under
        // the ~104-byte limit of sun_path on macOS.
        let tmp = tempfile::Builder::new()
            .prefix("credd-")
            .tempdir()
            .expect("create the test world's temp dir");
        let root = tmp.path().to_path_buf();
        let home = root.join("home");
        let runtime_parent = memory.as_ref().map_or(root.as_path(), |m| m.path());
        let world = World {
            config_path: home.join(".config").join("credd").join("config.toml"),
            runtime_dir: runtime_parent.join("run"),
            state_dir: root.join("state"),
            aws_dir: home.join(".aws"),
            home,
            root,
            extra_env: Vec::new(),
            daemon: Mutex::new(None),
            _memory: memory,
            _tmp: tmp,
            _turn: turn,
        };
        for dir in [&world.home, &world.aws_dir, &world.home.join(".config")] {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        for dir in [&world.runtime_dir, &world.xdg_runtime_dir()] {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .unwrap_or_else(|e| panic!("create {} (0700): {e}", dir.display()));
        }
        world
    }

    /// Whether `path` is inside this world (under `root`, or the runtime dir's tmpfs parent).
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
            || self
                ._memory
                .as_ref()
                .is_some_and(|m| path.starts_with(m.path()))
    }

    /// Lets other users pass through (not list) the world's top directories, so a test acting as
    /// another user can reach paths inside, as on a machine where homes are 0711.
    pub fn let_others_through(&self) {
        let tops =
            std::iter::once(self.root.as_path()).chain(self._memory.as_ref().map(|m| m.path()));
        for dir in tops {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
                .unwrap_or_else(|e| panic!("chmod 711 {}: {e}", dir.display()));
        }
    }

    /// `root/xdg-run` (XDG_RUNTIME_DIR), 0700; credd uses `runtime_dir` instead.
    pub fn xdg_runtime_dir(&self) -> PathBuf {
        self.root.join("xdg-run")
    }

    /// `home/.aws/credentials` (AWS_SHARED_CREDENTIALS_FILE).
    pub fn credentials_file(&self) -> PathBuf {
        self.aws_dir.join("credentials")
    }

    /// `home/.aws/config` (AWS_CONFIG_FILE).
    pub fn aws_config_file(&self) -> PathBuf {
        self.aws_dir.join("config")
    }

    /// `runtime_dir`, or where `set_env("CREDD_RUNTIME_DIR", ..)` moved it.
    pub fn runtime_dir_in_use(&self) -> PathBuf {
        self.extra_env
            .iter()
            .find(|(k, _)| k == "CREDD_RUNTIME_DIR")
            .map_or_else(|| self.runtime_dir.clone(), |(_, v)| PathBuf::from(v))
    }

    /// `control.sock` in the runtime dir in use.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir_in_use().join("control.sock")
    }

    /// `http.token` in the runtime dir in use.
    pub fn token_file(&self) -> PathBuf {
        self.runtime_dir_in_use().join("http.token")
    }

    /// The HTTP API token the daemon wrote.
    pub fn http_token(&self) -> String {
        let path = self.token_file();
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Adds (or replaces) a variable in the environment of every process spawned from now on,
    /// e.g. `AWS_ENDPOINT_URL_STS`.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// The whole environment of spawned processes (they start from `env_clear()`): nothing of the
    /// developer's AWS or credd setup can leak in.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        let dir = |p: &Path| p.display().to_string();
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), dir(&self.home)),
            ("XDG_CONFIG_HOME".into(), dir(&self.home.join(".config"))),
            (
                "XDG_STATE_HOME".into(),
                dir(&self.home.join(".local").join("state")),
            ),
            ("XDG_RUNTIME_DIR".into(), dir(&self.xdg_runtime_dir())),
            ("CREDD_CONFIG".into(), dir(&self.config_path)),
            ("CREDD_RUNTIME_DIR".into(), dir(&self.runtime_dir)),
            ("CREDD_STATE_DIR".into(), dir(&self.state_dir)),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                dir(&self.credentials_file()),
            ),
            ("AWS_CONFIG_FILE".into(), dir(&self.aws_config_file())),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("RUST_LOG".into(), "credd=debug".into()),
        ];
        for (key, value) in &self.extra_env {
            match env.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => env.push((key.clone(), value.clone())),
            }
        }
        env
    }

    /// A command for `program` with the world's environment and working directory, in a session
    /// of its own without a controlling terminal: nothing a test starts can prompt on the
    /// developer's terminal (`credd exec` logs in on `/dev/tty` when it finds one). A scenario
    /// that wants a terminal gives it one ([`crate::terminal::Terminal::attach`]).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear().envs(self.env()).current_dir(&self.home);
        // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// Writes the credd config (creating its directory).
    pub fn write_config(&self, toml: &str) {
        write_file(&self.config_path, toml);
    }

    /// Writes one profile to the shared credentials file (replacing the file).
    pub fn write_shared_credentials(&self, profile: &str, access_key_id: &str, secret: &str) {
        write_file(
            &self.credentials_file(),
            &format!(
                "[{profile}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
            ),
        );
        let path = self.credentials_file();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
    }

    /// Writes the AWS config file (`~/.aws/config` of the world), e.g. profiles for `credd import`.
    pub fn write_aws_config(&self, ini: &str) {
        write_file(&self.aws_config_file(), ini);
    }

    /// Runs `credd ARGS` (never autostarting a daemon), no stdin, 30 s at most.
    pub fn credd(&self, args: &[&str]) -> CmdOutput {
        self.run_client(args, None, false)
    }

    /// Runs `credd ARGS` with `stdin` as its standard input (never autostarting a daemon).
    pub fn credd_stdin(&self, args: &[&str], stdin: &str) -> CmdOutput {
        self.run_client(args, Some(stdin), false)
    }

    /// Runs `credd ARGS` allowing it to start the daemon itself (the daemon is not a child of the
    /// test: World's drop still finds and kills it).
    pub fn credd_autostart(&self, args: &[&str]) -> CmdOutput {
        self.run_client(args, None, true)
    }

    /// Starts `credd ARGS` (never autostarting a daemon, no stdin) and leaves it running, e.g. a
    /// `credd login` waiting for approval: its output is captured as it comes, and it can be
    /// signalled and waited for. Killed when dropped.
    pub fn spawn_credd(&self, args: &[&str]) -> Running {
        let mut command = self.command(client_bin());
        command
            .args(args)
            .env("CREDD_NO_AUTOSTART", "1")
            .stdin(Stdio::null());
        Running::start(command, format!("credd {}", args.join(" ")))
    }

    /// Runs `credd ARGS` without a controlling terminal (as from cron or a script runner), as
    /// every command of a world runs ([`World::command`]): the name says what the scenario
    /// relies on. `stdin` as for [`World::credd_stdin`].
    pub fn credd_without_terminal(&self, args: &[&str], stdin: Option<&str>) -> CmdOutput {
        let mut command = self.command(client_bin());
        command.args(args).env("CREDD_NO_AUTOSTART", "1");
        let shown = format!("credd {} (no terminal)", args.join(" "));
        run_with_timeout(command, stdin, &shown, CLIENT_TIMEOUT)
    }

    /// `credd status --json`, parsed; panics unless it succeeds.
    #[track_caller]
    pub fn status(&self) -> serde_json::Value {
        self.credd(&["status", "--json"]).assert_success().json()
    }

    /// One profile's entry of `credd status --json`; panics if there is none.
    #[track_caller]
    pub fn profile_status(&self, profile: &str) -> serde_json::Value {
        let status = self.status();
        status["profiles"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == profile))
            .cloned()
            .unwrap_or_else(|| panic!("no profile {profile:?} in status: {status:#}"))
    }

    /// Waits until `credd status` shows `profile` in `state` (`fresh`, `cold`, `failing`).
    #[track_caller]
    pub fn wait_profile_state(&self, profile: &str, state: &str, deadline: Duration) {
        wait_until(
            deadline,
            &format!("profile {profile:?} to be {state}"),
            || self.profile_status(profile)["state"] == state,
        );
    }

    /// `credd credential-process PROFILE`: Ok(the printed credentials), or Err(the output) when
    /// it fails. Panics if it succeeds with something else than `credential_process` JSON.
    #[track_caller]
    pub fn credential_process(&self, profile: &str) -> Result<ProcessCredentials, CmdOutput> {
        let out = self.credd(&["credential-process", profile]);
        if !out.success() {
            return Err(out);
        }
        let json = out.json();
        assert_eq!(json["Version"], 1, "Version must be the integer 1: {out}");
        let field = |name: &str| {
            json[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} missing from credential_process output: {out}"))
                .to_owned()
        };
        Ok(ProcessCredentials {
            keys: AwsKeys {
                access_key_id: field("AccessKeyId"),
                secret_access_key: field("SecretAccessKey"),
                session_token: Some(field("SessionToken")),
            },
            expiration: field("Expiration"),
            account_id: json["AccountId"].as_str().map(str::to_owned),
        })
    }

    /// The paths the world's `credd` resolves from its environment.
    pub fn paths(&self) -> Paths {
        Paths {
            config: self.config_path.clone(),
            config_named: true,
            runtime_dir: self.runtime_dir_in_use(),
            state_dir: self.state_dir.clone(),
        }
    }

    /// One request over the control socket through the `credd` crate's client library, with
    /// the CLI's own connection, trust checks and framing, but no process spawned: for bursts
    /// and for timing the daemon alone. An error reply is `Ok(Response::Error)`; Err when the
    /// daemon cannot be reached or trusted, or closes the connection without an answer.
    pub fn request(&self, request: &Request) -> Result<Response, ClientError> {
        Connection::open_existing(&self.paths())?.request(request)
    }

    /// Runs any program with the world's environment (e.g. a Python SDK against the daemon),
    /// with the same 30 s timeout and output capture as [`World::credd`].
    pub fn run(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> CmdOutput {
        let shown = format!("{} {}", program.as_ref().to_string_lossy(), args.join(" "));
        let mut command = self.command(program);
        command.args(args);
        run_with_timeout(command, stdin, &shown, CLIENT_TIMEOUT)
    }

    fn run_client(&self, args: &[&str], stdin: Option<&str>, autostart: bool) -> CmdOutput {
        let mut command = self.command(client_bin());
        command.args(args);
        if !autostart {
            command.env("CREDD_NO_AUTOSTART", "1");
        }
        let shown = format!("credd {}", args.join(" "));
        run_with_timeout(command, stdin, &shown, CLIENT_TIMEOUT)
    }

    /// Starts `credd-daemon --foreground` and waits until its control socket accepts
    /// connections. Panics with the daemon's log if it exits or is not ready in 15 s.
    pub fn start_daemon(&mut self) {
        if let Err(failed) = self.try_start_daemon(&[]) {
            panic!("{failed}");
        }
    }

    /// Like [`World::start_daemon`] with extra arguments, returning how the daemon failed
    /// instead of panicking when it exits before being ready (e.g. on a bad config).
    pub fn try_start_daemon(&mut self, extra_args: &[&str]) -> Result<(), DaemonFailed> {
        let mut command = self.command(daemon_bin());
        command.arg("--foreground").args(extra_args);
        self.spawn_daemon(command);
        self.wait_daemon_ready()
    }

    /// Starts `command` (from [`World::command`]) as the world's daemon, its stderr to the log,
    /// without waiting for it: e.g. `systemd-socket-activate ... credd-daemon --foreground`,
    /// which runs the daemon only once a connection arrives.
    pub fn spawn_daemon(&mut self, mut command: Command) {
        let mut slot = lock(&self.daemon);
        if let Some(child) = slot.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            panic!(
                "start_daemon: the world's daemon (pid {}) is still running",
                child.id()
            );
        }
        let log_path = self.daemon_log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        *slot = Some(child);
    }

    /// Waits until the daemon [`World::spawn_daemon`] started accepts control connections; how
    /// it failed if it exits first or is not ready within 15 s.
    pub fn wait_daemon_ready(&mut self) -> Result<(), DaemonFailed> {
        let mut slot = lock(&self.daemon);
        let child = slot
            .as_mut()
            .expect("wait_daemon_ready: no daemon was started");
        let socket = self.socket_path();
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    *slot = None;
                    drop(slot);
                    return Err(DaemonFailed {
                        status: Some(status),
                        log: self.daemon_log(),
                    });
                }
                Ok(None) => {}
                Err(e) => panic!("wait for the daemon: {e}"),
            }
            if UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            if start.elapsed() > DAEMON_START_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                *slot = None;
                drop(slot);
                return Err(DaemonFailed {
                    status: None,
                    log: self.daemon_log(),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Sends SIGTERM to the daemon started with [`World::start_daemon`] and waits (10 s) for it
    /// to exit; returns its exit status.
    pub fn stop_daemon(&mut self) -> ExitStatus {
        let mut slot = lock(&self.daemon);
        let mut child = slot
            .take()
            .expect("stop_daemon: this world started no daemon (or it was already stopped)");
        let pid = pid_of(&child);
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped yet.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            panic!(
                "SIGTERM to the daemon (pid {pid}): {}",
                std::io::Error::last_os_error()
            );
        }
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => {}
                Err(e) => panic!("wait for the daemon (pid {pid}): {e}"),
            }
            if start.elapsed() > DAEMON_STOP_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                drop(slot);
                panic!(
                    "the daemon (pid {pid}) did not exit within {DAEMON_STOP_DEADLINE:?} of \
                     SIGTERM (killed)\n--- daemon log ---\n{}",
                    self.daemon_log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The pid of the daemon this world started, while it has not been stopped.
    pub fn daemon_pid(&self) -> Option<u32> {
        lock(&self.daemon).as_ref().map(Child::id)
    }

    /// Whether the daemon this world started is still running.
    pub fn daemon_running(&self) -> bool {
        lock(&self.daemon)
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits until the daemon this world started exits by itself; returns its status.
    pub fn wait_daemon_exit(&self, deadline: Duration) -> ExitStatus {
        let mut status = None;
        wait_until(deadline, "the daemon to exit", || {
            let mut slot = lock(&self.daemon);
            let child = slot
                .as_mut()
                .expect("wait_daemon_exit: this world started no daemon");
            status = child.try_wait().expect("wait for the daemon");
            status.is_some()
        });
        lock(&self.daemon).take();
        status.expect("wait_until returned, so the daemon exited")
    }

    /// `root/daemon.log`: stderr of daemons started by [`World::start_daemon`] (appended).
    pub fn daemon_log_path(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// The daemon's log so far: `root/daemon.log`, plus `state_dir/daemon.log` where an
    /// autostarted daemon writes, if there is one.
    pub fn daemon_log(&self) -> String {
        let mut log = read_lossy(&self.daemon_log_path()).unwrap_or_default();
        let background = self.state_dir.join("daemon.log");
        if let Some(more) = read_lossy(&background) {
            log.push_str(&format!("\n--- {} ---\n{more}", background.display()));
        }
        log
    }

    /// Pids of every process whose environment names this world's runtime dir: the daemon this
    /// world started, daemons the client autostarted, clients still running. Linux only (/proc);
    /// empty elsewhere.
    pub fn world_pids(&self) -> Vec<i32> {
        let marker = format!("CREDD_RUNTIME_DIR={}", self.runtime_dir_in_use().display());
        let me = std::process::id() as i32;
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                // Processes of other users or already gone are not readable: not ours.
                fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                    environ
                        .split(|&b| b == 0)
                        .any(|var| var == marker.as_bytes())
                })
            })
            .collect()
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.daemon).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.world_pids() {
            // SAFETY: kill(2) on a pid that carries this world's unique runtime dir in its
            // environment; it is not our child, so there is nothing to reap.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// What `credd credential-process` printed.
#[derive(Debug, Clone)]
pub struct ProcessCredentials {
    pub keys: AwsKeys,
    /// RFC 3339, as printed.
    pub expiration: String,
    pub account_id: Option<String>,
}

/// The daemon exited before it was ready (`status`), or did not get ready in time (`None`).
#[derive(Debug)]
pub struct DaemonFailed {
    pub status: Option<ExitStatus>,
    pub log: String,
}

impl std::fmt::Display for DaemonFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "credd-daemon exited before it was ready ({status})")?,
            None => write!(
                f,
                "credd-daemon's control socket accepted no connection within \
                 {DAEMON_START_DEADLINE:?} (killed)"
            )?,
        }
        write!(f, "\n--- daemon log ---\n{}", self.log)
    }
}

/// What a finished command printed. `code` is the exit code, or 128+signal if it was killed.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics showing the output unless the exit code is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &CmdOutput {
        assert!(self.success(), "expected success, got {self}");
        self
    }

    /// Panics showing the output unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &CmdOutput {
        assert_eq!(self.code, code, "unexpected exit code: {self}");
        self
    }

    /// stdout parsed as JSON; panics showing stdout and stderr if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A command started by [`World::spawn_credd`], still running or not.
pub struct Running {
    child: Child,
    shown: String,
    stdout: Capture,
    stderr: Capture,
}

impl Running {
    /// Starts `command` (e.g. from [`World::command`]) with its stdout and stderr captured as
    /// they come; stdin as `command` has it. `shown` names it in failure messages.
    pub fn start(mut command: Command, shown: String) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{shown}`: {e}"));
        let stdout = Capture::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Capture::start(child.stderr.take().expect("stderr is piped"));
        Running {
            child,
            shown,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits until its stderr contains `needle`; panics showing the output otherwise (also when
    /// it exits first).
    #[track_caller]
    pub fn wait_for_stderr(&mut self, needle: &str, deadline: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            let exited = self.has_exited();
            if exited || start.elapsed() > deadline {
                panic!(
                    "`{}` {} without printing {needle:?} on stderr\n--- stdout ---\n{}\n--- stderr ---\n{text}",
                    self.shown,
                    if exited { "exited" } else { "went on" },
                    self.stdout(),
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether it has exited (it is not reaped until [`Running::wait`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends it `signal` (e.g. `libc::SIGINT`, as a Ctrl-C on its terminal would).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child, not reaped before `wait` consumes `self`.
        if unsafe { libc::kill(pid_of(&self.child), signal) } != 0 {
            panic!(
                "signal {signal} to `{}`: {}",
                self.shown,
                std::io::Error::last_os_error()
            );
        }
    }

    /// Waits for it to exit and returns what it printed; kills it and panics after `deadline`.
    #[track_caller]
    pub fn wait(mut self, deadline: Duration) -> CmdOutput {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("wait for `{}`: {e}", self.shown))
            {
                break status;
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` did not finish within {deadline:?} (killed)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.shown,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        };
        let exited = Instant::now();
        while !(self.stdout.closed() && self.stderr.closed()) {
            if exited.elapsed() > PIPE_CLOSE_DEADLINE {
                panic!(
                    "`{}` exited ({status}) but its stdout/stderr stayed open for {PIPE_CLOSE_DEADLINE:?}",
                    self.shown
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        CmdOutput {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` with stdout/stderr captured, killing it and panicking after `timeout`.
fn run_with_timeout(
    mut command: Command,
    stdin: Option<&str>,
    shown: &str,
    timeout: Duration,
) -> CmdOutput {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{shown}`: {e}"));
    let stdout = Capture::start(child.stdout.take().expect("stdout is piped"));
    let stderr = Capture::start(child.stderr.take().expect("stderr is piped"));
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_owned();
        // A thread: a large input must not block while the child fills its stdout.
        std::thread::spawn(move || {
            // The child may exit without reading everything: that is its business.
            let _ = pipe.write_all(input.as_bytes());
        })
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .unwrap_or_else(|e| panic!("wait for `{shown}`: {e}"))
        {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{shown}` did not finish within {timeout:?} (killed)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let exited = Instant::now();
    while !(stdout.closed() && stderr.closed()) {
        if exited.elapsed() > PIPE_CLOSE_DEADLINE {
            panic!(
                "`{shown}` exited ({status}) but its stdout/stderr stayed open for \
                 {PIPE_CLOSE_DEADLINE:?}: a process it started (the autostarted daemon?) inherited \
                 them, so `$(credd ...)` in a shell would hang\n--- stdout ---\n{}\n--- stderr ---\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    CmdOutput {
        code,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// Reads a pipe on a thread into a shared buffer, so a partial output can be shown on timeout.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

trait Pipe: Read + Send + 'static {}
impl Pipe for ChildStdout {}
impl Pipe for ChildStderr {}

impl Capture {
    fn start(mut pipe: impl Pipe) -> Capture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            // Ends at EOF, or on a read error, which for a pipe means the same.
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                lock(&sink).extend_from_slice(&chunk[..n]);
            }
        });
        Capture { buffer, reader }
    }

    fn closed(&self) -> bool {
        self.reader.is_finished()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.buffer)).into_owned()
    }
}

fn pid_of(child: &Child) -> libc::pid_t {
    libc::pid_t::try_from(child.id()).expect("a pid fits in pid_t")
}

fn write_file(path: &Path, contents: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read_lossy(path: &Path) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
