//! `credd-docker-bench`: the figures of issue 22 (credentials for local containers), printed as a
//! table.
//!
//! - the set-up cost per container: `credd docker run --profile P -- ... IMAGE true` against a
//!   plain `docker run ... IMAGE true` (the same options and mounts), alternating, median of RUNS
//!   each: what a grant, its claim and its revocation add to a container's life;
//! - the latency of a credential fetch inside a container (the daemon's gateway listener, which
//!   asks the engine about each connection) against the same fetch on the host (the daemon's
//!   loopback IMDS, `imds = true`), by the same Python: raw IMDSv2 (token, listing, credentials
//!   on a new connection, as a new process does) and botocore's `InstanceMetadataFetcher` (what
//!   boto3 and the AWS CLI run);
//! - for scale, what the engine takes to answer the lookups the daemon may make per connection
//!   (`GET /containers/{id}/json`, `GET /containers/json` filtered by network).
//!
//! Build and run as root (the tests' Docker engine, [`credd_tests::docker`]): `cargo build
//! --profile dist --workspace --bin credd --bin credd-daemon --bin credd-docker-bench &&
//! target/dist/credd-docker-bench [RUNS]`. A part the daemon or client cannot do yet is reported
//! as such, and the rest is still measured.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use credd_tests::docker::{Engine, IDLE, IMAGE};
use credd_tests::moto::{Auth, Moto, SeedSpec};
use credd_tests::wait_until;
use credd_tests::world::World;

const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";

/// Fetches per measurement inside the Python loop.
const FETCHES: usize = 200;

/// Times FETCHES fetches (after one to warm up) at argv[1] (the grant's endpoint when empty),
/// raw and through botocore; prints `{"raw": [ms...], "botocore": [ms...]}`.
const FETCH_LOOP: &str = r#"
import json, os, sys, time, http.client, urllib.parse
from botocore.utils import InstanceMetadataFetcher
url = sys.argv[1] or os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
n = int(sys.argv[2])
u = urllib.parse.urlsplit(url)
def raw():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    r = c.getresponse(); token = r.read().decode()
    assert r.status == 200, (r.status, token)
    h = {"X-aws-ec2-metadata-token": token}
    c.request("GET", "/latest/meta-data/iam/security-credentials/", headers=h)
    r = c.getresponse(); role = r.read().decode().strip()
    c.request("GET", "/latest/meta-data/iam/security-credentials/" + role, headers=h)
    r = c.getresponse(); body = r.read()
    assert r.status == 200 and b"AccessKeyId" in body, (r.status, body)
    c.close()
def boto():
    f = InstanceMetadataFetcher(timeout=5, num_attempts=1, config={
        "ec2_metadata_service_endpoint": url.rstrip("/"),
        "ec2_metadata_service_endpoint_mode": "ipv4"})
    assert f.retrieve_iam_role_credentials().get("access_key")
out = {}
for name, fetch in (("raw", raw), ("botocore", boto)):
    fetch()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - start) * 1000)
    out[name] = times
print(json.dumps(out))
"#;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let engine = Engine::get();
    let moto = Moto::start(Auth::On);
    let seeded = moto.seed(&SeedSpec::new().user("alice").role(ADMIN));
    let alice = seeded.user("alice");
    let mut world = World::new();
    world.write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
    world.set_env("AWS_ENDPOINT_URL_STS", &moto.endpoint());
    world.set_env("RUST_LOG", "warn");
    let port = credd_tests::free_port();
    let config = |docker: &str| {
        format!(
            "default_profile = \"staging\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\nimds = true\n\n\
             [access]\nsource = \"iam-user\"\naws_profile = \"access\"\n\n{docker}\
             [profiles.staging]\nrole_arn = \"{ADMIN}\"\nregion = \"us-east-1\"\n"
        )
    };
    world.write_config(&config(&format!(
        "[docker]\nport = {port}\nsocket = \"{}\"\n\n",
        engine.socket().display()
    )));
    if let Err(failed) = world.try_start_daemon(&[]) {
        // A daemon without credd docker yet: the host's figures and plain docker's still count.
        println!(
            "the daemon refuses [docker] ({}): measuring without it\n",
            first_line(&failed.log)
        );
        world.write_config(&config(""));
        world.start_daemon();
    }
    wait_until(Duration::from_secs(30), "staging fresh", || {
        let s = world.credd(&["status", "--json"]);
        s.success() && s.json()["profiles"][0]["state"] == "fresh"
    });
    let url = world.status()["url"]
        .as_str()
        .expect("status has a url")
        .to_owned();
    let sts = format!("AWS_ENDPOINT_URL_STS={}", engine.sts_endpoint(moto.port()));
    let run_args = engine.run_args();

    println!(
        "credd-docker-bench: {runs} runs per set-up figure, {FETCHES} fetches per latency figure \
         (median, p90, min); the daemon is {}\n",
        credd_tests::bins::daemon_bin().display()
    );

    // ---- Set-up cost per container ----------------------------------------------------------
    let mut plain = Vec::new();
    let mut granted = Vec::new();
    let mut granted_failed = None;
    for _ in 0..runs {
        // The docker command alone, as credd runs it (no clean-up of the harness's timed).
        let mut docker = std::process::Command::new("docker");
        docker.args(["run", "--rm"]).args(&run_args);
        docker.args([format!("--env={sts}"), IMAGE.to_owned(), "true".to_owned()]);
        let start = Instant::now();
        let out = docker.output().expect("docker runs");
        assert!(out.status.success(), "plain docker run: {out:?}");
        plain.push(ms(start.elapsed()));
        if granted_failed.is_none() {
            let mut argv: Vec<String> = ["docker", "run", "--profile", "staging", "--", "--rm"]
                .map(str::to_owned)
                .to_vec();
            argv.extend(run_args.iter().cloned());
            argv.extend([format!("--env={sts}"), IMAGE.to_owned(), "true".to_owned()]);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let start = Instant::now();
            let out = world.credd(&argv);
            if out.success() {
                granted.push(ms(start.elapsed()));
            } else {
                granted_failed = Some(first_line(&out.stderr));
            }
        }
    }
    println!("set-up cost per container (process start to exit, `... {IMAGE} true`):");
    row("docker run --rm", &plain);
    match &granted_failed {
        None => {
            row("credd docker run --rm", &granted);
            println!(
                "  {:<38} {:>8.1} ms (median against median)",
                "added by credd",
                median(&granted) - median(&plain)
            );
        }
        Some(why) => println!("  {:<38} not available: {why}", "credd docker run --rm"),
    }

    // ---- Fetch latency ----------------------------------------------------------------------
    println!("\ncredential fetch latency, the same Python ({FETCHES} fetches, ms):");
    let host = world
        .command(engine.venv_python())
        .args(["-c", FETCH_LOOP, &url, &FETCHES.to_string()])
        .env("AWS_EC2_METADATA_DISABLED", "false")
        .output()
        .expect("run the fetch loop on the host");
    report_fetches("host, loopback IMDS", &host);

    let container = engine.reserve();
    let mut argv: Vec<String> = ["docker", "run", "--profile", "staging", "--", "-d"]
        .map(str::to_owned)
        .to_vec();
    argv.push(format!("--name={}", container.name()));
    argv.extend(run_args.iter().cloned());
    argv.push(IMAGE.to_owned());
    argv.extend(IDLE.iter().map(|a| (*a).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = world.credd(&argv);
    if out.success() {
        let inside = engine
            .docker()
            .args(["exec", container.name(), "python3", "-c", FETCH_LOOP, ""])
            .arg(FETCHES.to_string())
            .output()
            .expect("run the fetch loop in the container");
        report_fetches("container, gateway listener", &inside);
    } else {
        println!(
            "  {:<38} not available: {}",
            "container, gateway listener",
            first_line(&out.stderr)
        );
    }
    drop(container);
    // For scale: the lookups the daemon may make per connection, on a container of the tests.
    let looked_up = engine.start(&[], IDLE);
    let id = looked_up.id();
    println!("\nwhat the engine takes to answer a lookup (ms, {FETCHES} on new connections):");
    let network = "{\"network\":[\"bridge\"]}";
    for (what, path) in [
        (
            "GET /containers/{id}/json",
            format!("/containers/{id}/json"),
        ),
        (
            "GET /containers/json?filters=network",
            format!("/containers/json?filters={}", percent_encode(network)),
        ),
    ] {
        let times: Vec<f64> = (0..FETCHES)
            .map(|_| {
                let start = Instant::now();
                engine_get(engine.socket(), &path);
                ms(start.elapsed())
            })
            .collect();
        row(what, &times);
    }
    world.stop_daemon();
}

/// One request to the engine on a new connection; panics unless it answers 200.
fn engine_get(socket: &std::path::Path, path: &str) {
    let mut stream = UnixStream::connect(socket).expect("connect to the engine");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").expect("ask the engine");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the engine");
    assert!(
        answer.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "{path}: {answer}"
    );
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn report_fetches(what: &str, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&stdout) else {
        println!(
            "  {what:<38} failed: {}",
            first_line(&String::from_utf8_lossy(&out.stderr))
        );
        return;
    };
    for kind in ["raw", "botocore"] {
        let times: Vec<f64> = json[kind]
            .as_array()
            .map(|all| all.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        row(&format!("{what}, {kind}"), &times);
    }
}

fn row(what: &str, times: &[f64]) {
    if times.is_empty() {
        println!("  {what:<38} no figures");
        return;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    println!(
        "  {what:<38} {:>8.1} ms  p90 {:>8.1}  min {:>8.1}",
        median(times),
        p90,
        sorted[0]
    );
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(nothing on stderr)")
        .to_owned()
}
