//! The credential cache, end to end. The daemon re-assumes each profile ahead of
//! `min_remaining` with nobody asking, so a served credential always has at least
//! `min_remaining` left; however many requests want a cold profile at once, STS sees one
//! AssumeRole for it; and when STS is down, cached credentials keep being served at once, a
//! profile with nothing cached fails fast with a clear error, and everything recovers by itself
//! when STS answers again. One test per behaviour: the cases (timing, jitter, backoff bounds, a
//! slow STS, region failover, the outage floor) are unit-tested on a simulated clock in the
//! daemon's `engine::tests`.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use credd_proto::{Request, Response};
use credd_tests::proxy::ProxyMode;
use credd_tests::stack::{
    ADMIN, AUDITOR, Access, STAGING_AND_AUDIT, Stack, Toml, assumed_role_arn,
};
use credd_tests::wait_until;

const WARM: Duration = Duration::from_secs(10);

// ---- Background refresh -------------------------------------------------------------------

/// 15 min credentials, of which only 5 s are servable: the daemon must refresh 1.9–3.75 s after
/// each issue (a lead of a quarter, 1.25 s, and with two profiles a jitter of up to 1.875 s,
/// half of what is left: `schedule::jitter_window`).
/// (The schedule's arithmetic, its jitter and what is served across a refresh are unit-tested
/// on a simulated clock in the daemon's `engine::tests`; this proves the real daemon does it.)
const SHORT_LIVED: Toml = Toml {
    top: "",
    daemon: "min_remaining = \"14m55s\"",
    access: "",
    profiles: r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
duration = "15m"

[profiles.prod-audit]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
via = "staging"
duration = "15m"
"#,
};

fn assume_calls_for(stack: &Stack, role_arn: &str) -> usize {
    stack
        .proxy()
        .params("AssumeRole")
        .iter()
        .filter(|p| p["RoleArn"] == role_arn)
        .count()
}

#[test]
fn background_refresh_keeps_every_profile_ahead_of_min_remaining() {
    let stack = Stack::start(Access::Key, SHORT_LIVED);
    let world = &stack.world;
    world.wait_profile_state("staging", "fresh", WARM);
    world.wait_profile_state("prod-audit", "fresh", WARM);
    let first = world.profile_status("staging");
    let first_audit = world.profile_status("prod-audit");
    let calls = assume_calls_for(&stack, ADMIN);
    assert_eq!(calls, 1, "warmed once");

    // From here on nobody asks for credentials: only the daemon's own schedule calls STS.
    let fresh_at = Instant::now();
    wait_until(
        Duration::from_secs(15),
        "a background refresh of staging",
        || assume_calls_for(&stack, ADMIN) > calls,
    );
    let first_interval = fresh_at.elapsed();
    // The proxy counts the call when it arrives; status follows once the answer is in.
    wait_until(WARM, "staging's last_refresh to advance", || {
        world.profile_status("staging")["last_refresh"].as_u64() > first["last_refresh"].as_u64()
    });
    let later = world.profile_status("staging");
    assert!(
        later["expires_at"].as_u64() > first["expires_at"].as_u64(),
        "expires_at advances: {first:#} then {later:#}"
    );
    assert_eq!(later["state"], "fresh", "{later:#}");
    // The chained profile keeps up too, signed by staging's newer credentials.
    wait_until(WARM, "a background refresh of prod-audit", || {
        world.profile_status("prod-audit")["last_refresh"].as_u64()
            > first_audit["last_refresh"].as_u64()
    });
    assert!(assume_calls_for(&stack, AUDITOR) >= 2);
    assert_eq!(
        stack.proxy().calls("GetSessionToken"),
        0,
        "a key without MFA has no session to renew"
    );

    eprintln!(
        "staging refresh interval with 15m credentials and min_remaining 14m55s: {first_interval:?}"
    );
    // Measured from when the test saw it fresh, a little after the issue: so at most the
    // schedule's 3.75 s (8 s on a busy machine), and not at once (a refresh loop takes
    // milliseconds), even when the test saw it fresh late.
    assert!(
        first_interval >= Duration::from_millis(500) && first_interval <= Duration::from_secs(8),
        "the refresh should come 1.9-3.75 s after issue, not after {first_interval:?}"
    );
}

// ---- Single flight ------------------------------------------------------------------------

/// What a burst of concurrent `Credentials` requests for a cold profile got.
struct Burst {
    /// The access key id of each request that got credentials.
    keys: Vec<String>,
    /// What each other request got (an error reply, or a connection closed without an answer).
    failures: Vec<String>,
    /// AssumeRole calls for the profile's role during the burst.
    assume_calls: usize,
}

/// Logs out, then logs in again with STS slowed down, and fires `size` concurrent requests for
/// `staging` once the session is back, while its first AssumeRole is still in flight.
fn burst_on_a_cold_profile(size: usize) -> Burst {
    let stack = Stack::start(
        Access::Key,
        Toml {
            profiles: r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
"#,
            ..Toml::default()
        },
    );
    let world = &stack.world;
    world.wait_profile_state("staging", "fresh", WARM);
    world.credd(&["logout"]).assert_success();
    world.wait_profile_state("staging", "cold", WARM);

    stack
        .proxy()
        .set_mode(ProxyMode::Delay(Duration::from_millis(300)));
    let before = assume_calls_for(&stack, ADMIN);
    std::thread::scope(|scope| {
        let login = scope.spawn(|| world.credd(&["login"]));
        stack.wait_logged_in(WARM);

        let barrier = Arc::new(Barrier::new(size));
        let requests: Vec<_> = (0..size)
            .map(|_| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    world.request(&Request::Credentials {
                        profile: Some("staging".into()),
                    })
                })
            })
            .collect();
        let mut burst = Burst {
            keys: Vec::new(),
            failures: Vec::new(),
            assume_calls: 0,
        };
        for request in requests {
            match request.join().expect("request thread") {
                Ok(Response::Credentials(c)) => burst.keys.push(c.access_key_id),
                other => burst.failures.push(format!("{other:?}")),
            }
        }
        login.join().expect("login thread").assert_success();
        burst.assume_calls = assume_calls_for(&stack, ADMIN) - before;
        burst
    })
}

#[test]
fn a_burst_of_300_concurrent_requests_on_a_cold_profile_is_answered_with_one_sts_call() {
    let burst = burst_on_a_cold_profile(300);
    assert_eq!(burst.assume_calls, 1, "one AssumeRole for the whole burst");
    assert!(
        burst.failures.is_empty(),
        "{} of 300 requests got no credentials, e.g. {:?}",
        burst.failures.len(),
        burst.failures.first()
    );
    assert_eq!(burst.keys.len(), 300);
    let mut keys = burst.keys.clone();
    keys.dedup();
    assert_eq!(keys.len(), 1, "every request got the same credentials");
}

// ---- STS down, slow, or down in one region -------------------------------------------------

/// A request answered from cache never stalls (that it did not wait for STS shows in the keys:
/// the cached ones, while STS is down); the latency figures are `credd-bench`'s.
const FROM_CACHE: Duration = credd_tests::STALL;
/// A request that cannot be answered fails without a stall (the engine's own wait, 400 ms, and
/// the client's start included).
const FAST_FAILURE: Duration = credd_tests::STALL;
/// Backoff after a few failures is a few seconds; recovery must not take much longer.
const RECOVERY: Duration = Duration::from_secs(20);

/// [`STAGING_AND_AUDIT`] plus `ops`, a profile added later by a reload, so that it is cold.
const WITH_OPS: &str = r#"
[profiles.ops]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
session_name = "ops"
"#;

fn ops_calls(stack: &Stack) -> usize {
    stack
        .proxy()
        .params("AssumeRole")
        .iter()
        .filter(|p| p["RoleSessionName"] == "ops")
        .count()
}

/// `(failures in a row, retry delay in ms)` of each failed refresh of `profile` the daemon
/// logged, oldest first.
fn backoffs_of(log: &str, profile: &str) -> Vec<(u64, u64)> {
    let field = |line: &str, name: &str| -> Option<u64> {
        let (_, rest) = line.split_once(name)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    log.lines()
        .filter(|line| {
            line.contains(&format!("name={profile}}}")) && line.contains("refresh failed")
        })
        .filter_map(|line| Some((field(line, " failures=")?, field(line, " retry_in_ms=")?)))
        .collect()
}

/// Starts with `staging` and `prod-audit` warm.
fn warm_stack() -> Stack {
    let stack = Stack::staging_and_audit(Access::Key);
    stack.world.wait_profile_state("staging", "fresh", WARM);
    stack.world.wait_profile_state("prod-audit", "fresh", WARM);
    stack
}

/// Adds the `ops` profile and applies it now.
fn add_ops_profile(stack: &Stack) {
    stack.write_config(Toml {
        profiles: &format!("{STAGING_AND_AUDIT}{WITH_OPS}"),
        ..Toml::default()
    });
    stack.world.credd(&["reload"]).assert_success();
}

/// Each cached profile is served by `credential-process`, and the daemon answers each of ten
/// more requests from cache, none stalled (timed on the socket: the daemon, not process start).
#[track_caller]
fn cached_profiles_are_served_fast(stack: &Stack) {
    for profile in ["staging", "prod-audit"] {
        let cached = stack
            .world
            .credential_process(profile)
            .unwrap_or_else(|out| panic!("{profile} from cache: {out}"));
        for _ in 0..10 {
            let start = Instant::now();
            let response = stack.world.request(&Request::Credentials {
                profile: Some(profile.into()),
            });
            let took = start.elapsed();
            match response {
                Ok(Response::Credentials(c)) => assert_eq!(
                    c.access_key_id, cached.keys.access_key_id,
                    "{profile} comes from the cache"
                ),
                other => panic!("{profile} not served: {other:?}"),
            }
            assert!(took < FROM_CACHE, "{profile} took {took:?}");
        }
    }
}

/// A request for the cold `ops` profile fails fast, saying the work goes on.
#[track_caller]
fn cold_profile_fails_fast_with_a_clear_error(stack: &Stack) {
    let start = Instant::now();
    let out = stack
        .world
        .credential_process("ops")
        .expect_err("nothing to serve for ops yet");
    assert!(
        start.elapsed() < FAST_FAILURE,
        "took {:?}: {out}",
        start.elapsed()
    );
    out.assert_code(1);
    assert!(
        out.stderr.contains("ops") && out.stderr.contains("retrying"),
        "the error must name the profile and say it is being retried: {out}"
    );
}

#[test]
fn sts_outage_keeps_serving_cached_credentials_and_a_cold_profile_recovers_by_itself() {
    let stack = warm_stack();
    stack.proxy().set_mode(ProxyMode::Down);
    cached_profiles_are_served_fast(&stack);

    add_ops_profile(&stack);
    cold_profile_fails_fast_with_a_clear_error(&stack);
    wait_until(WARM, "ops to be failing with the STS error", || {
        let ops = stack.world.profile_status("ops");
        ops["state"] == "failing"
            && ops["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("ServiceUnavailable"))
    });
    let ops = stack.world.profile_status("ops");
    assert!(
        ops["next_refresh"].is_u64(),
        "status shows when the next retry is: {ops:#}"
    );
    let text = stack.world.credd(&["status"]);
    text.assert_success();
    assert!(
        text.stdout.contains("failing") && text.stdout.contains("last error: STS"),
        "status shows the failing profile and why: {text}"
    );

    // Backing off, exponentially with jitter: after the n-th failure in a row, the next try
    // comes after 2^(n-1) s, half of it random (the daemon logs each delay).
    wait_until(WARM, "two failed refreshes of ops", || {
        backoffs_of(&stack.world.daemon_log(), "ops").len() >= 2
    });
    let backoffs = backoffs_of(&stack.world.daemon_log(), "ops");
    for (failures, delay_ms) in &backoffs {
        let full = 1000u64 << (failures - 1).min(20);
        assert!(
            (full / 2..=full).contains(delay_ms),
            "after {failures} failures the retry comes in {delay_ms} ms: {backoffs:?}"
        );
    }
    assert!(
        ops_calls(&stack) <= 2 * (backoffs.len() + 1),
        "{} AssumeRole calls for {} failed refreshes (the SDK retries once)",
        ops_calls(&stack),
        backoffs.len()
    );
    for profile in ["staging", "prod-audit"] {
        assert_eq!(stack.world.profile_status(profile)["state"], "fresh");
    }

    stack.proxy().set_mode(ProxyMode::Pass);
    stack.world.wait_profile_state("ops", "fresh", RECOVERY);
    assert_eq!(
        stack.served_identity("ops"),
        Ok(assumed_role_arn(ADMIN, "ops")),
        "ops recovered"
    );
    assert_eq!(
        stack.world.profile_status("ops")["last_error"],
        serde_json::Value::Null
    );
}

#[test]
fn daemon_started_during_an_sts_outage_logs_in_by_itself_once_sts_returns() {
    let mut stack = Stack::new(Access::Key);
    stack.write_config(Toml {
        profiles: STAGING_AND_AUDIT,
        ..Toml::default()
    });
    stack.proxy().set_mode(ProxyMode::Down);
    stack.world.start_daemon();
    wait_until(WARM, "the first login attempt to fail", || {
        stack.proxy().calls("GetCallerIdentity") >= 1
            && stack.world.status()["access"]["last_error"].is_string()
    });
    let start = Instant::now();
    let out = stack
        .world
        .credential_process("staging")
        .expect_err("nothing to serve while STS is down");
    assert!(start.elapsed() < FAST_FAILURE, "{out}");

    stack.proxy().set_mode(ProxyMode::Pass);
    stack.world.wait_profile_state("staging", "fresh", RECOVERY);
    stack
        .world
        .credential_process("staging")
        .expect("served once STS is back, without anyone running `credd login`");
}
