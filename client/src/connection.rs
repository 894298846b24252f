//! Reaching the daemon: connect to the control socket, starting the daemon first when none runs
//! (unless `CREDD_NO_AUTOSTART` is set or a service manager owns it). Only a daemon of this user,
//! behind a runtime dir of this user's alone, is ever sent a byte ([`crate::trust`]). A client
//! pointed at a config file (`--config`, `CREDD_CONFIG`) names it in every request, so that a
//! daemon running with another one refuses rather than answers for the wrong config; a daemon it
//! starts itself is given that config.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use credd_proto::paths::{Paths, canonical};
use credd_proto::{ProtoError, Request, Response};

use crate::error::{Absence, ClientError, Silence};
use crate::service_manager::{self, Manager};
use crate::trust;

/// What this client calls itself in every frame it sends.
const SOFTWARE: &str = concat!("credd ", env!("CARGO_PKG_VERSION"));
/// A request that takes longer than this (a login waits for STS and warm-up) means trouble.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a service manager to bring the daemon up.
const SERVICE_START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for the socket of a daemon another client is starting at the same time.
const RIVAL_START_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Connection {
    stream: UnixStream,
    /// Where an autostarted daemon logs, for the message when it does not answer.
    log: PathBuf,
    /// How long the current exchange may wait for its answer.
    timeout: Duration,
    /// The config file named to the daemon with every request.
    config: Option<String>,
}

impl Connection {
    pub fn open(paths: &Paths) -> Result<Connection, ClientError> {
        let socket = paths.socket();
        match connect_verified(paths) {
            Ok(stream) => return Ok(Connection::new(stream, paths)),
            Err(Unreached::Absent(_)) => {}
            Err(Unreached::Refused(e)) => return Err(e),
        }
        if std::env::var_os("CREDD_NO_AUTOSTART").is_some_and(|v| !v.is_empty()) {
            return Err(ClientError::NotRunning {
                socket,
                why: Absence::AutostartOff,
            });
        }
        match service_manager::installed_manager() {
            Some(manager) => start_service(manager, &socket)?,
            None => start_daemon(paths)?,
        }
        Connection::open_existing(paths)
    }

    /// Connects only to a daemon that is already running.
    pub fn open_existing(paths: &Paths) -> Result<Connection, ClientError> {
        match connect_verified(paths) {
            Ok(stream) => Ok(Connection::new(stream, paths)),
            Err(Unreached::Absent(why)) => Err(ClientError::NotRunning {
                socket: paths.socket(),
                why,
            }),
            Err(Unreached::Refused(e)) => Err(e),
        }
    }

    fn new(stream: UnixStream, paths: &Paths) -> Connection {
        let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
        Connection {
            stream,
            log: paths.log_file(),
            timeout: REPLY_TIMEOUT,
            config: named_config(paths),
        }
    }

    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.request_within(request, REPLY_TIMEOUT)
    }

    /// For a request the daemon answers only when something outside it happens (`LoginWait`
    /// answers when the user approves in a browser): waits up to `timeout` instead of the usual
    /// [`REPLY_TIMEOUT`], never less.
    pub fn request_within(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.exchange(request, timeout.max(REPLY_TIMEOUT))
    }

    /// For an answer wanted at once or not at all (shell completion asks for the profile names
    /// at every Tab): waits up to `timeout` only, however short.
    pub fn request_briefly(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.exchange(request, timeout)
    }

    fn exchange(&mut self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        self.timeout = timeout;
        let _ = self.stream.set_read_timeout(Some(self.timeout));
        let _ = self.stream.set_write_timeout(Some(self.timeout));
        let frame =
            credd_proto::encode_request_with_config(SOFTWARE, request, self.config.as_deref());
        let body = credd_proto::write_frame(&mut self.stream, &frame)
            .and_then(|()| credd_proto::read_frame(&mut self.stream))
            .map_err(|e| self.no_answer(e))?;
        Ok(credd_proto::decode_response(SOFTWARE, &body)?)
    }

    /// A connection that ends or stalls mid-exchange is the daemon's doing, not a protocol error.
    fn no_answer(&self, e: ProtoError) -> ClientError {
        let why = match e {
            ProtoError::Closed => Silence::Closed,
            ProtoError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Silence::TimedOut(self.timeout)
            }
            ProtoError::Io(io) => Silence::Broken(io),
            other => return ClientError::Protocol(other),
        };
        ClientError::NoAnswer {
            log: self.log.clone(),
            why,
        }
    }
}

/// The config to name to the daemon: the file `--config`/`CREDD_CONFIG` gave, symlinks resolved;
/// `None` when the default is in use (whichever daemon runs is the one meant), or when the path
/// is not UTF-8 and cannot be named on the wire.
fn named_config(paths: &Paths) -> Option<String> {
    if !paths.config_named {
        return None;
    }
    canonical(&paths.config).to_str().map(str::to_owned)
}

enum Unreached {
    /// No daemon there (yet): starting one may help.
    Absent(Absence),
    /// Something is there that must not be talked to, or cannot be.
    Refused(ClientError),
}

/// Connects to the control socket after checking the runtime dir, and checks the listener's
/// user before returning the stream: until then, not a byte has been written.
fn connect_verified(paths: &Paths) -> Result<UnixStream, Unreached> {
    let socket = paths.socket();
    let untrusted = |path: PathBuf, why| Unreached::Refused(ClientError::Untrusted { path, why });
    match trust::runtime_dir(&paths.runtime_dir) {
        Ok(true) => {}
        Ok(false) => return Err(Unreached::Absent(Absence::NoRuntimeDir)),
        Err(why) => return Err(untrusted(paths.runtime_dir.clone(), why)),
    }
    let stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(e) if is_absent(&e) => return Err(Unreached::Absent(Absence::Connect(e))),
        Err(e) => {
            return Err(Unreached::Refused(ClientError::NotRunning {
                socket,
                why: Absence::Connect(e),
            }));
        }
    };
    trust::peer(&stream).map_err(|why| untrusted(socket, why))?;
    Ok(stream)
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Has the service manager start the daemon, and waits for its socket.
fn start_service(manager: Manager, socket: &Path) -> Result<(), ClientError> {
    manager.start().map_err(ClientError::ServiceStart)?;
    if wait_for_socket(socket, SERVICE_START_TIMEOUT) {
        Ok(())
    } else {
        Err(ClientError::ServiceSocketMissing {
            socket: socket.to_owned(),
            waited: SERVICE_START_TIMEOUT,
        })
    }
}

/// Runs `credd-daemon` (which forks itself off and returns once ready).
fn start_daemon(paths: &Paths) -> Result<(), ClientError> {
    let exe = daemon_exe()?;
    let out = Command::new(&exe)
        .env(credd_proto::paths::ENV_CONFIG, &paths.config)
        .env(credd_proto::paths::ENV_RUNTIME_DIR, &paths.runtime_dir)
        .env(credd_proto::paths::ENV_STATE_DIR, &paths.state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| ClientError::DaemonSpawn {
            exe: exe.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr.trim().trim_start_matches("credd-daemon: ");
    // Another client may have started it a moment ago: that one counts, once its socket is up
    // (it takes the instance lock a moment before it binds the socket).
    if msg.contains("already running") {
        wait_for_socket(&paths.socket(), RIVAL_START_TIMEOUT);
        return Ok(());
    }
    Err(ClientError::DaemonRefused {
        message: msg.to_owned(),
    })
}

/// `credd-daemon` next to this binary, else the first one on PATH; else the error says where it
/// looked.
pub fn daemon_exe() -> Result<PathBuf, ClientError> {
    const NAME: &str = "credd-daemon";
    let beside = std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(Path::to_path_buf));
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    beside
        .iter()
        .chain(&path)
        .map(|dir| dir.join(NAME))
        .find(|p| p.is_file())
        .ok_or(ClientError::DaemonMissing { beside, path })
}

/// Polls until the socket accepts a connection.
pub fn wait_for_socket(socket: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if UnixStream::connect(socket).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
