//! Many profiles against moto with authentication on: every one becomes fresh with one AssumeRole
//! each, never more than a few calls in flight to STS, and `credd status` sums them up past a
//! screenful (`--all` lists every one). The figures for 500 are `credd-scale-bench`'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use credd_tests::moto::SeedSpec;
use credd_tests::stack::{Stack, Toml};
use credd_tests::wait_until;

const DIRECT: usize = 60;
const CHAINED: usize = 20;
const ACCOUNTS: usize = 10;
/// The daemon's calls in flight per Region (`credd_daemon::sts::gate::IN_FLIGHT`).
const IN_FLIGHT: usize = 4;

fn direct_role(i: usize) -> String {
    format!(
        "arn:aws:iam::{:012}:role/ScaleD{i}",
        222_222_220_000u64 + (i % ACCOUNTS) as u64
    )
}

fn chained_role(i: usize) -> String {
    format!(
        "arn:aws:iam::{:012}:role/ScaleC{i}",
        333_333_330_000u64 + (i % ACCOUNTS) as u64
    )
}

fn seed(spec: SeedSpec) -> SeedSpec {
    let spec = (0..DIRECT).fold(spec, |s, i| s.role(&direct_role(i)));
    (0..CHAINED).fold(spec, |s, i| s.role(&chained_role(i)))
}

fn profiles() -> String {
    let direct = (0..DIRECT).map(|i| {
        format!(
            "[profiles.d{i:02}]\nrole_arn = \"{}\"\nregion = \"us-east-1\"\n",
            direct_role(i)
        )
    });
    let chained = (0..CHAINED).map(|i| {
        format!(
            "[profiles.c{i:02}]\nrole_arn = \"{}\"\nvia = \"d{:02}\"\n",
            chained_role(i),
            i % DIRECT
        )
    });
    direct.chain(chained).collect()
}

#[test]
fn eighty_profiles_become_fresh_with_one_call_each_a_few_at_a_time_and_status_sums_them_up() {
    let total = DIRECT + CHAINED;
    let profiles = profiles();
    // Started with none, then all at once by a reload: the sampler below sees every call.
    let stack = Stack::builder().seed(seed).start();
    stack.wait_logged_in(Duration::from_secs(20));
    let proxy = stack.proxy();
    let done = AtomicBool::new(false);
    let most_in_flight = std::thread::scope(|scope| {
        // What the proxy has forwarded to moto and not yet answered, looked at all along.
        let sampler = scope.spawn(|| {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                let in_flight = proxy
                    .forwarded("AssumeRole")
                    .saturating_sub(proxy.answered("AssumeRole"));
                most = most.max(in_flight);
                std::thread::sleep(Duration::from_millis(2));
            }
            most
        });
        stack.write_config(Toml {
            top: "default_profile = \"d00\"",
            profiles: &profiles,
            ..Toml::default()
        });
        stack.world.credd(&["reload"]).assert_success();
        wait_until(Duration::from_secs(120), "every profile fresh", || {
            let status = stack.world.status();
            status["profiles"]
                .as_array()
                .is_some_and(|all| all.len() == total && all.iter().all(|p| p["state"] == "fresh"))
        });
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("the sampler")
    });
    assert!(
        most_in_flight <= IN_FLIGHT,
        "{most_in_flight} AssumeRole calls in flight at once"
    );

    let params = proxy.params("AssumeRole");
    let mut arns: Vec<&str> = params.iter().map(|p| p["RoleArn"].as_str()).collect();
    arns.sort_unstable();
    let asked = arns.len();
    arns.dedup();
    assert_eq!(arns.len(), total, "every profile assumed");
    assert_eq!(asked, total, "none assumed twice");

    // Past a screenful: a count per state and the current profile, every one with --all.
    let out = stack.world.credd(&["status"]);
    let text = &out.assert_success().stdout;
    assert!(
        text.contains("profiles: 80 (80 fresh); `credd status --all` lists every one\n"),
        "{text}"
    );
    assert_eq!(text.matches("  fresh  ").count(), 1, "{text}");
    assert!(text.contains("  * d00  "), "the current profile: {text}");
    let all = stack.world.credd(&["status", "--all"]);
    let all = &all.assert_success().stdout;
    assert_eq!(all.matches("  fresh  ").count(), total, "{all}");
}
