//! Real SDK clients pointed at the daemon's container-credentials routes get the right role from
//! moto with auth on: the AWS SDK for Rust (`aws-config`) and boto3, on the current route and on
//! pinned ones, and across a `credd switch`.

use std::time::{Duration, Instant};

use crate::http_support::{DEPLOY_ARN, STAGING_ARN, STAGING_REGION, pairs, served, served_with};
use credd_tests::http::parse_utc;
use credd_tests::sdk::Boto3Follower;
use credd_tests::stack::now_unix;
use credd_tests::wait_until;

/// What the switch scenario configures: the current route advertises at most 10 minutes.
const FOLLOW_WINDOW_SECS: u64 = 600;

#[test]
fn rust_sdk_and_boto3_get_the_current_and_the_pinned_role_through_the_container_route() {
    let served = served("");
    let current = served.container_env("/v1/credentials", STAGING_REGION);
    let pinned = served.container_env("/v1/credentials/deploy", STAGING_REGION);

    let rust = served
        .rust_sdk(&pairs(&current), &["container"])
        .unwrap_or_else(|out| panic!("aws-config on the current route: {out}"));
    assert_eq!(rust["arn"], STAGING_ARN);
    let rust = served
        .rust_sdk(&pairs(&pinned), &["container"])
        .unwrap_or_else(|out| panic!("aws-config on the pinned route: {out}"));
    assert_eq!(rust["arn"], DEPLOY_ARN);
    // The whole default chain, from the environment alone, lands on the container route too.
    let rust = served
        .rust_sdk(&pairs(&pinned), &["default"])
        .unwrap_or_else(|out| panic!("aws-config's default chain: {out}"));
    assert_eq!(rust["arn"], DEPLOY_ARN);

    let boto3 = served
        .boto3(&pairs(&current))
        .unwrap_or_else(|out| panic!("boto3 on the current route: {out}"));
    assert_eq!(boto3["arn"], STAGING_ARN);
    assert_eq!(boto3["method"], "container-role");
    let boto3 = served
        .boto3(&pairs(&pinned))
        .unwrap_or_else(|out| panic!("boto3 on the pinned route: {out}"));
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    assert_eq!(boto3["method"], "container-role");
}

#[test]
fn a_container_credentials_answer_has_every_field_sdks_require() {
    let served = served("");
    let reply = served.get_authorized("/v1/credentials/staging");
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    for field in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(
            body[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} missing: {reply}"
        );
    }
    assert_eq!(body["AccountId"], "222222222222");
    let expiration = body["Expiration"].as_str().unwrap_or_default();
    let at = parse_utc(expiration)
        .unwrap_or_else(|| panic!("Expiration {expiration:?} is not YYYY-MM-DDTHH:MM:SSZ"));
    // The default min_remaining is 30 minutes: never serve less.
    assert!(at >= now_unix() + 30 * 60, "only {}s left", at - now_unix());
    // The credentials are real: moto (auth on) accepts them as the Administrator role.
    let arn = served.moto().caller_arn(
        body["AccessKeyId"].as_str().unwrap_or_default(),
        body["SecretAccessKey"].as_str().unwrap_or_default(),
        body["Token"].as_str(),
    );
    assert_eq!(arn.as_deref(), Ok(STAGING_ARN));
}

#[test]
fn after_a_switch_new_processes_get_the_new_role_at_once_and_pinned_routes_keep_theirs() {
    let served = served("min_remaining = \"5m\"\nfollow_window = \"10m\"");
    let current = served.container_env("/v1/credentials", STAGING_REGION);
    let pinned_staging = served.container_env("/v1/credentials/staging", STAGING_REGION);
    let mut follower = Boto3Follower::start(&served.world, &pairs(&current));
    assert_eq!(follower.caller_arn(), STAGING_ARN);

    served.world.credd(&["switch", "deploy"]).assert_success();

    // New processes on the current route: the other role, at once.
    let boto3 = served
        .boto3(&pairs(&current))
        .expect("boto3 after the switch");
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    let rust = served
        .rust_sdk(&pairs(&current), &["container"])
        .unwrap_or_else(|out| panic!("aws-config after the switch: {out}"));
    assert_eq!(rust["arn"], DEPLOY_ARN);
    // The SDK itself sees the follow window, not the real expiry.
    let rust_expiry = rust["expiration"].as_u64().expect("an expiry");
    assert!(rust_expiry <= now_unix() + FOLLOW_WINDOW_SECS + 1, "{rust}");

    // A pinned route never changes identity.
    let boto3 = served.boto3(&pairs(&pinned_staging)).expect("boto3 pinned");
    assert_eq!(boto3["arn"], STAGING_ARN);
    let rust = served
        .rust_sdk(&pairs(&pinned_staging), &["container"])
        .unwrap_or_else(|out| panic!("aws-config pinned: {out}"));
    assert_eq!(rust["arn"], STAGING_ARN);

    // An already-running boto3 process follows: with under 15 minutes advertised, botocore
    // refreshes on its next call.
    let switched = Instant::now();
    let mut calls = 0;
    wait_until(
        Duration::from_secs(20),
        "the running boto3 to follow",
        || {
            calls += 1;
            follower.caller_arn() == DEPLOY_ARN
        },
    );
    eprintln!(
        "a running boto3 process followed the switch after {calls} call(s), {:?}",
        switched.elapsed()
    );
}

#[test]
fn the_current_route_advertises_at_most_the_follow_window_and_pinned_routes_the_real_expiry() {
    let served = served("min_remaining = \"5m\"\nfollow_window = \"10m\"");
    let status = served.world.status();
    let real_expiry = |name: &str| {
        status["profiles"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .and_then(|p| p["expires_at"].as_u64())
            .unwrap_or_else(|| panic!("no expires_at for {name} in {status:#}"))
    };
    let expiration_of = |path: &str| {
        let reply = served.get_authorized(path);
        assert_eq!(reply.status, 200, "{reply}");
        let body = reply.json();
        let text = body["Expiration"].as_str().unwrap_or_default().to_owned();
        let at = parse_utc(&text).unwrap_or_else(|| panic!("bad Expiration: {reply}"));
        (
            at,
            body["AccessKeyId"].as_str().unwrap_or_default().to_owned(),
        )
    };

    let before = now_unix();
    let (current, current_key) = expiration_of("/v1/credentials");
    let after = now_unix();
    assert!(
        current >= before + FOLLOW_WINDOW_SECS && current <= after + FOLLOW_WINDOW_SECS,
        "current route Expiration {current} is not now + 10 min ({before}..{after})"
    );
    assert!(current < real_expiry("staging"));

    let (pinned, pinned_key) = expiration_of("/v1/credentials/staging");
    assert_eq!(
        pinned,
        real_expiry("staging"),
        "the pinned route serves the real expiry"
    );
    assert!(pinned > after + FOLLOW_WINDOW_SECS);
    assert_eq!(
        current_key, pinned_key,
        "the same credentials, only the expiry differs"
    );

    served.world.credd(&["switch", "deploy"]).assert_success();
    let (current, current_key) = expiration_of("/v1/credentials");
    assert!(current <= now_unix() + FOLLOW_WINDOW_SECS);
    let (pinned, pinned_key) = expiration_of("/v1/credentials/deploy");
    assert_eq!(pinned, real_expiry("deploy"));
    assert_eq!(
        current_key, pinned_key,
        "the current route now serves deploy"
    );
}

#[test]
fn the_current_route_never_advertises_later_than_the_real_expiry() {
    // 15-minute credentials and a 1-hour follow window: the real expiry is the sooner one.
    let served = served_with(
        "min_remaining = \"5m\"\nfollow_window = \"1h\"",
        "duration = \"15m\"",
    );
    let status = served.world.status();
    let real = status["profiles"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "staging"))
        .and_then(|p| p["expires_at"].as_u64())
        .unwrap_or_else(|| panic!("no expires_at for staging: {status:#}"));
    assert!(
        real <= now_unix() + 15 * 60,
        "moto honoured DurationSeconds: {status:#}"
    );
    for path in ["/v1/credentials", "/v1/credentials/staging"] {
        let reply = served.get_authorized(path);
        assert_eq!(reply.status, 200, "{reply}");
        let expiration = parse_utc(reply.json()["Expiration"].as_str().unwrap_or_default());
        assert_eq!(expiration, Some(real), "{path}: {reply}");
    }
}
