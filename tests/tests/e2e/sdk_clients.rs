//! The Go v2, Java v2 and JavaScript v3 SDKs (and the Rust SDK through `credential_process`) as
//! tools use them: each client takes its SDK's default credential chain, decided by the
//! environment alone, and moto (auth on) names the role it got. One test per route, every SDK in
//! it at once: the container route (pinned, current, chained, and current after `credd switch`),
//! IMDSv2, and `credential_process` (`credd credential-process`).

use crate::http_support::{
    DEPLOY_ARN, DEPLOY_REGION, STAGING_ARN, STAGING_REGION, credd_path, pairs,
};
use credd_tests::sdk::{Sdk, run_once};
use credd_tests::stack::{ADMIN, AUDITOR, DEPLOY, READY_DEADLINE, Stack, Toml, USER};

/// The account of [`ADMIN`], `staging`'s role: what `AccountId` the credentials carry.
const STAGING_ACCOUNT: &str = "222222222222";

/// `staging` (current), `deploy`, and `prod-audit` chained through `staging`; every profile
/// fresh. `daemon_lines` go into `[daemon]`.
pub fn served(daemon_lines: &str) -> Stack {
    let profiles = format!(
        r#"
[profiles.staging]
role_arn = "{ADMIN}"
region = "{STAGING_REGION}"

[profiles.deploy]
role_arn = "{DEPLOY}"
region = "{DEPLOY_REGION}"

[profiles.prod-audit]
role_arn = "{AUDITOR}"
via = "staging"
"#
    );
    let stack = Stack::builder()
        .direct()
        .toml(Toml {
            top: "default_profile = \"staging\"",
            daemon: daemon_lines,
            profiles: &profiles,
            ..Toml::default()
        })
        .start();
    stack.wait_all_fresh(READY_DEADLINE);
    stack
}

/// Who `prod-audit`'s credentials are.
pub fn audit_arn() -> String {
    credd_tests::stack::assumed_role_arn(AUDITOR, USER)
}

/// Runs `f` for each of `sdks` on a thread of its own (their processes overlap), in order.
pub fn each_sdk<T: Send>(sdks: &[Sdk], f: impl Fn(Sdk) -> T + Sync) -> Vec<(Sdk, T)> {
    // Built one at a time first: the builds would only fight over two cores.
    for sdk in sdks {
        sdk.ensure_installed();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let running: Vec<_> = sdks
            .iter()
            .map(|&sdk| (sdk, scope.spawn(move || f(sdk))))
            .collect();
        running
            .into_iter()
            .map(|(sdk, handle)| match handle.join() {
                Ok(v) => (sdk, v),
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// One call of `sdk` with `env`; panics with its output when it fails.
#[track_caller]
fn call(served: &Stack, sdk: Sdk, env: &[(String, String)], what: &str) -> serde_json::Value {
    let answer = run_once(&served.world, sdk, &pairs(env))
        .unwrap_or_else(|out| panic!("{} {what}: {out}", sdk.name()));
    eprintln!("{} {what}: {answer}", sdk.name());
    answer
}

#[test]
fn go_java_and_js_get_the_current_pinned_and_chained_roles_through_the_container_route() {
    let served = served("");
    let current = served.container_env("/v1/credentials", STAGING_REGION);
    let pinned = served.container_env("/v1/credentials/deploy", STAGING_REGION);
    let chained = served.container_env("/v1/credentials/prod-audit", STAGING_REGION);

    for (sdk, [current, pinned, chained]) in each_sdk(&Sdk::BUILT, |sdk| {
        [
            call(&served, sdk, &current, "on the current route"),
            call(&served, sdk, &pinned, "on the pinned route"),
            call(&served, sdk, &chained, "on the chained profile's route"),
        ]
    }) {
        let name = sdk.name();
        assert_eq!(current["arn"], STAGING_ARN, "{name}: {current}");
        assert_eq!(pinned["arn"], DEPLOY_ARN, "{name}: {pinned}");
        assert_eq!(chained["arn"], audit_arn(), "{name}: {chained}");
        assert!(
            current["expiry"].is_u64(),
            "{name} sees the expiry: {current}"
        );
        if matches!(sdk, Sdk::Go | Sdk::Java) {
            assert_eq!(current["account_id"], STAGING_ACCOUNT, "{name}: {current}");
        }
    }

    served.world.credd(&["switch", "deploy"]).assert_success();
    for (sdk, after) in each_sdk(&Sdk::BUILT, |sdk| {
        call(
            &served,
            sdk,
            &current,
            "on the current route after the switch",
        )
    }) {
        assert_eq!(
            after["arn"],
            DEPLOY_ARN,
            "a new {} process: {after}",
            sdk.name()
        );
    }
}

#[test]
fn go_java_and_js_get_the_current_role_through_imds_and_java_its_account_id() {
    let served = served("imds = true");
    let env = served.imds_env(STAGING_REGION);
    for (sdk, answer) in each_sdk(&Sdk::BUILT, |sdk| call(&served, sdk, &env, "through IMDS")) {
        let name = sdk.name();
        assert_eq!(answer["arn"], STAGING_ARN, "{name}: {answer}");
        assert!(
            answer["expiry"].is_u64(),
            "{name} sees the expiry: {answer}"
        );
    }
    // Java v2 asks for AccountId with `X-amzn-extended: 1` on the ordinary route.
    let java = call(&served, Sdk::Java, &env, "through IMDS");
    assert_eq!(java["account_id"], STAGING_ACCOUNT, "{java}");

    served.world.credd(&["switch", "deploy"]).assert_success();
    for (sdk, after) in each_sdk(&Sdk::BUILT, |sdk| {
        call(&served, sdk, &env, "through IMDS after the switch")
    }) {
        assert_eq!(
            after["arn"],
            DEPLOY_ARN,
            "a new {} process: {after}",
            sdk.name()
        );
    }
}

#[test]
fn go_java_js_and_rust_get_each_profile_through_credential_process() {
    let served = served("");
    let credd = credd_path();
    served.world.write_aws_config(&format!(
        "[default]\ncredential_process = {credd} credential-process staging\n\n\
         [profile deploy]\ncredential_process = {credd} credential-process deploy\n\n\
         [profile audit]\ncredential_process = {credd} credential-process prod-audit\n"
    ));
    let env = |profile: Option<&str>| {
        let mut env = vec![("AWS_REGION".to_owned(), STAGING_REGION.to_owned())];
        if let Some(profile) = profile {
            env.push(("AWS_PROFILE".to_owned(), profile.to_owned()));
        }
        env
    };
    let sdks = [Sdk::Go, Sdk::Java, Sdk::Js, Sdk::Rust];
    for (sdk, [default, deploy, audit]) in each_sdk(&sdks, |sdk| {
        [
            call(&served, sdk, &env(None), "with credential_process"),
            call(
                &served,
                sdk,
                &env(Some("deploy")),
                "with AWS_PROFILE=deploy",
            ),
            call(&served, sdk, &env(Some("audit")), "with AWS_PROFILE=audit"),
        ]
    }) {
        let name = sdk.name();
        assert_eq!(default["arn"], STAGING_ARN, "{name}: {default}");
        assert_eq!(deploy["arn"], DEPLOY_ARN, "{name}: {deploy}");
        assert_eq!(audit["arn"], audit_arn(), "{name}: {audit}");
    }
}
