//! Every step of a rotation failing in turn, against the scripted IAM and STS (the real SDK
//! clients, only the servers made up) and a scripted keychain, on tokio's paused time: whatever
//! fails, a working key stays stored and the error says what became of both keys.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use credd_proto::Secret;

use super::*;
use crate::clock::Clock;
use crate::lock;
use crate::testing::iam::{FakeIam, Reply as IamReply};
use crate::testing::sts::{FakeSts, Reply as StsReply, USER_ARN};

const OLD: &str = "AKIAOLDKEY0000000001";
const OLD_SECRET: &str = "old-secret-wJalrXUtnFEMI";

/// A keychain in memory whose next operations can be made to fail.
#[derive(Default)]
struct FakeVault {
    key: Mutex<Option<StoredKey>>,
    /// Which writes fail (0: the first).
    failing_writes: Mutex<Vec<usize>>,
    /// A failed write leaves the entry empty.
    wipe_on_failure: Mutex<bool>,
    /// A failed write locks the keychain (reads fail from then on), as a screen lock would.
    lock_on_failure: Mutex<bool>,
    writes: Mutex<usize>,
    /// Writes "succeed" but keep nothing (a keychain that loses what it is given).
    lose_writes: Mutex<bool>,
    fail_reads: Mutex<bool>,
}

impl FakeVault {
    fn holding(key: StoredKey) -> FakeVault {
        let vault = FakeVault::default();
        *lock::lock(&vault.key) = Some(key);
        vault
    }

    fn held(&self) -> Option<String> {
        lock::lock(&self.key)
            .as_ref()
            .map(|k| k.access_key_id.clone())
    }
}

impl KeyVault for FakeVault {
    type Error = String;

    async fn read(&self) -> Result<Option<StoredKey>, String> {
        if *lock::lock(&self.fail_reads) {
            return Err("the keychain is locked (scripted)".to_owned());
        }
        Ok(lock::lock(&self.key).clone())
    }

    async fn write(&self, key: &StoredKey) -> Result<(), String> {
        let n = {
            let mut writes = lock::lock(&self.writes);
            *writes += 1;
            *writes - 1
        };
        if lock::lock(&self.failing_writes).contains(&n) {
            if *lock::lock(&self.wipe_on_failure) {
                *lock::lock(&self.key) = None;
            }
            if *lock::lock(&self.lock_on_failure) {
                *lock::lock(&self.fail_reads) = true;
            }
            return Err("the keychain refused the write (scripted)".to_owned());
        }
        if !*lock::lock(&self.lose_writes) {
            *lock::lock(&self.key) = Some(key.clone());
        }
        Ok(())
    }
}

fn old_key() -> StoredKey {
    StoredKey {
        access_key_id: OLD.to_owned(),
        secret_access_key: Secret::new(OLD_SECRET),
    }
}

struct World {
    iam: FakeIam,
    iam_client: Iam,
    sts: FakeSts,
    sts_client: Sts,
    vault: FakeVault,
    regions: Vec<String>,
}

impl World {
    /// alice with her one key, stored in the keychain.
    fn new() -> World {
        let clock = Clock::simulated(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let (iam, iam_client) = FakeIam::new(&clock);
        iam.add_key(
            OLD,
            OLD_SECRET,
            clock.now() - Duration::from_secs(100 * 86_400),
        );
        let (sts, sts_client) = FakeSts::new(&clock);
        World {
            iam,
            iam_client,
            sts,
            sts_client,
            vault: FakeVault::holding(old_key()),
            regions: vec!["us-east-1".to_owned()],
        }
    }

    fn rotation<'a>(&'a self, mfa_session: Option<&'a AwsCredentials>) -> Rotation<'a, FakeVault> {
        Rotation {
            iam: &self.iam_client,
            sts: &self.sts_client,
            regions: &self.regions,
            vault: &self.vault,
            mfa_session,
            identity: Some(USER_ARN),
        }
    }

    /// IAM refuses `action` (403 AccessDenied) and answers every other call.
    fn deny_iam(&self, action: &'static str) {
        self.iam.script(move |call| {
            if call.action == action {
                IamReply::Error(403, "AccessDenied")
            } else {
                IamReply::Normal
            }
        });
    }

    /// A rotation's `replace` that must fail (`why` says how), and its message.
    async fn failed_replace(&self, why: &str) -> (RotateError, String) {
        let e = self.rotation(None).replace().await.expect_err(why);
        let text = e.to_string();
        (e, text)
    }

    /// The first key the fake IAM makes.
    fn new_key_id(&self) -> String {
        assert_eq!(self.iam.calls_of("CreateAccessKey").len(), 1);
        "AKIAFAKENEW000000000".to_owned()
    }
}

/// What no message or Debug output may ever contain.
fn assert_no_secret(text: &str) {
    for secret in [OLD_SECRET, "fake-new-secret"] {
        assert!(!text.contains(secret), "a secret in: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_new_key_is_checked_and_stored_before_the_old_one_is_deleted() {
    let w = World::new();
    let rotation = w.rotation(None);
    let replaced = rotation.replace().await.expect("replaced");
    let new = w.new_key_id();
    assert_eq!(replaced.old, OLD);
    assert_eq!(replaced.new.access_key_id, new);
    assert_eq!(replaced.identity, USER_ARN);
    assert!(replaced.created_at.is_some());
    assert_eq!(w.vault.held().as_deref(), Some(new.as_str()));
    assert_eq!(
        w.iam.key_ids(),
        [OLD, new.as_str()],
        "both exist until retire"
    );
    assert_eq!(rotation.retire(&replaced).await, None);
    assert_eq!(w.iam.key_ids(), [new.as_str()]);
    // The old key asked for the new one; the new one, checked by STS, deleted the old one.
    assert_eq!(w.iam.calls_of("CreateAccessKey")[0].signer, OLD);
    assert_eq!(w.sts.calls_of("GetCallerIdentity")[0].access_key_id, new);
    let delete = &w.iam.calls_of("DeleteAccessKey")[0];
    assert_eq!(
        (
            delete.signer.as_str(),
            delete.params["AccessKeyId"].as_str()
        ),
        (new.as_str(), OLD)
    );
    assert!(
        !delete.params.contains_key("UserName"),
        "the user's own keys"
    );
    assert_no_secret(&format!("{replaced:?}"));
}

#[tokio::test(start_paused = true)]
async fn an_mfa_session_signs_every_iam_call() {
    let w = World::new();
    let session = AwsCredentials {
        access_key_id: "ASIAMFASESSION000001".to_owned(),
        secret_access_key: Secret::new("session-secret"),
        session_token: Some(Secret::new("session-token")),
        expiration: None,
    };
    let rotation = w.rotation(Some(&session));
    let replaced = rotation.replace().await.expect("replaced");
    assert_eq!(rotation.retire(&replaced).await, None);
    for action in ["CreateAccessKey", "DeleteAccessKey"] {
        assert_eq!(
            w.iam.calls_of(action)[0].signer,
            "ASIAMFASESSION000001",
            "{action}"
        );
    }
    // STS checks the new key itself.
    assert_eq!(
        w.sts.calls_of("GetCallerIdentity")[0].access_key_id,
        replaced.new.access_key_id
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_key_that_takes_seconds_to_work_is_waited_for() {
    let w = World::new();
    let refusals = std::sync::atomic::AtomicUsize::new(0);
    w.sts.script(move |call| {
        if call.action == "GetCallerIdentity"
            && call.access_key_id.starts_with("AKIAFAKENEW")
            && refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3
        {
            StsReply::Error(403, "InvalidClientTokenId")
        } else {
            StsReply::Normal
        }
    });
    let started = tokio::time::Instant::now();
    let replaced = w.rotation(None).replace().await.expect("replaced");
    let waited = started.elapsed();
    assert_eq!(w.sts.calls_of("GetCallerIdentity").len(), 4);
    // 0.5 + 1 + 2 s of pauses.
    assert!(
        (Duration::from_millis(3500)..Duration::from_secs(4)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(w.vault.held(), Some(replaced.new.access_key_id));
}

#[tokio::test(start_paused = true)]
async fn a_new_key_that_never_works_is_deleted_and_the_old_one_stays() {
    let w = World::new();
    w.sts.script(|call| {
        if call.access_key_id.starts_with("AKIAFAKENEW") {
            StsReply::Error(403, "InvalidClientTokenId")
        } else {
            StsReply::Normal
        }
    });
    let started = tokio::time::Instant::now();
    let e = w
        .rotation(None)
        .replace()
        .await
        .expect_err("never verified");
    assert!(started.elapsed() <= VERIFY_FOR, "{:?}", started.elapsed());
    assert!(matches!(e, RotateError::NotVerified { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("InvalidClientTokenId"), "{text}");
    assert!(text.contains("it was deleted again"), "{text}");
    assert!(
        text.contains(&format!("the old key {OLD} stays stored and in use")),
        "{text}"
    );
    assert_eq!(w.iam.key_ids(), [OLD]);
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
    // The cleanup was signed by the old key: the new one does not work.
    assert_eq!(w.iam.calls_of("DeleteAccessKey")[0].signer, OLD);
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test(start_paused = true)]
async fn a_key_of_another_user_is_refused_at_once() {
    let w = World::new();
    let mut rotation = w.rotation(None);
    rotation.identity = Some("arn:aws:iam::111111111111:user/bob");
    let e = rotation.replace().await.expect_err("not alice's");
    assert!(
        e.to_string()
            .contains("it belongs to arn:aws:iam::111111111111:user/alice"),
        "{e}"
    );
    assert_eq!(w.sts.calls_of("GetCallerIdentity").len(), 1);
    assert_eq!(w.iam.key_ids(), [OLD]);
}

#[tokio::test(start_paused = true)]
async fn a_keychain_that_refuses_the_new_key_keeps_the_old_one_and_iam_loses_the_new_one() {
    let w = World::new();
    *lock::lock(&w.vault.failing_writes) = vec![0];
    let (e, text) = w.failed_replace("not stored").await;
    assert!(matches!(e, RotateError::NotStored { .. }), "{e:?}");
    assert!(text.contains("refused the write"), "{text}");
    assert!(text.contains("it was deleted again"), "{text}");
    assert!(
        text.contains(&format!(
            "the OS keychain still holds the old key {OLD}, which stays in use"
        )),
        "{text}"
    );
    assert_eq!(w.iam.key_ids(), [OLD]);
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test(start_paused = true)]
async fn a_keychain_that_lost_the_old_key_while_failing_gets_it_back() {
    let w = World::new();
    *lock::lock(&w.vault.failing_writes) = vec![0];
    *lock::lock(&w.vault.wipe_on_failure) = true;
    let (_, text) = w.failed_replace("not stored").await;
    assert!(
        text.contains(&format!(
            "the old key {OLD} is stored again and stays in use"
        )),
        "{text}"
    );
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
    assert_eq!(w.iam.key_ids(), [OLD]);
    // And when the keychain cannot take the old key back either, the message says so.
    let w = World::new();
    *lock::lock(&w.vault.failing_writes) = vec![0, 1];
    *lock::lock(&w.vault.wipe_on_failure) = true;
    let (e, text) = w.failed_replace("not stored").await;
    assert!(
        text.contains(&format!(
            "the OS keychain may no longer hold the old key {OLD}"
        )),
        "{text}"
    );
    assert!(
        text.contains("the daemon keeps using it until it stops"),
        "{text}"
    );
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test(start_paused = true)]
async fn a_keychain_locked_half_way_keeps_the_old_key_and_iam_loses_the_new_one() {
    let w = World::new();
    *lock::lock(&w.vault.failing_writes) = vec![0];
    *lock::lock(&w.vault.lock_on_failure) = true;
    let (_, text) = w.failed_replace("not stored").await;
    assert!(text.contains("refused the write"), "{text}");
    assert!(text.contains("it was deleted again"), "{text}");
    assert!(
        text.contains(&format!(
            "the OS keychain cannot be read now (the keychain is locked (scripted)); it should \
             still hold the old key {OLD}"
        )),
        "{text}"
    );
    assert_eq!(w.iam.key_ids(), [OLD]);
    assert_eq!(
        *lock::lock(&w.vault.writes),
        1,
        "no write into a locked keychain"
    );
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
}

#[tokio::test(start_paused = true)]
async fn a_readback_of_another_key_restores_the_old_one() {
    let w = World::new();
    // Writes keep nothing: the keychain still gives the old key back after the new one's
    // write, so the new one is not stored.
    *lock::lock(&w.vault.lose_writes) = true;
    let (_, text) = w.failed_replace("not stored").await;
    assert!(text.contains("reading it back gave another key"), "{text}");
    assert!(
        text.contains(&format!("still holds the old key {OLD}")),
        "{text}"
    );
    assert_eq!(w.iam.key_ids(), [OLD]);
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
}

#[tokio::test(start_paused = true)]
async fn when_even_the_cleanup_fails_the_message_says_which_key_to_delete() {
    let w = World::new();
    *lock::lock(&w.vault.failing_writes) = vec![0];
    w.deny_iam("DeleteAccessKey");
    let (_, text) = w.failed_replace("not stored").await;
    let new = w.new_key_id();
    assert!(
        text.contains(&format!("aws iam delete-access-key --access-key-id {new}")),
        "{text}"
    );
    assert!(text.contains("iam:DeleteAccessKey"), "{text}");
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
}

#[tokio::test(start_paused = true)]
async fn an_old_key_that_cannot_be_deleted_leaves_the_new_one_stored_and_a_warning() {
    let w = World::new();
    w.deny_iam("DeleteAccessKey");
    let rotation = w.rotation(None);
    let replaced = rotation.replace().await.expect("replaced");
    let warning = rotation.retire(&replaced).await.expect("a warning");
    assert!(
        warning.contains(&format!("the old key {OLD} is still active in IAM")),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("aws iam delete-access-key --access-key-id {OLD}")),
        "{warning}"
    );
    assert_eq!(w.vault.held(), Some(replaced.new.access_key_id.clone()));
    assert_eq!(w.iam.key_ids().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn two_keys_already_is_a_clear_error_and_nothing_changes() {
    let w = World::new();
    w.iam
        .add_key("AKIASPAREKEY00000002", "spare", SystemTime::UNIX_EPOCH);
    let (e, text) = w.failed_replace("limit").await;
    assert!(
        matches!(e, RotateError::Create(IamError::LimitExceeded { .. })),
        "{e:?}"
    );
    assert!(
        text.starts_with("no new key was made and nothing changed: "),
        "{text}"
    );
    assert!(text.contains(&format!("{OLD} (used by credd")), "{text}");
    assert!(
        text.contains("aws iam delete-access-key --access-key-id AKIASPAREKEY00000002"),
        "{text}"
    );
    assert_eq!(w.iam.key_ids(), [OLD, "AKIASPAREKEY00000002"]);
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
    assert!(w.sts.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn iam_refusing_says_which_permission_is_missing() {
    let w = World::new();
    w.iam.script(|_| IamReply::Error(403, "AccessDenied"));
    let (_, text) = w.failed_replace("denied").await;
    assert!(text.contains("IAM denied iam:CreateAccessKey"), "{text}");
    assert_eq!(w.vault.held().as_deref(), Some(OLD));
    w.iam.script(|_| IamReply::Unreachable);
    let e = w.rotation(None).replace().await.expect_err("down");
    assert!(
        matches!(e, RotateError::Create(IamError::Unreachable { .. })),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_to_rotate_without_a_stored_key() {
    let w = World::new();
    *lock::lock(&w.vault.key) = None;
    let e = w.rotation(None).replace().await.expect_err("no key");
    assert!(matches!(e, RotateError::NoKey), "{e:?}");
    *lock::lock(&w.vault.fail_reads) = true;
    let e = w.rotation(None).replace().await.expect_err("locked");
    assert!(e.to_string().contains("locked (scripted)"), "{e}");
    assert!(w.iam.calls_of("CreateAccessKey").is_empty());
}
