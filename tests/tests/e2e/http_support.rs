//! The daemon of the HTTP API scenarios (`http_sdk_clients`, `http_defences`, `imds`,
//! `client_env_exec`, `attacks`): `staging` (the default profile, [`ADMIN`]) and `deploy`
//! ([`DEPLOY`], another account), logged in by itself with alice's key against moto with auth on,
//! STS reached straight (no proxy); or the same daemon without any STS. Plus what the scenarios
//! compare against.

use credd_tests::bins::client_bin;
use credd_tests::stack::{ADMIN, DEPLOY, READY_DEADLINE, Stack, Toml};

/// Who STS says `staging`'s credentials are (alice's user name is the session name).
pub const STAGING_ARN: &str = "arn:aws:sts::222222222222:assumed-role/Administrator/alice";
pub const DEPLOY_ARN: &str = "arn:aws:sts::333333333333:assumed-role/Deploy/alice";
pub const STAGING_REGION: &str = "us-east-1";
pub const DEPLOY_REGION: &str = "us-west-2";

/// The daemon with `daemon_lines` added to `[daemon]` (e.g. `imds = true`), every profile fresh.
pub fn served(daemon_lines: &str) -> Stack {
    served_with(daemon_lines, "")
}

/// [`served`] listening on `listen`, e.g. a fixed port that must stay the same across restarts.
pub fn served_on(listen: &str, daemon_lines: &str) -> Stack {
    let profiles = profiles("");
    let stack = Stack::builder()
        .direct()
        .listen(listen)
        .toml(toml(daemon_lines, &profiles))
        .start();
    stack.wait_all_fresh(READY_DEADLINE);
    stack
}

/// [`served`] with `staging_lines` added to `[profiles.staging]`, e.g. a `duration`.
pub fn served_with(daemon_lines: &str, staging_lines: &str) -> Stack {
    let profiles = profiles(staging_lines);
    let stack = Stack::builder()
        .direct()
        .toml(toml(daemon_lines, &profiles))
        .start();
    stack.wait_all_fresh(READY_DEADLINE);
    stack
}

/// The same daemon and profiles, but STS is unreachable (nothing listens on its port): for the
/// checks that happen before any credentials are involved. Nothing gets fresh.
pub fn offline(daemon_lines: &str) -> Stack {
    offline_on("127.0.0.1:0", daemon_lines)
}

/// [`offline`] listening on `listen`, e.g. `[::1]:0`.
pub fn offline_on(listen: &str, daemon_lines: &str) -> Stack {
    let profiles = profiles("");
    Stack::builder()
        .without_sts()
        .listen(listen)
        .toml(toml(daemon_lines, &profiles))
        .start()
}

fn toml<'a>(daemon_lines: &'a str, profiles: &'a str) -> Toml<'a> {
    Toml {
        top: "default_profile = \"staging\"",
        daemon: daemon_lines,
        profiles,
        ..Toml::default()
    }
}

fn profiles(staging_lines: &str) -> String {
    format!(
        r#"
[profiles.staging]
role_arn = "{ADMIN}"
region = "{STAGING_REGION}"
{staging_lines}

[profiles.deploy]
role_arn = "{DEPLOY}"
region = "{DEPLOY_REGION}"
"#
    )
}

/// `(k, v)` pairs as the `&str` pairs [`Stack::run_with_env`] takes.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The `credd` client, for shells and AWS config files that need its absolute path.
pub fn credd_path() -> String {
    client_bin().display().to_string()
}
