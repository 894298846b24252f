//! The Go, Java and JavaScript v3 SDK clients (`tests/go`, `tests/java`, `tests/js/sdk-client`),
//! each built or installed once per machine under `target/` ([`install_once`], under a lock,
//! rebuilt when its sources change), and every SDK the suite runs as one [`Sdk`]: a one-shot
//! call ([`run_once`]) and a long-running [`Follower`] on one SDK config, as tools are.
//!
//! Every client takes its credentials from its SDK's default chain (the environment decides:
//! the container route, IMDS, a `credential_process` in `AWS_CONFIG_FILE`) and calls STS
//! GetCallerIdentity at `AWS_ENDPOINT_URL_STS`; each prints one JSON line per call:
//! `{"arn", "provider", "expiry", "account_id"}` (what its SDK tells), `{"error"}` when a
//! follower's call failed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::lines_of;
use crate::bins::sdk_client_bin;
use crate::install::{install_once, run_install_step, target_dir, venv_once};
use crate::moto::{MOTO_REQUIREMENTS, venv_python};
use crate::world::{CmdOutput, World};
use crate::{docker::AWS_CLI_REQUIREMENT, workspace_dir};

/// How long one call of a follower may take (a JVM's first call on a loaded machine included).
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// An SDK as tools use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// boto3 (botocore), the moto venv's.
    Boto3,
    /// The AWS CLI (v1, on its own botocore; `target/container-venv`): a new process per call.
    AwsCli,
    /// The AWS SDK for JavaScript v3 (`@aws-sdk/client-sts`) on Node.js.
    Js,
    /// The AWS SDK for Go v2 (`config.LoadDefaultConfig`).
    Go,
    /// The AWS SDK for Java v2 (`DefaultCredentialsProvider`).
    Java,
    /// The AWS SDK for Rust (`aws-config`'s default chain, `sdk-client`).
    Rust,
}

impl Sdk {
    pub const ALL: [Sdk; 6] = [
        Sdk::Boto3,
        Sdk::AwsCli,
        Sdk::Js,
        Sdk::Go,
        Sdk::Java,
        Sdk::Rust,
    ];

    /// The three this module builds.
    pub const BUILT: [Sdk; 3] = [Sdk::Go, Sdk::Java, Sdk::Js];

    pub fn name(self) -> &'static str {
        match self {
            Sdk::Boto3 => "boto3",
            Sdk::AwsCli => "AWS CLI",
            Sdk::Js => "JavaScript v3",
            Sdk::Go => "Go v2",
            Sdk::Java => "Java v2",
            Sdk::Rust => "Rust",
        }
    }

    /// Builds or installs the client unless it is there (once per machine).
    pub fn ensure_installed(self) {
        match self {
            Sdk::Boto3 | Sdk::Rust => {}
            Sdk::AwsCli => aws_cli_venv(),
            Sdk::Js => ensure_js(),
            Sdk::Go => ensure_go(),
            Sdk::Java => ensure_java(),
        }
    }

    /// The program and arguments of one call (`follow`: of a follower).
    fn argv(self, follow: bool) -> (PathBuf, Vec<String>) {
        self.ensure_installed();
        let mode: Vec<String> = if follow {
            vec!["follow".into()]
        } else {
            Vec::new()
        };
        match self {
            Sdk::Boto3 => (
                venv_python(),
                vec![
                    "-u".into(),
                    "-c".into(),
                    if follow { BOTO3_FOLLOW } else { BOTO3_ONCE }.into(),
                ],
            ),
            Sdk::AwsCli => (
                "sh".into(),
                vec![
                    "-c".into(),
                    if follow { AWS_CLI_FOLLOW } else { AWS_CLI_ONCE }.into(),
                    "aws-cli-client".into(),
                    aws_cli().display().to_string(),
                ],
            ),
            Sdk::Js => {
                let script = js_dir().join("client.mjs").display().to_string();
                ("node".into(), [vec![script], mode].concat())
            }
            Sdk::Go => (go_dir().join("go-sdk-client"), mode),
            Sdk::Java => ("java".into(), [java_args(), mode].concat()),
            Sdk::Rust => (
                sdk_client_bin(),
                if follow {
                    vec!["follow".into()]
                } else {
                    vec!["default".into()]
                },
            ),
        }
    }
}

/// One call of `sdk` in `world` with `env` added: Ok(its JSON line) or Err(its output).
pub fn run_once(
    world: &World,
    sdk: Sdk,
    env: &[(&str, &str)],
) -> Result<serde_json::Value, CmdOutput> {
    let (program, args) = sdk.argv(false);
    let out = world
        .command(&program)
        .args(&args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run the {} client {}: {e}", sdk.name(), program.display()));
    let out = CmdOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    match out.stdout.lines().last().map(serde_json::from_str) {
        Some(Ok(json)) if out.success() => Ok(json),
        _ => Err(out),
    }
}

/// A long-running client of one SDK: one SDK config (one credentials cache) for its whole life,
/// one GetCallerIdentity per [`Follower::call`], like a server process living across a
/// `credd switch`. Its stderr is kept ([`Follower::stderr`]). Killed on drop.
pub struct Follower {
    pub sdk: Sdk,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    /// Starts `sdk`'s follower in `world` with `env` added.
    pub fn start(world: &World, sdk: Sdk, env: &[(&str, &str)]) -> Follower {
        let (program, args) = sdk.argv(true);
        let mut child = world
            .command(&program)
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {} follower: {e}", sdk.name()));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let lines = lines_of(stdout);
        let stderr = Arc::new(Mutex::new(String::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Follower {
            sdk,
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// One GetCallerIdentity in the running process: its JSON line (`{"error"}` on failure).
    pub fn call(&mut self) -> serde_json::Value {
        let name = self.sdk.name();
        self.stdin
            .write_all(b"call\n")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("ask the {name} follower: {e}\n{}", self.stderr()));
        let line = self.lines.recv_timeout(CALL_DEADLINE).unwrap_or_else(|e| {
            panic!(
                "the {name} follower did not answer within {CALL_DEADLINE:?} ({e})\n\
                 --- its stderr ---\n{}",
                self.stderr()
            )
        });
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the {name} follower printed {line:?}: {e}"))
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// boto3's default chain, then STS: one JSON line. `provider` is botocore's method
/// (`container-role`, `iam-role` for IMDS, `custom-process`).
const BOTO3_ONCE: &str = r#"
import json, boto3
session = boto3.session.Session()
sts = session.client("sts", region_name=session.region_name or "us-east-1")
arn = sts.get_caller_identity()["Arn"]
creds = session.get_credentials()
expiry = getattr(creds, "_expiry_time", None)
print(json.dumps({"arn": arn, "provider": creds.method,
                  "expiry": int(expiry.timestamp()) if expiry else None, "account_id": None}))
"#;

/// [`BOTO3_ONCE`], one call per stdin line on one session.
const BOTO3_FOLLOW: &str = r#"
import json, sys, boto3
session = boto3.session.Session()
sts = session.client("sts", region_name=session.region_name or "us-east-1")
for _ in sys.stdin:
    try:
        arn = sts.get_caller_identity()["Arn"]
        creds = session.get_credentials()
        expiry = getattr(creds, "_expiry_time", None)
        line = {"arn": arn, "provider": creds.method,
                "expiry": int(expiry.timestamp()) if expiry else None, "account_id": None}
    except Exception as e:
        line = {"error": str(e)}
    print(json.dumps(line), flush=True)
"#;

/// `aws sts get-caller-identity` ($1 is `aws`), its Arn as our JSON line. The AWS CLI v1 reads
/// `AWS_DEFAULT_REGION`, not `AWS_REGION`.
const AWS_CLI_ONCE: &str = r#"export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
arn=$("$1" sts get-caller-identity --query Arn --output text) || exit 1
printf '{"arn":"%s","provider":null,"expiry":null,"account_id":null}\n' "$arn""#;

/// [`AWS_CLI_ONCE`] per stdin line: every call a new `aws` process, as at a shell prompt.
const AWS_CLI_FOLLOW: &str = r#"export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
while read -r _; do
  if arn=$("$1" sts get-caller-identity --query Arn --output text); then
    printf '{"arn":"%s","provider":null,"expiry":null,"account_id":null}\n' "$arn"
  else
    printf '{"error":"aws sts get-caller-identity failed"}\n'
  fi
done"#;

/// `target/container-venv`'s AWS CLI (the venv the Docker tests make: same pins, same marker).
fn aws_cli() -> PathBuf {
    target_dir("container-venv").join("bin").join("aws")
}

fn aws_cli_venv() {
    let boto3 = MOTO_REQUIREMENTS
        .iter()
        .find(|r| r.starts_with("boto3=="))
        .expect("the moto venv pins boto3");
    venv_once(
        &target_dir("container-venv"),
        &[boto3, AWS_CLI_REQUIREMENT],
        "bin/python3",
        "boto3 and the AWS CLI for containers",
    );
}

/// The SHA-256 of `files` (relative to `dir`), for an install's pin: a changed source rebuilds.
fn sources_digest(dir: &Path, files: &[&str]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for file in files {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        context.update(file.as_bytes());
        context.update(&(bytes.len() as u64).to_le_bytes());
        context.update(&bytes);
    }
    format!("sha256:{}", hex::encode(context.finish()))
}

/// Panics naming `install` unless `program --version`-like `args` runs.
fn require_tool(program: &str, args: &[&str], what: &str, install: &str) {
    let ran = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ran.is_ok_and(|s| s.success()) {
        panic!("{what} needs `{program}`, which is not installed: {install}");
    }
}

fn go_dir() -> PathBuf {
    target_dir("go-sdk-client")
}

/// `go build` of tests/go into `target/go-sdk-client/go-sdk-client`.
fn ensure_go() {
    let source = workspace_dir().join("tests").join("go");
    let pinned = sources_digest(&source, &["go.mod", "go.sum", "main.go"]);
    install_once(
        &go_dir(),
        &pinned,
        "go-sdk-client",
        "the Go SDK client",
        |dir| {
            require_tool(
                "go",
                &["version"],
                "the Go SDK client",
                "install Go 1.24 or newer on PATH (Debian's golang-go is too old; \
             e.g. the official tarball into /usr/local/go)",
            );
            run_install_step(
                Command::new("go")
                    .args(["build", "-trimpath", "-o"])
                    .arg(dir.join("go-sdk-client"))
                    .arg(".")
                    .current_dir(&source)
                    .env("GOFLAGS", "-mod=readonly")
                    .env("GOTOOLCHAIN", "local"),
                "go build",
            );
        },
    );
}

fn java_dir() -> PathBuf {
    target_dir("java-sdk-client")
}

/// The JVM's arguments for the Java client: a quick start (the client lives for a call or a
/// few minutes), the jar and its dependencies.
fn java_args() -> Vec<String> {
    let dir = java_dir();
    vec![
        "-XX:+UseSerialGC".into(),
        "-XX:TieredStopAtLevel=1".into(),
        "-cp".into(),
        format!(
            "{}:{}/*",
            dir.join("java-sdk-client.jar").display(),
            dir.join("lib").display()
        ),
        "credd.tests.SdkClient".into(),
    ]
}

/// `mvn package` of tests/java into `target/java-sdk-client` (the jar, `lib/` its dependencies).
fn ensure_java() {
    let source = workspace_dir().join("tests").join("java");
    let pinned = sources_digest(
        &source,
        &["pom.xml", "src/main/java/credd/tests/SdkClient.java"],
    );
    let install = "apt-get install -y --no-install-recommends maven openjdk-17-jdk-headless";
    install_once(
        &java_dir(),
        &pinned,
        "java-sdk-client.jar",
        "the Java SDK client",
        |dir| {
            require_tool("java", &["-version"], "the Java SDK client", install);
            require_tool("mvn", &["-v"], "the Java SDK client", install);
            // A rebuild starts from nothing: no jar of an older pin in lib/.
            let _ = std::fs::remove_dir_all(dir.join("lib"));
            run_install_step(
                Command::new("mvn")
                    .args(["-q", "-B", "package"])
                    .arg(format!("-Dcredd.out={}", dir.display()))
                    .current_dir(&source),
                "mvn package",
            );
        },
    );
}

fn js_dir() -> PathBuf {
    target_dir("js-sdk-client")
}

/// `npm ci` of tests/js/sdk-client (its package-lock.json) into `target/js-sdk-client`.
fn ensure_js() {
    let source = workspace_dir().join("tests").join("js").join("sdk-client");
    let files = ["package.json", "package-lock.json", "client.mjs"];
    let pinned = sources_digest(&source, &files);
    let probe = "node_modules/@aws-sdk/client-sts/package.json";
    install_once(
        &js_dir(),
        &pinned,
        probe,
        "the JavaScript v3 SDK client",
        |dir| {
            let install = "apt-get install -y --no-install-recommends nodejs npm \
                       (Node.js 20 or newer)";
            require_tool("node", &["--version"], "the JavaScript SDK client", install);
            require_tool("npm", &["--version"], "the JavaScript SDK client", install);
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            for file in files {
                std::fs::copy(source.join(file), dir.join(file))
                    .unwrap_or_else(|e| panic!("copy {file} into {}: {e}", dir.display()));
            }
            run_install_step(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(dir),
                "npm ci",
            );
        },
    );
}
