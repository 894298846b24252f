//! A Docker engine for the `credd docker` scenarios, made ready once per test process
//! ([`Engine::get`]): `docker.io` installed with apt-get when `dockerd` is missing and `dockerd`
//! started when its socket does not answer (both as root, as CI runs; anyone else gets the
//! command to run), an image built offline ([`IMAGE`]: no registry is reachable), and the
//! containers, networks and STS relay the scenarios need.
//!
//! The image is Debian's `busybox-static` alone (`sh`, `wget`, `sleep`...), `docker import`ed from
//! a root file system made on the spot. Python is the host's: every container started with
//! [`Engine::run_args`] has the host's `/usr` and `/lib*` (the dynamic loader and the libraries),
//! the interpreter's prefix and a venv of boto3 and the AWS CLI (`target/container-venv`)
//! bind-mounted read-only at the same paths, so `python3` with boto3, and `aws`, run inside.
//!
//! moto listens on the host's loopback, which is a container's own: a container reaches it at
//! [`Engine::sts_endpoint`], a relay on the default bridge's gateway address (SigV4 signs the
//! `Host` header, which a byte-for-byte relay keeps, so moto still checks every signature).
//!
//! Containers ([`Container`]) and networks ([`Network`]) are removed when dropped, also when the
//! test fails; each carries the label `credd-tests.pid` of its test process, and what a test
//! process killed before it could clean up left behind is removed by the next one.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::install::{apt_install, lock_install, run_install_step, target_dir, venv_once};
use crate::moto::MOTO_REQUIREMENTS;
use crate::server::lock;
use crate::session_bus::find_program;
use crate::world::{CmdOutput, Running};
use crate::{POLL_INTERVAL, wait_until};

/// The tests' image: busybox alone, Python comes from [`Engine::run_args`]. The tag names the
/// recipe ([`Engine::build_image`]): change one, bump the other, and the next run builds it anew.
pub const IMAGE: &str = "credd-test-python:1";

/// The engine's socket, where `dockerd` listens unless told otherwise (the daemon's `[docker]
/// socket` in the scenarios).
pub const SOCKET: &str = "/var/run/docker.sock";

/// What the venv mounted into containers holds: the moto venv's boto3 (the SDK the host side of
/// the tests runs), and the AWS CLI (which carries its own botocore).
pub const AWS_CLI_REQUIREMENT: &str = "awscli==1.46.3";

/// A container that does nothing until stopped, and stops at once on `docker stop` (a shell as
/// PID 1 ignores SIGTERM unless it traps it).
pub const IDLE: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

/// The label every container and network of the tests carries: the test process's pid.
const LABEL: &str = "credd-tests.pid";

/// How long a `docker` command may take (a `docker run` of a Python script on a loaded machine
/// included) before the test fails.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a `dockerd` started by the tests may take to answer on its socket.
const ENGINE_START_DEADLINE: Duration = Duration::from_secs(60);

/// The user-defined networks' subnets: `10.213.N.0/24`, addresses `.2`-`.127` handed out by the
/// engine, `.200` and up for [`Network::fixed_ip`]. Far from Docker's own pools (172.17-31.x,
/// 192.168.x).
const SUBNETS: &str = "10.213";

/// The engine, ready for the tests (see the module's doc).
pub struct Engine {
    docker: PathBuf,
    socket: PathBuf,
    /// The default bridge's gateway: the host's address on `docker0`.
    bridge_gateway: Ipv4Addr,
    /// `target/container-venv`.
    venv: PathBuf,
    /// Host paths bind-mounted read-only, at the same place, into every test container.
    mounts: Vec<PathBuf>,
    /// STS relays: moto's port -> the relay's port on [`Engine::bridge_gateway`].
    relays: Mutex<Vec<(u16, u16)>>,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// Names of containers and networks made by this process: `credd-test-PID-N`.
static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

impl Engine {
    /// The engine, made ready on first use (installed, started, the image built, leftovers of
    /// dead test processes removed); panics saying what is missing and how to get it.
    pub fn get() -> &'static Engine {
        ENGINE
            .get_or_init(Engine::try_ready)
            .as_ref()
            .unwrap_or_else(|failure| panic!("the Docker engine for the tests: {failure}"))
    }

    fn try_ready() -> Result<Engine, String> {
        install_docker()?;
        let socket = PathBuf::from(SOCKET);
        start_dockerd(&socket)?;
        let docker = find_program("docker").ok_or("`docker` is not on PATH")?;
        let venv = target_dir("container-venv");
        ensure_venv(&venv);
        let mut engine = Engine {
            docker,
            socket,
            bridge_gateway: Ipv4Addr::UNSPECIFIED,
            mounts: mounts(&venv)?,
            venv,
            relays: Mutex::new(Vec::new()),
        };
        engine.bridge_gateway = engine.find_bridge_gateway()?;
        engine.remove_leftovers();
        engine.build_image()?;
        Ok(engine)
    }

    /// The engine's API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The default bridge's gateway address (`172.17.0.1` unless configured otherwise).
    pub fn bridge_gateway(&self) -> Ipv4Addr {
        self.bridge_gateway
    }

    /// The venv mounted into containers (boto3 and the AWS CLI).
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// The venv's python, on the host: the same interpreter and boto3 as in the containers.
    pub fn venv_python(&self) -> PathBuf {
        self.venv.join("bin").join("python3")
    }

    /// A `docker` command talking to this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new(&self.docker);
        command
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .stdin(Stdio::null());
        command
    }

    /// `docker ARGS` to the end ([`DOCKER_TIMEOUT`] at most), whatever its exit code.
    pub fn run_docker(&self, args: &[&str]) -> CmdOutput {
        let mut command = self.docker();
        command.args(args);
        Running::start(command, format!("docker {}", args.join(" "))).wait(DOCKER_TIMEOUT)
    }

    /// `docker ARGS`, its stdout trimmed; panics with its output unless it succeeds.
    #[track_caller]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.run_docker(args);
        assert!(out.success(), "docker {} failed: {out}", args.join(" "));
        out.stdout.trim().to_owned()
    }

    /// The `docker run` options (before the image) that make Python, boto3 and the AWS CLI work
    /// in a container of [`IMAGE`], and label it as the tests': the host's `/usr` and `/lib*`,
    /// the interpreter's prefix and the venv, read-only at the same paths; `PATH` with busybox
    /// first (so `aws` is the image's `python3 -m awscli`), then the venv. Each is one
    /// `--flag=value` word, as a person might write them (`credd docker run` reads `--network`
    /// among the options before the image either way).
    pub fn run_args(&self) -> Vec<String> {
        let mut args = vec![format!("--label={LABEL}={}", std::process::id())];
        for path in &self.mounts {
            args.push(format!("--volume={0}:{0}:ro", path.display()));
        }
        args.extend([
            format!("--env=PATH=/bin:{}", self.venv.join("bin").display()),
            "--env=LANG=C.UTF-8".to_owned(),
            // Everything is read-only: Python need not try to write its caches.
            "--env=PYTHONDONTWRITEBYTECODE=1".to_owned(),
        ]);
        args
    }

    /// `http://GATEWAY:PORT` where containers reach the moto on `moto_port` (which listens on
    /// the host's loopback): a relay on the default bridge's gateway, started on first use and
    /// kept until the test process ends. Containers on any network reach it (it is an address
    /// of the host).
    pub fn sts_endpoint(&self, moto_port: u16) -> String {
        let mut relays = lock(&self.relays);
        let port = match relays.iter().find(|(upstream, _)| *upstream == moto_port) {
            Some((_, port)) => *port,
            None => {
                let port = start_relay(self.bridge_gateway, moto_port);
                relays.push((moto_port, port));
                port
            }
        };
        format!("http://{}:{port}", self.bridge_gateway)
    }

    /// A new container name, unique among the tests' (`credd-test-PID-N`).
    pub fn unique_name(&self) -> String {
        format!(
            "credd-test-{}-{}",
            std::process::id(),
            NEXT_NAME.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A container name, and the container of that name removed when this is dropped: for one
    /// that something else starts (`credd docker run -- --name NAME ...`), so that it is removed
    /// even when the test fails before it ends.
    pub fn reserve(&'static self) -> Container {
        Container {
            name: self.unique_name(),
            engine: self,
        }
    }

    /// `docker run -d` of [`IMAGE`] with [`Engine::run_args`], `options` (before the image) and
    /// `command`; the container, removed when dropped. Panics unless it starts.
    #[track_caller]
    pub fn start(&'static self, options: &[&str], command: &[&str]) -> Container {
        let container = self.reserve();
        let args = self.run_argv("-d", &container, options, command);
        self.docker_ok(&strs(&args));
        container
    }

    /// `docker run MODE --name=NAME` with [`Engine::run_args`], `options`, [`IMAGE`] and
    /// `command`.
    fn run_argv(
        &self,
        mode: &str,
        container: &Container,
        options: &[&str],
        command: &[&str],
    ) -> Vec<String> {
        let mut args = vec!["run".to_owned(), mode.to_owned()];
        args.push(format!("--name={}", container.name));
        args.extend(self.run_args());
        args.extend(options.iter().map(|o| (*o).to_owned()));
        args.push(IMAGE.to_owned());
        args.extend(command.iter().map(|c| (*c).to_owned()));
        args
    }

    /// `docker run --rm` of [`IMAGE`] with [`Engine::run_args`], `options` and `command`, to the
    /// end: what it printed and its exit code. The container is removed also when this fails.
    pub fn run(&'static self, options: &[&str], command: &[&str]) -> CmdOutput {
        let container = self.reserve();
        let args = self.run_argv("--rm", &container, options, command);
        self.run_docker(&strs(&args))
    }

    /// A user-defined bridge network with a fixed subnet of its own ([`SUBNETS`]`.N.0/24`),
    /// removed (with any container left on it) when dropped. Subnets taken by other networks
    /// (another test process's) are skipped.
    #[track_caller]
    pub fn network(&'static self) -> Network {
        let name = self.unique_name();
        let seed = std::process::id() as usize * 31 + NEXT_NAME.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for attempt in 0..250 {
            let third = 1 + (seed + attempt * 7) % 250;
            let prefix = format!("{SUBNETS}.{third}");
            let out = self.run_docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &format!("{prefix}.0/24"),
                "--ip-range",
                &format!("{prefix}.0/25"),
                "--gateway",
                &format!("{prefix}.1"),
                "--label",
                &format!("{LABEL}={}", std::process::id()),
                &name,
            ]);
            if out.success() {
                return Network {
                    name,
                    prefix,
                    engine: self,
                };
            }
            if !out.stderr.contains("overlap") {
                panic!("docker network create {name} failed: {out}");
            }
            last = out.stderr;
        }
        panic!("no free {SUBNETS}.N.0/24 subnet for a test network: {last}");
    }

    /// The default bridge's gateway: the IPAM config's when it names one, else the address of
    /// its bridge interface on the host (`docker0`; Docker 20.10 names no gateway for the
    /// default bridge).
    fn find_bridge_gateway(&self) -> Result<Ipv4Addr, String> {
        let out = self.run_docker(&[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}} {{end}}\n\
             {{index .Options \"com.docker.network.bridge.name\"}}",
        ]);
        if !out.success() {
            return Err(format!("the default bridge network: {out}"));
        }
        let (gateways, interface) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
        if let Some(gateway) = gateways.split_whitespace().find_map(|w| w.parse().ok()) {
            return Ok(gateway);
        }
        let interface = interface.trim();
        interface_ipv4(interface).ok_or_else(|| {
            format!("the default bridge names no gateway and its interface {interface:?} has no IPv4 address: {out}")
        })
    }

    /// Removes the containers and networks of test processes that are gone (killed before their
    /// drops ran).
    fn remove_leftovers(&self) {
        let dead = |labelled: &str| -> Vec<String> {
            labelled
                .lines()
                .filter_map(|line| line.split_once(' '))
                .filter(|(_, pid)| {
                    pid.trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                })
                .map(|(id, _)| id.to_owned())
                .collect()
        };
        let filter = format!("label={LABEL}");
        let format = format!("{{{{.ID}}}} {{{{.Label \"{LABEL}\"}}}}");
        let containers = self.run_docker(&["ps", "-a", "--filter", &filter, "--format", &format]);
        for id in dead(&containers.stdout) {
            self.run_docker(&["rm", "-f", &id]);
        }
        let networks =
            self.run_docker(&["network", "ls", "--filter", &filter, "--format", &format]);
        for id in dead(&networks.stdout) {
            self.run_docker(&["network", "rm", &id]);
        }
    }

    /// Builds [`IMAGE`] unless the engine has it: a root file system of busybox-static (every
    /// applet linked), `/bin/aws` running the venv's AWS CLI, a passwd and group file, `docker
    /// import`ed. Serialized across test processes by the lock `target/docker-image.lock`.
    fn build_image(&self) -> Result<(), String> {
        let have = || self.run_docker(&["image", "inspect", IMAGE]).success();
        if have() {
            return Ok(());
        }
        apt_install(
            "the docker scenarios' image (busybox-static)",
            "busybox-static-install",
            || {
                if busybox_static().is_some() {
                    Vec::new()
                } else {
                    vec!["busybox-static".to_owned()]
                }
            },
        )?;
        let busybox = busybox_static().ok_or("busybox-static is installed but not found")?;
        let _lock = lock_install("docker-image");
        if have() {
            return Ok(());
        }
        let started = Instant::now();
        let dir = tempfile::tempdir().map_err(|e| format!("a temp dir for the image: {e}"))?;
        let root = dir.path().join("rootfs");
        make_rootfs(&root, &busybox)?;
        let tar = dir.path().join("rootfs.tar");
        run_install_step(
            Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
                .arg(&root)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            "tar of the image's root file system",
        );
        let out = self.run_docker(&[
            "import",
            "--change",
            "ENV PATH=/bin",
            "--message",
            "credd-tests: busybox-static, built by tests/src/docker.rs",
            &tar.display().to_string(),
            IMAGE,
        ]);
        if !out.success() {
            return Err(format!("docker import of the tests' image failed: {out}"));
        }
        eprintln!(
            "credd-tests: built the image {IMAGE} in {:.0?}",
            started.elapsed()
        );
        Ok(())
    }
}

/// A user-defined bridge network made by [`Engine::network`].
pub struct Network {
    name: String,
    /// `10.213.N`.
    prefix: String,
    engine: &'static Engine,
}

impl Network {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `10.213.N.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}.0/24", self.prefix)
    }

    /// `10.213.N.1`: the host's address on it.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// An address outside the range the engine hands out, for `--ip`: `10.213.N.(200+k)`.
    pub fn fixed_ip(&self, k: u8) -> String {
        assert!(k < 50, "fixed addresses are .200 to .249");
        format!("{}.{}", self.prefix, 200 + u16::from(k))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Containers still on it would keep it: they are the tests' own.
        let attached = quiet_output(self.engine.docker().args([
            "network",
            "inspect",
            &self.name,
            "--format",
            "{{range $id, $c := .Containers}}{{$id}} {{end}}",
        ]));
        for id in attached.split_whitespace() {
            quiet_output(self.engine.docker().args(["rm", "-f", id]));
        }
        quiet_output(self.engine.docker().args(["network", "rm", &self.name]));
    }
}

/// A container of the tests, by name; removed (`docker rm -f`) when dropped.
pub struct Container {
    name: String,
    engine: &'static Engine,
}

impl Container {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `docker inspect --format FORMAT NAME`, trimmed; panics unless the container exists.
    #[track_caller]
    pub fn inspect(&self, format: &str) -> String {
        self.engine.docker_ok(&[
            "inspect",
            "--type",
            "container",
            "--format",
            format,
            &self.name,
        ])
    }

    /// Whether the engine knows it (running or not).
    pub fn exists(&self) -> bool {
        self.engine
            .run_docker(&["inspect", "--type", "container", &self.name])
            .success()
    }

    /// Its full ID (64 hex digits).
    #[track_caller]
    pub fn id(&self) -> String {
        self.inspect("{{.Id}}")
    }

    /// Its address on `network` (`bridge` for the default one).
    #[track_caller]
    pub fn ip(&self, network: &str) -> String {
        self.inspect(&format!(
            "{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"
        ))
    }

    /// Its environment as the engine keeps it (`KEY=VALUE`).
    #[track_caller]
    pub fn env(&self) -> Vec<String> {
        let json = self.inspect("{{json .Config.Env}}");
        serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("Config.Env is not JSON ({e}): {json}"))
    }

    /// The value of `key` in [`Container::env`].
    #[track_caller]
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_owned))
    }

    pub fn running(&self) -> bool {
        self.engine
            .run_docker(&[
                "inspect",
                "--type",
                "container",
                "--format",
                "{{.State.Running}}",
                &self.name,
            ])
            .stdout
            .trim()
            == "true"
    }

    /// `docker exec NAME ARGS` to the end.
    pub fn exec(&self, args: &[&str]) -> CmdOutput {
        let mut argv = vec!["exec", self.name.as_str()];
        argv.extend_from_slice(args);
        self.engine.run_docker(&argv)
    }

    /// `python3 -c SCRIPT ARGS` inside, to the end.
    pub fn python(&self, script: &str, args: &[&str]) -> CmdOutput {
        let mut argv = vec!["python3", "-c", script];
        argv.extend_from_slice(args);
        self.exec(&argv)
    }

    /// `python3 -u -c SCRIPT ARGS` left running inside, one line in for one line out (see
    /// [`LineProgram`]).
    pub fn python_program(&self, script: &str, args: &[&str]) -> LineProgram {
        let mut command = self.engine.docker();
        command
            .args(["exec", "-i", &self.name, "python3", "-u", "-c", script])
            .args(args);
        LineProgram::start(command)
    }

    /// `docker stop NAME` (its command exits at once on SIGTERM if it is [`IDLE`]).
    #[track_caller]
    pub fn stop(&self) {
        self.engine.docker_ok(&["stop", &self.name]);
    }

    /// `docker rm -f NAME` now, rather than when dropped (e.g. to free its `--ip`).
    #[track_caller]
    pub fn remove(&self) {
        self.engine.docker_ok(&["rm", "-f", &self.name]);
    }

    /// Waits until it has stopped by itself.
    #[track_caller]
    pub fn wait_stopped(&self, deadline: Duration) {
        wait_until(
            deadline,
            &format!("container {} to stop", self.name),
            || !self.running(),
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        quiet_output(self.engine.docker().args(["rm", "-f", &self.name]));
    }
}

/// A program that answers each line written to it with one line (a Python loop in a container,
/// through `docker exec -i`): killed on drop, which ends the loop inside (its stdin closes).
pub struct LineProgram {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl LineProgram {
    fn start(mut command: Command) -> LineProgram {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        LineProgram {
            child,
            stdin,
            lines,
        }
    }

    /// Writes `line`; the line it answers (30 s at most).
    #[track_caller]
    pub fn ask(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("write to the program: {e}"));
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the program answered nothing within 30 s ({e})"))
    }
}

impl Drop for LineProgram {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` (no stdin) for drops and clean-ups: its stdout, or nothing, never a panic; a
/// command that hangs is killed after [`DOCKER_TIMEOUT`].
fn quiet_output(command: &mut Command) -> String {
    let Ok(mut child) = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return String::new();
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if start.elapsed() > DOCKER_TIMEOUT {
            let _ = child.kill();
            break;
        }
        thread::sleep(POLL_INTERVAL);
    }
    let _ = child.wait();
    reader.join().unwrap_or_default()
}

/// Installs `docker.io` when `dockerd` or `docker` is missing (as root; see [`apt_install`]).
fn install_docker() -> Result<(), String> {
    apt_install(
        "the docker scenarios (a Docker engine)",
        "docker-install",
        || {
            if find_program("dockerd").is_some() && find_program("docker").is_some() {
                Vec::new()
            } else {
                vec!["docker.io".to_owned()]
            }
        },
    )
}

/// Whether the engine answers `GET /_ping` on `socket`; Err says why not.
fn ping(socket: &Path) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let status = answer.lines().next().unwrap_or_default();
    if status.contains(" 200 ") {
        Ok(())
    } else {
        Err(format!("it answered {status:?}"))
    }
}

/// Starts `dockerd` unless the engine answers on `socket` already: as root, detached (a session
/// of its own; it outlives the tests, as a service would), its log appended to
/// `target/dockerd.log`, once across test processes (the lock `target/dockerd.lock`). As anyone
/// else, Err with the command to run.
fn start_dockerd(socket: &Path) -> Result<(), String> {
    let Err(why) = ping(socket) else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "the Docker engine does not answer on {} ({why}); start it with\n    sudo dockerd &\n\
             (or `sudo systemctl start docker`, and have your user in the docker group), or run \
             the tests as root, as CI does, and they start it themselves",
            socket.display()
        ));
    }
    let _lock = lock_install("dockerd");
    if ping(socket).is_ok() {
        return Ok(());
    }
    let dockerd = find_program("dockerd").ok_or("`dockerd` is not installed")?;
    let log_path = target_dir("dockerd.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;
    let stdout = log
        .try_clone()
        .map_err(|e| format!("share {}: {e}", log_path.display()))?;
    let mut command = Command::new(&dockerd);
    command
        .env_clear()
        // Where it finds containerd, runc and iptables.
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("start {}: {e}", dockerd.display()))?;
    eprintln!(
        "credd-tests: the Docker engine did not answer ({why}): started dockerd (pid {}), its log \
         in {}",
        child.id(),
        log_path.display()
    );
    let start = Instant::now();
    loop {
        if ping(socket).is_ok() {
            eprintln!("credd-tests: dockerd answers after {:.1?}", start.elapsed());
            // Not waited for: it runs on after the tests, in its own session.
            return Ok(());
        }
        // Another worktree's tests (another lock file) may have started one first: this one
        // then exits at once, and theirs answers soon.
        if let Ok(Some(status)) = child.try_wait()
            && !ping_within(socket, RIVAL_GRACE)
        {
            return Err(format!(
                "dockerd exited ({status}) before it answered on {}\n--- {} ---\n{}",
                socket.display(),
                log_path.display(),
                log_tail(&log_path)
            ));
        }
        if start.elapsed() > ENGINE_START_DEADLINE {
            return Err(format!(
                "dockerd (pid {}, left running) did not answer on {} within \
                 {ENGINE_START_DEADLINE:?}\n--- {} ---\n{}",
                child.id(),
                socket.display(),
                log_path.display(),
                log_tail(&log_path)
            ));
        }
        thread::sleep(POLL_INTERVAL * 5);
    }
}

/// How long a `dockerd` that exited at once is given to have lost the race to another one.
const RIVAL_GRACE: Duration = Duration::from_secs(15);

/// Whether the engine answers on `socket` within `deadline`.
fn ping_within(socket: &Path, deadline: Duration) -> bool {
    let start = Instant::now();
    loop {
        if ping(socket).is_ok() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL * 5);
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The venv containers run (see [`AWS_CLI_REQUIREMENT`]), made once per machine.
fn ensure_venv(venv: &Path) {
    let boto3 = MOTO_REQUIREMENTS
        .iter()
        .find(|r| r.starts_with("boto3=="))
        .expect("the moto venv pins boto3");
    venv_once(
        venv,
        &[boto3, AWS_CLI_REQUIREMENT],
        "bin/python3",
        "boto3 and the AWS CLI for containers",
    );
}

/// What containers need of the host to run the venv's python: `/usr` and the `/lib*` dirs (the
/// dynamic loader, libc, libssl...), the interpreter's prefix when it is elsewhere (pyenv's
/// `~/.pyenv/versions/X`: the binary, libpython, the standard library), and the venv.
fn mounts(venv: &Path) -> Result<Vec<PathBuf>, String> {
    let mut mounts: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/lib32", "/libx32"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    let python = venv.join("bin").join("python3");
    let real = fs::canonicalize(&python)
        .map_err(|e| format!("resolve the venv's python {}: {e}", python.display()))?;
    let prefix = real
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} has no prefix", real.display()))?
        .to_path_buf();
    if !mounts.iter().any(|m| prefix.starts_with(m)) {
        mounts.push(prefix);
    }
    mounts.push(venv.to_path_buf());
    for path in &mounts {
        if path.to_string_lossy().contains([':', ',']) {
            return Err(format!(
                "{} cannot be bind-mounted with -v (it holds ':' or ',')",
                path.display()
            ));
        }
    }
    Ok(mounts)
}

/// Debian's statically linked busybox, when `busybox-static` is installed.
fn busybox_static() -> Option<PathBuf> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "busybox-static"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if String::from_utf8_lossy(&out.stdout) != "install ok installed" {
        return None;
    }
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The image's root file system in `root`: busybox and its applets in `/bin`, `/bin/aws`, the
/// users root and nobody, `/tmp`.
fn make_rootfs(root: &Path, busybox: &Path) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    for dir in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        fs::create_dir_all(root.join(dir)).map_err(|e| io(dir, e))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("chmod /tmp", e))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))
        .map_err(|e| io("chmod /root", e))?;
    fs::copy(busybox, root.join("bin/busybox")).map_err(|e| io("copy busybox", e))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| io("busybox --list", e))?;
    let applets = String::from_utf8_lossy(&list.stdout).into_owned();
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| io(applet, e))?;
    }
    for needed in ["sh", "wget", "sleep"] {
        if !root.join("bin").join(needed).exists() {
            return Err(format!("{} has no {needed} applet", busybox.display()));
        }
    }
    // What `aws` is in the amazon/aws-cli image; python3 is the mounted venv's, on PATH.
    let aws = root.join("bin/aws");
    fs::write(&aws, "#!/bin/sh\nexec python3 -m awscli \"$@\"\n").map_err(|e| io("/bin/aws", e))?;
    fs::set_permissions(&aws, fs::Permissions::from_mode(0o755))
        .map_err(|e| io("chmod /bin/aws", e))?;
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(|e| io("/etc/passwd", e))?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| io("/etc/group", e))?;
    Ok(())
}

/// Relays every connection to `gateway:PORT` (PORT picked by the OS, returned) to moto on
/// `127.0.0.1:moto_port`, byte for byte, on threads that live as long as the test process.
fn start_relay(gateway: Ipv4Addr, moto_port: u16) -> u16 {
    let listener = TcpListener::bind((gateway, 0))
        .unwrap_or_else(|e| panic!("bind the STS relay on {gateway}: {e}"));
    let port = listener.local_addr().expect("the relay's address").port();
    let upstream = SocketAddr::from(([127, 0, 0, 1], moto_port));
    thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { continue };
            let Ok(outbound) = TcpStream::connect(upstream) else {
                continue;
            };
            pipe(&inbound, &outbound);
            pipe(&outbound, &inbound);
        }
    });
    port
}

/// The first IPv4 address of the host's interface `name`.
fn interface_ipv4(name: &str) -> Option<Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() && found.is_none() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not freed yet; its name is a
        // C string and its address, when not null, a sockaddr of the family it says.
        unsafe {
            let ifa = &*entry;
            let this = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            if this == name
                && !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
            {
                let addr = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                found = Some(Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)));
            }
            entry = ifa.ifa_next;
        }
    }
    // SAFETY: the list getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Copies `from` to `to` on a thread until `from` ends, then ends `to`'s writing half.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
