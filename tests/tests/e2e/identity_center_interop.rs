//! Identity Center shared with the AWS CLI and botocore both ways, through the CLI's token cache
//! file, and `credd import --sso`: the real daemon and client against the fake Identity Center,
//! botocore playing `aws sso login` and the SDKs' `sso_session` profiles.

use std::process::Stdio;
use std::time::Duration;

use credd_tests::bins::client_bin;
use credd_tests::identity_center::{
    ADMIN_ROLE, Grant, Op, Options, READ_ONLY_ROLE, STAGING_ACCOUNT, assumed_role_arn,
};
use credd_tests::stack::{Access, READY_DEADLINE, SSO_PROFILES, SSO_SESSION, Stack, Toml};
use credd_tests::wait_until;
use serde_json::json;

use crate::identity_center_fake::run_script;

/// An `~/.aws/config` profile on [`ADMIN_ROLE`] in [`STAGING_ACCOUNT`], as the CLI writes it.
const CLI_PROFILE: &str = "dev";

fn sso_stack(options: Options, profiles: &'static str) -> Stack {
    Stack::builder()
        .access(Access::SSO_DEVICE)
        .identity_center(options)
        .toml(Toml {
            profiles,
            ..Toml::default()
        })
        .build()
}

/// `aws sso login --sso-session acme`, played by botocore: the CLI's cache file and config.
fn aws_sso_login(stack: &Stack) {
    let fake = stack.identity_center();
    run_script(
        &stack.world,
        fake,
        "login",
        json!({
            "start_url": fake.start_url(),
            "session": SSO_SESSION,
            "profiles": {CLI_PROFILE: {"account": STAGING_ACCOUNT, "role": ADMIN_ROLE}},
        }),
    );
}

/// `credd login --device-code`, approved by the user as soon as the code shows.
fn credd_device_login(stack: &Stack) {
    let fake = stack.identity_center();
    let before = fake.succeeded(Op::StartDeviceAuthorization);
    let child = stack
        .world
        .command(client_bin())
        .args(["login", "--device-code"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start credd login");
    let shown = fake.wait_device_authorization(before, READY_DEADLINE);
    fake.approve(&shown.user_code);
    let out = child.wait_with_output().expect("credd login ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "credd login: {}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&shown.user_code),
        "the code is shown: {stderr}"
    );
}

#[test]
fn a_login_the_aws_cli_made_is_used_without_asking_again() {
    let mut stack = sso_stack(Options::default(), SSO_PROFILES);
    aws_sso_login(&stack);
    let fake = stack.identity_center();
    assert_eq!(
        fake.calls(Op::StartDeviceAuthorization),
        1,
        "the CLI's login"
    );
    stack.world.start_daemon();
    stack
        .world
        .wait_profile_state("sso-admin", "fresh", READY_DEADLINE);
    assert_eq!(
        stack
            .served_identity("sso-admin")
            .expect("moto accepts them"),
        assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE)
    );
    let fake = stack.identity_center();
    assert_eq!(
        fake.calls(Op::StartDeviceAuthorization),
        1,
        "credd asked nobody"
    );
    assert_eq!(fake.calls(Op::RegisterClient), 1, "nor registered again");
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], true, "{status:#}");
    assert_eq!(
        status["access"]["sso"]["cache_file"],
        stack.sso_cache_file().display().to_string()
    );
    // `credd login` now has nothing to ask either.
    let out = stack.world.credd(&["login", "--device-code"]);
    out.assert_success();
    assert_eq!(fake.calls(Op::StartDeviceAuthorization), 1, "{out}");
}

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn after_credd_login_botocore_shares_the_token_and_credd_takes_up_the_one_it_rotated() {
    // Short tokens: botocore (15-minute window) refreshes the shared token at once, rotating the
    // refresh token credd holds; credd must go on with the rotated one.
    let mut stack = sso_stack(
        Options {
            access_token_ttl: Duration::from_secs(20),
            ..Options::default()
        },
        SSO_PROFILES,
    );
    stack.world.write_aws_config(&format!(
        "[sso-session {SSO_SESSION}]\nsso_start_url = {}\nsso_region = us-east-1\n\
         sso_registration_scopes = sso:account:access\n\n[profile {CLI_PROFILE}]\n\
         sso_session = {SSO_SESSION}\nsso_account_id = {STAGING_ACCOUNT}\n\
         sso_role_name = {ADMIN_ROLE}\nregion = us-east-1\n",
        stack.identity_center().start_url()
    ));
    stack.world.start_daemon();
    credd_device_login(&stack);
    let fake = stack.identity_center();
    let cache = std::fs::metadata(stack.sso_cache_file()).expect("credd wrote the CLI's cache");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(cache.permissions().mode() & 0o777, 0o600);

    // A boto3 program on the CLI's profile: botocore reads credd's token, refreshes it.
    let refreshes = fake.succeeded(Op::CreateToken(Grant::RefreshToken));
    let seen = run_script(
        &stack.world,
        fake,
        "profile-identity",
        json!({"profile": CLI_PROFILE}),
    );
    assert_eq!(
        seen["arn"],
        assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE),
        "{seen:#}"
    );
    assert_eq!(
        fake.succeeded(Op::CreateToken(Grant::RefreshToken)),
        refreshes + 1,
        "botocore refreshed the shared token"
    );

    // credd's next renewal uses botocore's rotated refresh token, not its own dead one.
    wait_until(
        Duration::from_secs(30),
        "credd renewing after botocore",
        || fake.succeeded(Op::CreateToken(Grant::RefreshToken)) >= refreshes + 2,
    );
    assert_eq!(
        fake.calls(Op::CreateToken(Grant::RefreshToken)),
        fake.succeeded(Op::CreateToken(Grant::RefreshToken)),
        "no refresh was refused:\n{}",
        fake.log()
    );
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], true, "{status:#}");
    assert!(status["access"]["last_error"].is_null(), "{status:#}");
    assert!(stack.served_identity("sso-readonly").is_ok());
    assert_eq!(
        fake.calls(Op::StartDeviceAuthorization),
        1,
        "one login all along"
    );
}

#[test]
fn import_sso_adds_every_account_and_role_once_and_leaves_hand_written_profiles_alone() {
    const MINE: &str = "\n# my own\n[profiles.mine]\nsso_account_id = \"222222222222\"\nsso_role_name = \"ReadOnlyAccess\"\n";
    let mut stack = sso_stack(Options::default(), MINE);
    stack.world.start_daemon();
    credd_device_login(&stack);
    let before = std::fs::read_to_string(&stack.world.config_path).unwrap();

    let dry = stack.world.credd(&["import", "--sso", "--dry-run"]);
    dry.assert_success();
    assert_eq!(
        std::fs::read_to_string(&stack.world.config_path).unwrap(),
        before,
        "--dry-run writes nothing"
    );
    for line in [
        "+[profiles.staging-AdministratorAccess]",
        "+[profiles.production-ReadOnlyAccess]",
        "+[profiles.identity-CreddAccess]",
    ] {
        assert!(dry.stdout.contains(line), "{line} in {dry}");
    }
    assert!(
        !dry.stdout.contains("staging-ReadOnlyAccess"),
        "{STAGING_ACCOUNT}/{READ_ONLY_ROLE} is configured already, as mine: {dry}"
    );
    // Each with the Identity Center Region: `credd exec` exports it, the AWS CLI needs one.
    assert_eq!(
        dry.stdout
            .matches(&format!(
                "+region = \"{}\"\n",
                credd_tests::identity_center::SSO_REGION
            ))
            .count(),
        3,
        "{dry}"
    );

    stack.world.credd(&["import", "--sso"]).assert_success();
    let after = std::fs::read_to_string(&stack.world.config_path).unwrap();
    assert!(
        after.starts_with(&before),
        "the hand-written part is kept: {after}"
    );
    assert!(
        !after.contains("staging-ReadOnlyAccess"),
        "configured already as mine: {after}"
    );
    // The daemon reloads by itself; the new profiles serve at once.
    wait_until(READY_DEADLINE, "the imported profiles", || {
        stack.world.status()["profiles"]
            .as_array()
            .is_some_and(|p| p.len() == 4)
    });
    assert_eq!(
        stack
            .served_identity("staging-AdministratorAccess")
            .expect("served"),
        assumed_role_arn(STAGING_ACCOUNT, ADMIN_ROLE)
    );
    // Again: nothing to add.
    let again = stack.world.credd(&["import", "--sso"]);
    again.assert_success();
    assert_eq!(
        std::fs::read_to_string(&stack.world.config_path).unwrap(),
        after,
        "{again}"
    );
}
