//! A running process of every SDK follows `credd switch` (boto3, the AWS CLI, JavaScript v3,
//! Go v2, Java v2, Rust; the container route and IMDS), all at once at the smallest
//! `follow_window`: each must answer the new role by the time its own rule makes it fetch again
//! (so many minutes before the advertised expiry, at the latest at it), plus slack for a loaded
//! machine. The figures (at this and the default window) are `credd-pickup-bench`'s, in the
//! README's "Serving SDKs".

use std::time::Duration;

use crate::http_support::{DEPLOY_ARN, STAGING_ARN, STAGING_REGION};
use crate::sdk_clients::served;
use credd_tests::sdk::Sdk;
use credd_tests::sdk::pickup::{Route, Switch, measure};

/// The smallest window the config takes (`LEAST_WINDOW`): no SDK warns at it.
const WINDOW: &str = "2m";
const WINDOW_LENGTH: Duration = Duration::from_secs(120);
/// Past each SDK's bound: a call every second, a JVM's refresh on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(30);
/// botocore through IMDS is only watched for this long (see [`ahead`]).
const WATCHED: Duration = Duration::from_secs(10);

/// How long before the advertised expiry each SDK fetches again, from its source (and what
/// `credd-pickup-bench` measures); None where it does not follow within the window.
fn ahead(sdk: Sdk, route: Route) -> Option<Duration> {
    let minutes = |m: u64| Some(Duration::from_secs(m * 60));
    match (sdk, route) {
        // botocore extends IMDS credentials with under ~25 min left to 15 + 5–10 min and
        // fetches again 5–10 min later, whatever the window (the daemon warns about such a
        // window).
        (Sdk::Boto3, Route::Imds) => None,
        // botocore's mandatory refresh.
        (Sdk::Boto3, Route::Container) => minutes(10),
        // A new process per command.
        (Sdk::AwsCli, _) => minutes(24 * 60),
        (Sdk::Js, _) | (Sdk::Go, Route::Container) => minutes(5),
        // A prefetch at a random 2–15 minutes before (CachedSupplier's jitter).
        (Sdk::Java, Route::Container) => minutes(2),
        (Sdk::Go | Sdk::Java, Route::Imds) | (Sdk::Rust, _) => minutes(0),
    }
}

pub fn every_sdk_follows_a_switch_within_the_follow_window_on_both_routes() {
    let served = served(&format!(
        "imds = true\nmin_remaining = \"{WINDOW}\"\nfollow_window = \"{WINDOW}\""
    ));
    let cases: Vec<(Sdk, Route)> = [Route::Container, Route::Imds]
        .into_iter()
        .flat_map(|route| Sdk::ALL.map(|sdk| (sdk, route)))
        .collect();
    let bound = |sdk, route| {
        ahead(sdk, route).map_or(WATCHED, |ahead| WINDOW_LENGTH.saturating_sub(ahead) + SLACK)
    };
    let results = measure(
        &served,
        STAGING_REGION,
        &cases,
        &Switch {
            to: "deploy",
            before: STAGING_ARN,
            after: DEPLOY_ARN,
        },
        Duration::from_secs(1),
        &bound,
    );
    for p in &results {
        eprintln!(
            "{} on the {} route: followed after {:?} ({} calls, expiry held {:?} s ahead, \
             {} WARN lines)",
            p.sdk.name(),
            p.route.name(),
            p.after,
            p.calls,
            p.expiry_in,
            p.warnings
        );
    }
    for p in &results {
        let what = format!("{} on the {} route", p.sdk.name(), p.route.name());
        if ahead(p.sdk, p.route).is_some() {
            assert!(
                p.after.is_some(),
                "{what} did not follow the switch within {:?}: {p:?}",
                bound(p.sdk, p.route)
            );
        }
        assert_eq!(p.errors, 0, "{what}: every call answered: {p:?}");
        assert_eq!(p.warnings, 0, "{what} logged warnings: {}", p.stderr_tail);
    }
}
