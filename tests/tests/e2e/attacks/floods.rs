//! Floods of the HTTP port (keep-alive, idle and reconnecting connections) and of IMDS by
//! another user, and the owner's own dual-stack (Java) programs on IMDS.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{DescriptorWatch, STALL, as_attacker, flood, flood_stats, open_descriptors};
use crate::http_support::{offline, served};
use credd_tests::stack::Stack;
use credd_tests::system_python;
use credd_tests::world::World;

/// Latency of the owner's credential requests, each on a new connection as SDKs make them.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn measure(served: &Stack, requests: usize, spacing: Duration) -> Latencies {
        let token = served.token();
        let request = format!(
            "GET /v1/credentials/staging HTTP/1.1\r\nHost: {}\r\nAuthorization: {token}\r\n\
             Connection: close\r\n\r\n",
            served.addr()
        );
        let mut all = Vec::with_capacity(requests);
        for _ in 0..requests {
            let start = Instant::now();
            let answer = exchange(served.addr(), request.as_bytes());
            let took = start.elapsed();
            all.push(took);
            assert!(
                answer.starts_with("HTTP/1.1 200 "),
                "the owner was refused: {answer}"
            );
            assert!(
                took < STALL,
                "the owner's request stalled for {took:?} (a dropped SYN, a time-out)"
            );
            std::thread::sleep(spacing);
        }
        all.sort();
        Latencies(all)
    }

    fn percentile(&self, p: usize) -> Duration {
        self.0[(self.0.len() - 1) * p / 100]
    }

    fn max(&self) -> Duration {
        *self.0.last().expect("samples")
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} median={:?} p95={:?} max={:?}",
            self.0.len(),
            self.percentile(50),
            self.percentile(95),
            self.max()
        )
    }
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// CPU seconds the daemon has used so far (user + system).
fn daemon_cpu(world: &World) -> f64 {
    let pid = world.daemon_pid().expect("the daemon runs");
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read the daemon's stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm ends with )")
        .1
        .split_whitespace()
        .collect();
    // After the comm: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The owner's requests during each flood: enough to see a refusal or a stall (a full accept
/// queue drops SYNs at once); the latency figures are `credd-bench`'s.
const OWNER_REQUESTS: usize = 50;
/// Between two of the owner's requests.
const OWNER_SPACING: Duration = Duration::from_millis(20);

/// A test, run from [`crate::alone`] (for its place in the run's order).
pub(crate) fn a_stranger_flooding_the_http_port_never_refuses_or_stalls_the_owner() {
    credd_tests::require_root("acting as another user");
    let _turn = credd_tests::turns::alone();
    let served = served("");
    let quiet = Latencies::measure(&served, OWNER_REQUESTS, Duration::from_millis(5));
    eprintln!("owner, no flood: {quiet}");

    // The review's first attack: 1,030 keep-alive connections, /healthz every 3 s.
    let pid = served.world.daemon_pid().expect("the daemon runs");
    let before = open_descriptors(pid);
    let watch = DescriptorWatch::start(pid);
    let attack = flood(served.addr(), "keepalive", 1030);
    let keepalive = Latencies::measure(&served, OWNER_REQUESTS, OWNER_SPACING);
    let stats = flood_stats(attack);
    let most = watch.most();
    eprintln!(
        "owner, 1030 keep-alive connections flooding: {keepalive}; attacker: {stats}; daemon \
         descriptors {before} before, at most {most} during"
    );
    // The stranger's quota (8), the owner's request in flight and connections being reset: a
    // few dozen at most, never the thousands the flood opens.
    assert!(
        most <= before + 32,
        "the flood held daemon descriptors: {most} (from {before})"
    );

    // The second: 2,000 idle connections, reconnecting whenever they are closed.
    let attack = flood(served.addr(), "idle", 2000);
    let idle = Latencies::measure(&served, OWNER_REQUESTS, OWNER_SPACING);
    let stats = flood_stats(attack);
    eprintln!("owner, 2000 idle reconnecting connections: {idle}; attacker: {stats}");
    // Every one of the owner's requests was answered, none stalled (Latencies::measure).
    served.assert_still_serving();
    let refusals = served
        .world
        .daemon_log()
        .matches("refused HTTP connections from uid 65534")
        .count();
    assert!(
        (1..=2).contains(&refusals),
        "refusals are logged once a minute, not per connection: {refusals} lines"
    );
}

/// A test, run from [`crate::alone`] (for its place in the run's order).
pub(crate) fn a_flood_of_refused_imds_requests_is_cheap_and_quiet() {
    credd_tests::require_root("acting as another user");
    let _turn = credd_tests::turns::alone();
    let served = served("imds = true");
    let before = daemon_cpu(&served.world);
    let started = Instant::now();
    let attack = flood(served.addr(), "imds", 8);
    let during = Latencies::measure(&served, OWNER_REQUESTS, OWNER_SPACING);
    let stats = flood_stats(attack);
    let cpu = daemon_cpu(&served.world) - before;
    let wall = started.elapsed().as_secs_f64();
    let answered = stats["answers"].as_u64().unwrap_or(0);
    eprintln!(
        "owner during the IMDS flood: {during}; attacker: {stats}; daemon used {cpu:.2} CPU-s \
         in {wall:.1} s"
    );
    // How many depends on the machine's speed (each connection is answered at most every
    // 50 ms); that it was answered at all, and refused, does not.
    assert!(answered > 0, "the flood was answered (403): {stats}");
    assert!(
        cpu / wall < 0.25,
        "the daemon spent {cpu:.2} CPU-s in {wall:.1} s refusing (the review saw 2 cores)"
    );
    let log = served.world.daemon_log();
    let refusals = log.matches("refused an IMDS request").count();
    assert!(
        (1..=2).contains(&refusals),
        "{refusals} log lines for {answered} refused requests"
    );
}

#[test]
fn the_owners_dual_stack_programs_are_served_by_imds_and_the_attackers_are_not() {
    credd_tests::require_root("acting as another user");
    let served = offline("imds = true");
    const SCRIPT: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.connect(("::ffff:127.0.0.1", port))
s.sendall(b"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
          b"X-aws-ec2-metadata-token-ttl-seconds: 60\r\nConnection: close\r\n\r\n" % port)
answer = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.split(b" ")[1].decode())
"#;
    let port = served.addr().port().to_string();
    let status = |command: &mut Command| {
        let out = command
            .args(["-c", SCRIPT, &port])
            .output()
            .expect("run python3");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        status(&mut Command::new(system_python())),
        "200",
        "the owner"
    );
    assert_eq!(
        status(&mut as_attacker(system_python())),
        "403",
        "the attacker"
    );

    // A real Java program, which uses dual-stack sockets by default.
    let out = Command::new("java")
        .arg("-cp")
        .arg(dual_stack_classes())
        .arg("DualStackImds")
        .arg(served.url())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run java (the machine has a JDK)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "token 200\nlist 200\nrole staging\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The compiled `scripts/DualStackImds.java`: compiled once into `target/java-dual-stack-imds`
/// (again when the source changes), so a run pays for the JVM's start only, not for javac's.
fn dual_stack_classes() -> std::path::PathBuf {
    const SOURCE: &str = include_str!("scripts/DualStackImds.java");
    let dir = credd_tests::install::target_dir("java-dual-stack-imds");
    let digest = ring::digest::digest(&ring::digest::SHA256, SOURCE.as_bytes());
    let pinned = format!("DualStackImds.java sha256 {}", hex::encode(digest));
    credd_tests::install::install_once(
        &dir,
        &pinned,
        "DualStackImds.class",
        "the dual-stack Java program",
        |dir| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/e2e/attacks/scripts/DualStackImds.java");
            credd_tests::install::run_install_step(
                Command::new("javac").arg("-d").arg(dir).arg(&source),
                "javac DualStackImds.java",
            );
        },
    );
    dir
}
