//! Profiles as moto sees them with authentication on: the credentials credd serves really work,
//! a chained profile is assumed with the credentials of the profile it goes `via`, and every
//! AssumeRole setting of a profile reaches STS. Without `mfa_serial` the daemon logs in by itself.

use std::time::Duration;

use credd_tests::stack::{ADMIN, AUDITOR, Access, Stack, Toml, USER, assumed_role_arn, now_unix};

const WARM: Duration = Duration::from_secs(10);

#[test]
fn profiles_and_chained_profiles_serve_credentials_moto_accepts() {
    let stack = Stack::staging_and_audit(Access::Key);
    let world = &stack.world;

    // Nobody runs `credd login`: a key without MFA needs nobody.
    stack.wait_logged_in(WARM);
    let status = world.status();
    let access = &status["access"];
    assert_eq!(access["identity"], stack.user().arn, "{status:#}");
    assert_eq!(
        access["expires_at"],
        serde_json::Value::Null,
        "a key does not expire"
    );
    assert_eq!(access["mfa_serial"], serde_json::Value::Null);
    assert_eq!(stack.proxy().calls("GetSessionToken"), 0);
    world.wait_profile_state("staging", "fresh", WARM);
    world.wait_profile_state("prod-audit", "fresh", WARM);

    let staging = world.credential_process("staging").expect("staging");
    let prod_audit = world.credential_process("prod-audit").expect("prod-audit");
    let caller = |c: &credd_tests::world::ProcessCredentials| {
        stack.moto().caller_arn(
            &c.keys.access_key_id,
            &c.keys.secret_access_key,
            c.keys.session_token.as_deref(),
        )
    };
    // The default RoleSessionName is the IAM user's name: CloudTrail shows who acted.
    assert_eq!(caller(&staging), Ok(assumed_role_arn(ADMIN, USER)));
    assert_eq!(caller(&prod_audit), Ok(assumed_role_arn(AUDITOR, USER)));
    assert_eq!(staging.account_id.as_deref(), Some("222222222222"));
    assert_eq!(prod_audit.account_id.as_deref(), Some("333333333333"));
    assert!(
        staging.expiration.ends_with('Z'),
        "RFC 3339 UTC: {}",
        staging.expiration
    );

    // Who signed what: staging with alice's key, prod-audit with staging's credentials.
    let params = stack.proxy().params("AssumeRole");
    let signers = stack.proxy().signers("AssumeRole");
    assert_eq!(params.len(), 2, "one AssumeRole per profile: {params:?}");
    for (params, signer) in params.iter().zip(&signers) {
        match params["RoleArn"].as_str() {
            ADMIN => assert_eq!(*signer, stack.user().access_key_id),
            AUDITOR => assert_eq!(*signer, staging.keys.access_key_id, "chained via staging"),
            other => panic!("AssumeRole for an unexpected role {other}"),
        }
        assert_eq!(params["RoleSessionName"], USER);
        assert_eq!(params["DurationSeconds"], "3600", "the 1 h default");
    }

    let status = world.status();
    let audit = world.profile_status("prod-audit");
    assert_eq!(audit["via"], "staging", "{status:#}");
    assert_eq!(audit["assumed_arn"], assumed_role_arn(AUDITOR, USER));
    assert_eq!(audit["sts_region"], "us-east-1");
}

#[test]
fn every_assume_role_setting_of_a_profile_reaches_sts() {
    let stack = Stack::start(
        Access::Key,
        Toml {
            profiles: r#"
[profiles.ci]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
external_id = "ext-4242"
duration = "2h"
session_name = "ci-run"
source_identity = "alice-ci"
tags = { team = "platform", env = "staging" }

[profiles.ci-audit]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
via = "ci"
duration = "4h"
"#,
            ..Toml::default()
        },
    );
    let world = &stack.world;
    world.wait_profile_state("ci", "fresh", WARM);
    world.wait_profile_state("ci-audit", "fresh", WARM);

    assert_eq!(
        stack.served_identity("ci"),
        Ok(assumed_role_arn(ADMIN, "ci-run"))
    );
    assert_eq!(
        stack.served_identity("ci-audit"),
        Ok(assumed_role_arn(AUDITOR, USER)),
        "a chained profile without session_name uses the user's name"
    );

    let all = stack.proxy().params("AssumeRole");
    let of = |role: &str| {
        all.iter()
            .find(|p| p["RoleArn"] == role)
            .unwrap_or_else(|| panic!("no AssumeRole for {role}: {all:?}"))
    };
    let ci_call = of(ADMIN);
    assert_eq!(ci_call["ExternalId"], "ext-4242");
    assert_eq!(ci_call["DurationSeconds"], "7200");
    assert_eq!(ci_call["RoleSessionName"], "ci-run");
    assert_eq!(ci_call["SourceIdentity"], "alice-ci");
    let mut tags: Vec<(String, String)> = (1..=2)
        .map(|n| {
            (
                ci_call[&format!("Tags.member.{n}.Key")].clone(),
                ci_call[&format!("Tags.member.{n}.Value")].clone(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("env".to_owned(), "staging".to_owned()),
            ("team".to_owned(), "platform".to_owned())
        ]
    );
    let audit_call = of(AUDITOR);
    assert_eq!(
        audit_call["DurationSeconds"], "3600",
        "a chained role is capped at 1 h"
    );
    for absent in ["ExternalId", "SourceIdentity", "Tags.member.1.Key"] {
        assert!(
            !audit_call.contains_key(absent),
            "ci-audit sets no {absent}: {audit_call:?}"
        );
    }

    // moto honours DurationSeconds: the 2 h credentials say so.
    let expires_at = world.profile_status("ci")["expires_at"]
        .as_u64()
        .expect("ci has an expiry");
    let expected = now_unix() + 7200;
    assert!(
        expires_at.abs_diff(expected) < 120,
        "ci expires at {expires_at}, expected about {expected}"
    );
}
