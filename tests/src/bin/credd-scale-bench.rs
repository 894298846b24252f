//! `credd-scale-bench`: credd with 500 profiles (400 assumed directly across 40 accounts, 100
//! chained through them) against moto with request auth on, behind the tests' STS proxy, which
//! counts every call and what is in flight.
//!
//! It prints: the time from the daemon's start until every profile is fresh; the STS calls of
//! that warm-up, the most in one second and the most in flight at once; the connections open to
//! STS then and once idle; the idle daemon's RSS and CPU over 20 s; `credd status` (compact and
//! `--all`), `credd status --json` and `credd profiles`: wall time and bytes; `credd reload`; the
//! requests per second on one pinned profile (wrk, 8 keep-alive connections); then the steady
//! state measured on compressed time (the proxy makes every AssumeRole's credentials last 240 s,
//! `min_remaining = "2m"`, the smallest allowed): calls per hour and the widest second, next to what the schedule
//! gives for 1-hour credentials.
//!
//! Build and run with `cargo build --profile dist -p credd-tests --bin credd-scale-bench --bin
//! credd --bin credd-daemon && target/dist/credd-scale-bench [DIRECT CHAINED]` (what ships:
//! whole-program LTO; it starts the `credd-daemon` and `credd` next to it, so copying it beside
//! older binaries measures those).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use credd_proto::{ProfileState, Request, Response, StatusReport};
use credd_tests::bench::{connections_to, cpu_seconds, idle, ms, status_kib, try_client_wall_time};
use credd_tests::install::apt_install;
use credd_tests::moto::{Auth, Moto, SeedSpec};
use credd_tests::proxy::StsProxy;
use credd_tests::wait_until;
use credd_tests::world::World;

/// Accounts the direct profiles' roles are spread over.
const ACCOUNTS: usize = 40;
/// How long the idle daemon's CPU use is sampled.
const IDLE_WINDOW: Duration = Duration::from_secs(20);
/// Runs of each client command timed.
const CLIENT_RUNS: usize = 50;
/// The compressed credentials' lifetime and how long the steady state is watched.
const SHORT_LIFE: Duration = Duration::from_secs(240);
/// `min_remaining` (and `follow_window`) of the compressed steady state: the smallest allowed.
const SHORT_MIN_REMAINING: &str = "2m";
const STEADY_WINDOW: Duration = Duration::from_secs(180);

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let direct = args.first().copied().unwrap_or(400);
    let chained = args.get(1).copied().unwrap_or(100);
    let total = direct + chained;
    apt_install("the req/s figure", "wrk-install", || {
        let found = Command::new("wrk").arg("--version").output().is_ok();
        if found {
            vec![]
        } else {
            vec!["wrk".to_owned()]
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let moto = Moto::start(Auth::On);
    let mut spec = SeedSpec::new().user("alice");
    for arn in roles(direct, chained) {
        spec = spec.role(&arn);
    }
    let seeded = moto.seed(&spec);
    let alice = seeded.user("alice");
    let proxy = StsProxy::start(&moto.endpoint());
    let mut world = World::new();
    world.write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
    world.set_env("AWS_ENDPOINT_URL_STS", &proxy.endpoint());
    world.set_env("RUST_LOG", "warn");
    world.write_config(&config(direct, chained, None));

    println!(
        "credd-scale-bench: {total} profiles ({direct} direct across {ACCOUNTS} accounts, {chained} chained), moto with auth on behind a counting proxy\n"
    );

    // The warm-up: from the daemon's start until every profile is fresh.
    let start = Instant::now();
    let ((all_fresh, conns_fresh), warm) = sampled(&proxy, || {
        world.start_daemon();
        wait_until(Duration::from_secs(120), "every profile fresh", || {
            fresh(&world) == total
        });
        let all_fresh = start.elapsed();
        let conns = connections_to(proxy.port());
        std::thread::sleep(Duration::from_secs(1));
        (all_fresh, conns)
    });
    let pid = world.daemon_pid().expect("the daemon's pid");
    println!("warm-up:");
    println!(
        "  every profile fresh        {:.2} s after the daemon started",
        all_fresh.as_secs_f64()
    );
    println!(
        "  STS calls                  {} AssumeRole ({} per profile), {} in the widest second",
        warm.calls,
        fmt2(warm.calls as f64 / total as f64),
        warm.widest_second
    );
    println!(
        "  most calls in flight       {} (sampled every {} ms)",
        warm.most_in_flight,
        SAMPLE.as_millis()
    );
    println!(
        "  connections to STS         {} at most, {conns_fresh} when all were fresh",
        warm.most_connections
    );

    // Idle.
    let (rss, cpu) = idle(pid, IDLE_WINDOW);
    let conns_idle = connections_to(proxy.port());
    println!("idle:");
    println!(
        "  RSS                        {:.1} MiB (anonymous {:.1} MiB, peak {:.1} MiB)",
        mib(rss),
        mib(status_kib(pid, "RssAnon")),
        mib(status_kib(pid, "VmHWM"))
    );
    println!(
        "  CPU                        {cpu:.3}% of one core over {} s",
        IDLE_WINDOW.as_secs()
    );
    println!(
        "  connections to STS         {conns_idle}, {:.0} s after all were fresh",
        (start.elapsed() - all_fresh).as_secs_f64()
    );

    // The control socket.
    println!("client commands (wall time over {CLIENT_RUNS} runs, process start to exit):");
    for args in [
        &["status"][..],
        &["status", "--all"][..],
        &["status", "--json"][..],
        &["profiles"][..],
    ] {
        let bytes = world
            .command(credd_tests::bins::client_bin())
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout.len());
        let shown = format!("credd {}", args.join(" "));
        match (try_client_wall_time(&world, args, CLIENT_RUNS), bytes) {
            (Some((median, p90, min)), Some(bytes)) => println!(
                "  {shown:<26} median {median:.2} ms, p90 {p90:.2} ms, min {min:.2} ms; {:.1} kB",
                bytes as f64 / 1000.0
            ),
            _ => println!("  {shown:<26} not supported by this credd"),
        }
    }
    let answer = time_requests(&world, &Request::Status, CLIENT_RUNS);
    println!(
        "  the Status request alone   median {:.2} ms (control socket, no process start)",
        answer
    );
    let reload = reload_time(&world, direct, chained);
    println!("  credd reload               median {reload:.2} ms (config rewritten each time)");

    // Requests per second on one pinned profile.
    let status = status_report(&world);
    let url = status.url.clone().expect("the daemon serves HTTP");
    let rps = wrk(
        &format!("{}/v1/credentials/d0", url.trim_end_matches('/')),
        &world.http_token(),
    );
    println!("requests:");
    println!(
        "  GET /v1/credentials/d0     {rps} req/s (wrk, 2 threads, 8 keep-alive connections, 5 s)"
    );

    // The steady state on compressed time: every credential lasts SHORT_LIFE.
    proxy.set_lifetime("AssumeRole", SHORT_LIFE);
    world.write_config(&config(direct, chained, Some(SHORT_MIN_REMAINING)));
    world.credd(&["reload"]).assert_success();
    world.credd(&["logout"]).assert_success();
    world.credd(&["login"]).assert_success();
    wait_until(
        Duration::from_secs(120),
        "every profile fresh again",
        || fresh(&world) == total,
    );
    // One cycle to settle, then watch.
    std::thread::sleep(SHORT_LIFE);
    let ((), steady) = sampled(&proxy, || std::thread::sleep(STEADY_WINDOW));
    let per_hour = steady.calls as f64 * 3600.0 / STEADY_WINDOW.as_secs_f64();
    println!(
        "steady state (compressed: {} s credentials, min_remaining {SHORT_MIN_REMAINING}, over {} s):",
        SHORT_LIFE.as_secs(),
        STEADY_WINDOW.as_secs()
    );
    println!(
        "  STS calls                  {} = {per_hour:.0} an hour ({} per profile), {} in the widest second, {} in flight at most",
        steady.calls,
        fmt2(per_hour / total as f64),
        steady.widest_second,
        steady.most_in_flight
    );
    let (lo, hi) = interval(SHORT_LIFE, Duration::from_secs(120), total);
    println!(
        "  the schedule's interval    {:.1}..{:.1} s: {:.0} an hour on average (schedule.rs as of this bench)",
        lo,
        hi,
        total as f64 * 3600.0 / ((lo + hi) / 2.0)
    );
    let (lo, hi) = interval(Duration::from_secs(3600), Duration::from_secs(1800), total);
    println!(
        "  with 1-hour credentials    (computed from the schedule, min_remaining 30m) a refresh every {:.0}..{:.0} s: {:.0} calls an hour, {} per profile, about {:.2} a second",
        lo,
        hi,
        total as f64 * 3600.0 / ((lo + hi) / 2.0),
        fmt2(3600.0 / ((lo + hi) / 2.0)),
        total as f64 / ((lo + hi) / 2.0)
    );
    let (rss, _) = idle(pid, Duration::from_millis(100));
    println!(
        "  RSS after it               {:.1} MiB, CPU {:.1} s in all",
        mib(rss),
        cpu_seconds(pid)
    );
    drop(moto);
}

/// The roles: direct ones `D{i}` in 40 accounts, chained ones `C{i}`.
fn roles(direct: usize, chained: usize) -> Vec<String> {
    (0..direct)
        .map(|i| format!("arn:aws:iam::{}:role/D{i}", account(i)))
        .chain((0..chained).map(|i| format!("arn:aws:iam::{}:role/C{i}", account(i))))
        .collect()
}

fn account(i: usize) -> String {
    format!("{:012}", 200_000_000_000u64 + (i % ACCOUNTS) as u64)
}

/// The daemon's config: `d{i}` direct, `c{i}` through `d{i % direct}`.
fn config(direct: usize, chained: usize, min_remaining: Option<&str>) -> String {
    let mut text = String::from("default_profile = \"d0\"\n[daemon]\nlisten = \"127.0.0.1:0\"\n");
    if let Some(min) = min_remaining {
        text += &format!("min_remaining = \"{min}\"\nfollow_window = \"{min}\"\n");
    }
    text += "[access]\nsource = \"iam-user\"\naws_profile = \"access\"\n";
    for i in 0..direct {
        text += &format!(
            "[profiles.d{i}]\nrole_arn = \"arn:aws:iam::{}:role/D{i}\"\nregion = \"us-east-1\"\n",
            account(i)
        );
    }
    for i in 0..chained {
        text += &format!(
            "[profiles.c{i}]\nrole_arn = \"arn:aws:iam::{}:role/C{i}\"\nvia = \"d{}\"\n",
            account(i),
            i % direct.max(1)
        );
    }
    text
}

fn status_report(world: &World) -> StatusReport {
    match world.request(&Request::Status) {
        Ok(Response::Status(report)) => *report,
        other => panic!("status: {other:?}"),
    }
}

fn fresh(world: &World) -> usize {
    status_report(world)
        .profiles
        .iter()
        .filter(|p| p.state == ProfileState::Fresh)
        .count()
}

/// The median time of `runs` control requests, in ms.
fn time_requests(world: &World, request: &Request, runs: usize) -> f64 {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            world.request(request).expect("an answer");
            start.elapsed()
        })
        .collect();
    times.sort();
    ms(times[runs / 2])
}

/// The median wall time of `credd reload` after the config was written anew (a comment differs).
fn reload_time(world: &World, direct: usize, chained: usize) -> f64 {
    let mut times: Vec<Duration> = (0..10)
        .map(|i| {
            world.write_config(&format!("# {i}\n{}", config(direct, chained, None)));
            let start = Instant::now();
            world.credd(&["reload"]).assert_success();
            start.elapsed()
        })
        .collect();
    times.sort();
    ms(times[5])
}

/// wrk's requests per second against `url`.
fn wrk(url: &str, token: &str) -> String {
    let out = Command::new("wrk")
        .args(["-t2", "-c8", "-d5s", "-H"])
        .arg(format!("Authorization: {token}"))
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw errors from credd:\n{text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

/// What [`interval`]'s caller prints: the shortest and longest time from issue to the next
/// refresh, in seconds, as `daemon/src/engine/schedule.rs` (`refresh_interval`) computes it:
/// the servable window less its lead (a quarter, at most 5 min), less a jitter window of a tenth
/// of the window up to 1 min, or 1 s per profile up to half of what is before the lead.
fn interval(life: Duration, min_remaining: Duration, profiles: usize) -> (f64, f64) {
    let window = life.saturating_sub(min_remaining).as_secs_f64();
    let latest = window - (window / 4.0).min(300.0);
    let jitter = (window / 10.0)
        .min(60.0)
        .max((profiles as f64).min(latest / 2.0));
    (latest - jitter, latest)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fmt2(v: f64) -> String {
    format!("{v:.2}")
}

/// How often the proxy's counts and the connections are sampled.
const SAMPLE: Duration = Duration::from_millis(5);

/// Runs `work` while sampling the proxy's AssumeRole counts (calls, answers) and the
/// connections to it every [`SAMPLE`].
fn sampled<T>(proxy: &StsProxy, work: impl FnOnce() -> T) -> (T, Sampled) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let base = proxy.calls("AssumeRole");
            let start = Instant::now();
            let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
            let mut out = Sampled::default();
            let mut last = base;
            let mut tick = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let calls = proxy.calls("AssumeRole");
                let in_flight = proxy
                    .forwarded("AssumeRole")
                    .saturating_sub(proxy.answered("AssumeRole"));
                *per_second.entry(start.elapsed().as_secs()).or_default() += calls - last;
                last = calls;
                out.calls = calls - base;
                out.most_in_flight = out.most_in_flight.max(in_flight);
                if tick.is_multiple_of(10) {
                    out.most_connections = out.most_connections.max(connections_to(proxy.port()));
                }
                tick = tick.wrapping_add(1);
                std::thread::sleep(SAMPLE);
            }
            out.widest_second = per_second.values().max().copied().unwrap_or(0);
            out
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        (result, sampler.join().expect("the sampler"))
    })
}

#[derive(Debug, Default)]
struct Sampled {
    calls: usize,
    widest_second: usize,
    most_in_flight: usize,
    most_connections: usize,
}
