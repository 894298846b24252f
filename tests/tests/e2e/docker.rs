//! `credd docker` end to end (issue 22): the real `credd docker run` / `env` / `revoke` /
//! `setup` against the real daemon, which serves containers an IMDSv2 API on each Docker
//! network's gateway, moto (auth on) checking every credential a container gets. Containers are
//! [`credd_tests::docker`]'s: busybox with the host's Python, boto3 and the AWS CLI mounted, STS
//! through the relay on the bridge gateway.
//!
//! What is checked: boto3 and the AWS CLI in a granted container get the pinned profile (the
//! README's `credd docker run --profile staging -- IMAGE aws sts get-caller-identity`), and
//! nothing else does: another container on the same bridge, one holding a copied grant, the
//! owner's own host processes and another local user (all 403 `NotGranted`); a stopped
//! container's grant is gone within seconds, and neither restarting it nor a new container on
//! its address (`--ip`) gets anything; containers pinned to two profiles keep their own across a
//! `credd switch`; `credd docker env`'s standing grant serves `--env-file` containers until
//! `credd docker revoke` cuts them off, a kept-alive connection included; `credd audit` names
//! each container; a daemon restart keeps running containers served; the grant is never on a
//! command line, in the log, in status, in the audit log or on disk.
//!
//! Run with `cargo build && cargo test -p credd-tests --test e2e -- docker` (as root: the first
//! run installs docker.io and busybox-static when missing and starts dockerd when it does not
//! answer; `docker_harness::` checks that part alone).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http_support::{DEPLOY_ARN, DEPLOY_REGION, STAGING_ARN, STAGING_REGION};
use credd_tests::docker::{Container, DOCKER_TIMEOUT, Engine, IDLE, IMAGE};
use credd_tests::http;
use credd_tests::sdk::BOTO3_CALLER;
use credd_tests::stack::{ADMIN, DEPLOY, READY_DEADLINE, Stack, Toml, assert_secrets_nowhere};
use credd_tests::world::{CmdOutput, Running, World};
use credd_tests::{free_port, require_root, system_python, wait_until};
use serde_json::Value;

/// A stopped container's claim is gone within a second of the engine's event; this bounds a
/// loaded machine.
const GONE_DEADLINE: Duration = Duration::from_secs(15);

/// The audit log is written within a second of the last credential; this bounds a loaded
/// machine.
const RECORDED_DEADLINE: Duration = Duration::from_secs(20);

/// The endpoint variable of a grant's environment (`http://GATEWAY:PORT/`).
const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
/// The grant's variable (`credd_proto::docker::GRANT_ENV`).
const GRANT: &str = "CREDD_GRANT";
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const LIST: &str = "/latest/meta-data/iam/security-credentials/";

/// Raw IMDSv2 from Python's standard library, each request on a connection of its own: the token
/// PUT, the role listing and the credentials of the listed role (or of argv[2], `staging` by
/// default, when the listing is refused), at the endpoint argv[1] (the grant's variable when
/// empty or absent). Prints `{"put": [status, body], "list": [...], "creds": [...]}`; status 0
/// when the connection failed.
const RAW_IMDS: &str = r#"
import json, os, sys, http.client, urllib.parse
url = (sys.argv[1] if len(sys.argv) > 1 else "") or os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
role = sys.argv[2] if len(sys.argv) > 2 else "staging"
u = urllib.parse.urlsplit(url)
def call(method, path, headers):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        return [r.status, r.read().decode("utf-8", "replace")]
    except Exception as e:
        return [0, repr(e)]
    finally:
        c.close()
put = call("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
headers = {"X-aws-ec2-metadata-token": put[1] if put[0] == 200 else "not-a-token"}
listing = call("GET", "/latest/meta-data/iam/security-credentials/", headers)
if listing[0] == 200:
    role = listing[1].strip()
creds = call("GET", "/latest/meta-data/iam/security-credentials/" + role, headers)
print(json.dumps({"put": put, "list": listing, "creds": creds}))
"#;

/// A program that keeps one connection to the grant's endpoint: for each line, a token PUT, the
/// listing and the credentials of the listed role (`deploy` when refused) on it (Python
/// reconnects only if the daemon closed it). Prints
/// `{"statuses": [...], "served": bool, "port": local port}`, or `{"failed": "..."}`.
const KEEP_ALIVE: &str = r#"
import json, os, sys, http.client, urllib.parse
u = urllib.parse.urlsplit(os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
def call(method, path, headers):
    c.request(method, path, headers=headers)
    r = c.getresponse()
    return r.status, r.read().decode("utf-8", "replace")
for _ in sys.stdin:
    try:
        put = call("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        port = c.sock.getsockname()[1] if c.sock else None
        headers = {"X-aws-ec2-metadata-token": put[1] if put[0] == 200 else "not-a-token"}
        listing = call("GET", "/latest/meta-data/iam/security-credentials/", headers)
        role = listing[1].strip() if listing[0] == 200 else "deploy"
        creds = call("GET", "/latest/meta-data/iam/security-credentials/" + role, headers)
        print(json.dumps({"statuses": [put[0], listing[0], creds[0]],
                          "served": "AccessKeyId" in creds[1], "port": port}), flush=True)
    except Exception as e:
        c.close()
        print(json.dumps({"failed": repr(e)}), flush=True)
"#;

/// A long-running program that fetches credentials anew for each line (a new boto3 session:
/// IMDS asked again) and prints who STS says they are, or `error: ...`.
const REFETCH: &str = r#"
import sys, boto3
for _ in sys.stdin:
    try:
        s = boto3.session.Session()
        sts = s.client("sts", region_name=s.region_name or "us-east-1")
        print(sts.get_caller_identity()["Arn"], flush=True)
    except Exception as e:
        print("error: %s" % e, flush=True)
"#;

/// A daemon serving containers: `staging` (the default, [`ADMIN`], us-east-1) and `deploy`
/// ([`DEPLOY`], us-west-2) logged in with alice's key against moto (auth on), `[docker]` on a
/// port of its own and the engine's socket; every profile fresh.
struct Docked {
    stack: Stack,
    engine: &'static Engine,
    /// `[docker] port`.
    port: u16,
    /// `AWS_ENDPOINT_URL_STS=...`: moto for the containers (through the relay).
    sts_env: String,
}

fn docked() -> Docked {
    docked_with_env(&[])
}

/// [`docked`] with `env` set in the world before the daemon starts (e.g. `RUST_LOG`).
fn docked_with_env(env: &[(&str, &str)]) -> Docked {
    let engine = Engine::get();
    let port = free_port();
    let profiles = format!(
        "[docker]\nport = {port}\nsocket = \"{socket}\"\n\n\
         [profiles.staging]\nrole_arn = \"{ADMIN}\"\nregion = \"{STAGING_REGION}\"\n\n\
         [profiles.deploy]\nrole_arn = \"{DEPLOY}\"\nregion = \"{DEPLOY_REGION}\"\n",
        socket = engine.socket().display(),
    );
    let mut stack = Stack::builder()
        .direct()
        .toml(Toml {
            top: "default_profile = \"staging\"",
            profiles: &profiles,
            ..Toml::default()
        })
        .build();
    for (key, value) in env {
        stack.world.set_env(key, value);
    }
    stack.world.start_daemon();
    stack.wait_all_fresh(READY_DEADLINE);
    let sts_env = format!(
        "AWS_ENDPOINT_URL_STS={}",
        engine.sts_endpoint(stack.moto().port())
    );
    Docked {
        stack,
        engine,
        port,
        sts_env,
    }
}

impl Docked {
    fn world(&self) -> &World {
        &self.stack.world
    }

    /// `http://GATEWAY:PORT/`: what a container on the network with `gateway` is told.
    fn endpoint_at(&self, gateway: &str) -> String {
        format!("http://{gateway}:{}/", self.port)
    }

    /// The default bridge's endpoint.
    fn bridge_endpoint(&self) -> String {
        self.endpoint_at(&self.engine.bridge_gateway().to_string())
    }

    /// The arguments of `credd docker run [--profile P] -- OPTIONS IMAGE COMMAND`, OPTIONS after
    /// what every test container takes ([`Engine::run_args`], moto through the relay).
    fn docker_run_argv(
        &self,
        profile: Option<&str>,
        options: &[&str],
        command: &[&str],
    ) -> Vec<String> {
        let mut argv: Vec<String> = vec!["docker".into(), "run".into()];
        if let Some(profile) = profile {
            argv.extend(["--profile".into(), profile.into()]);
        }
        argv.push("--".into());
        argv.extend(self.engine.run_args());
        argv.push(format!("--env={}", self.sts_env));
        argv.extend(options.iter().map(|o| (*o).to_owned()));
        argv.push(IMAGE.into());
        argv.extend(command.iter().map(|c| (*c).to_owned()));
        argv
    }

    /// `credd docker run [--profile P] -- OPTIONS IMAGE COMMAND` to the end.
    fn credd_docker_run(
        &self,
        profile: Option<&str>,
        options: &[&str],
        command: &[&str],
    ) -> CmdOutput {
        let argv = self.docker_run_argv(profile, options, command);
        self.world().credd(&strs(&argv))
    }

    /// The same, left running (a container in the foreground).
    fn spawn_credd_docker_run(
        &self,
        profile: Option<&str>,
        options: &[&str],
        command: &[&str],
    ) -> Running {
        let argv = self.docker_run_argv(profile, options, command);
        self.world().spawn_credd(&strs(&argv))
    }

    /// `credd docker run [--profile P] -- -d --name NAME OPTIONS IMAGE IDLE`: a granted container
    /// left running (removed when dropped). Panics unless credd succeeds and prints its ID.
    #[track_caller]
    fn granted(&self, profile: Option<&str>, options: &[&str]) -> Container {
        let container = self.engine.reserve();
        let name = format!("--name={}", container.name());
        let mut all = vec!["-d", name.as_str()];
        all.extend_from_slice(options);
        let out = self.credd_docker_run(profile, &all, IDLE);
        out.assert_success();
        assert_eq!(
            out.stdout.trim(),
            container.id(),
            "docker run -d's output (the container's ID) comes through: {out}"
        );
        container
    }

    /// A container started without credd (`docker run -d`), moto reachable: `options` and
    /// `command` as [`Engine::start`].
    fn start_plain(&self, options: &[&str], command: &[&str]) -> Container {
        let sts = format!("--env={}", self.sts_env);
        let mut all = vec![sts.as_str()];
        all.extend_from_slice(options);
        self.engine.start(&all, command)
    }

    /// A one-off container without credd (`docker run --rm`), to the end.
    fn run_plain(&self, options: &[&str], command: &[&str]) -> CmdOutput {
        let sts = format!("--env={}", self.sts_env);
        let mut all = vec![sts.as_str()];
        all.extend_from_slice(options);
        self.engine.run(&all, command)
    }

    /// `credd status --json`'s `docker` (null until the first grant).
    fn docker_status(&self) -> Value {
        self.world().status()["docker"].clone()
    }

    /// The container `id`'s entry in status, if it is listed.
    fn listed(&self, id: &str) -> Option<Value> {
        let docker = self.docker_status();
        docker["containers"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == id))
            .cloned()
    }

    /// The grant `id`'s entry in status, if it is live.
    fn grant(&self, id: &str) -> Option<Value> {
        let docker = self.docker_status();
        docker["grants"]
            .as_array()
            .and_then(|all| all.iter().find(|g| g["id"] == id))
            .cloned()
    }
}

fn strs(argv: &[String]) -> Vec<&str> {
    argv.iter().map(String::as_str).collect()
}

/// [`BOTO3_CALLER`] in `container` (a new process in it); its JSON, or the output when it fails.
fn boto3_in(container: &Container) -> Result<Value, CmdOutput> {
    let out = container.python(BOTO3_CALLER, &[]);
    if out.success() {
        Ok(out.json())
    } else {
        Err(out)
    }
}

/// Who STS says boto3 in `container` is; panics when it gets nothing.
#[track_caller]
fn arn_in(container: &Container) -> String {
    let json =
        boto3_in(container).unwrap_or_else(|out| panic!("boto3 in {}: {out}", container.name()));
    assert_eq!(
        json["method"], "iam-role",
        "botocore used its IMDS provider: {json}"
    );
    json["arn"].as_str().unwrap_or_default().to_owned()
}

/// [`RAW_IMDS`] in `container` at `endpoint` (None: its grant's), parsed.
#[track_caller]
fn imds_from(container: &Container, endpoint: Option<&str>) -> Value {
    let out = container.python(RAW_IMDS, &[endpoint.unwrap_or("")]);
    assert!(out.success(), "raw IMDS in {}: {out}", container.name());
    out.json()
}

/// Every request of a [`RAW_IMDS`] run was refused with 403 `NotGranted`, and no answer holds
/// anything of a credential.
#[track_caller]
fn assert_refused(imds: &Value, who: &str) {
    for step in ["put", "list", "creds"] {
        let (status, body) = (&imds[step][0], imds[step][1].as_str().unwrap_or_default());
        assert_eq!(status, 403, "{who}: {step} must be refused: {imds}");
        let code = serde_json::from_str::<Value>(body)
            .map(|b| b["code"].clone())
            .unwrap_or(Value::Null);
        assert_eq!(code, "NotGranted", "{who}: {step}'s answer: {imds}");
        for secret in ["AccessKeyId", "SecretAccessKey", "\"Token\"", "ASIA"] {
            assert!(
                !body.contains(secret),
                "{who}: {step} leaks {secret}: {imds}"
            );
        }
    }
}

/// A [`RAW_IMDS`] run got a token, the listing (`role`) and credentials.
#[track_caller]
fn assert_served(imds: &Value, role: &str) {
    assert_eq!(imds["put"][0], 200, "{imds}");
    assert_eq!(imds["list"], serde_json::json!([200, role]), "{imds}");
    assert_eq!(imds["creds"][0], 200, "{imds}");
    let creds: Value =
        serde_json::from_str(imds["creds"][1].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(creds["Code"], "Success", "{imds}");
    assert!(creds["AccessKeyId"].is_string(), "{imds}");
}

/// `credd audit --json ARGS`, parsed.
#[track_caller]
fn audit_json(world: &World, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["audit", "--json"];
    argv.extend_from_slice(args);
    match world.credd(&argv).assert_success().json() {
        Value::Array(entries) => entries,
        other => panic!("credd audit --json is not an array: {other}"),
    }
}

fn is_grant_secret(secret: &str) -> bool {
    secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn boto3_and_the_aws_cli_in_a_granted_container_get_the_pinned_profile() {
    let d = docked();

    // The README's line, with the tests' image (and what it needs mounted): the AWS CLI.
    let out = d.credd_docker_run(
        Some("staging"),
        &["--rm"],
        &["aws", "sts", "get-caller-identity"],
    );
    assert_eq!(out.assert_success().json()["Arn"], STAGING_ARN, "{out}");

    // boto3, pinned to deploy while the current profile is staging, in deploy's region.
    let out = d.credd_docker_run(Some("deploy"), &["--rm"], &["python3", "-c", BOTO3_CALLER]);
    let json = out.assert_success().json();
    assert_eq!(json["arn"], DEPLOY_ARN, "{out}");
    assert_eq!(
        json["method"], "iam-role",
        "botocore's IMDS provider: {out}"
    );
    assert_eq!(json["region"], DEPLOY_REGION, "{out}");

    // Without --profile: the current one.
    let out = d.credd_docker_run(None, &["--rm"], &["aws", "sts", "get-caller-identity"]);
    assert_eq!(out.assert_success().json()["Arn"], STAGING_ARN, "{out}");

    // What the container is told, and only that.
    let out = d.credd_docker_run(Some("deploy"), &["--rm"], &["env"]);
    let env: BTreeMap<&str, &str> = out
        .assert_success()
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(
        env.get(ENDPOINT),
        Some(&d.bridge_endpoint().as_str()),
        "{out}"
    );
    assert_eq!(
        env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
        Some(&"IPv4")
    );
    assert_eq!(env.get("AWS_EC2_METADATA_DISABLED"), Some(&"false"));
    assert_eq!(env.get("AWS_REGION"), Some(&DEPLOY_REGION));
    assert_eq!(env.get("AWS_DEFAULT_REGION"), Some(&DEPLOY_REGION));
    assert!(env.get(GRANT).is_some_and(|g| is_grant_secret(g)), "{out}");
    for never in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    ] {
        assert!(!env.contains_key(never), "{never} in the container: {out}");
    }

    // docker's exit code is credd's.
    d.credd_docker_run(None, &["--rm"], &["sh", "-c", "exit 7"])
        .assert_code(7);

    // Every container has exited: no grant is left.
    wait_until(GONE_DEADLINE, "no grant left", || {
        d.docker_status()["grants"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
}

#[test]
fn an_ungranted_container_on_the_same_bridge_gets_403_even_holding_a_copied_grant() {
    let d = docked();
    let granted = d.granted(Some("staging"), &[]);
    let endpoint = granted
        .env_var(ENDPOINT)
        .unwrap_or_else(|| panic!("no {ENDPOINT} in the granted container"));
    assert_eq!(endpoint, d.bridge_endpoint());
    let secret = granted
        .env_var(GRANT)
        .expect("the granted container holds its grant");
    assert_served(&imds_from(&granted, None), "staging");

    let stranger = d.start_plain(&[], IDLE);
    assert_refused(
        &imds_from(&stranger, Some(&endpoint)),
        "a container without a grant",
    );
    let out = stranger.exec(&[
        "env",
        &format!("{ENDPOINT}={endpoint}"),
        "AWS_EC2_METADATA_DISABLED=false",
        "python3",
        "-c",
        BOTO3_CALLER,
    ]);
    assert!(
        !out.success() && !out.stdout.contains("arn:aws:sts"),
        "boto3 in a container without a grant got credentials: {out}"
    );

    // The one-shot grant is the granted container's alone: a copy of it buys nothing.
    let thief = d.start_plain(&["-e", &format!("{GRANT}={secret}")], IDLE);
    assert_refused(
        &imds_from(&thief, Some(&endpoint)),
        "a container with a copied grant",
    );

    // A made-up grant neither.
    let forger = d.start_plain(&["-e", &format!("{GRANT}={}", "a".repeat(64))], IDLE);
    assert_refused(
        &imds_from(&forger, Some(&endpoint)),
        "a container with a made-up grant",
    );

    assert_eq!(
        arn_in(&granted),
        STAGING_ARN,
        "the granted one is still served"
    );
}

/// A container without a grant that opens connection after connection, each with a request, as
/// fast as 16 threads can: `{"statuses": {status: count}, "errors": n}`.
const FLOOD: &str = r#"
import collections, json, os, sys, threading, http.client, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
per_thread = int(sys.argv[2])
statuses = collections.Counter()
errors = [0]
lock = threading.Lock()
def hammer():
    for _ in range(per_thread):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            c.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
            status = c.getresponse().status
            with lock:
                statuses[status] += 1
        except Exception:
            with lock:
                errors[0] += 1
        finally:
            c.close()
threads = [threading.Thread(target=hammer) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"statuses": statuses, "errors": errors[0]}))
"#;

#[test]
fn a_flood_of_connections_from_an_ungranted_container_is_refused_and_the_granted_one_is_served() {
    let d = docked();
    let granted = d.granted(Some("staging"), &[]);
    let endpoint = d.bridge_endpoint();
    let stranger = d.start_plain(&[], IDLE);
    // 1,600 connections, each asked of the engine at most once a second per address.
    let flood = std::thread::scope(|s| {
        let flood = s.spawn(|| stranger.python(FLOOD, &[&endpoint, "100"]));
        // Meanwhile the granted container fetches as usual.
        for _ in 0..3 {
            assert_eq!(arn_in(&granted), STAGING_ARN, "served during the flood");
        }
        flood.join().expect("the flood ran")
    });
    assert!(flood.success(), "{flood}");
    let json = flood.json();
    let statuses = json["statuses"].as_object().expect("statuses");
    assert!(
        statuses.keys().all(|s| s == "403"),
        "every request of the flood is refused, none served: {json}"
    );
    assert_eq!(arn_in(&granted), STAGING_ARN, "still served after it");
    // The daemon says so, without a line per connection.
    let log = d.world().daemon_log();
    let refusals = log.matches("docker: refused a connection").count();
    assert!(
        (1..=60).contains(&refusals),
        "the refusals are logged, at most about once a second per address: {refusals}"
    );
    assert!(d.world().status()["docker"]["containers"].is_array());
}

#[test]
#[cfg(target_os = "linux")]
fn the_owners_host_processes_and_another_local_user_get_403_at_the_gateway() {
    require_root("running a client as another user");
    let d = docked();
    let granted = d.granted(Some("staging"), &[]);
    let endpoint = d.bridge_endpoint();
    let docker = d.docker_status();
    assert!(
        docker["endpoints"]
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e == endpoint.as_str())),
        "status names where containers reach credd: {docker:#}"
    );

    // This process: the source address is the gateway's own.
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the endpoint is http://IP:PORT/");
    let reply = http::request(addr, "PUT", "/latest/api/token", &[(TTL, "60")]);
    assert_eq!(reply.assert_error(403), "NotGranted");
    let reply = http::request(addr, "GET", LIST, &[]);
    assert_eq!(reply.assert_error(403), "NotGranted");

    // Python on the host, as the owner and as nobody.
    const NOBODY: u32 = 65534;
    for uid in [None, Some(NOBODY)] {
        let mut command = Command::new(system_python());
        command
            .args(["-c", RAW_IMDS, &endpoint])
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null());
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let out = command.output().expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let imds: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "python3 (uid {uid:?}) printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_refused(&imds, &format!("a host process of uid {uid:?}"));
    }
    assert_eq!(
        arn_in(&granted),
        STAGING_ARN,
        "the container is still served"
    );
}

#[test]
fn after_docker_stop_the_grant_is_gone_for_a_restart_and_for_a_container_on_its_address() {
    let d = docked();
    let network = d.engine.network();
    let net = network.name();
    let ip = network.fixed_ip(0);
    // `--network NAME` as people type it, first among the options after the tests' own.
    let first = d.granted(Some("staging"), &["--network", net, &format!("--ip={ip}")]);
    let endpoint = first.env_var(ENDPOINT).expect("the grant's endpoint");
    assert_eq!(
        endpoint,
        d.endpoint_at(&network.gateway()),
        "the network's gateway"
    );
    let secret = first.env_var(GRANT).expect("the grant");
    assert_eq!(arn_in(&first), STAGING_ARN);

    let id = first.id();
    let listed = d
        .listed(&id)
        .unwrap_or_else(|| panic!("{id} is not in status: {:#}", d.docker_status()));
    assert_eq!(listed["name"], first.name(), "{listed}");
    assert_eq!(listed["image"], IMAGE, "{listed}");
    assert_eq!(listed["profile"], "staging", "{listed}");
    assert_eq!(listed["address"], ip.as_str(), "{listed}");
    let grant = listed["grant"].as_str().unwrap_or_default().to_owned();
    assert!(d.grant(&grant).is_some(), "its grant is live");

    first.stop();
    wait_until(GONE_DEADLINE, "the stopped container's grant to go", || {
        d.listed(&id).is_none() && d.grant(&grant).is_none()
    });

    // Restarted: the same environment, the same address, the grant is gone all the same.
    d.engine.docker_ok(&["start", first.name()]);
    assert_refused(&imds_from(&first, None), "the restarted container");
    first.remove();

    // Another container on its address, without a grant and with the stolen one.
    for (who, extra) in [
        ("a container on a stopped one's address", None),
        (
            "a container on a stopped one's address with its grant",
            Some(format!("{GRANT}={secret}")),
        ),
    ] {
        let mut options = vec!["--network", net, "--ip", &ip];
        if let Some(extra) = &extra {
            options.extend(["-e", extra.as_str()]);
        }
        let out = d.run_plain(&options, &["python3", "-c", RAW_IMDS, &endpoint]);
        assert!(out.success(), "{who}: {out}");
        assert_refused(&out.json(), who);
    }
    assert!(d.listed(&id).is_none());
}

#[test]
fn containers_pinned_to_two_profiles_keep_their_own_and_a_switch_on_the_host_changes_nothing() {
    let d = docked();
    let staging = d.granted(Some("staging"), &[]);
    let deploy = d.granted(Some("deploy"), &[]);
    // No --profile: the current one (staging) as it is now; in the foreground, as one runs a dev
    // container.
    let current = d.engine.reserve();
    let name = format!("--name={}", current.name());
    let foreground = d.spawn_credd_docker_run(None, &[&name], IDLE);
    wait_until(DOCKER_TIMEOUT, "the foreground container to run", || {
        current.running()
    });

    assert_eq!(arn_in(&staging), STAGING_ARN);
    assert_eq!(arn_in(&deploy), DEPLOY_ARN);
    assert_eq!(arn_in(&current), STAGING_ARN);
    let mut refetching = current.python_program(REFETCH, &[]);
    assert_eq!(refetching.ask("call"), STAGING_ARN);
    for (container, profile) in [
        (&staging, "staging"),
        (&deploy, "deploy"),
        (&current, "staging"),
    ] {
        let listed = d
            .listed(&container.id())
            .unwrap_or_else(|| panic!("{} not in status", container.name()));
        assert_eq!(listed["profile"], profile, "{listed}");
    }

    d.world().credd(&["switch", "deploy"]).assert_success();
    assert_eq!(d.world().status()["current_profile"], "deploy");

    assert_eq!(arn_in(&staging), STAGING_ARN, "after the switch");
    assert_eq!(arn_in(&deploy), DEPLOY_ARN, "after the switch");
    assert_eq!(arn_in(&current), STAGING_ARN, "pinned when it started");
    assert_eq!(refetching.ask("call"), STAGING_ARN, "a running program too");
    drop(refetching);

    // A new container without --profile takes the new current profile.
    let out = d.credd_docker_run(None, &["--rm"], &["python3", "-c", BOTO3_CALLER]);
    assert_eq!(out.assert_success().json()["arn"], DEPLOY_ARN, "{out}");

    // Stopping the foreground container ends credd docker run with docker's exit code.
    current.stop();
    foreground.wait(DOCKER_TIMEOUT).assert_success();
}

#[test]
fn a_standing_grant_of_credd_docker_env_serves_env_file_containers_until_revoked() {
    let d = docked();
    let out = d.world().credd(&["docker", "env", "deploy"]);
    let env_file = out.assert_success().stdout.clone();
    let lines: Vec<&str> = env_file.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with('#')),
        "a comment first: {env_file}"
    );
    let comments: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with('#'))
        .collect();
    let vars: BTreeMap<&str, &str> = lines
        .iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l:?} in\n{env_file}"))
        })
        .collect();
    assert_eq!(vars.get(ENDPOINT), Some(&d.bridge_endpoint().as_str()));
    assert_eq!(
        vars.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
        Some(&"IPv4")
    );
    assert_eq!(vars.get("AWS_EC2_METADATA_DISABLED"), Some(&"false"));
    assert_eq!(vars.get("AWS_REGION"), Some(&DEPLOY_REGION));
    assert_eq!(vars.get("AWS_DEFAULT_REGION"), Some(&DEPLOY_REGION));
    let secret = vars.get(GRANT).copied().unwrap_or_default();
    assert!(is_grant_secret(secret), "{GRANT} in\n{env_file}");

    let docker = d.docker_status();
    let standing = docker["grants"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|g| g["standing"] == true && g["profile"] == "deploy")
        })
        .unwrap_or_else(|| panic!("no standing grant for deploy in status: {docker:#}"));
    let id = standing["id"].as_str().unwrap_or_default().to_owned();
    let said = comments.join("\n");
    assert!(
        said.contains(&id) && said.contains("credd docker revoke"),
        "the comment names the grant and how to revoke it:\n{env_file}"
    );
    assert!(
        !said.contains(secret),
        "the comment shows the grant:\n{env_file}"
    );

    let path = d.world().home.join(".credd.env");
    std::fs::write(&path, &env_file).expect("write the env file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let env_file_option = path.display().to_string();
    let with_file = ["--env-file", env_file_option.as_str()];

    // Any number of containers: a long-running one, and one-offs.
    let kept = d.start_plain(&with_file, IDLE);
    assert_served(&imds_from(&kept, None), "deploy");
    assert_eq!(arn_in(&kept), DEPLOY_ARN);
    for _ in 0..2 {
        let out = d.run_plain(&with_file, &["python3", "-c", BOTO3_CALLER]);
        assert!(
            out.success(),
            "a one-off container with the env file: {out}"
        );
        assert_eq!(out.json()["arn"], DEPLOY_ARN, "{out}");
    }
    let listed = d
        .listed(&kept.id())
        .unwrap_or_else(|| panic!("the env-file container is not in status"));
    assert_eq!(
        (&listed["grant"], &listed["profile"]),
        (&Value::from(id.as_str()), &Value::from("deploy")),
        "{listed}"
    );

    // A program in it holding one connection, served before the revocation.
    let mut held = kept.python_program(KEEP_ALIVE, &[]);
    let before: Value = serde_json::from_str(&held.ask("fetch")).expect("JSON");
    assert_eq!(
        before["statuses"],
        serde_json::json!([200, 200, 200]),
        "{before}"
    );
    assert_eq!(before["served"], true, "{before}");

    let out = d.world().credd(&["docker", "revoke", &id]);
    assert!(
        out.assert_success().stdout.contains(&id),
        "says what it revoked: {out}"
    );

    let out = d.run_plain(&with_file, &["python3", "-c", RAW_IMDS]);
    assert!(out.success(), "{out}");
    assert_refused(&out.json(), "a new container with a revoked env file");
    assert_refused(
        &imds_from(&kept, None),
        "the running container, a new connection",
    );
    let after: Value = serde_json::from_str(&held.ask("fetch")).expect("JSON");
    assert_ne!(
        after["served"], true,
        "a connection kept alive from before the revocation still gets credentials: {after} \
         (before: {before})"
    );
    assert!(d.grant(&id).is_none(), "the grant is gone from status");
    assert!(d.listed(&kept.id()).is_none(), "the container is cut off");

    // --json: the grant with its environment; revoke --all takes every grant.
    let out = d.world().credd(&["docker", "env", "staging", "--json"]);
    let grant = out.assert_success().json();
    assert_eq!(
        (&grant["profile"], &grant["standing"]),
        (&Value::from("staging"), &Value::from(true)),
        "{out}"
    );
    assert!(!grant["environment"].is_null(), "{out}");
    let other = grant["id"].as_str().unwrap_or_default().to_owned();
    assert!(d.grant(&other).is_some(), "{other} is live");
    let out = d.world().credd(&["docker", "revoke", "--all"]);
    assert!(out.assert_success().stdout.contains(&other), "{out}");
    assert!(d.grant(&other).is_none(), "revoke --all took {other}");
}

#[test]
fn audit_names_each_container_that_took_a_credential() {
    let d = docked();
    let world = d.world();
    let one_off = d.engine.reserve();
    let cidfile = world.root.join("one-off.cid");
    let cidfile_option = format!("--cidfile={}", cidfile.display());
    let name = format!("--name={}", one_off.name());
    let out = d.credd_docker_run(
        Some("staging"),
        &["--rm", &name, &cidfile_option],
        &["python3", "-c", BOTO3_CALLER],
    );
    assert_eq!(out.assert_success().json()["arn"], STAGING_ARN, "{out}");
    let one_off_id = std::fs::read_to_string(&cidfile)
        .expect("docker wrote the container's ID")
        .trim()
        .to_owned();

    let kept = d.granted(Some("deploy"), &[]);
    assert_eq!(arn_in(&kept), DEPLOY_ARN);
    let kept_id = kept.id();
    let kept_grant = d.listed(&kept_id).expect("listed")["grant"].clone();
    // Something off the docker route, which --route docker leaves out.
    world
        .credd(&["credential-process", "staging"])
        .assert_success();

    let start = std::time::Instant::now();
    let lines = loop {
        let lines = audit_json(world, &["--route", "docker"]);
        let has = |id: &str| lines.iter().any(|e| e["container"] == id);
        if has(&one_off_id) && has(&kept_id) {
            break lines;
        }
        if start.elapsed() > RECORDED_DEADLINE {
            panic!(
                "the containers are not in the audit log: {lines:#?}\n{}",
                world.daemon_log()
            );
        }
        std::thread::sleep(credd_tests::POLL_INTERVAL * 5);
    };
    for line in &lines {
        assert_eq!(line["route"], "docker", "--route docker filters: {line}");
    }
    let line = |id: &str| {
        lines
            .iter()
            .find(|e| e["container"] == id)
            .cloned()
            .expect("found above")
    };
    let first = line(&one_off_id);
    assert_eq!(first["container_name"], one_off.name(), "{first}");
    assert_eq!(first["image"], IMAGE, "{first}");
    assert_eq!(first["profile"], "staging", "{first}");
    assert_eq!(first["account"], "222222222222", "{first}");
    assert_eq!(
        first["current"], false,
        "pinned, never the current route: {first}"
    );
    assert!(first["grant"].is_string(), "{first}");
    let second = line(&kept_id);
    assert_eq!(second["container_name"], kept.name(), "{second}");
    assert_eq!(second["image"], IMAGE, "{second}");
    assert_eq!(second["profile"], "deploy", "{second}");
    assert_eq!(second["account"], "333333333333", "{second}");
    assert_eq!(second["grant"], kept_grant, "{second}");
    assert_ne!(first["grant"], second["grant"], "a grant each");

    // Written in the batch after the containers' lines, maybe.
    let start = std::time::Instant::now();
    let all = loop {
        let all = audit_json(world, &[]);
        if all.iter().any(|e| e["route"] == "credential-process") {
            break all;
        }
        assert!(
            start.elapsed() < RECORDED_DEADLINE,
            "the unfiltered log has the rest: {all:#?}"
        );
        std::thread::sleep(credd_tests::POLL_INTERVAL * 5);
    };

    // The table a person reads names each container: name (image, short ID).
    let table = world.credd(&["audit", "--route", "docker"]);
    let table = &table.assert_success().stdout;
    for (name, id) in [(one_off.name(), &one_off_id), (kept.name(), &kept_id)] {
        let shown = format!("{name} ({IMAGE}, {})", &id[..12]);
        assert!(table.contains(&shown), "{shown} missing:\n{table}");
    }
    let secret = kept.env_var(GRANT).expect("the grant");
    let everything = serde_json::to_string(&all).expect("JSON");
    assert!(!everything.contains(&secret) && !table.contains(&secret));
}

#[test]
fn a_daemon_restart_keeps_running_containers_served() {
    let mut d = docked();
    let kept = d.granted(Some("deploy"), &[]);
    assert_eq!(arn_in(&kept), DEPLOY_ARN);
    let secret = kept.env_var(GRANT).expect("the grant");
    let remembered = d.world().state_dir.join("docker-grants.json");
    let mode = std::fs::metadata(&remembered)
        .unwrap_or_else(|e| panic!("{}: {e}", remembered.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", remembered.display());
    let text = std::fs::read_to_string(&remembered).expect("read the grants file");
    assert!(
        !text.contains(&secret),
        "the grant itself is kept on disk: {text}"
    );

    d.stack.world.stop_daemon();
    d.stack.world.start_daemon();
    d.stack.wait_all_fresh(READY_DEADLINE);
    wait_until(READY_DEADLINE, "the container to be served again", || {
        boto3_in(&kept).is_ok_and(|json| json["arn"] == DEPLOY_ARN)
    });
    assert!(d.listed(&kept.id()).is_some(), "listed after the restart");

    // The engine's events are followed again: a stop still ends the grant.
    let id = kept.id();
    kept.stop();
    wait_until(GONE_DEADLINE, "the stopped container to go", || {
        d.listed(&id).is_none()
    });
}

#[test]
fn the_grant_is_never_on_a_command_line_in_the_log_in_status_in_the_audit_log_or_on_disk() {
    let mut d = docked_with_env(&[("RUST_LOG", "trace")]);
    let container = d.engine.reserve();
    let name = format!("--name={}", container.name());
    let foreground = d.spawn_credd_docker_run(Some("staging"), &[&name], IDLE);
    wait_until(DOCKER_TIMEOUT, "the container to run", || {
        container.running()
    });
    let secret = container.env_var(GRANT).expect("the grant");
    assert!(is_grant_secret(&secret), "{secret:?}");

    // While credd docker run and docker run are running: on no command line.
    let on_command_lines = command_lines_containing(&secret);
    assert!(
        on_command_lines.is_empty(),
        "the grant is on command lines: {on_command_lines:?}"
    );
    for format in [
        "{{json .Path}}",
        "{{json .Args}}",
        "{{json .Config.Cmd}}",
        "{{json .Config.Entrypoint}}",
        "{{json .Config.Labels}}",
    ] {
        let shown = container.inspect(format);
        assert!(!shown.contains(&secret), "docker inspect {format}: {shown}");
    }
    let env = container.env();
    assert_eq!(
        env.iter().filter(|kv| kv.contains(&secret)).count(),
        1,
        "only CREDD_GRANT holds it"
    );
    assert_eq!(arn_in(&container), STAGING_ARN);

    let world = &d.stack.world;
    wait_until(RECORDED_DEADLINE, "the audit line", || {
        !audit_json(world, &["--route", "docker"]).is_empty()
    });
    let mut shown = vec![
        world.credd(&["status", "--json"]),
        world.credd(&["status"]),
        world.credd(&["audit", "--json"]),
        world.credd(&["audit"]),
        world.credd(&["docker", "setup"]),
    ];
    container.stop();
    shown.push(foreground.wait(DOCKER_TIMEOUT));
    d.stack.world.stop_daemon();
    assert_secrets_nowhere(&d.stack.world, &[("the container's grant", secret)], &shown);
}

/// Pids and command lines of every process whose command line holds `needle`.
fn command_lines_containing(needle: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(needle)
                .then(|| (e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect()
}

#[test]
fn credd_docker_run_refuses_host_and_none_networks_and_starts_nothing_without_a_grant() {
    let d = docked();
    for network in [
        &["--network", "host"][..],
        &["--network=host"],
        &["--net", "host"],
        &["--network", "none"],
        &["--net=none"],
        &["--network", "container:other"],
    ] {
        let container = d.engine.reserve();
        let name = format!("--name={}", container.name());
        let mut options = vec!["--rm", name.as_str()];
        options.extend_from_slice(network);
        let out = d.credd_docker_run(Some("staging"), &options, &["true"]);
        assert!(!out.success(), "{network:?} is refused: {out}");
        assert!(!out.stderr.trim().is_empty(), "with a message: {out}");
        assert!(!container.exists(), "{network:?}: no container was created");
        if network.iter().any(|a| a.contains("host")) {
            assert!(
                out.stderr.contains("credd exec"),
                "host networking: points at credd exec: {out}"
            );
        }
    }

    let container = d.engine.reserve();
    let name = format!("--name={}", container.name());
    let out = d.credd_docker_run(Some("no-such-profile"), &["--rm", &name], &["true"]);
    out.assert_code(1);
    assert!(out.stderr.contains("no-such-profile"), "{out}");
    assert!(!container.exists(), "no container for an unknown profile");

    // No daemon: nothing runs without a grant.
    let nobody_home = World::new();
    let container = d.engine.reserve();
    let name = format!("--name={}", container.name());
    let out = nobody_home.credd(&["docker", "run", "--", "--rm", &name, IMAGE, "true"]);
    out.assert_code(1);
    assert!(!container.exists(), "no container without the daemon");
}

#[test]
fn credd_docker_setup_says_where_credd_listens_and_the_root_step_it_does_not_need() {
    let d = docked();
    let _granted = d.granted(Some("staging"), &[]);
    let out = d.world().credd(&["docker", "setup"]);
    let stdout = &out.assert_success().stdout;
    assert!(
        stdout.contains(&d.bridge_endpoint()),
        "where it listens: {out}"
    );
    assert!(
        stdout.contains("169.254.170.2"),
        "the container route's root step: {out}"
    );
    assert_eq!(d.docker_status()["error"], Value::Null);
}
