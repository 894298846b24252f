//! `credd-bench`: the figures the issues ask for, printed as a table.
//!
//! - the credential hot path: cached `GET /v1/credentials/{profile}` on loopback, keep-alive with
//!   1/8/64 connections and a new connection per request, requests/s and p50/p99, next to a
//!   baseline: a bare hyper server (separate process, same runtime size) returning the same bytes;
//!   and the same with the audit log (`[audit] enabled`) off, alternating, for its cost;
//! - the same answer next to nginx serving its bytes as a static file, both loaded by wrk (32
//!   keep-alive connections, and a new connection per request), with each server's CPU per
//!   request ([`versus_nginx`]; Debian's `wrk` and `nginx-light`, installed with apt as root when
//!   missing);
//! - `credd status`, `credd prompt` and `credd profiles` wall time (client process start to exit,
//!   daemon running), median and p90: what a shell prompt pays for `credd prompt` (a state file
//!   read) next to a socket round trip;
//! - the owner's credential latency while another local user floods the HTTP port (keep-alive
//!   connections, reconnecting idle ones, pipelined refused IMDS requests), with the daemon's CPU
//!   per refused connection (needs root, to act as uid 65534);
//! - the daemon's idle RSS and idle CPU;
//! - last, logged out: bursts of 300 concurrent credential requests answered 503 LoginRequired
//!   (the single-flight tests' bursts), p50/p99/max.
//!
//! Build and run with `cargo build --profile dist --workspace --bin credd --bin credd-daemon --bin
//! credd-bench && target/dist/credd-bench [SECONDS]` (what ships: whole-program LTO; one cargo
//! invocation, each crate built once; it starts the `credd-daemon` next to it).
//! `credd-bench --nginx [SECONDS]` runs the comparison with nginx alone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use credd_tests::bench::{client_wall_time, cpu_seconds, idle, ms};
use credd_tests::moto::{Auth, Moto, SeedSpec};
use credd_tests::wait_until;
use credd_tests::world::World;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-baseline") {
        serve_baseline(&args[2]);
        return;
    }
    // `--nginx`: only the comparison with nginx.
    let nginx_only = args.get(1).map(String::as_str) == Some("--nginx");
    let seconds: u64 = args
        .get(if nginx_only { 2 } else { 1 })
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let run_for = Duration::from_secs(seconds);

    let moto = Moto::start(Auth::On);
    let seeded = moto.seed(&SeedSpec::new().user("alice").role(ADMIN));
    let alice = seeded.user("alice");
    let mut world = World::new();
    world.write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
    world.set_env("AWS_ENDPOINT_URL_STS", &moto.endpoint());
    world.set_env("RUST_LOG", "warn");
    world.write_config(&config(true));
    world.start_daemon();
    wait_until(Duration::from_secs(20), "profile fresh", || {
        let s = world.credd(&["status", "--json"]);
        s.success() && s.json()["profiles"][0]["state"] == "fresh"
    });
    let status = world.credd(&["status", "--json"]).json();
    let url = status["url"].as_str().expect("status has a url").to_owned();
    let credd_addr: SocketAddr = url
        .trim_start_matches("http://")
        .parse()
        .expect("url is addr");
    let token = world.http_token();
    let pid = world.daemon_pid().expect("daemon pid");
    drop(moto); // STS is not needed any more: everything below is served from the cache
    let path = "/v1/credentials/staging";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if nginx_only {
        let (content_type, body) = runtime.block_on(fetch_once(credd_addr, path, &token));
        versus_nginx(credd_addr, pid, path, &token, &content_type, &body, run_for);
        return;
    }

    println!(
        "credd-bench: {ROUNDS} rounds of {seconds} s per scenario and server (median shown), 2-thread servers, load generator in this process\n"
    );

    // Idle first, before any load warms caches.
    std::thread::sleep(Duration::from_secs(2)); // let the start-up refreshes settle
    let (rss_kib, cpu_pct) = idle(pid, IDLE_WINDOW);
    println!(
        "daemon idle: RSS {:.1} MiB, CPU {:.3}% of one core (over {} s)",
        rss_kib as f64 / 1024.0,
        cpu_pct,
        IDLE_WINDOW.as_secs()
    );

    for (args, what) in [
        (&["status"][..], "`credd status`"),
        (&["prompt"][..], "`credd prompt` (reads the state file)"),
        (
            &["profiles"][..],
            "`credd profiles` (one socket round trip)",
        ),
    ] {
        let (median, p90, min) = client_wall_time(&world, args, CLIENT_RUNS);
        println!(
            "{what} wall time over {CLIENT_RUNS} runs: median {median:.2} ms, p90 {p90:.2} ms, min \
             {min:.2} ms"
        );
    }
    println!();

    floods(credd_addr, &token, pid);

    // The real answer, as an SDK gets it: the baseline's body and nginx's static file.
    let (content_type, body) = runtime.block_on(fetch_once(credd_addr, path, &token));
    // The baseline: the same bytes from a bare hyper server in its own process.
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).expect("write body");
    let me = std::env::current_exe().expect("own exe");
    let mut baseline = Command::new(&me)
        .arg("--serve-baseline")
        .arg(&body_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the baseline server {}: {e}", me.display()));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(baseline.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("baseline port");
    let base_addr: SocketAddr = line.trim().parse().expect("baseline addr");

    println!(
        "{:<28} {:>12} {:>9} {:>9}   {:>12} {:>9} {:>9}   {:>6}",
        "scenario", "credd req/s", "p50 µs", "p99 µs", "base req/s", "p50 µs", "p99 µs", "ratio"
    );
    // The machine has 2 cores shared by server and load generator: alternate credd and the
    // baseline over several rounds and report the median of each, so drift hits both alike.
    // credd is measured with the audit log on (the default) and off, alternating too: the audit
    // log's cost is the difference, one binary, one machine, one run.
    let mut audit_rows = Vec::new();
    for (name, conns, keep_alive) in [
        ("keep-alive, 1 connection", 1, true),
        ("keep-alive, 8 connections", 8, true),
        ("keep-alive, 64 connections", 64, true),
        ("new connection per request, 8", 8, false),
    ] {
        let mut credd = Vec::new();
        let mut audit_off = Vec::new();
        let mut base = Vec::new();
        for _ in 0..ROUNDS {
            set_audit(&world, true);
            credd
                .push(runtime.block_on(load(credd_addr, path, &token, conns, keep_alive, run_for)));
            set_audit(&world, false);
            audit_off
                .push(runtime.block_on(load(credd_addr, path, &token, conns, keep_alive, run_for)));
            base.push(runtime.block_on(load(base_addr, path, &token, conns, keep_alive, run_for)));
        }
        set_audit(&world, true);
        let (c, off, b) = (median(credd), median(audit_off), median(base));
        println!(
            "{:<28} {:>12.0} {:>9} {:>9}   {:>12.0} {:>9} {:>9}   {:>5.2}x",
            name,
            c.rps,
            c.p50,
            c.p99,
            b.rps,
            b.p50,
            b.p99,
            c.rps / b.rps
        );
        audit_rows.push((name, c, off));
    }
    println!(
        "\nthe audit log's cost (credd above is with it on, the default):\n{:<28} {:>12} {:>9} {:>9}   {:>12} {:>9} {:>9}   {:>6}",
        "scenario", "on req/s", "p50 µs", "p99 µs", "off req/s", "p50 µs", "p99 µs", "on/off"
    );
    for (name, on, off) in &audit_rows {
        println!(
            "{:<28} {:>12.0} {:>9} {:>9}   {:>12.0} {:>9} {:>9}   {:>5.2}x",
            name,
            on.rps,
            on.p50,
            on.p99,
            off.rps,
            off.p50,
            off.p99,
            on.rps / off.rps
        );
    }
    let audit_log = world.paths().audit_log();
    println!(
        "audit log after the load: {} bytes in {} lines ({})",
        std::fs::metadata(&audit_log).map_or(0, |m| m.len()),
        std::fs::read_to_string(&audit_log).map_or(0, |t| t.lines().count()),
        audit_log.display()
    );
    let _ = baseline.kill();
    let _ = baseline.wait();

    versus_nginx(credd_addr, pid, path, &token, &content_type, &body, run_for);
    let (rss_kib, _) = idle(pid, Duration::from_millis(100));
    println!(
        "\ndaemon RSS after the load: {:.1} MiB",
        rss_kib as f64 / 1024.0
    );

    // Last: it logs out.
    logged_out_bursts(&world);
}

/// The daemon's config, with the audit log on or off (`credd reload` applies a change).
fn config(audit: bool) -> String {
    format!(
        "default_profile = \"staging\"\n[daemon]\nlisten = \"127.0.0.1:0\"\nimds = true\n\
         [audit]\nenabled = {audit}\n\
         [access]\nsource = \"iam-user\"\naws_profile = \"access\"\n\
         [profiles.staging]\nrole_arn = \"{ADMIN}\"\nregion = \"us-east-1\"\n"
    )
}

/// Turns the audit log on or off in the running daemon.
fn set_audit(world: &World, on: bool) {
    world.write_config(&config(on));
    world.credd(&["reload"]).assert_success();
}

/// How many times each client command is run for its wall time.
const CLIENT_RUNS: usize = 200;

/// Concurrent requests in a burst while logged out, as the single-flight tests send them.
const BURST: usize = 300;

/// The owner logged out: bursts of [`BURST`] concurrent credential requests (a new connection
/// each, every route) are all answered 503 LoginRequired at once, never held for a login. The
/// single-flight tests (`identity_center`, `saml`, `web_identity`) print these figures, measured
/// here on the release build.
fn logged_out_bursts(world: &World) {
    world.credd(&["logout"]).assert_success();
    // The logout replaced the HTTP token, and the daemon's address is the same.
    let token = world.http_token();
    let status = world.credd(&["status", "--json"]).json();
    let addr: SocketAddr = status["url"]
        .as_str()
        .expect("status has a url")
        .trim_start_matches("http://")
        .parse()
        .expect("url is addr");
    println!("\n{BURST} concurrent credential requests while logged out (503 LoginRequired):");
    for round in 1..=ROUNDS {
        let start = std::sync::Barrier::new(BURST);
        let mut times: Vec<Duration> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..BURST)
                .map(|i| {
                    let (start, token) = (&start, &token);
                    s.spawn(move || {
                        let path = ["/v1/credentials", "/v1/credentials/staging"][i % 2];
                        start.wait();
                        let began = Instant::now();
                        let reply = credd_tests::http::request(
                            addr,
                            "GET",
                            path,
                            &[("Authorization", token)],
                        );
                        let took = began.elapsed();
                        assert_eq!(reply.status, 503, "logged out: {reply}");
                        took
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a request thread"))
                .collect()
        });
        times.sort();
        println!(
            "  round {round}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 99 / 100]),
            ms(times[times.len() - 1])
        );
    }
}

const FLOOD: &str = include_str!("../../tests/e2e/attacks/scripts/flood.py");
/// The other local user the floods run as.
const STRANGER: u32 = 65534;

/// The owner's latency (new connection per request, as SDKs fetch) during each flood.
fn floods(addr: SocketAddr, token: &str, pid: u32) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("floods: skipped (acting as another user needs root)\n");
        return;
    }
    let request = format!(
        "GET /v1/credentials/staging HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\n\
         Connection: close\r\n\r\n"
    );
    let owner = |n: usize| {
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let start = Instant::now();
                let mut stream = std::net::TcpStream::connect(addr).expect("connect");
                std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
                let mut answer = Vec::new();
                std::io::Read::read_to_end(&mut stream, &mut answer).expect("read");
                assert!(answer.starts_with(b"HTTP/1.1 200 "), "owner refused");
                let took = start.elapsed();
                std::thread::sleep(Duration::from_millis(10));
                took
            })
            .collect();
        times.sort();
        times
    };
    let show = |t: &[Duration]| {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(t[t.len() / 2]),
            ms(t[t.len() * 99 / 100]),
            ms(t[t.len() - 1])
        )
    };
    println!("owner's credential request, new connection each, 400 requests:");
    println!("  {:<44} {}", "no flood", show(&owner(400)));
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("a system python3");
    for (what, mode, conns) in [
        (
            "1030 keep-alive conns, /healthz every 3 s",
            "keepalive",
            1030,
        ),
        ("2000 idle conns, reconnecting at once", "idle", 2000),
        ("8 conns pipelining IMDS token PUTs (403)", "imds", 8),
    ] {
        use std::os::unix::process::CommandExt;
        let mut attacker = Command::new(python)
            .args(["-c", FLOOD, "127.0.0.1"])
            .arg(addr.port().to_string())
            .args([mode, &conns.to_string(), "8"])
            .env_clear()
            .current_dir("/")
            .uid(STRANGER)
            .gid(STRANGER)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the flood");
        let mut out = std::io::BufReader::new(attacker.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("flood started");
        let cpu_before = cpu_seconds(pid);
        let times = owner(400);
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).expect("flood stats");
        let cpu = cpu_seconds(pid) - cpu_before;
        let _ = attacker.wait();
        let stats: serde_json::Value = serde_json::from_str(&line).expect("stats JSON");
        let refused = stats["closed_by_daemon"].as_u64().unwrap_or(0);
        let per = if refused > 0 {
            format!(
                ", {:.1} µs CPU per refused connection ({refused} refused)",
                cpu * 1e6 / refused as f64
            )
        } else {
            format!(", {} requests answered", stats["answers"])
        };
        println!("  {what:<44} {}; daemon CPU {cpu:.2} s{per}", show(&times));
    }
    println!();
}

/// How long the idle daemon's CPU use is sampled.
const IDLE_WINDOW: Duration = Duration::from_secs(20);

/// Rounds per scenario and server; the median round is reported.
const ROUNDS: usize = 3;

fn median(mut rounds: Vec<Figures>) -> Figures {
    rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    rounds.swap_remove(rounds.len() / 2)
}

struct Figures {
    rps: f64,
    p50: u128,
    p99: u128,
}

fn request(addr: SocketAddr, path: &str, token: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", addr.to_string())
        .header("authorization", token)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// The answer's Content-Type and body.
async fn fetch_once(addr: SocketAddr, path: &str, token: &str) -> (String, Bytes) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender
        .send_request(request(addr, path, token))
        .await
        .expect("send");
    assert_eq!(
        resp.status(),
        200,
        "credd must serve the cached credentials"
    );
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .expect("credd names the Content-Type")
        .to_owned();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (content_type, body)
}

async fn load(
    addr: SocketAddr,
    path: &str,
    token: &str,
    conns: usize,
    keep_alive: bool,
    run_for: Duration,
) -> Figures {
    let deadline = Instant::now() + run_for;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (path, token) = (path.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut sender = None;
            while Instant::now() < deadline {
                let start = Instant::now();
                if sender.is_none() || !keep_alive {
                    let stream = TcpStream::connect(addr).await.expect("connect");
                    let _ = stream.set_nodelay(true);
                    let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                    tokio::spawn(conn);
                    sender = Some(s);
                }
                let s = sender.as_mut().expect("connected");
                let resp = s
                    .send_request(request(addr, &path, &token))
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                let _ = resp.into_body().collect().await.expect("body");
                lat.push(start.elapsed().as_micros());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    Figures {
        rps: all.len() as f64 / run_for.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

/// A bare hyper server returning `body` with credd's headers; prints its address.
fn serve_baseline(body_file: &str) {
    let body = Bytes::from(std::fs::read(body_file).expect("read body"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let body = Arc::new(body);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .header("cache-control", "no-store")
                                    .body(Full::new((*body).clone()))
                                    .expect("response"),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
/// The keep-alive connections of the nginx comparison (and the concurrent clients of its
/// new-connection-per-request shape).
const WRK_CONNECTIONS: usize = 32;
/// wrk's threads: the machine's two cores are shared by the server under test and wrk, so one
/// thread each for wrk's event loops would leave the servers a core; two, as the servers have.
const WRK_THREADS: usize = 2;

/// credd's cached credential answer next to nginx serving the same bytes as a static file, with
/// wrk (a load generator neither server shares code with), alternating over [`ROUNDS`] rounds
/// per shape; the median round of each. Fair terms, stated in the output: nginx runs as many
/// workers as credd has tokio threads, keeps an access log as credd keeps its audit log
/// (buffered, written at most a second later, as credd's audit thread batches), closes idle
/// keep-alive connections after 5 s and every connection after 60 s as credd does, and both get
/// the same request (credd's token header too, which nginx ignores).
fn versus_nginx(
    credd: SocketAddr,
    credd_pid: u32,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
    run_for: Duration,
) {
    let (wrk, nginx_bin) = nginx_and_wrk();
    let dir = tempfile::tempdir().expect("temp dir");
    let nginx = Nginx::start(&nginx_bin, dir.path(), path, content_type, body);
    // The token goes in a script (0600, in a private temp dir), not on wrk's command line, which
    // every user of the machine can read.
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric()),
        "the HTTP token is hex"
    );
    let script = dir.path().join("token.lua");
    std::fs::write(
        &script,
        format!("wrk.headers[\"Authorization\"] = \"{token}\"\n"),
    )
    .expect("write the wrk script");
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    println!(
        "\ncredd next to nginx {} serving the same {} bytes ({content_type}) as a static file, \
         wrk {}, {WRK_THREADS} threads, {WRK_CONNECTIONS} connections, {ROUNDS} rounds of {} s \
         alternating (median shown); load average before: {}",
        nginx.version,
        body.len(),
        wrk_version(&wrk),
        run_for.as_secs(),
        loadavg()
    );
    println!(
        "  nginx: {NGINX_WORKERS} workers (credd: 2 tokio threads), access log on (buffered, \
         flushed every second; credd's audit log is on), sendfile, keep-alive idle 5 s and 60 s \
         at most (as credd), no request limit per connection"
    );
    println!(
        "{:<28} {:>12} {:>9} {:>9} {:>8}   {:>12} {:>9} {:>9} {:>8}   {:>6}",
        "scenario",
        "credd req/s",
        "p50 µs",
        "p99 µs",
        "CPU µs",
        "nginx req/s",
        "p50 µs",
        "p99 µs",
        "CPU µs",
        "ratio"
    );
    for (name, close) in [
        ("keep-alive, 32 connections", false),
        ("new connection per request", true),
    ] {
        let mut credd_rounds = Vec::new();
        let mut nginx_rounds = Vec::new();
        for _ in 0..ROUNDS {
            let run = |addr: SocketAddr, pids: &[u32]| {
                let before: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
                let mut result = run_wrk(&wrk, &script, addr, path, close, run_for);
                let used: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum::<f64>() - before;
                result.cpu_us = used * 1e6 / result.requests.max(1) as f64;
                result
            };
            credd_rounds.push(run(credd, &[credd_pid]));
            nginx_rounds.push(run(nginx.addr, &nginx.pids()));
        }
        let (c, n) = (median_wrk(credd_rounds), median_wrk(nginx_rounds));
        println!(
            "{:<28} {:>12.0} {:>9.0} {:>9.0} {:>8.1}   {:>12.0} {:>9.0} {:>9.0} {:>8.1}   {:>5.2}x",
            name,
            c.rps,
            c.p50,
            c.p99,
            c.cpu_us,
            n.rps,
            n.p50,
            n.p99,
            n.cpu_us,
            c.rps / n.rps
        );
    }
    println!(
        "  (CPU µs: the server's user + system CPU per request answered; ratio: credd's req/s \
         over nginx's); load average after: {}",
        loadavg()
    );
}

/// nginx's worker processes: as many as credd's tokio worker threads.
const NGINX_WORKERS: usize = 2;

/// One wrk run's figures.
struct WrkFigures {
    requests: u64,
    rps: f64,
    /// Latency percentiles in µs (wrk's: from the request's first byte sent to the answer's
    /// last received, not counting the connect).
    p50: f64,
    p99: f64,
    /// The server's CPU per request in µs (filled in by the caller).
    cpu_us: f64,
}

fn median_wrk(mut rounds: Vec<WrkFigures>) -> WrkFigures {
    rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    rounds.swap_remove(rounds.len() / 2)
}

/// wrk and nginx, installed with apt when missing (Debian's `wrk` and `nginx-light`).
fn nginx_and_wrk() -> (std::path::PathBuf, std::path::PathBuf) {
    let wrk = std::path::PathBuf::from("/usr/bin/wrk");
    let nginx = std::path::PathBuf::from("/usr/sbin/nginx");
    let missing = || {
        let mut missing = Vec::new();
        if !wrk.is_file() {
            missing.push("wrk".to_owned());
        }
        if !nginx.is_file() {
            missing.push("nginx-light".to_owned());
        }
        missing
    };
    credd_tests::install::apt_install("the comparison with nginx", "bench-nginx-install", missing)
        .unwrap_or_else(|e| panic!("{e}"));
    (wrk, nginx)
}

fn wrk_version(wrk: &std::path::Path) -> String {
    // `wrk -v` prints its version line and the usage, and exits 1.
    let out = Command::new(wrk).arg("-v").output().expect("run wrk -v");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace().nth(1).unwrap_or("?").to_owned()
}

/// `wrk` against `http://addr/path` for `run_for`, with the token script; `close`: a new
/// connection per request (`Connection: close`, as SDKs that do not keep connections alive).
fn run_wrk(
    wrk: &std::path::Path,
    script: &std::path::Path,
    addr: SocketAddr,
    path: &str,
    close: bool,
    run_for: Duration,
) -> WrkFigures {
    let mut command = Command::new(wrk);
    command
        .args(["-t", &WRK_THREADS.to_string()])
        .args(["-c", &WRK_CONNECTIONS.to_string()])
        .args(["-d", &format!("{}s", run_for.as_secs())])
        .arg("--latency")
        .arg("-s")
        .arg(script);
    if close {
        command.args(["-H", "Connection: close"]);
    }
    let out = command
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Non-2xx"),
        "{addr} answered something else than 200:\n{text}"
    );
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

/// Requests/sec, the request count and the 50% and 99% latencies of wrk's `--latency` output.
fn parse_wrk(text: &str) -> Option<WrkFigures> {
    let mut rps = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse().ok(),
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["50%", v] => p50 = micros(v),
            ["99%", v] => p99 = micros(v),
            _ => {}
        }
    }
    Some(WrkFigures {
        requests: requests?,
        rps: rps?,
        p50: p50?,
        p99: p99?,
        cpu_us: 0.0,
    })
}

/// wrk's `123.45us`, `1.23ms`, `1.00s` in µs.
fn micros(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = v.split_at(split);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// nginx in the foreground with its own config, logs, pid file and temp paths in `dir`, serving
/// `body` at `path` on a loopback port; stopped on drop.
struct Nginx {
    child: std::process::Child,
    addr: SocketAddr,
    version: String,
}

impl Nginx {
    fn start(
        bin: &std::path::Path,
        dir: &std::path::Path,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Nginx {
        let root = dir.join("www");
        let file = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("create the web root");
        std::fs::write(&file, body).expect("write the static file");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let d = dir.display();
        // As root, nginx's workers would switch to `nobody`, who cannot read the private temp dir.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let config = format!(
            "{user}worker_processes {NGINX_WORKERS};\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               access_log {d}/access.log combined buffer=64k flush=1s;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               types {{ }}\n  default_type {content_type};\n\
               sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
               keepalive_timeout 5s;\n  keepalive_time 60s;\n  keepalive_requests 1000000;\n\
               server {{\n\
                 listen {addr};\n    root {root};\n\
                 location / {{ add_header Cache-Control no-store; }}\n\
               }}\n\
             }}\n",
            root = root.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let version = Command::new(bin)
            .arg("-v")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .rsplit('/')
                    .next()
                    .unwrap_or("?")
                    .to_owned()
            })
            .unwrap_or_default();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let nginx = Nginx {
            child,
            addr,
            version,
        };
        wait_until(Duration::from_secs(10), "nginx listening", || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        wait_until(Duration::from_secs(10), "nginx's workers", || {
            nginx.pids().len() == 1 + NGINX_WORKERS
        });
        nginx
    }

    /// The master's pid and its workers'.
    fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop (it flushes the access log).
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}
