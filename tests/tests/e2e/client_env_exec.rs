//! The client verbs that hand credentials to other programs: `eval "$(credd env)"` in real
//! shells, `credd exec <profile> -- CMD`, and `credd credential-process <profile>` in an AWS config
//! file, each checked with boto3 and the AWS SDK for Rust calling moto with auth on.

use std::collections::BTreeMap;

use crate::http_support::{
    DEPLOY_ARN, DEPLOY_REGION, STAGING_ARN, STAGING_REGION, credd_path, offline, served,
};
use credd_tests::http::parse_utc;
use credd_tests::moto::venv_python;
use credd_tests::sdk::BOTO3_CALLER;
use credd_tests::stack::{Stack, now_unix};

/// What a developer's shell may already hold; `credd env`/`exec` must take it out of the way.
const STALE_AWS_ENV: &[(&str, &str)] = &[
    ("AWS_PROFILE", "no-such-profile"),
    ("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1"),
    ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
    ("AWS_SESSION_TOKEN", "wrong-token"),
];

/// `shell -c SCRIPT` in the world, with [`STALE_AWS_ENV`] set, and `$1` = the venv python,
/// `$2` = [`BOTO3_CALLER`], `$3` = the sdk-client binary, `$4` = `credd`.
fn in_shell(served: &Stack, shell: &str, script: &str) -> serde_json::Value {
    let python = venv_python().display().to_string();
    let credd = credd_path();
    let args = [
        "-c",
        script,
        shell,
        python.as_str(),
        BOTO3_CALLER,
        env!("CARGO_BIN_EXE_sdk-client"),
        credd.as_str(),
    ];
    let out = served.run_with_env(STALE_AWS_ENV, shell, &args);
    out.assert_success();
    out.json()
}

#[test]
fn eval_credd_env_in_sh_and_bash_gives_boto3_and_the_rust_sdk_the_right_role() {
    let served = served("");

    // No profile: the current route.
    let boto3 = in_shell(
        &served,
        "sh",
        r#"eval "$("$4" env --shell sh)" && exec "$1" -c "$2""#,
    );
    assert_eq!(boto3["arn"], STAGING_ARN);
    assert_eq!(
        boto3["method"], "container-role",
        "not the stale keys: {boto3}"
    );
    assert_eq!(boto3["region"], STAGING_REGION);
    let rust = in_shell(
        &served,
        "sh",
        r#"eval "$("$4" env --shell sh)" && exec "$3" default"#,
    );
    assert_eq!(rust["arn"], STAGING_ARN);

    // A profile: pinned, with its region.
    let boto3 = in_shell(
        &served,
        "bash",
        r#"eval "$("$4" env deploy --shell bash)" && exec "$1" -c "$2""#,
    );
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    assert_eq!(boto3["region"], DEPLOY_REGION);
    let rust = in_shell(
        &served,
        "bash",
        r#"eval "$("$4" env deploy --shell bash)" && exec "$3" default"#,
    );
    assert_eq!(rust["arn"], DEPLOY_ARN);
}

#[test]
fn a_shell_that_evaluated_credd_env_follows_a_switch_in_its_next_command() {
    let served = served("");
    let exports = served.world.credd(&["env", "--shell", "sh"]);
    exports.assert_success();
    served.world.credd(&["switch", "deploy"]).assert_success();
    // The exports were evaluated before the switch; the next program run from that shell moves.
    let script = format!("{}\nexec \"$1\" -c \"$2\"", exports.stdout);
    let boto3 = in_shell(&served, "sh", &script);
    assert_eq!(boto3["arn"], DEPLOY_ARN);
}

/// `credd env --shell SHELL` parsed back: (variables unset, variables set with their values).
/// An unset line may name several variables (`unset A B;`, `set -e A B;`).
fn parse_exports(shell: &str, text: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut unset = Vec::new();
    let mut set = BTreeMap::new();
    for line in text.lines() {
        let line = line
            .strip_suffix(';')
            .unwrap_or_else(|| panic!("{shell}: line without ';': {line:?}"));
        let quoted = |v: &str| {
            v.strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{shell}: value not single-quoted: {line:?}"))
                .to_owned()
        };
        let (name, value) = match shell {
            "sh" | "bash" | "zsh" => {
                if let Some(name) = line.strip_prefix("unset ") {
                    (name, None)
                } else {
                    let (name, value) = line
                        .strip_prefix("export ")
                        .and_then(|rest| rest.split_once('='))
                        .unwrap_or_else(|| panic!("{shell}: unexpected line {line:?}"));
                    (name, Some(quoted(value)))
                }
            }
            "fish" => {
                if let Some(name) = line.strip_prefix("set -e ") {
                    (name, None)
                } else {
                    let (name, value) = line
                        .strip_prefix("set -gx ")
                        .and_then(|rest| rest.split_once(' '))
                        .unwrap_or_else(|| panic!("{shell}: unexpected line {line:?}"));
                    (name, Some(quoted(value)))
                }
            }
            "powershell" => {
                if let Some(rest) = line.strip_prefix("Remove-Item Env:") {
                    let name = rest
                        .strip_suffix(" -ErrorAction SilentlyContinue")
                        .unwrap_or_else(|| panic!("{shell}: unexpected line {line:?}"));
                    (name, None)
                } else {
                    let (name, value) = line
                        .strip_prefix("$Env:")
                        .and_then(|rest| rest.split_once(" = "))
                        .unwrap_or_else(|| panic!("{shell}: unexpected line {line:?}"));
                    (name, Some(quoted(value)))
                }
            }
            _ => unreachable!("no such shell {shell}"),
        };
        match value {
            None => unset.extend(name.split_whitespace().map(str::to_owned)),
            Some(value) => {
                set.insert(name.to_owned(), value);
            }
        }
    }
    (unset, set)
}

#[test]
fn credd_env_prints_the_same_exports_for_every_shell() {
    let served = offline("");
    let json = served.world.credd(&["env", "deploy", "--json"]);
    let json = json.assert_success().json();
    let expected_set: BTreeMap<String, String> = serde_json::from_value(json["set"].clone())
        .unwrap_or_else(|e| panic!("env --json set: {e}: {json}"));
    let expected_unset: Vec<String> = serde_json::from_value(json["unset"].clone())
        .unwrap_or_else(|e| panic!("env --json unset: {e}: {json}"));

    assert_eq!(
        expected_set["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        format!("{}/v1/credentials/deploy", served.url())
    );
    assert_eq!(
        expected_set["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"],
        served.world.token_file().display().to_string()
    );
    assert_eq!(expected_set["AWS_REGION"], DEPLOY_REGION);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        assert!(
            expected_unset.iter().any(|n| n == name),
            "{name} not unset: {json}"
        );
    }

    for shell in ["sh", "bash", "zsh", "fish", "powershell"] {
        let out = served.world.credd(&["env", "deploy", "--shell", shell]);
        out.assert_success();
        let (unset, set) = parse_exports(shell, &out.stdout);
        assert_eq!(unset, expected_unset, "{shell}:\n{}", out.stdout);
        assert_eq!(set, expected_set, "{shell}:\n{}", out.stdout);
        // Unset first: a later unset must not remove a variable just set.
        let is_unset = |l: &str| {
            l.starts_with("unset ") || l.starts_with("set -e ") || l.starts_with("Remove-Item ")
        };
        let lines: Vec<&str> = out.stdout.lines().collect();
        let first_set = lines.iter().position(|l| !is_unset(l));
        let last_unset = lines.iter().rposition(|l| is_unset(l));
        assert!(
            last_unset < first_set,
            "{shell}: unsets come first:\n{}",
            out.stdout
        );
    }

    // The current route: the URL without a profile.
    let out = served.world.credd(&["env", "--shell", "fish"]);
    let (_, set) = parse_exports("fish", &out.assert_success().stdout);
    assert_eq!(
        set["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        format!("{}/v1/credentials", served.url())
    );
    assert_eq!(set["AWS_REGION"], STAGING_REGION);

    let out = served.world.credd(&["env", "no-such-profile"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.is_empty(), "nothing to eval on error: {out}");
    assert!(
        out.stderr.contains("staging") && out.stderr.contains("deploy"),
        "{out}"
    );
}

#[test]
fn credd_exec_pins_the_profile_without_the_parents_aws_variables_and_passes_the_exit_code() {
    let served = served("");
    let credd = credd_path();
    let python = venv_python().display().to_string();
    let exec = |args: &[&str]| {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(args);
        let mut full = vec![credd.as_str()];
        full.extend_from_slice(&argv);
        served.run_with_env(STALE_AWS_ENV, full[0], &full[1..])
    };

    // Pinned to deploy although the current profile is staging, despite the stale variables.
    let out = exec(&["deploy", "--", &python, "-c", BOTO3_CALLER]);
    let boto3 = out.assert_success().json();
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    assert_eq!(boto3["method"], "container-role");
    assert_eq!(boto3["region"], DEPLOY_REGION);
    let out = exec(&["staging", "--", env!("CARGO_BIN_EXE_sdk-client"), "default"]);
    assert_eq!(out.assert_success().json()["arn"], STAGING_ARN);

    let out = exec(&[
        "deploy",
        "--",
        "sh",
        "-c",
        "echo \"${AWS_PROFILE-unset} ${AWS_ACCESS_KEY_ID-unset} ${AWS_SESSION_TOKEN-unset} \
         $AWS_CONTAINER_CREDENTIALS_FULL_URI\"",
    ]);
    assert_eq!(
        out.assert_success().stdout.trim(),
        format!("unset unset unset {}/v1/credentials/deploy", served.url())
    );

    exec(&["staging", "--", "sh", "-c", "exit 7"]).assert_code(7);
    exec(&["staging", "--", "sh", "-c", "exit 0"]).assert_code(0);
    let out = exec(&["staging", "--", "/no/such/program"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("/no/such/program"), "{out}");

    // A switch moves the current route only: exec stays pinned.
    served.world.credd(&["switch", "deploy"]).assert_success();
    let out = exec(&["staging", "--", &python, "-c", BOTO3_CALLER]);
    assert_eq!(out.assert_success().json()["arn"], STAGING_ARN);
}

#[test]
fn boto3_and_the_rust_sdk_use_credd_as_their_credential_process() {
    let served = served("");
    let credd = credd_path();
    served.world.write_aws_config(&format!(
        "[profile staging]\ncredential_process = {credd} credential-process staging\nregion = {STAGING_REGION}\n\n\
         [profile deploy]\ncredential_process = {credd} credential-process deploy\nregion = {DEPLOY_REGION}\n"
    ));

    let boto3 = served
        .boto3(&[("AWS_PROFILE", "staging")])
        .unwrap_or_else(|out| panic!("boto3 with credential_process: {out}"));
    assert_eq!(boto3["arn"], STAGING_ARN);
    assert_eq!(boto3["method"], "custom-process");
    let boto3 = served
        .boto3(&[("AWS_PROFILE", "deploy")])
        .unwrap_or_else(|out| panic!("boto3 with credential_process: {out}"));
    assert_eq!(boto3["arn"], DEPLOY_ARN);
    // (aws-config runs a credential_process only with its `credentials-process` feature, which
    // the workspace does not enable: the Rust SDK is covered by the routes instead.)

    let out = served.world.credd(&["credential-process", "staging"]);
    let json = out.assert_success().json();
    assert!(
        json["Version"].is_u64() && json["Version"] == 1,
        "Version must be the integer 1: {out}"
    );
    for field in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(
            json[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {out}"
        );
    }
    assert_eq!(json["AccountId"], "222222222222");
    let expiration = parse_utc(json["Expiration"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("Expiration is not RFC 3339 UTC with Z: {out}"));
    assert!(
        expiration > now_unix() + 30 * 60,
        "at least min_remaining left: {out}"
    );
    assert!(out.stderr.is_empty(), "nothing on stderr on success: {out}");

    let out = served
        .world
        .credd(&["credential-process", "no-such-profile"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stdout.is_empty(), "no JSON on failure: {out}");
    assert!(out.stderr.contains("no-such-profile"), "{out}");
}

/// SDKs read the shared files before the container route. `credd exec` (pinned) hides the
/// shared credentials file from its command; `credd env` cannot do that to a whole shell, so it
/// warns instead.
#[test]
fn a_default_profile_in_the_shared_credentials_file_does_not_win_over_credd_exec_and_env_warns() {
    let served = served("");
    // Many users keep their long-lived key as [default]: here, alice's own key.
    let path = served.world.credentials_file();
    let access = std::fs::read_to_string(&path).expect("read the shared credentials file");
    let default = access.replace("[access]", "[default]");
    std::fs::write(&path, format!("{access}\n{default}")).expect("add a [default] profile");

    let credd = credd_path();
    let python = venv_python().display().to_string();
    let out = served.run_with_env(
        &[],
        &credd,
        &["exec", "deploy", "--", &python, "-c", BOTO3_CALLER],
    );
    assert_eq!(
        out.assert_success().json()["arn"],
        DEPLOY_ARN,
        "boto3 under credd exec"
    );
    let out = served.run_with_env(
        &[],
        &credd,
        &[
            "exec",
            "deploy",
            "--",
            env!("CARGO_BIN_EXE_sdk-client"),
            "default",
        ],
    );
    assert_eq!(
        out.assert_success().json()["arn"],
        DEPLOY_ARN,
        "aws-config under credd exec"
    );
    let env = served.run_with_env(&[], &credd, &["env", "--shell", "sh"]);
    assert!(
        env.assert_success().stderr.contains("[default] profile in")
            && env.stderr.contains("rename that profile"),
        "credd env warns about the shadowing [default] profile: {env}"
    );
}
