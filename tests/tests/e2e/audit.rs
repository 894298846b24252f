//! `credd audit` end to end: real programs take credentials from the real daemon (moto with auth
//! on) — curl, boto3 and the AWS SDK for Rust on the container route, `credd exec` children, the
//! AWS SDK's `credential_process`, a process in another network namespace and one in a cgroup
//! of its own — and the audit log names each by its executable, with what the system tells of
//! it; the table a person reads names them too. A flood on keep-alive connections is a few lines
//! whose counts add up; a small bound rotates the log and bounds what is on disk; `notify_new`
//! reaches the desktop (dunst on Xvfb, dbus-monitor) once per program and profile, across a
//! restart. No credential and no token is ever in the log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::http_support::{DEPLOY_REGION, STAGING_REGION, credd_path, pairs};
use crate::notifications::Desktop;
use credd_tests::bins::sdk_client_bin;
use credd_tests::moto::venv_python;
use credd_tests::session_bus::BUS_ENV;
use credd_tests::stack::{ADMIN, DEPLOY, READY_DEADLINE, Stack, Toml};
use credd_tests::world::World;
use credd_tests::{free_port, require_root, wait_until};
use serde_json::Value;

/// The daemon writes a batch within a second of the last; this bounds a loaded machine.
const RECORDED_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// A container ID, as Docker names a container's cgroup (`docker-<id>.scope`).
const CONTAINER_ID: &str = "c0ffee00d1ce5ca1ab1edeadbeef0000123456789abcdef0123456789abcdef0";

/// `staging` (the default, [`ADMIN`]) and `deploy` ([`DEPLOY`]), logged in with alice's key, STS
/// straight to moto (auth on), with `audit` lines in `[audit]`; every profile fresh.
/// It listens on a port of its own, the same after a restart. With `bus`,
/// the daemon's desktop is that session bus.
fn audited(audit: &str, bus: Option<&str>) -> Stack {
    let profiles = format!(
        "[audit]\n{audit}\n\n\
         [profiles.staging]\nrole_arn = \"{ADMIN}\"\nregion = \"{STAGING_REGION}\"\n\n\
         [profiles.deploy]\nrole_arn = \"{DEPLOY}\"\nregion = \"{DEPLOY_REGION}\"\n"
    );
    // A port of its own that a restart keeps.
    let listen = format!("127.0.0.1:{}", free_port());
    let mut stack = Stack::builder()
        .direct()
        .listen(&listen)
        .toml(Toml {
            top: "default_profile = \"staging\"",
            profiles: &profiles,
            ..Toml::default()
        })
        .build();
    if let Some(bus) = bus {
        stack.world.set_env(BUS_ENV, bus);
    }
    stack.world.start_daemon();
    stack.wait_all_fresh(READY_DEADLINE);
    stack
}

/// `credd audit --json ARGS`: the lines, parsed.
#[track_caller]
fn audit_json(world: &World, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["audit", "--json"];
    argv.extend_from_slice(args);
    let out = world.credd(&argv);
    match out.assert_success().json() {
        Value::Array(entries) => entries,
        other => panic!("credd audit --json is not an array: {other}"),
    }
}

/// Waits until the audit log's lines satisfy `done`; returns them. Shows them and the daemon's
/// log otherwise.
#[track_caller]
fn poll(world: &World, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let lines = audit_json(world, &[]);
        if done(&lines) {
            return lines;
        }
        if start.elapsed() > RECORDED_DEADLINE {
            let lines: Vec<String> = lines.iter().map(Value::to_string).collect();
            panic!(
                "{what}: not in the audit log:\n{}\n{}",
                lines.join("\n"),
                world.daemon_log()
            );
        }
        std::thread::sleep(credd_tests::POLL_INTERVAL * 5);
    }
}

/// Waits until a line of the audit log satisfies `found`; returns it.
#[track_caller]
fn recorded(world: &World, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    let lines = poll(world, what, |lines| lines.iter().any(&found));
    lines.into_iter().find(|e| found(e)).expect("found above")
}

/// The total count of `lines` that satisfy `which`.
fn total_of(lines: &[Value], which: impl Fn(&Value) -> bool) -> u64 {
    lines
        .iter()
        .filter(|e| which(e))
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Waits until the lines that satisfy `which` count `n` in all; shows the log otherwise.
#[track_caller]
fn wait_total(world: &World, what: &str, n: u64, which: impl Fn(&Value) -> bool) {
    poll(world, &format!("{what}: {n} in all"), |lines| {
        total_of(lines, &which) == n
    });
}

/// `program` found on PATH, every symlink resolved: what `/proc/PID/exe` names.
fn executable(program: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
        .display()
        .to_string()
}

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .display()
        .to_string()
}

/// A shell command that fetches `path` with curl, the token read from its file into the header.
fn curl_command(stack: &Stack, path: &str) -> String {
    format!(
        "curl -sf -o /dev/null -H \"Authorization: $(cat '{}')\" '{}{path}'",
        stack.world.token_file().display(),
        stack.url()
    )
}

/// `curl` fetching `path`, as a person would type it.
#[track_caller]
fn curl(stack: &Stack, path: &str) {
    stack
        .world
        .run("sh", &["-c", &curl_command(stack, path)], None)
        .assert_success();
}

fn is(entry: &Value, exe: &str, profile: &str) -> bool {
    entry["exe"] == exe && entry["profile"] == profile
}

#[test]
fn curl_boto3_the_rust_sdk_and_exec_children_are_each_named_by_their_executable() {
    let stack = audited("", None);
    let world = &stack.world;
    let out = world.credd(&["audit"]);
    assert!(
        out.assert_success()
            .stdout
            .contains("No credentials recorded yet"),
        "{out}"
    );
    // Started before anything is recorded: it sees the log appear and each line as it comes.
    let follow = world.spawn_credd(&["audit", "--follow", "--json"]);

    let curl_exe = executable("curl");
    let python_exe = canonical(&venv_python());
    let sdk_exe = canonical(&sdk_client_bin());
    curl(&stack, "/v1/credentials");
    let deploy = stack.container_env("/v1/credentials/deploy", DEPLOY_REGION);
    stack
        .boto3(&pairs(&deploy))
        .unwrap_or_else(|out| panic!("boto3: {out}"));
    stack
        .rust_sdk(&pairs(&deploy), &["container"])
        .unwrap_or_else(|out| panic!("the Rust SDK: {out}"));
    world
        .credd(&[
            "exec",
            "staging",
            "--",
            "sh",
            "-c",
            "curl -sf -o /dev/null -H \"Authorization: $(cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\")\" \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"",
        ])
        .assert_success();

    let uid = u64::from(unsafe { libc::getuid() });
    let token = stack.token();
    let curl_line = recorded(world, "curl's line", |e| {
        is(e, &curl_exe, "staging") && e["via"].is_null()
    });
    assert_eq!(curl_line["route"], "container", "{curl_line}");
    assert_eq!(curl_line["current"], true, "{curl_line}");
    assert_eq!(curl_line["account"], "222222222222", "{curl_line}");
    assert_eq!(curl_line["uid"], uid, "{curl_line}");
    assert!(curl_line["pid"].is_u64(), "{curl_line}");
    let cmdline = curl_line["cmdline"].to_string();
    assert!(cmdline.contains("Authorization: ***"), "{curl_line}");
    assert!(
        !cmdline.contains(&token),
        "the HTTP token is kept: {curl_line}"
    );

    let boto3 = recorded(world, "boto3's line", |e| is(e, &python_exe, "deploy"));
    assert_eq!(
        (&boto3["route"], &boto3["current"], &boto3["account"]),
        (
            &Value::from("container"),
            &Value::from(false),
            &Value::from("333333333333")
        ),
        "{boto3}"
    );
    assert_eq!(
        boto3["cmdline"][0],
        venv_python().display().to_string(),
        "{boto3}"
    );
    let rust = recorded(world, "the Rust SDK's line", |e| is(e, &sdk_exe, "deploy"));
    assert_eq!(rust["route"], "container", "{rust}");
    assert_eq!(rust["uid"], uid, "{rust}");
    let exec = recorded(world, "the exec child's line", |e| {
        is(e, &curl_exe, "staging") && e["via"] == "exec"
    });
    assert_eq!(exec["current"], false, "pinned by credd exec: {exec}");
    assert_ne!(exec["pid"], curl_line["pid"], "{exec}");

    // The table a person reads names every program; exec shows as its own route.
    let table = world.credd(&["audit"]);
    let table = &table.assert_success().stdout;
    for shown in [&curl_exe, &python_exe, &sdk_exe] {
        assert!(table.contains(shown.as_str()), "{shown} missing:\n{table}");
    }
    let exec_row = table
        .lines()
        .find(|l| l.starts_with(&curl_exe) && l.contains("staging"))
        .unwrap_or_else(|| panic!("no curl row:\n{table}"));
    assert!(
        exec_row.contains("container,exec") || exec_row.contains("exec,container"),
        "{table}"
    );
    assert!(table.contains("credentials taken"), "{table}");
    eprintln!("credd audit:\n{table}");

    // Filters.
    let deploy_only = audit_json(world, &["--profile", "dep*"]);
    assert_eq!(deploy_only.len(), 2, "{deploy_only:?}");
    assert!(deploy_only.iter().all(|e| e["profile"] == "deploy"));
    let exec_only = audit_json(world, &["--route", "exec"]);
    assert_eq!(exec_only.len(), 1, "{exec_only:?}");
    assert_eq!(exec_only[0]["via"], "exec");
    assert_eq!(audit_json(world, &["--route", "imds"]).len(), 0);
    let out = world.credd(&["audit", "--profile", "[prod"]);
    out.assert_code(2);
    assert!(out.stderr.contains("not a profile name or glob"), "{out}");
    // An old line and a torn one in the rotated file: --since leaves the old out, the torn one
    // is skipped and counted.
    let paths = world.paths();
    let mut old = curl_line.clone();
    old["time"] = "2020-01-01T00:00:00.000Z".into();
    old["last"] = "2020-01-01T00:00:00.000Z".into();
    std::fs::write(
        paths.audit_log_rotated(),
        format!("{old}\n{{\"time\": \"20"),
    )
    .unwrap();
    let out = world.credd(&["audit", "--json"]);
    assert!(out.stderr.contains("skipped 1 line"), "{out}");
    let all = out.json();
    let recent = audit_json(world, &["--since", "1h"]);
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(recent.len() + 1),
        "{all}"
    );
    assert!(
        recent
            .iter()
            .all(|e| e["time"] != "2020-01-01T00:00:00.000Z")
    );

    // --follow printed each line as it came, one JSON object per line.
    let followed = || -> Vec<Value> {
        follow
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until(RECORDED_DEADLINE, "--follow to print every line", || {
        followed().len() >= 4
    });
    let followed = followed();
    for (exe, profile) in [
        (&curl_exe, "staging"),
        (&python_exe, "deploy"),
        (&sdk_exe, "deploy"),
    ] {
        assert!(
            followed.iter().any(|e| is(e, exe, profile)),
            "{exe} {profile} not followed: {followed:?}"
        );
    }
}

#[test]
fn credential_process_names_the_program_that_ran_it_and_other_namespaces_and_cgroups_are_recorded()
{
    require_root("running a program in another network namespace and cgroup");
    let stack = audited("", None);
    let world = &stack.world;
    let credd = credd_path();
    world.write_aws_config(&format!(
        "[profile staging]\ncredential_process = {credd} credential-process staging\nregion = {STAGING_REGION}\n"
    ));
    stack
        .boto3(&[("AWS_PROFILE", "staging")])
        .unwrap_or_else(|out| panic!("boto3 with credential_process: {out}"));
    let python_exe = canonical(&venv_python());
    let boto3 = recorded(world, "boto3's credential_process line", |e| {
        e["route"] == "credential-process"
    });
    assert_eq!(boto3["exe"], python_exe, "the parent is named: {boto3}");
    assert_eq!(boto3["profile"], "staging", "{boto3}");
    assert!(boto3["client_pid"].is_u64(), "{boto3}");
    assert_ne!(boto3["client_pid"], boto3["pid"], "{boto3}");
    assert!(boto3["netns"].is_null(), "our own network: {boto3}");

    // `credd credential-process` over the Unix socket, from a shell in a network namespace of
    // its own (no network at all: the socket is a file).
    let sh_exe = executable("sh");
    world
        .run(
            "unshare",
            &[
                "--net",
                "sh",
                "-c",
                &format!("{credd} credential-process deploy >/dev/null; true"),
            ],
            None,
        )
        .assert_success();
    let other_net = recorded(world, "the other namespace's line", |e| {
        e["route"] == "credential-process" && e["profile"] == "deploy"
    });
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let netns = other_net["netns"].as_str().unwrap_or_default();
    assert!(netns.starts_with("net:["), "{other_net}");
    assert_ne!(Path::new(netns), ours, "{other_net}");
    assert_eq!(other_net["exe"], sh_exe, "{other_net}");

    // curl in a cgroup of its own, named as Docker names a container's.
    let cgroup = CgroupDir::create();
    let mut child = world
        .command("sh")
        .args([
            "-c",
            &format!(
                "read go; exec {}",
                curl_command(&stack, "/v1/credentials/deploy")
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start sh");
    let pid = child.id();
    if let Some(cgroup) = &cgroup {
        cgroup.add(pid);
    }
    let expected = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("the child's cgroup")
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_owned)
        .expect("a cgroup v2 line");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"go\n")
        .expect("tell it to go");
    assert!(child.wait().expect("wait for curl").success());
    let curl_exe = executable("curl");
    let contained = recorded(world, "the contained curl's line", |e| {
        is(e, &curl_exe, "deploy")
    });
    assert_eq!(contained["pid"], pid, "{contained}");
    assert_eq!(contained["cgroup"], expected, "{contained}");
    match &cgroup {
        Some(_) => {
            assert!(
                expected.ends_with(&format!("/docker-{CONTAINER_ID}.scope")),
                "{expected}"
            );
            assert_eq!(contained["container"], CONTAINER_ID, "{contained}");
            let table = world.credd(&["audit"]);
            assert!(
                table
                    .stdout
                    .contains(&format!("[container {}]", &CONTAINER_ID[..12])),
                "{table}"
            );
        }
        None => eprintln!(
            "no writable cgroup v2 here: the recorded cgroup is checked against /proc/PID/cgroup \
             ({expected}) only"
        ),
    }
}

/// A cgroup v2 directory of this test's (`<v2 mount>/credd-audit-<pid>/docker-<id>.scope`),
/// removed on drop; `None` where no cgroup v2 hierarchy is mounted writable.
struct CgroupDir {
    outer: PathBuf,
    inner: PathBuf,
}

impl CgroupDir {
    fn create() -> Option<CgroupDir> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
                .flatten()
        })?;
        let outer = mount.join(format!("credd-audit-{}", std::process::id()));
        let inner = outer.join(format!("docker-{CONTAINER_ID}.scope"));
        std::fs::create_dir_all(&inner).ok()?;
        Some(CgroupDir { outer, inner })
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.inner.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", self.inner.display()));
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.inner);
        let _ = std::fs::remove_dir(&self.outer);
    }
}

#[test]
fn a_flood_on_keep_alive_connections_is_a_few_lines_whose_counts_add_up_and_no_secret() {
    let mut stack = audited("", None);
    const PROCESSES: u64 = 4;
    const PER_PROCESS: u64 = 150;
    // One curl per process, all its requests on one connection (curl reuses it for the URLs of
    // a host); the header in a config file, off the command line.
    let config = stack.world.root.join("flood.curlrc");
    let mut text = format!(
        "silent\nfail\nheader = \"Authorization: {}\"\n",
        stack.token()
    );
    for _ in 0..PER_PROCESS {
        text.push_str(&format!(
            "url = \"{}/v1/credentials/staging\"\noutput = \"/dev/null\"\n",
            stack.url()
        ));
    }
    std::fs::write(&config, text).unwrap();
    let flood = format!(
        "for i in $(seq {PROCESSES}); do curl -K '{}' & done; fail=0; for job in $(jobs -p); do \
         wait $job || fail=1; done; exit $fail",
        config.display()
    );
    stack
        .world
        .run("bash", &["-c", &flood], None)
        .assert_success();
    // What the routes hand out, to look for in the log.
    let served = stack.get_authorized("/v1/credentials/staging").json();
    let token = stack.token();
    let curl_exe = executable("curl");
    wait_total(&stack.world, "the flood", PROCESSES * PER_PROCESS, |e| {
        is(e, &curl_exe, "staging")
    });
    // Stopping writes what is pending; then the whole log is there.
    stack.world.stop_daemon();
    let lines = audit_json(&stack.world, &[]);
    let curl_lines: Vec<&Value> = lines
        .iter()
        .filter(|e| is(e, &curl_exe, "staging"))
        .collect();
    let counted: u64 = curl_lines
        .iter()
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, PROCESSES * PER_PROCESS, "{curl_lines:?}");
    assert!(
        (curl_lines.len() as u64) < PROCESSES * PER_PROCESS / 10,
        "one line per program and second, not per request: {} lines",
        curl_lines.len()
    );
    let pids: std::collections::BTreeSet<String> =
        curl_lines.iter().map(|e| e["pid"].to_string()).collect();
    assert_eq!(pids.len() as u64, PROCESSES, "each curl named: {pids:?}");
    assert!(
        !stack.world.daemon_log().contains("dropped under load"),
        "nothing dropped"
    );
    eprintln!(
        "{} requests on {PROCESSES} keep-alive connections: {} lines",
        PROCESSES * PER_PROCESS,
        curl_lines.len()
    );

    let paths = stack.world.paths();
    let log = std::fs::read_to_string(paths.audit_log()).unwrap();
    for (what, secret) in [
        ("the secret access key", served["SecretAccessKey"].as_str()),
        ("the session token", served["Token"].as_str()),
        ("the access key ID", served["AccessKeyId"].as_str()),
        ("the HTTP token", Some(token.as_str())),
    ] {
        let secret = secret.unwrap_or_else(|| panic!("no {what} served: {served}"));
        assert!(!log.contains(secret), "{what} is in the audit log");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(paths.audit_log())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn a_small_max_size_rotates_the_log_and_bounds_what_is_on_disk() {
    let mut stack = audited("max_size = \"4KiB\"", None);
    const RUNS: usize = 30;
    // Each curl a process of its own: a line each.
    let runs = format!(
        "for i in $(seq {RUNS}); do {} || exit 1; done",
        curl_command(&stack, "/v1/credentials")
    );
    stack.world.run("sh", &["-c", &runs], None).assert_success();
    stack.world.stop_daemon();
    let paths = stack.world.paths();
    let size = |p: PathBuf| std::fs::metadata(&p).map_or(0, |m| m.len());
    let (current, rotated) = (size(paths.audit_log()), size(paths.audit_log_rotated()));
    assert!(rotated > 0, "rotated once at least");
    assert!(
        current <= 4096 && rotated <= 4096,
        "{current} and {rotated} bytes"
    );
    // Every line kept reads whole, the newest among them.
    let out = stack.world.credd(&["audit", "--json"]);
    assert_eq!(out.stderr, "", "{out}");
    let lines = out.json();
    let lines = lines.as_array().expect("an array");
    assert!(
        !lines.is_empty() && lines.len() < RUNS,
        "{} lines",
        lines.len()
    );
    let last = std::fs::read_to_string(paths.audit_log()).unwrap();
    let last: Value = serde_json::from_str(last.lines().last().expect("a line")).unwrap();
    assert_eq!(lines.last(), Some(&last));
}

#[test]
fn notify_new_tells_the_first_take_of_a_matching_profile_by_each_program_once_across_restarts() {
    let desktop = Desktop::start();
    let mut stack = audited("notify_new = [\"dep*\"]", Some(desktop.bus.address()));
    let curl_exe = executable("curl");
    curl(&stack, "/v1/credentials/deploy");
    wait_until(RECORDED_DEADLINE, "the Notify call", || {
        !desktop.calls().is_empty()
    });
    let first = desktop.calls()[0].clone();
    assert_eq!(first.app_name, "credd", "{first:?}");
    assert_eq!(
        first.summary,
        format!("credd: {curl_exe} took deploy for the first time"),
        "{first:?}"
    );
    assert!(
        first.body.contains("credd audit --profile deploy"),
        "{first:?}"
    );
    assert!(!first.body.contains(&stack.token()), "{first:?}");
    wait_until(READY_DEADLINE, "dunst to have shown it", || {
        desktop.shown().contains(&first.summary)
    });

    // Again; a profile that matches no pattern; and after a restart: none of these is new.
    curl(&stack, "/v1/credentials/deploy");
    curl(&stack, "/v1/credentials/staging");
    wait_total(&stack.world, "curl's deploy", 2, |e| {
        is(e, &curl_exe, "deploy")
    });
    wait_total(&stack.world, "curl's staging", 1, |e| {
        is(e, &curl_exe, "staging")
    });
    stack.world.stop_daemon();
    let known = stack.world.paths().audit_known();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&known).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    stack.world.start_daemon();
    stack.wait_all_fresh(READY_DEADLINE);
    curl(&stack, "/v1/credentials/deploy");
    // Then a program that never took it: the next call on the bus is about it, and the only
    // other one ever made is the first.
    let sdk_exe = canonical(&sdk_client_bin());
    let deploy = stack.container_env("/v1/credentials/deploy", DEPLOY_REGION);
    stack
        .rust_sdk(&pairs(&deploy), &["container"])
        .unwrap_or_else(|out| panic!("the Rust SDK: {out}"));
    wait_until(RECORDED_DEADLINE, "the second Notify call", || {
        desktop.calls().len() >= 2
    });
    wait_total(&stack.world, "curl's deploy", 3, |e| {
        is(e, &curl_exe, "deploy")
    });
    let calls = desktop.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[1].summary,
        format!("credd: {sdk_exe} took deploy for the first time"),
        "{calls:?}"
    );
}
