//! `credd key rotate` against moto with request authentication on (a deleted key is really
//! refused) and a real GNOME Keyring on a private session bus: the new key is made, checked,
//! stored and read back before the old one is deleted, the daemon moves its session onto it and
//! keeps serving SDKs; and when a step fails (IAM refusing the delete, the keychain locked half
//! way, no room for a new key) a working key is still stored and the message says what to do.
//! IAM calls go through the STS proxy (moto serves IAM on the same port), which refuses or holds
//! the chosen action.

use std::process::Command;
use std::time::{Duration, Instant};

use credd_tests::keyring::Keyring;
use credd_tests::moto::AwsKeys;
use credd_tests::stack::{ADMIN, Access, READY_DEADLINE, STAGING_AND_AUDIT, Stack, now_unix};
use credd_tests::wait_until;

/// The keychain entry as `secret-tool` finds it.
const ENTRY: &[(&str, &str)] = &[("service", "credd"), ("username", "aws-access-key")];

/// A rotation against moto: the STS check of the new key answers at once there.
const ROTATE_DEADLINE: Duration = Duration::from_secs(20);

/// `[access]` reading the key from the OS keychain (the default without aws_profile).
fn keychain_config() -> String {
    format!(
        "default_profile = \"staging\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\n\
         source = \"iam-user\"\n{STAGING_AND_AUDIT}"
    )
}

/// alice (moto, auth on, through the proxy) with her key in the keychain and nowhere else, and
/// the daemon logged in with it.
fn rotation_stack() -> (Stack, Keyring) {
    let mut stack = Stack::builder().access(Access::Key).build();
    let keyring = Keyring::start(&mut stack.world);
    let alice = stack.user().clone();
    std::fs::remove_file(stack.world.credentials_file()).expect("no key in a file here");
    keyring.store("credd", ENTRY, &stored_json(&alice.keys()));
    stack.world.write_config(&keychain_config());
    stack.world.start_daemon();
    stack.wait_logged_in(READY_DEADLINE);
    (stack, keyring)
}

fn stored_json(keys: &AwsKeys) -> String {
    serde_json::json!({
        "AccessKeyId": keys.access_key_id,
        "SecretAccessKey": keys.secret_access_key,
    })
    .to_string()
}

/// The key the keychain holds, as `secret-tool` reads it.
fn keychain_key(keyring: &Keyring) -> AwsKeys {
    let json = keyring.lookup(ENTRY).expect("secret-tool finds the entry");
    let entry: serde_json::Value = serde_json::from_str(&json).expect("the entry is JSON");
    AwsKeys {
        access_key_id: entry["AccessKeyId"].as_str().expect("an ID").to_owned(),
        secret_access_key: entry["SecretAccessKey"]
            .as_str()
            .expect("a secret")
            .to_owned(),
        session_token: None,
    }
}

/// IAM through boto3 (the moto venv's), signed by `keys`, straight at moto: `create` makes a key
/// (its ID printed), `list` prints the user's key IDs.
fn iam(stack: &Stack, keys: &AwsKeys, call: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, os, sys
import boto3
iam = boto3.client("iam", endpoint_url=os.environ["IAM_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id=os.environ["KEY_ID"],
                   aws_secret_access_key=os.environ["SECRET"])
if sys.argv[1] == "create":
    print(json.dumps(iam.create_access_key()["AccessKey"]["AccessKeyId"]))
else:
    print(json.dumps([k["AccessKeyId"] for k in iam.list_access_keys()["AccessKeyMetadata"]]))
"#;
    let moto = stack.moto();
    let out = Command::new(moto.python())
        .args(["-c", SCRIPT, call])
        .env_clear()
        .env("IAM_ENDPOINT", moto.endpoint())
        .env("KEY_ID", &keys.access_key_id)
        .env("SECRET", &keys.secret_access_key)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "boto3 iam {call}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("boto3 printed JSON")
}

/// Who moto says `keys` are (GetCallerIdentity), or the error.
fn caller(stack: &Stack, keys: &AwsKeys) -> Result<String, String> {
    stack
        .moto()
        .caller_arn(&keys.access_key_id, &keys.secret_access_key, None)
}

/// `credd --json key rotate`, and how long it took.
fn rotate(stack: &Stack) -> (credd_tests::world::CmdOutput, Duration) {
    let start = Instant::now();
    let out = stack.world.credd(&["--json", "key", "rotate"]);
    (out, start.elapsed())
}

#[test]
fn rotate_replaces_the_key_in_iam_and_the_keychain_and_sdks_keep_being_served() {
    let (stack, keyring) = rotation_stack();
    let alice = stack.user().clone();
    let staging = credd_tests::stack::assumed_role_arn(ADMIN, "alice");
    assert_eq!(stack.served_identity("staging"), Ok(staging.clone()));

    // Status shows the key: where it is kept, which one, and (asked of IAM in the background)
    // its age: moto made it just now, so no warning.
    wait_until(READY_DEADLINE, "the key's age in status", || {
        stack.world.status()["access"]["key"]["created_at"].is_u64()
    });
    let status = stack.world.status();
    let key = &status["access"]["key"];
    assert_eq!(
        key["stored_in"], "keychain: Secret Service (default collection): credd/aws-access-key",
        "{status:#}"
    );
    assert_eq!(key["access_key_id"], alice.access_key_id, "{status:#}");
    let age = now_unix().saturating_sub(key["created_at"].as_u64().unwrap_or_default());
    assert!(age < 600, "moto made the key just now: {status:#}");
    assert_eq!(key["warning"], serde_json::Value::Null, "{status:#}");
    let text = stack.world.credd(&["status"]);
    assert!(
        text.assert_success().stdout.contains(&format!(
            "key:\n  stored   keychain: Secret Service (default collection): \
             credd/aws-access-key\n  id       {}\n  age      ",
            alice.access_key_id
        )),
        "{text}"
    );

    let (out, took) = rotate(&stack);
    let report = out.assert_success().json();
    eprintln!("credd key rotate took {took:?} against moto (through the proxy)");
    assert!(took < ROTATE_DEADLINE, "{took:?}");
    let new = keychain_key(&keyring);
    assert_ne!(new.access_key_id, alice.access_key_id);
    assert_eq!(report["access_key_id"], new.access_key_id, "{report:#}");
    assert_eq!(report["previous"], alice.access_key_id, "{report:#}");
    assert_eq!(report["identity"], alice.arn, "{report:#}");
    assert_eq!(
        report["keychain"],
        "Secret Service (default collection): credd/aws-access-key"
    );
    assert_eq!(report["warning"], serde_json::Value::Null, "{report:#}");

    // moto refuses the old key now and takes the new one; IAM lists only the new one.
    let refused = caller(&stack, &alice.keys()).expect_err("the old key is deleted");
    assert!(refused.contains("InvalidClientTokenId"), "{refused}");
    assert_eq!(caller(&stack, &new), Ok(alice.arn.clone()));
    assert_eq!(
        iam(&stack, &new, "list"),
        serde_json::json!([new.access_key_id])
    );

    // The old key made the new one; the new one (checked by STS first) deleted the old one;
    // the daemon logged in with it before that.
    let proxy = stack.proxy();
    assert_eq!(
        proxy.signers("CreateAccessKey"),
        [alice.access_key_id.as_str()]
    );
    assert_eq!(
        proxy.signers("DeleteAccessKey"),
        [new.access_key_id.as_str()]
    );
    assert_eq!(
        proxy.params("DeleteAccessKey")[0]["AccessKeyId"],
        alice.access_key_id
    );
    let identity_signers = proxy.signers("GetCallerIdentity");
    assert!(
        identity_signers
            .iter()
            .filter(|s| **s == new.access_key_id)
            .count()
            >= 2,
        "the STS check and the new login: {identity_signers:?}"
    );

    // Status shows the new key, and SDKs keep being served.
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], true, "{status:#}");
    assert_eq!(
        status["access"]["key"]["access_key_id"], new.access_key_id,
        "{status:#}"
    );
    assert!(status["access"]["key"]["created_at"].is_u64(), "{status:#}");
    assert_eq!(stack.served_identity("staging"), Ok(staging.clone()));
    let (rust, boto3) = stack.sdk_callers("/v1/credentials/staging");
    assert_eq!(
        (rust.as_str(), boto3.as_str()),
        (staging.as_str(), staging.as_str())
    );

    // Fresh credentials are signed by the new key: a new login (which reads the keychain) and
    // the next AssumeRole.
    stack.world.credd(&["logout"]).assert_success();
    proxy.reset_counts();
    stack.world.credd(&["login"]).assert_success();
    assert_eq!(stack.served_identity("prod-audit").map(|_| ()), Ok(()));
    assert!(
        proxy.signers("AssumeRole").contains(&new.access_key_id),
        "{:?}",
        proxy.signers("AssumeRole")
    );
    assert!(!stack.world.daemon_log().contains(&new.secret_access_key));
    assert!(!stack.world.daemon_log().contains(&alice.secret_access_key));
}

#[test]
fn an_old_key_iam_will_not_delete_stays_active_and_the_report_says_how_to_delete_it() {
    let (stack, keyring) = rotation_stack();
    let alice = stack.user().clone();
    let proxy = stack.proxy();
    proxy.reject_action(
        "DeleteAccessKey",
        403,
        "AccessDenied",
        "User: alice is not authorized to perform: iam:DeleteAccessKey",
    );
    let out = stack.world.credd(&["key", "rotate"]);
    out.assert_success();
    let new = keychain_key(&keyring);
    assert_ne!(new.access_key_id, alice.access_key_id);
    assert!(
        out.stdout.contains(&format!(
            "rotated: stored key {} of {}",
            new.access_key_id, alice.arn
        )),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: the old key {} is still active in IAM (IAM denied iam:DeleteAccessKey",
            alice.access_key_id
        )),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "`aws iam delete-access-key --access-key-id {}`",
            alice.access_key_id
        )),
        "{out}"
    );
    // Both keys work; the stored one is the new one, and the daemon uses it.
    assert_eq!(caller(&stack, &alice.keys()), Ok(alice.arn.clone()));
    assert_eq!(caller(&stack, &new), Ok(alice.arn.clone()));
    let status = stack.world.status();
    assert_eq!(
        status["access"]["key"]["access_key_id"], new.access_key_id,
        "{status:#}"
    );
    assert!(stack.served_identity("staging").is_ok());

    assert_eq!(
        iam(&stack, &new, "list"),
        serde_json::json!([alice.access_key_id, new.access_key_id])
    );
}

#[test]
fn a_keychain_locked_between_the_steps_keeps_the_old_key_and_the_new_one_is_deleted() {
    let (mut stack, keyring) = rotation_stack();
    let alice = stack.user().clone();
    let proxy = stack.proxy();
    // The STS check of the new key is held: the keychain is locked meanwhile, so the new key
    // cannot be stored.
    proxy.delay_action("GetCallerIdentity", Duration::from_secs(3));
    let rotation = stack.world.spawn_credd(&["key", "rotate"]);
    wait_until(READY_DEADLINE, "CreateAccessKey", || {
        proxy.forwarded("CreateAccessKey") == 1
    });
    keyring.lock();
    // Meanwhile a second rotation is refused at once.
    let second = stack.world.credd(&["key", "rotate"]);
    second.assert_code(1);
    assert!(
        second
            .stderr
            .contains("another `credd key` command is under way"),
        "{second}"
    );
    // And so is any other change of the stored key: it would race the rotation's own.
    let remove = stack.world.credd(&["key", "remove"]);
    remove.assert_code(1);
    assert!(
        remove
            .stderr
            .contains("another `credd key` command is under way"),
        "{remove}"
    );
    let out = rotation.wait(ROTATE_DEADLINE + Duration::from_secs(10));
    proxy.pass_action("GetCallerIdentity");
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("could not be stored in the OS keychain")
            && out.stderr.contains("is locked"),
        "{out}"
    );
    assert!(out.stderr.contains("it was deleted again"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "it should still hold the old key {}",
            alice.access_key_id
        )),
        "{out}"
    );
    // IAM: only the old key, which still works.
    assert_eq!(
        iam(&stack, &alice.keys(), "list"),
        serde_json::json!([alice.access_key_id])
    );
    assert_eq!(caller(&stack, &alice.keys()), Ok(alice.arn.clone()));
    // The daemon keeps serving with the old key.
    assert!(stack.served_identity("staging").is_ok());
    // The keychain, unlocked again (a new GNOME Keyring on the same keyrings, as after a new
    // desktop login), still holds the old key.
    drop(keyring);
    let keyring = Keyring::start(&mut stack.world);
    assert_eq!(keychain_key(&keyring), alice.keys());
}

#[test]
fn two_keys_already_is_refused_naming_the_one_to_delete_and_nothing_changes() {
    let (stack, keyring) = rotation_stack();
    let alice = stack.user().clone();
    let spare = iam(&stack, &alice.keys(), "create");
    let spare = spare.as_str().expect("the spare key's ID").to_owned();
    let out = stack.world.credd(&["key", "rotate"]);
    out.assert_code(1);
    for expected in [
        "no new key was made and nothing changed: the IAM user already has two access keys",
        &format!("{} (used by credd", alice.access_key_id),
        &format!(
            "Delete the unused one, {spare}, in the IAM console or with `aws iam delete-access-key --access-key-id {spare}`"
        ),
        "then run `credd key rotate` again",
    ] {
        assert!(out.stderr.contains(expected), "{expected:?} in {out}");
    }
    assert_eq!(keychain_key(&keyring), alice.keys());
    assert_eq!(
        iam(&stack, &alice.keys(), "list"),
        serde_json::json!([alice.access_key_id, spare])
    );
    assert_eq!(stack.proxy().calls("DeleteAccessKey"), 0);
    assert!(stack.served_identity("staging").is_ok());
}

#[test]
fn a_key_in_the_credentials_file_is_imported_before_it_is_rotated() {
    let stack = Stack::start(Access::Key, Default::default());
    stack.wait_logged_in(READY_DEADLINE);
    let out = stack.world.credd(&["key", "rotate"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "this config reads it from file: {} [access]: run `credd key import`",
            stack.world.credentials_file().display()
        )),
        "{out}"
    );
    assert_eq!(stack.proxy().calls("CreateAccessKey"), 0);
    // The key's age is shown for a key in a file too.
    wait_until(READY_DEADLINE, "the key's age in status", || {
        stack.world.status()["access"]["key"]["created_at"].is_u64()
    });
    let status = stack.world.status();
    assert_eq!(
        status["access"]["key"]["stored_in"],
        format!(
            "file: {} [access]",
            stack.world.credentials_file().display()
        ),
        "{status:#}"
    );
}
