//! How long each SDK's running process takes to follow `credd switch`: a [`Follower`] per SDK and
//! route calls GetCallerIdentity every second; once every one has answered the old identity, the
//! switch; then the seconds until each answers the new one. The `sdk_pickup` e2e test runs it at
//! a short window, `credd-pickup-bench` at the windows of the README's table.
//!
//! The switch comes right after every follower's first fetch: the worst case, the SDK holding
//! credentials just served with the whole window ahead.

use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use super::{Follower, Sdk};
use crate::stack::Stack;

/// Where a follower gets its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/credentials` (the current profile), as `credd env` sets it up.
    Container,
    /// IMDSv2 (`imds = true`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
    Imds,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Container => "container",
            Route::Imds => "IMDS",
        }
    }

    /// What a program needs in its environment for this route, in `region`.
    pub fn env(self, served: &Stack, region: &str) -> Vec<(String, String)> {
        match self {
            Route::Container => served.container_env("/v1/credentials", region),
            Route::Imds => served.imds_env(region),
        }
    }
}

/// One follower's result.
#[derive(Debug)]
pub struct Pickup {
    pub sdk: Sdk,
    pub route: Route,
    /// From the switch to the start of the first call that answered the new identity; None when
    /// none did before the deadline.
    pub after: Option<Duration>,
    /// The expiry its SDK held before the switch, in seconds from its first call (None: not told).
    pub expiry_in: Option<i64>,
    /// Calls after the switch.
    pub calls: usize,
    /// Failed calls after the switch, and the first failure.
    pub errors: usize,
    pub first_error: Option<String>,
    /// Lines of its stderr that carry `WARN` (the Java SDK's logger).
    pub warnings: usize,
    /// Its stderr, last 20 lines, for a failure's message.
    pub stderr_tail: String,
}

/// What [`measure`] compares against.
pub struct Switch<'a> {
    /// The profile to switch to.
    pub to: &'a str,
    /// Who the followers are before and after the switch.
    pub before: &'a str,
    pub after: &'a str,
}

/// Starts a follower for each of `cases` in `served`'s world, checks each answers
/// `switch.before`, switches, and calls each every `interval` until it answers `switch.after`
/// or its `deadline(sdk, route)` (from the switch) has passed.
pub fn measure(
    served: &Stack,
    region: &str,
    cases: &[(Sdk, Route)],
    switch: &Switch<'_>,
    interval: Duration,
    deadline: &(dyn Fn(Sdk, Route) -> Duration + Sync),
) -> Vec<Pickup> {
    for (sdk, _) in cases {
        sdk.ensure_installed();
    }
    let switched: OnceLock<Instant> = OnceLock::new();
    let ready = Barrier::new(cases.len() + 1);
    std::thread::scope(|scope| {
        let followers: Vec<_> = cases
            .iter()
            .map(|&(sdk, route)| {
                let (switched, ready) = (&switched, &ready);
                scope.spawn(move || {
                    let env = route.env(served, region);
                    let env: Vec<(&str, &str)> =
                        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    // Every thread reaches the barrier, a failed start included: the others
                    // and the switch wait on it.
                    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut follower = Follower::start(&served.world, sdk, &env);
                        let at = std::time::SystemTime::now();
                        let first = follower.call();
                        (follower, at, first)
                    }));
                    ready.wait();
                    let (follower, first_call, first) =
                        started.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    assert_eq!(
                        first["arn"],
                        switch.before,
                        "{} on the {} route before the switch: {first}\n{}",
                        sdk.name(),
                        route.name(),
                        follower.stderr()
                    );
                    let expiry_in = first["expiry"].as_i64().map(|at| {
                        at - first_call
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64)
                    });
                    // The switch follows the barrier at once; wait until it is done.
                    while switched.get().is_none() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let switched = *switched.get().expect("the switch is done");
                    let deadline = deadline(sdk, route);
                    follow(
                        follower, route, switch, switched, interval, deadline, expiry_in,
                    )
                })
            })
            .collect();
        ready.wait();
        let switching = served.world.credd(&["switch", switch.to]);
        let _ = switched.set(Instant::now());
        switching.assert_success();
        followers
            .into_iter()
            .map(|f| match f.join() {
                Ok(pickup) => pickup,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

fn follow(
    mut follower: Follower,
    route: Route,
    switch: &Switch<'_>,
    switched: Instant,
    interval: Duration,
    deadline: Duration,
    expiry_in: Option<i64>,
) -> Pickup {
    let mut pickup = Pickup {
        sdk: follower.sdk,
        route,
        after: None,
        expiry_in,
        calls: 0,
        errors: 0,
        first_error: None,
        warnings: 0,
        stderr_tail: String::new(),
    };
    let mut next = switched;
    while next.duration_since(switched) <= deadline {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let started = Instant::now();
        let answer = follower.call();
        pickup.calls += 1;
        if answer["arn"] == switch.after {
            pickup.after = Some(started - switched);
            break;
        }
        if answer["arn"] != switch.before {
            pickup.errors += 1;
            pickup.first_error.get_or_insert_with(|| answer.to_string());
        }
        next += interval;
        // A slow call (a JVM's refresh) does not make the next ones bunch up.
        while next < Instant::now() {
            next += interval;
        }
    }
    let stderr = follower.stderr();
    pickup.warnings = stderr.lines().filter(|l| l.contains("WARN")).count();
    let lines: Vec<&str> = stderr.lines().collect();
    pickup.stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n");
    pickup
}
