//! A scripted stand-in for credd-daemon: a control socket in a private runtime dir that answers
//! each request with what the test says, and remembers what it was asked.

#![allow(dead_code)] // each test binary uses part of it

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use credd_proto::{AccessInfo, Request, Response};

const SOFTWARE: &str = "credd-daemon fake";

/// What the fake daemon was asked; a test's answers may wait on it (see [`Seen::wait_until`]).
#[derive(Default)]
pub struct Seen {
    requests: Mutex<Vec<Request>>,
    changed: Condvar,
}

impl Seen {
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Blocks an answer until some request arrives (e.g. `LoginWait` until `LoginCancel`).
    pub fn wait_until(&self, what: impl Fn(&[Request]) -> bool) {
        let mut requests = self.requests.lock().unwrap();
        while !what(&requests) {
            requests = self.changed.wait(requests).unwrap();
        }
    }

    /// Polls from the test's side, with a deadline.
    pub fn poll(&self, what: impl Fn(&[Request]) -> bool, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if what(&self.requests()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

pub struct FakeDaemon {
    pub dir: tempfile::TempDir,
    pub seen: Arc<Seen>,
}

impl FakeDaemon {
    pub fn start(answer: impl Fn(Request, &Seen) -> Response + Send + Sync + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The client talks only through a runtime dir of this user's alone.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o700)).unwrap();
        let listener = UnixListener::bind(dir.path().join("control.sock")).unwrap();
        let seen = Arc::new(Seen::default());
        let answer = Arc::new(answer);
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (seen, answer) = (shared.clone(), answer.clone());
                std::thread::spawn(move || serve(stream.unwrap(), &seen, &*answer));
            }
        });
        FakeDaemon { dir, seen }
    }

    /// `credd ARGS` in a scrubbed environment pointed at this daemon, plus `env`.
    pub fn credd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_credd"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CREDD_RUNTIME_DIR", self.dir.path())
            .env("CREDD_NO_AUTOSTART", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn serve(mut stream: UnixStream, seen: &Seen, answer: &dyn Fn(Request, &Seen) -> Response) {
    let Ok(body) = credd_proto::read_frame(&mut stream) else {
        return;
    };
    let request = credd_proto::decode_request(SOFTWARE, &body).unwrap();
    seen.requests.lock().unwrap().push(request.clone());
    seen.changed.notify_all();
    let frame = credd_proto::encode_response(SOFTWARE, &answer(request, seen));
    let _ = credd_proto::write_frame(&mut stream, &frame);
}

/// An access source named `source`, logged in, with nothing else to say; a test fills in what it
/// shows (`AccessInfo { sso: ..., ..access("sso") }`).
pub fn access(source: &str) -> AccessInfo {
    AccessInfo {
        source: source.into(),
        logged_in: true,
        identity: None,
        expires_at: None,
        mfa_serial: None,
        sts_region: None,
        warning: None,
        last_error: None,
        session_storage: None,
        federation: None,
        sso: None,
        pending: None,
        key: None,
        renews: None,
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
