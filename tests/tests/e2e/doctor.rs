//! `credd doctor` against moto with request authentication on (DescribeOrganization,
//! GetCallerIdentity, ListAccessKeys and every AssumeRole really signed and checked): alice's
//! account as an organization's management account (said first, exit 4) or a member (no
//! warning), a key backdated 120 days, a role her policy denies, plain-text keys and a
//! `[default]` key in the shared files, stale `AWS_*` variables, a loosened token file, no MFA;
//! and without a session, Identity Center's own checks with no live check pretended.

use std::os::unix::fs::PermissionsExt;

use credd_tests::moto::Organization;
use credd_tests::stack::{Access, READY_DEADLINE, STAGING_AND_AUDIT, Stack, Toml, USER};
use credd_tests::world::CmdOutput;
use serde_json::Value;

/// A role alice's identity policy denies her (moto, auth on, refuses it as IAM would).
const FORBIDDEN: &str = "arn:aws:iam::222222222222:role/Forbidden";

/// alice's key stack straight at moto (auth on), seeded by `seed`, with `profiles`; logged in
/// with every profile tried once.
fn logged_in(
    seed: fn(credd_tests::moto::SeedSpec) -> credd_tests::moto::SeedSpec,
    profiles: &str,
) -> Stack {
    let stack = Stack::builder()
        .access(Access::Key)
        .direct()
        .seed(seed)
        .toml(Toml {
            top: "default_profile = \"staging\"",
            profiles,
            ..Toml::default()
        })
        .start();
    stack.wait_logged_in(READY_DEADLINE);
    stack
}

/// `credd --json doctor`, its findings and `worst`.
fn doctor_json(out: &CmdOutput) -> (Vec<Value>, Value) {
    let json = out.json();
    let findings = json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("findings: {out}"))
        .clone();
    (findings, json["worst"].clone())
}

/// The findings of check `check`.
fn of<'a>(findings: &'a [Value], check: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["check"] == check).collect()
}

/// The one finding of check `check`.
#[track_caller]
fn one<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    match of(findings, check).as_slice() {
        [f] => f,
        other => panic!("{} findings of {check}: {findings:#?}", other.len()),
    }
}

#[test]
fn a_management_account_is_said_first_and_doctor_exits_4() {
    let stack = logged_in(
        |s| s.organization(Organization::Management),
        STAGING_AND_AUDIT,
    );
    let account = stack
        .user()
        .arn
        .split(':')
        .nth(4)
        .expect("an account")
        .to_owned();

    let out = stack.world.credd(&["--json", "doctor"]);
    out.assert_code(4);
    let (findings, worst) = doctor_json(&out);
    assert_eq!(worst, "critical", "{out}");
    let first = &findings[0];
    assert_eq!(first["check"], "management-account", "{findings:#?}");
    assert_eq!(first["severity"], "critical", "{findings:#?}");
    let found = first["found"].as_str().unwrap_or_default();
    assert!(
        found.starts_with(&format!(
            "the access account {account} is the management account of organization o-"
        )),
        "{found}"
    );
    assert!(
        first["why"]
            .as_str()
            .is_some_and(|w| w.contains("OrganizationAccountAccessRole"))
    );
    assert!(
        first["fix"]
            .as_str()
            .is_some_and(|f| f.contains("member account"))
    );
    // Nothing else as bad; the rest of the setup as it is.
    assert_eq!(
        findings
            .iter()
            .filter(|f| f["severity"] == "critical")
            .count(),
        1,
        "{findings:#?}"
    );
    assert_eq!(one(&findings, "mfa")["severity"], "warning");
    assert_eq!(one(&findings, "key-storage")["severity"], "warning");
    assert_eq!(one(&findings, "regions")["severity"], "warning");
    assert_eq!(
        one(&findings, "clock-skew")["severity"],
        "ok",
        "{findings:#?}"
    );
    assert_eq!(one(&findings, "key-age")["severity"], "ok", "{findings:#?}");
    let roles = one(&findings, "unassumable-role");
    assert_eq!(roles["severity"], "ok");
    assert_eq!(roles["found"], "2 profiles' roles assumed just now");
    assert_eq!(one(&findings, "versions")["severity"], "ok");
    assert_eq!(
        one(&findings, "runtime-dir-modes")["severity"],
        "ok",
        "{findings:#?}"
    );
    assert_eq!(
        one(&findings, "stale-aws-env")["severity"],
        "ok",
        "{findings:#?}"
    );

    // The text says so first, with why and how to fix it; the passes follow, one line each.
    let text = stack.world.credd(&["doctor"]);
    text.assert_code(4);
    println!("--- credd doctor (management account) ---\n{}", text.stdout);
    let mut lines = text.stdout.lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("CRITICAL management-account: the access account ")),
        "{text}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("         why: ")),
        "{text}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("         fix: ")),
        "{text}"
    );
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour into a pipe: {text}"
    );
    assert!(
        text.stdout
            .contains("\nok       versions: credd and credd-daemon are both "),
        "{text}"
    );
    // No secret in what doctor says.
    let alice = stack.user();
    assert!(
        !text.stdout.contains(&alice.secret_access_key)
            && !out.stdout.contains(&alice.secret_access_key)
    );
}

#[test]
fn a_member_account_passes_and_a_key_of_120_days_is_a_warning() {
    let stack = logged_in(
        |s| s.organization(Organization::Member).key_age_days(USER, 120),
        STAGING_AND_AUDIT,
    );
    let out = stack.world.credd(&["--json", "doctor"]);
    out.assert_code(3);
    let (findings, worst) = doctor_json(&out);
    assert_eq!(worst, "warning", "{out}");
    let org = one(&findings, "management-account");
    assert_eq!(org["severity"], "ok", "{findings:#?}");
    assert!(
        org["found"]
            .as_str()
            .is_some_and(|f| f.contains("is a member of organization o-")),
        "{org}"
    );
    let age = one(&findings, "key-age");
    assert_eq!(age["severity"], "warning", "{findings:#?}");
    assert_eq!(
        age["found"],
        format!(
            "the access key {} is 120 days old",
            stack.user().access_key_id
        )
    );
    assert!(
        age["fix"]
            .as_str()
            .is_some_and(|f| f.contains("`credd key rotate`"))
    );
}

#[test]
fn a_role_that_cannot_be_assumed_is_named_with_sts_s_reason() {
    let profiles =
        format!("{STAGING_AND_AUDIT}\n[profiles.forbidden]\nrole_arn = \"{FORBIDDEN}\"\n");
    let stack = logged_in(
        |s| s.role(FORBIDDEN).deny_assume(USER, FORBIDDEN),
        &profiles,
    );
    let out = stack.world.credd(&["--json", "doctor"]);
    out.assert_code(3);
    let (findings, _) = doctor_json(&out);
    let roles = of(&findings, "unassumable-role");
    let refused = roles
        .iter()
        .find(|f| f["severity"] == "warning")
        .unwrap_or_else(|| panic!("no unassumable role: {findings:#?}"));
    let found = refused["found"].as_str().unwrap_or_default();
    // STS's reason: moto's access check answers 403 in a shape the SDK cannot parse, so the
    // code there is the HTTP status; AWS's says AccessDenied.
    assert!(
        found.starts_with(&format!(
            "forbidden: {FORBIDDEN} cannot be assumed: STS in us-east-1: "
        )) && (found.contains("AccessDenied") || found.contains("HTTP 403")),
        "{found}"
    );
    assert!(
        refused["fix"]
            .as_str()
            .is_some_and(|f| f.contains("trust policy"))
    );
    assert!(
        roles
            .iter()
            .any(|f| f["severity"] == "ok"
                && f["found"] == "2 of 3 profiles' roles assumed just now"),
        "{findings:#?}"
    );
}

#[test]
fn local_problems_are_each_named_with_the_fix_and_no_secret() {
    let stack = logged_in(|s| s, STAGING_AND_AUDIT);
    let world = &stack.world;
    // A second plain-text key, and a [default] one, in the world's credentials file.
    let file = world.credentials_file();
    let mut text = std::fs::read_to_string(&file).expect("the credentials file");
    text.push_str(
        "\n[old]\naws_access_key_id = AKIAOLDKEY\naws_secret_access_key = old-secret-value\n",
    );
    text.push_str("\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = default-secret-value\n");
    std::fs::write(&file, text).expect("write the credentials file");
    // The token file loosened.
    let token = world.token_file();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let mut command = world.command(credd_tests::bins::client_bin());
    command
        .args(["--json", "doctor"])
        .env("CREDD_NO_AUTOSTART", "1")
        .env("AWS_ACCESS_KEY_ID", "AKIASTALE")
        .env("AWS_SECRET_ACCESS_KEY", "stale-secret-value")
        .env("AWS_PROFILE", "old");
    let out = command.output().expect("run credd doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let findings: Vec<Value> = serde_json::from_str::<Value>(&stdout).expect("JSON")["findings"]
        .as_array()
        .expect("findings")
        .clone();

    let plain = of(&findings, "key-plaintext");
    let named = |profile: &str| {
        plain.iter().any(|f| {
            f["severity"] == "warning"
                && f["found"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("[{profile}]")))
                && f["fix"].as_str().is_some_and(|s| {
                    s.contains(&format!("`credd key import --profile {profile} --delete`"))
                })
        })
    };
    assert!(named("old") && named("default"), "{findings:#?}");
    // The key credd reads is named once, by the daemon (key-storage), not again here.
    assert!(!named("access"), "{findings:#?}");
    assert!(
        one(&findings, "key-storage")["fix"]
            .as_str()
            .is_some_and(|f| f.contains("`credd key import --profile access --delete`"))
    );
    assert_eq!(
        one(&findings, "default-key-shadows")["severity"],
        "warning",
        "{findings:#?}"
    );
    let env = one(&findings, "stale-aws-env");
    assert_eq!(env["severity"], "warning");
    assert_eq!(
        env["found"],
        "set in this shell: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE"
    );
    let modes = one(&findings, "runtime-dir-modes");
    assert_eq!(modes["severity"], "warning", "{findings:#?}");
    assert_eq!(
        modes["found"],
        format!("the token file {} is 644, not 600", token.display())
    );
    assert_eq!(modes["fix"], format!("`chmod 600 {}`", token.display()));
    assert_eq!(one(&findings, "mfa")["severity"], "warning");
    for secret in [
        "old-secret-value",
        "default-secret-value",
        "stale-secret-value",
        &world.http_token(),
    ] {
        assert!(
            !stdout.contains(secret),
            "a secret in doctor's output: {stdout}"
        );
    }
}

#[test]
fn logged_out_identity_center_reports_its_own_checks_and_pretends_no_live_one() {
    let stack = Stack::builder().access(Access::SSO_DEVICE).start();
    let out = stack.world.credd(&["--json", "doctor"]);
    out.assert_code(3);
    let (findings, worst) = doctor_json(&out);
    assert_eq!(worst, "warning");
    let logged_out = one(&findings, "logged-out");
    assert_eq!(logged_out["severity"], "warning");
    assert!(
        logged_out["fix"]
            .as_str()
            .is_some_and(|f| f.contains("`credd login`"))
    );
    for live in [
        "management-account",
        "clock-skew",
        "unassumable-role",
        "key-age",
    ] {
        let f = one(&findings, live);
        assert_eq!(
            (f["severity"].as_str(), f["found"].as_str()),
            (Some("info"), Some("not checked: no access session")),
            "{findings:#?}"
        );
    }
    // Identity Center's own check, and none of the IAM user's.
    let replicas = one(&findings, "sso-replicas");
    assert_eq!(replicas["severity"], "warning", "{findings:#?}");
    assert!(
        replicas["fix"]
            .as_str()
            .is_some_and(|f| f.contains("sso_replicas"))
    );
    assert!(of(&findings, "mfa").is_empty() && of(&findings, "key-storage").is_empty());
    let text = stack.world.credd(&["doctor"]);
    text.assert_code(3);
    println!(
        "--- credd doctor (Identity Center, logged out) ---\n{}",
        text.stdout
    );
}

#[test]
fn without_a_daemon_doctor_prints_the_local_checks_and_exits_1() {
    let world = credd_tests::world::World::new();
    world.write_config(credd_tests::stack::OFFLINE_CONFIG);
    // Never started: CREDD_NO_AUTOSTART keeps this credd from starting one.
    let out = world.credd(&["--json", "doctor"]);
    out.assert_code(1);
    let (findings, _) = doctor_json(&out);
    assert!(of(&findings, "management-account").is_empty(), "{out}");
    assert_eq!(one(&findings, "stale-aws-env")["severity"], "ok", "{out}");
    let error: Value = serde_json::from_str(out.stderr.trim()).expect("a JSON error on stderr");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach credd-daemon")),
        "{out}"
    );
}
