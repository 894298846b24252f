//! Tests of the test harness itself: moto and its seeding, the fault-injecting STS proxy, and the
//! parts of the temp world that need no credd binary (paths, scrubbed environment, cleanup).
//! Run with `cargo test -p credd-tests --test e2e -- harness::`; the first run installs moto
//! (~1 min).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use credd_tests::bins::{client_bin, daemon_bin};
use credd_tests::moto::{Auth, AwsKeys, Moto, SeedSpec, sts_assume_role, sts_caller_arn};
use credd_tests::proxy::{ProxyMode, StsProxy};
use credd_tests::wait_until;
use credd_tests::world::World;

const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";
/// A role with a path. Role names are unique per account whatever the path, and roles are
/// shared by the tests of a server: this name is used nowhere else.
const AUDITOR: &str = "arn:aws:iam::333333333333:role/team/TeamAuditor";

/// The shared auth-on moto with alice (MFA) in an account of her own and two roles in other
/// accounts; alice's key and ARN.
fn seeded_moto() -> (&'static Moto, AwsKeys, String) {
    let moto = Moto::shared(Auth::On);
    let seeded = moto.seed(
        &SeedSpec::new()
            .user_with_mfa("alice")
            .role(ADMIN)
            .role(AUDITOR),
    );
    let alice = seeded.user("alice");
    (moto, alice.keys(), alice.arn.clone())
}

#[test]
fn seeded_user_assumes_a_role_in_another_account_and_chains_with_auth_on() {
    let moto = Moto::shared(Auth::On);
    let seeded = moto.seed(
        &SeedSpec::new()
            .user_with_mfa("alice")
            .user("bob")
            .role(ADMIN)
            .role(AUDITOR),
    );
    let account = &seeded.account;
    let alice = seeded.user("alice");
    assert_eq!(alice.arn, format!("arn:aws:iam::{account}:user/alice"));
    assert_eq!(
        alice.mfa_serial,
        Some(format!("arn:aws:iam::{account}:mfa/alice"))
    );
    assert_eq!(seeded.user("bob").mfa_serial, None);

    let arn = moto.caller_arn(&alice.access_key_id, &alice.secret_access_key, None);
    assert_eq!(arn, Ok(alice.arn.clone()));

    let endpoint = moto.endpoint();
    let admin = sts_assume_role(&endpoint, "us-east-1", &alice.keys(), ADMIN, "alice-admin")
        .expect("alice assumes the Administrator role");
    let arn = moto.caller_arn(
        &admin.access_key_id,
        &admin.secret_access_key,
        admin.session_token.as_deref(),
    );
    assert_eq!(
        arn.as_deref(),
        Ok("arn:aws:sts::222222222222:assumed-role/Administrator/alice-admin")
    );

    let auditor = sts_assume_role(&endpoint, "us-east-1", &admin, AUDITOR, "chained")
        .expect("the Administrator session assumes the Auditor role (a role path) by chaining");
    assert_eq!(
        sts_caller_arn(&endpoint, "us-east-1", &auditor).as_deref(),
        Ok("arn:aws:sts::333333333333:assumed-role/TeamAuditor/chained")
    );
}

#[test]
fn each_seed_gets_an_account_of_its_own_so_tests_can_share_a_server_and_user_names() {
    for auth in [Auth::On, Auth::Off] {
        let moto = Moto::shared(auth);
        let first = moto.seed(&SeedSpec::new().user_with_mfa("alice").role(ADMIN));
        let second = moto.seed(&SeedSpec::new().user_with_mfa("alice").role(ADMIN));
        assert_ne!(first.account, second.account, "{auth:?}");
        for seeded in [&first, &second] {
            let alice = seeded.user("alice");
            assert_eq!(
                moto.caller_arn(&alice.access_key_id, &alice.secret_access_key, None),
                Ok(format!("arn:aws:iam::{}:user/alice", seeded.account)),
                "{auth:?}: each alice's key is her own"
            );
        }
    }
}

#[test]
fn the_shared_moto_without_auth_accepts_anything_and_the_one_with_auth_does_not() {
    let made_up = AwsKeys {
        access_key_id: "AKIAMADEUPMADEUP0001".into(),
        secret_access_key: "made-up".into(),
        session_token: None,
    };
    let off = Moto::shared(Auth::Off).endpoint();
    sts_assume_role(
        &off,
        "us-east-1",
        &made_up,
        "arn:aws:iam::444444444444:role/Nobody",
        "s",
    )
    .expect("auth off: made-up keys assume a role that does not exist");
    let on = Moto::shared(Auth::On);
    let err =
        sts_caller_arn(&on.endpoint(), "us-east-1", &made_up).expect_err("auth on: made-up keys");
    assert!(
        err.contains("InvalidClientTokenId"),
        "unexpected error: {err}"
    );
    // moto's log (a file without a name) is readable for failure messages and shows refusals.
    assert!(on.log().contains("\" 403 "), "{}", on.log_tail());
}

#[test]
fn moto_with_auth_rejects_a_wrong_secret() {
    let (moto, alice, _) = seeded_moto();
    let err = moto
        .caller_arn(&alice.access_key_id, "not-the-secret", None)
        .expect_err("a wrong secret must be refused once auth is on");
    assert!(
        err.contains("SignatureDoesNotMatch"),
        "unexpected error: {err}"
    );
}

#[test]
fn moto_with_auth_rejects_a_made_up_session_token() {
    let (moto, alice, _) = seeded_moto();
    let admin = sts_assume_role(&moto.endpoint(), "us-east-1", &alice, ADMIN, "s1")
        .expect("alice assumes the Administrator role");
    let err = moto
        .caller_arn(
            &admin.access_key_id,
            &admin.secret_access_key,
            Some("not-a-session-token"),
        )
        .expect_err("a made-up session token must be refused once auth is on");
    assert!(
        err.contains("InvalidClientTokenId") || err.contains("SignatureDoesNotMatch"),
        "unexpected error: {err}"
    );
}

#[test]
fn proxy_passes_signed_requests_through_with_auth_on() {
    let (moto, alice, alice_arn) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    assert_eq!(
        sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice).as_deref(),
        Ok(alice_arn.as_str()),
        "the original Host header must reach moto, SigV4 signed it"
    );
    assert_eq!(proxy.calls("GetCallerIdentity"), 1);
    assert_eq!(proxy.forwarded("GetCallerIdentity"), 1);
    assert_eq!(proxy.failed("GetCallerIdentity"), 0);
}

#[test]
fn proxy_counts_assume_role_calls() {
    let (moto, alice, _) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    let sts = proxy.endpoint();
    for (i, region) in ["us-east-1", "us-east-1", "us-west-2"]
        .into_iter()
        .enumerate()
    {
        sts_assume_role(&sts, region, &alice, ADMIN, &format!("count-{i}"))
            .unwrap_or_else(|e| panic!("AssumeRole #{i} signed for {region}: {e}"));
    }
    sts_caller_arn(&sts, "us-east-1", &alice).expect("GetCallerIdentity through the proxy");

    assert_eq!(proxy.calls("AssumeRole"), 3);
    assert_eq!(proxy.calls_in_region("AssumeRole", "us-east-1"), 2);
    assert_eq!(proxy.calls_in_region("AssumeRole", "us-west-2"), 1);
    assert_eq!(proxy.calls_in_region("AssumeRole", "eu-west-1"), 0);
    assert_eq!(proxy.calls("GetCallerIdentity"), 1);
    assert_eq!(proxy.total_calls(), 4);

    proxy.reset_counts();
    assert_eq!(proxy.calls("AssumeRole"), 0);
    assert_eq!(proxy.total_calls(), 0);
}

#[test]
fn proxy_down_answers_service_unavailable_until_it_is_back() {
    let (moto, alice, _) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    proxy.set_mode(ProxyMode::Down);
    let err = sts_assume_role(&proxy.endpoint(), "us-east-1", &alice, ADMIN, "down")
        .expect_err("STS is down");
    assert!(
        err.contains("ServiceUnavailable"),
        "unexpected error: {err}"
    );
    assert_eq!(proxy.failed("AssumeRole"), 1);
    assert_eq!(proxy.forwarded("AssumeRole"), 0);

    proxy.set_mode(ProxyMode::Pass);
    sts_assume_role(&proxy.endpoint(), "us-east-1", &alice, ADMIN, "back").expect("STS is back");
    assert_eq!(proxy.calls("AssumeRole"), 2);
    assert_eq!(proxy.forwarded("AssumeRole"), 1);
}

#[test]
fn proxy_fail_region_fails_only_requests_signed_for_that_region() {
    let (moto, alice, alice_arn) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    proxy.set_mode(ProxyMode::FailRegion("us-east-1".into()));
    let err =
        sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice).expect_err("us-east-1 is down");
    assert!(
        err.contains("ServiceUnavailable"),
        "unexpected error: {err}"
    );
    assert_eq!(
        sts_caller_arn(&proxy.endpoint(), "us-west-2", &alice).as_deref(),
        Ok(alice_arn.as_str()),
        "us-west-2 still works"
    );
    assert_eq!(proxy.calls_in_region("GetCallerIdentity", "us-east-1"), 1);
    assert_eq!(proxy.calls_in_region("GetCallerIdentity", "us-west-2"), 1);
    assert_eq!(proxy.failed("GetCallerIdentity"), 1);
}

#[test]
fn proxy_refuse_closes_connections_without_an_answer() {
    let (moto, alice, _) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    // A connection kept alive from before the outage is refused as well.
    sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice).expect("works before the outage");
    proxy.set_mode(ProxyMode::Refuse);
    let err =
        sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice).expect_err("connection refused");
    assert!(
        !err.contains("ServiceUnavailable"),
        "Refuse must not answer at all, got: {err}"
    );
    proxy.set_mode(ProxyMode::Pass);
    sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice).expect("works again after the outage");
}

#[test]
fn proxy_delay_holds_each_request_then_forwards_it() {
    let (moto, alice, alice_arn) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    let delay = Duration::from_millis(400);
    proxy.set_mode(ProxyMode::Delay(delay));
    let start = Instant::now();
    let arn = sts_caller_arn(&proxy.endpoint(), "us-east-1", &alice);
    assert_eq!(arn, Ok(alice_arn));
    assert!(
        start.elapsed() >= delay,
        "answered after {:?}, before the {delay:?} delay",
        start.elapsed()
    );
    assert_eq!(proxy.forwarded("GetCallerIdentity"), 1);
    assert_eq!(proxy.answered("GetCallerIdentity"), 1);
}

#[test]
fn boto3_in_a_world_reaches_moto_through_the_proxy_via_the_endpoint_variable() {
    let (moto, alice, alice_arn) = seeded_moto();
    let proxy = StsProxy::start(&moto.endpoint());
    let mut world = World::new();
    world.set_env("AWS_ENDPOINT_URL_STS", &proxy.endpoint());
    // botocore reads AWS_DEFAULT_REGION only (AWS_REGION is for the CLI v2 and other SDKs).
    world.set_env("AWS_DEFAULT_REGION", "us-west-2");
    world.set_env("AWS_ACCESS_KEY_ID", &alice.access_key_id);
    world.set_env("AWS_SECRET_ACCESS_KEY", &alice.secret_access_key);
    let out = world.run(
        moto.python(),
        &[
            "-c",
            "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])",
        ],
        None,
    );
    assert_eq!(out.assert_success().stdout.trim(), alice_arn);
    assert_eq!(proxy.calls_in_region("GetCallerIdentity", "us-west-2"), 1);
}

#[test]
fn world_environment_is_exactly_the_scrubbed_one() {
    let mut world = World::new();
    world.set_env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1");
    world.set_env("RUST_LOG", "credd=trace");
    let out = world.run("env", &[], None);
    out.assert_success();
    let mut seen: Vec<(String, String)> = out
        .stdout
        .lines()
        .map(|line| {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("env printed {line:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    seen.sort();
    let mut expected = world.env();
    expected.sort();
    assert_eq!(
        seen, expected,
        "a spawned process sees only the world's env"
    );

    let get = |key: &str| {
        expected
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} missing from the world env"))
    };
    assert_eq!(get("RUST_LOG"), "credd=trace", "set_env replaces");
    assert_eq!(get("AWS_ENDPOINT_URL_STS"), "http://127.0.0.1:1");
    assert_eq!(get("HOME"), world.home.display().to_string());
    assert_eq!(
        get("CREDD_RUNTIME_DIR"),
        world.runtime_dir.display().to_string()
    );
    assert_eq!(
        get("AWS_SHARED_CREDENTIALS_FILE"),
        world.credentials_file().display().to_string()
    );
    for (key, value) in &expected {
        if key.starts_with("AWS_") || key.starts_with("CREDD_") || key.starts_with("XDG_") {
            assert!(
                world.contains(std::path::Path::new(value))
                    || key == "AWS_EC2_METADATA_DISABLED"
                    || key == "AWS_ENDPOINT_URL_STS",
                "{key}={value} points outside the world"
            );
        }
    }
}

#[test]
fn world_paths_are_private_and_files_land_where_credd_reads_them() {
    let world = World::new();
    for path in [
        &world.home,
        &world.config_path,
        &world.runtime_dir,
        &world.state_dir,
        &world.aws_dir,
    ] {
        assert!(world.contains(path), "{} is outside", path.display());
    }
    let mode = std::fs::metadata(&world.runtime_dir)
        .expect("runtime dir exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "runtime dir mode {mode:o}");
    assert!(
        world.socket_path().as_os_str().len() < 100,
        "socket path too long for macOS: {}",
        world.socket_path().display()
    );

    world.write_config("default_profile = \"staging\"\n");
    let config = std::fs::read_to_string(&world.config_path).expect("config written");
    assert_eq!(config, "default_profile = \"staging\"\n");

    world.write_shared_credentials("access", "AKIDEXAMPLE", "s3cr3t");
    let out = world.run("sh", &["-c", "cat \"$AWS_SHARED_CREDENTIALS_FILE\""], None);
    assert_eq!(
        out.assert_success().stdout,
        "[access]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n"
    );
}

#[test]
fn world_run_reports_exit_code_output_and_stdin() {
    let world = World::new();
    let out = world.run(
        "sh",
        &["-c", "read line; echo \"got $line\"; echo oops >&2; exit 3"],
        Some("hello\n"),
    );
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "got hello\n");
    assert_eq!(out.stderr, "oops\n");

    let out = world.run("sh", &["-c", "echo '{\"ok\": true}'"], None);
    assert_eq!(out.json()["ok"], serde_json::Value::Bool(true));
}

#[test]
fn world_drop_kills_its_processes_and_removes_its_dir() {
    let world = World::new();
    let root = world.root.clone();
    let runtime_dir = world.runtime_dir.clone();
    // Stands for a daemon the client autostarted: not tracked, only marked by the world's env.
    let mut stray = world
        .command("sleep")
        .arg("300")
        .spawn()
        .expect("spawn sleep in the world");
    wait_until(Duration::from_secs(5), "the stray to show up", || {
        world
            .world_pids()
            .contains(&i32::try_from(stray.id()).expect("pid fits i32"))
    });
    drop(world);
    wait_until(
        Duration::from_secs(5),
        "the stray process to be killed",
        || stray.try_wait().expect("wait for sleep").is_some(),
    );
    assert!(!root.exists(), "{} was not removed", root.display());
    assert!(
        !runtime_dir.exists(),
        "{} was not removed",
        runtime_dir.display()
    );
}

#[test]
fn binaries_are_found_beside_the_test_executable_or_the_panic_says_how_to_build_them() {
    for (name, find) in [
        ("credd", client_bin as fn() -> std::path::PathBuf),
        ("credd-daemon", daemon_bin),
    ] {
        match std::panic::catch_unwind(find) {
            Ok(path) => {
                assert!(path.is_file(), "{} is not a file", path.display());
                assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(name));
            }
            Err(panic) => {
                let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(
                    message.contains("cargo test --workspace"),
                    "unhelpful panic: {message}"
                );
            }
        }
    }
}
