//! `credd-pickup-bench [WINDOW...]`: how long a running process of each SDK (boto3, the AWS CLI,
//! JavaScript v3, Go v2, Java v2, Rust) takes to follow `credd switch`, through the container
//! route and IMDS, at each `follow_window` given (default `2m 30m`; `min_remaining` is set to the
//! same). One follower per SDK and route calls STS GetCallerIdentity every second (moto, auth
//! on); the switch comes right after every follower's first fetch (the worst case); the table
//! says the seconds until each answered the new role, the expiry its SDK held, and the WARN lines
//! it logged (the Java SDK's). Each window runs up to the window plus 3 minutes.
//!
//! `cargo build --workspace --bins && target/debug/credd-pickup-bench 2m 5m 30m` (timing here is
//! the SDKs', not credd's: the debug build does).

use std::time::Duration;

use credd_tests::sdk::Sdk;
use credd_tests::sdk::pickup::{Pickup, Route, Switch, measure};
use credd_tests::stack::{ADMIN, DEPLOY, READY_DEADLINE, Stack, Toml};

const STAGING_ARN: &str = "arn:aws:sts::222222222222:assumed-role/Administrator/alice";
const DEPLOY_ARN: &str = "arn:aws:sts::333333333333:assumed-role/Deploy/alice";

fn main() {
    let windows: Vec<String> = std::env::args().skip(1).collect();
    let windows = if windows.is_empty() {
        vec!["2m".to_owned(), "30m".to_owned()]
    } else {
        windows
    };
    for window in &windows {
        let seconds = humantime::parse_duration(window)
            .unwrap_or_else(|e| panic!("{window:?} is not a duration (e.g. 1m, 30m): {e}"));
        run(window, seconds);
    }
}

fn run(window: &str, length: Duration) {
    let daemon = format!("imds = true\nmin_remaining = \"{window}\"\nfollow_window = \"{window}\"");
    let profiles = format!(
        "[profiles.staging]\nrole_arn = \"{ADMIN}\"\nregion = \"us-east-1\"\n\n\
         [profiles.deploy]\nrole_arn = \"{DEPLOY}\"\nregion = \"us-east-1\"\n"
    );
    let served = Stack::builder()
        .direct()
        .toml(Toml {
            top: "default_profile = \"staging\"",
            daemon: &daemon,
            profiles: &profiles,
            ..Toml::default()
        })
        .start();
    served.wait_all_fresh(READY_DEADLINE);
    let cases: Vec<(Sdk, Route)> = [Route::Container, Route::Imds]
        .into_iter()
        .flat_map(|route| Sdk::ALL.map(|sdk| (sdk, route)))
        .collect();
    eprintln!(
        "follow_window = {window}: {} followers, up to {:?}",
        cases.len(),
        length + Duration::from_secs(180)
    );
    let results = measure(
        &served,
        "us-east-1",
        &cases,
        &Switch {
            to: "deploy",
            before: STAGING_ARN,
            after: DEPLOY_ARN,
        },
        Duration::from_secs(1),
        &|_, _| length + Duration::from_secs(180),
    );
    print_table(window, &results);
}

fn print_table(window: &str, results: &[Pickup]) {
    println!("\nfollow_window = {window}");
    println!(
        "{:<14} {:<10} {:>10} {:>10} {:>6} {:>7} {:>9}",
        "SDK", "route", "picked up", "expiry in", "calls", "errors", "WARN lines"
    );
    for p in results {
        let after = p
            .after
            .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let expiry = p.expiry_in.map_or("-".to_owned(), |s| format!("{s} s"));
        println!(
            "{:<14} {:<10} {:>10} {:>10} {:>6} {:>7} {:>9}",
            p.sdk.name(),
            p.route.name(),
            after,
            expiry,
            p.calls,
            p.errors,
            p.warnings
        );
        if let Some(e) = &p.first_error {
            println!("    first error: {e}");
        }
    }
    for p in results.iter().filter(|p| p.warnings > 0) {
        let first = p
            .stderr_tail
            .lines()
            .find(|l| l.contains("WARN"))
            .unwrap_or_default();
        println!("{} {} logs: {first}", p.sdk.name(), p.route.name());
    }
}
