//! Shared by the HTTP API scenarios (`http_sdk_clients`, `http_defences`, `imds`,
//! `client_env_exec`): a daemon serving two profiles from moto with auth on, raw HTTP/1.1 over TCP
//! (so a test controls every byte, Host included), and the SDK clients that are pointed at it.
//! Each scenario file uses part of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credd_tests::bins::client_bin;
use credd_tests::moto::{Auth, Moto, SeedSpec};
use credd_tests::wait_until;
use credd_tests::world::{CmdOutput, World};

/// `staging` (the default profile) assumes this role...
pub const ADMIN_ROLE: &str = "arn:aws:iam::222222222222:role/Administrator";
/// ...and `deploy` this one, in another account.
pub const DEPLOY_ROLE: &str = "arn:aws:iam::333333333333:role/Deploy";
/// Who STS says `staging`'s credentials are (alice's user name is the session name).
pub const STAGING_ARN: &str = "arn:aws:sts::222222222222:assumed-role/Administrator/alice";
pub const DEPLOY_ARN: &str = "arn:aws:sts::333333333333:assumed-role/Deploy/alice";
pub const STAGING_REGION: &str = "us-east-1";
pub const DEPLOY_REGION: &str = "us-west-2";

/// Login and the first AssumeRole of every profile, moto included.
pub const READY_DEADLINE: Duration = Duration::from_secs(20);
/// A raw HTTP exchange that takes longer than this fails the test.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// boto3 as a program would use it: the default chain, then STS (at `AWS_ENDPOINT_URL_STS`).
/// Prints `{"arn", "method", "region", "expiry"}`; `method` names botocore's provider
/// (`container-role`, `iam-role` for IMDS, `custom-process`, `env`).
pub const BOTO3_CALLER: &str = r#"
import json, os, boto3
session = boto3.session.Session()
creds = session.get_credentials()
if creds is None:
    raise SystemExit("boto3 found no credentials")
sts = session.client("sts", region_name=session.region_name or "us-east-1")
arn = sts.get_caller_identity()["Arn"]
expiry = getattr(creds, "_expiry_time", None)
print(json.dumps({
    "arn": arn,
    "method": creds.method,
    "region": session.region_name,
    "expiry": expiry.timestamp() if expiry else None,
}))
"#;

/// A daemon with `staging` (current, [`ADMIN_ROLE`]) and `deploy` ([`DEPLOY_ROLE`]), logged in
/// by itself with alice's key against moto with auth on, both profiles fresh. Fields drop in
/// order: the world (and its daemon) before moto.
pub struct Served {
    pub world: World,
    pub moto: Option<&'static Moto>,
    /// `http://127.0.0.1:PORT`, from `credd status --json`.
    pub url: String,
    pub addr: SocketAddr,
}

impl Served {
    /// moto seeded (auth on), the daemon started with `daemon_lines` added to `[daemon]`
    /// (e.g. `imds = true`), every profile fresh.
    pub fn start(daemon_lines: &str) -> Served {
        Served::start_with(daemon_lines, "")
    }

    /// [`Served::start`] with `staging_lines` added to `[profiles.staging]`, e.g. a `duration`.
    pub fn start_with(daemon_lines: &str, staging_lines: &str) -> Served {
        let moto = Moto::shared(Auth::On);
        let seeded = moto.seed(
            &SeedSpec::new()
                .user("alice")
                .role(ADMIN_ROLE)
                .role(DEPLOY_ROLE),
        );
        let alice = seeded.user("alice");
        let mut world = World::new();
        world.write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
        world.set_env("AWS_ENDPOINT_URL_STS", &moto.endpoint());
        world.write_config(&config_on("127.0.0.1:0", daemon_lines, staging_lines));
        world.start_daemon();
        let served = Served::attach(world, Some(moto));
        wait_until(READY_DEADLINE, "every profile to be fresh", || {
            let status = served.status();
            status["profiles"]
                .as_array()
                .is_some_and(|all| !all.is_empty() && all.iter().all(|p| p["state"] == "fresh"))
        });
        served
    }

    /// The same daemon and profiles, but STS is unreachable (nothing listens on its port): for
    /// the checks that happen before any credentials are involved. Nothing gets fresh.
    pub fn start_without_sts(daemon_lines: &str) -> Served {
        Served::start_without_sts_on("127.0.0.1:0", daemon_lines)
    }

    /// [`Served::start_without_sts`] listening on `listen`, e.g. `[::1]:0`.
    pub fn start_without_sts_on(listen: &str, daemon_lines: &str) -> Served {
        let mut world = World::new();
        world.write_shared_credentials("access", "AKIDEXAMPLE", "not-a-real-secret");
        world.set_env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1");
        world.write_config(&config_on(listen, daemon_lines, ""));
        world.start_daemon();
        Served::attach(world, None)
    }

    fn attach(world: World, moto: Option<&'static Moto>) -> Served {
        let mut url = String::new();
        wait_until(READY_DEADLINE, "the HTTP URL in credd status", || {
            let out = world.credd(&["status", "--json"]);
            match out
                .success()
                .then(|| out.json()["url"].as_str().map(str::to_owned))
            {
                Some(Some(u)) => {
                    url = u;
                    true
                }
                _ => false,
            }
        });
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("status url {url:?} is not http://IP:PORT"));
        Served {
            world,
            moto,
            url,
            addr,
        }
    }

    pub fn moto(&self) -> &'static Moto {
        self.moto.expect("this daemon was started without moto")
    }

    #[track_caller]
    pub fn status(&self) -> serde_json::Value {
        self.world
            .credd(&["status", "--json"])
            .assert_success()
            .json()
    }

    /// The HTTP API token the daemon wrote.
    pub fn token(&self) -> String {
        self.world.http_token()
    }

    /// `GET path` with the right token and a loopback Host.
    pub fn get_authorized(&self, path: &str) -> Reply {
        let token = self.token();
        self.request("GET", path, &[("Authorization", &token)])
    }

    /// One request on a fresh connection; `Host: 127.0.0.1:PORT` unless `headers` has a Host.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        let raw = self.send_raw(head.as_bytes());
        Reply::parse(&raw).unwrap_or_else(|| {
            panic!(
                "{method} {path}: no HTTP response, got {:?}",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    /// Writes `bytes` on a fresh connection and returns all it reads until the daemon closes it
    /// (empty when it closed or reset without answering). Write errors are tolerated: the daemon
    /// may hang up before reading everything. The write side stays open, as SDKs leave it: hyper
    /// drops a connection whose client half-closes before the answer is ready.
    pub fn send_raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr)
            .unwrap_or_else(|e| panic!("connect to the daemon at {}: {e}", self.addr));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set a read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set a write timeout");
        let _ = stream.write_all(bytes);
        let mut out = Vec::new();
        match stream.read_to_end(&mut out) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the daemon neither answered nor closed within {IO_TIMEOUT:?}")
            }
            Err(e) => panic!("reading from the daemon: {e}"),
        }
        out
    }

    /// Asserts the daemon is up and answering: `/healthz` is `ok`, and the process still runs.
    #[track_caller]
    pub fn assert_still_serving(&self) {
        assert!(
            self.world.daemon_running(),
            "the daemon exited:\n{}",
            self.world.daemon_log()
        );
        let reply = self.request("GET", "/healthz", &[]);
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"), "{reply}");
    }

    /// Runs `program args` in the world with `env` added (as `env K=V... program args`), so each
    /// call chooses its own variables; `AWS_EC2_METADATA_DISABLED` stays `true` unless overridden.
    pub fn run_with_env(&self, env: &[(&str, &str)], program: &str, args: &[&str]) -> CmdOutput {
        let mut argv: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        argv.push(program.to_owned());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.world.run("env", &argv, None)
    }

    /// [`BOTO3_CALLER`] with `env` added; Ok(its JSON) or Err(the output) when it fails.
    pub fn boto3(&self, env: &[(&str, &str)]) -> Result<serde_json::Value, CmdOutput> {
        let python = self.moto().python().display().to_string();
        let out = self.run_with_env(env, &python, &["-c", BOTO3_CALLER]);
        if out.success() {
            Ok(out.json())
        } else {
            Err(out)
        }
    }

    /// The env a program needs for the container route at `path` (`/v1/credentials...`).
    pub fn container_env(&self, path: &str) -> Vec<(String, String)> {
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                format!("{}{path}", self.url),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                self.world.token_file().display().to_string(),
            ),
            ("AWS_REGION".into(), STAGING_REGION.into()),
        ]
    }

    /// The env a program needs to use the daemon as its IMDS.
    pub fn imds_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), self.url.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "false".into()),
            ("AWS_REGION".into(), STAGING_REGION.into()),
        ]
    }

    /// `sdk-client ARGS` (the AWS SDK for Rust, see tests/src/bin/sdk-client.rs) with `env`.
    pub fn rust_sdk(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<serde_json::Value, CmdOutput> {
        let out = self.run_with_env(env, env!("CARGO_BIN_EXE_sdk-client"), args);
        if out.success() {
            Ok(out.json())
        } else {
            Err(out)
        }
    }
}

/// `(k, v)` pairs as the `&str` pairs [`Served::run_with_env`] takes.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The `credd` client, for shells and AWS config files that need its absolute path.
pub fn credd_path() -> String {
    client_bin().display().to_string()
}

/// The tests' own `python3` outside the venv (readable by every user).
pub fn system_python() -> PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("a system python3 (/usr/bin/python3)")
}

fn config_on(listen: &str, daemon_lines: &str, staging_lines: &str) -> String {
    format!(
        r#"default_profile = "staging"

[daemon]
listen = "{listen}"
{daemon_lines}

[access]
source = "iam-user"
aws_profile = "access"

[profiles.staging]
role_arn = "{ADMIN_ROLE}"
region = "{STAGING_REGION}"
{staging_lines}

[profiles.deploy]
role_arn = "{DEPLOY_ROLE}"
region = "{DEPLOY_REGION}"
"#
    )
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn parse(raw: &[u8]) -> Option<Reply> {
        let text = String::from_utf8_lossy(raw);
        let (head, rest) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()?
            .strip_prefix("HTTP/1.1 ")?
            .get(..3)?
            .parse()
            .ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else {
            rest.to_owned()
        };
        Some(Reply {
            status,
            headers,
            body,
        })
    }

    /// The value of header `name` (the only one of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(k, _)| *k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(
            values.next().is_none(),
            "more than one {name} header: {self}"
        );
        first
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self}"))
    }

    /// Asserts an error answer as the API promises it: this status, `Content-Type` exactly
    /// `application/json`, a body of exactly `{"code","message"}`, and `Cache-Control: no-store`.
    /// Returns the code.
    #[track_caller]
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self}");
        let json = self.json();
        let object = json
            .as_object()
            .unwrap_or_else(|| panic!("error body is not an object: {self}"));
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message"], "{self}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{self}"
        );
        json["code"].as_str().expect("code is a string").to_owned()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time with whole seconds, `2026-11-25T09:52:36Z`
/// (the only shape the API may send); None for anything else.
pub fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// A long-running boto3 program on one route: one STS client made at start, then one
/// GetCallerIdentity per [`Boto3Follower::caller_arn`], like a server process that lives across a
/// `credd switch`. Killed on drop.
pub struct Boto3Follower {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

const FOLLOWER: &str = r#"
import sys, boto3
sts = boto3.session.Session().client("sts", region_name="us-east-1")
for _ in sys.stdin:
    try:
        print(sts.get_caller_identity()["Arn"], flush=True)
    except Exception as e:
        print("error: %s" % e, flush=True)
"#;

impl Boto3Follower {
    pub fn start(served: &Served, env: &[(&str, &str)]) -> Boto3Follower {
        let mut child = served
            .world
            .command(served.moto().python())
            .args(["-u", "-c", FOLLOWER])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the boto3 follower");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Boto3Follower {
            child,
            stdin,
            lines,
        }
    }

    /// One GetCallerIdentity in the running process: the ARN, or `error: ...`.
    pub fn caller_arn(&mut self) -> String {
        self.stdin
            .write_all(b"call\n")
            .and_then(|()| self.stdin.flush())
            .expect("ask the boto3 follower");
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the boto3 follower answers within 30 s")
    }
}

impl Drop for Boto3Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
