//! Real SDKs as programs use them, run in a test world: boto3 (the venv's python), the AWS
//! SDK for Rust through `sdk-client` (tests/src/bin/sdk-client.rs), and, in [`clients`], the Go,
//! Java and JavaScript v3 SDKs (built once under `target/`) and the AWS CLI, all as [`Sdk`]s. All
//! reach STS at `AWS_ENDPOINT_URL_STS`.

mod clients;
pub mod pickup;
pub use clients::{Follower, Sdk, run_once};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_sts::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::moto::venv_python;
use crate::world::World;

/// The HTTP client of every Rust SDK client in the tests: the SDK's own (hyper + rustls), with
/// ring for the crypto, as the daemon's (the workspace builds no aws-lc).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

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
    /// Starts it in `world` with `env` added.
    pub fn start(world: &World, env: &[(&str, &str)]) -> Boto3Follower {
        let mut child = world
            .command(venv_python())
            .args(["-u", "-c", FOLLOWER])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the boto3 follower");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = lines_of(stdout);
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

/// A follower's output, line by line, read by a thread of its own (a reply is awaited with a
/// timeout on the receiver).
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}
