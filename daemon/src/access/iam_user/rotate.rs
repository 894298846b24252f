//! `credd key rotate`: a new access key for the IAM user, made, checked with STS and stored (and
//! read back) before the old one is deleted, so whichever step fails a working key stays stored.
//!
//! [`Rotation::replace`] makes, checks and stores the new key; the engine then moves its session
//! onto it, and [`Rotation::retire`] deletes the old key. The keychain is reached through
//! [`KeyVault`], which unit tests replace.

use std::future::Future;
use std::time::{Duration, SystemTime};

use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::caller_identity;
use super::iam::{Iam, IamError};
use super::keychain::{Keychain, StoredKey};
use crate::creds::AwsCredentials;
use crate::sts::Sts;

/// A new IAM key takes a few seconds to be accepted by STS: GetCallerIdentity with it is tried
/// again for this long, waiting [`VERIFY_FIRST_PAUSE`] then twice as long each time up to
/// [`VERIFY_MAX_PAUSE`] (0.5 + 1 + 2 + 4 + 4... s: 10 tries in 30 s).
pub const VERIFY_FOR: Duration = Duration::from_secs(30);
const VERIFY_FIRST_PAUSE: Duration = Duration::from_millis(500);
const VERIFY_MAX_PAUSE: Duration = Duration::from_secs(4);

/// Where the long-lived key is kept: the OS keychain, or a scripted one in unit tests.
pub trait KeyVault: Sync {
    type Error: std::fmt::Display;
    fn read(&self) -> impl Future<Output = Result<Option<StoredKey>, Self::Error>> + Send;
    fn write(&self, key: &StoredKey) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl KeyVault for Keychain {
    type Error = super::keychain::KeychainError;

    fn read(&self) -> impl Future<Output = Result<Option<StoredKey>, Self::Error>> + Send {
        Keychain::read(self)
    }

    fn write(&self, key: &StoredKey) -> impl Future<Output = Result<(), Self::Error>> + Send {
        Keychain::write(self, key)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RotateError {
    #[error("another `credd key` command is under way: try again when it has finished")]
    Busy,
    /// Only a key in the OS keychain is rotated: credd does not rewrite the shared credentials
    /// file.
    #[error(
        "`credd key rotate` rotates the key kept in the OS keychain, and this config reads it \
         from {0}: run `credd key import` first, then remove aws_profile (and key = \"file\") \
         from [access] to use the keychain"
    )]
    NotInKeychain(String),
    #[error("`credd key rotate` rotates an IAM user's key, and the access source is {0:?}")]
    NotIamUser(String),
    /// The engine was built without IAM (unit tests that do not script it).
    #[error("IAM is not available to this daemon")]
    NoIam,
    #[error(
        "the OS keychain holds no key to rotate: store one with `credd key add` or \
         `credd key import` first"
    )]
    NoKey,
    #[error("could not read the key to rotate from the OS keychain: {0}")]
    KeychainRead(String),
    /// CreateAccessKey failed: nothing changed.
    #[error("no new key was made and nothing changed: {0}")]
    Create(IamError),
    #[error(
        "the new key {new} did not work ({failure}); {cleanup}; the old key {old} stays stored \
         and in use"
    )]
    NotVerified {
        new: String,
        old: String,
        failure: String,
        cleanup: String,
    },
    #[error(
        "the new key {new} could not be stored in the OS keychain ({detail}); {cleanup}; {kept}"
    )]
    NotStored {
        new: String,
        detail: String,
        cleanup: String,
        /// What the keychain holds now.
        kept: String,
    },
}

/// The new key, checked and stored; the old one still exists in IAM.
#[derive(Debug)]
pub struct Replaced {
    pub old: String,
    pub new: StoredKey,
    /// Whose key it is, as STS answered with it.
    pub identity: String,
    /// When IAM made it.
    pub created_at: Option<SystemTime>,
}

/// One rotation's view of the world.
pub struct Rotation<'a, V> {
    pub iam: &'a Iam,
    pub sts: &'a Sts,
    pub regions: &'a [String],
    pub vault: &'a V,
    /// The MFA session, when there is one: it signs the IAM calls (organizations often allow IAM
    /// self-management only with MFA); else the keys themselves do.
    pub mfa_session: Option<&'a AwsCredentials>,
    /// Who the user is, when known: the new key must belong to the same user.
    pub identity: Option<&'a str>,
}

fn same_key(a: &StoredKey, b: &StoredKey) -> bool {
    a.access_key_id == b.access_key_id
        && bool::from(
            a.secret_access_key
                .expose()
                .as_bytes()
                .ct_eq(b.secret_access_key.expose().as_bytes()),
        )
}

impl<V: KeyVault> Rotation<'_, V> {
    fn sts_region(&self) -> Option<&str> {
        self.regions.first().map(String::as_str)
    }

    /// Reads the current key, makes a new one, checks it with STS, stores it and reads it back.
    /// On any failure after the new key exists, it is deleted again and the old one stays stored.
    pub async fn replace(&self) -> Result<Replaced, RotateError> {
        let old = match self.vault.read().await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(RotateError::NoKey),
            Err(e) => return Err(RotateError::KeychainRead(e.to_string())),
        };
        let old_creds = old.credentials();
        let signer = self.mfa_session.unwrap_or(&old_creds);
        let made = self
            .iam
            .create_access_key(self.sts_region(), signer, Some(&old.access_key_id))
            .await
            .map_err(RotateError::Create)?;
        tracing::info!(new = %made.access_key_id, old = %old.access_key_id, "created a new access key");
        let new = StoredKey {
            access_key_id: made.access_key_id.clone(),
            secret_access_key: made.secret_access_key.clone(),
        };
        let identity = match self.verify(&new.credentials()).await {
            Ok(arn) => arn,
            Err(failure) => {
                let cleanup = self.discard(signer, &new.access_key_id).await;
                return Err(RotateError::NotVerified {
                    new: new.access_key_id.clone(),
                    old: old.access_key_id.clone(),
                    failure,
                    cleanup,
                });
            }
        };
        if let Err(detail) = self.store(&new).await {
            let kept = self.restore(&old).await;
            let cleanup = self.discard(signer, &new.access_key_id).await;
            return Err(RotateError::NotStored {
                new: new.access_key_id.clone(),
                detail,
                cleanup,
                kept,
            });
        }
        tracing::info!(new = %new.access_key_id, "the new access key works and is stored");
        Ok(Replaced {
            old: old.access_key_id.clone(),
            new,
            identity,
            created_at: made.created_at,
        })
    }

    /// Deletes the old key, signed by the MFA session or the new key. `None` when it is gone;
    /// else what the user must do about it.
    pub async fn retire(&self, replaced: &Replaced) -> Option<String> {
        let new_creds = replaced.new.credentials();
        let signer = self.mfa_session.unwrap_or(&new_creds);
        match self
            .iam
            .delete_access_key(self.sts_region(), signer, &replaced.old)
            .await
        {
            Ok(()) => {
                tracing::info!(old = %replaced.old, "deleted the old access key");
                None
            }
            Err(e) => {
                tracing::error!(old = %replaced.old, error = %e, "could not delete the old access key");
                Some(old_key_still_active(&replaced.old, &e))
            }
        }
    }

    /// GetCallerIdentity with the new key until it works or [`VERIFY_FOR`] has passed.
    /// Ok(the ARN), or Err(why not).
    async fn verify(&self, creds: &AwsCredentials) -> Result<String, String> {
        let deadline = Instant::now() + VERIFY_FOR;
        let mut pause = VERIFY_FIRST_PAUSE;
        loop {
            let failure = match caller_identity(self.sts, self.regions, creds).await {
                Ok((arn, _)) => match self.identity {
                    Some(expected) if expected != arn => {
                        // Not worth waiting for: the key is someone else's.
                        return Err(format!("it belongs to {arn}, not to {expected}"));
                    }
                    _ => return Ok(arn),
                },
                Err(f) => f,
            };
            if Instant::now() + pause > deadline {
                return Err(format!(
                    "STS still refused it after {} s: {failure}",
                    VERIFY_FOR.as_secs()
                ));
            }
            tracing::info!(error = %failure, retry_in_ms = pause.as_millis() as u64, "the new key does not work yet (IAM keys take a few seconds to reach STS)");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(VERIFY_MAX_PAUSE);
        }
    }

    /// Writes `new` and reads it back: only a keychain that gives the key back holds it.
    async fn store(&self, new: &StoredKey) -> Result<(), String> {
        let written = self.vault.write(new).await;
        match (written, self.vault.read().await) {
            (_, Ok(Some(back))) if same_key(&back, new) => Ok(()),
            (Err(e), _) => Err(e.to_string()),
            (Ok(()), Err(e)) => Err(format!("reading it back failed: {e}")),
            (Ok(()), Ok(_)) => Err("reading it back gave another key".to_owned()),
        }
    }

    /// After a failed store: makes sure the keychain holds the old key again. Says what it holds.
    async fn restore(&self, old: &StoredKey) -> String {
        match self.vault.read().await {
            Ok(Some(back)) if same_key(&back, old) => {
                return format!(
                    "the OS keychain still holds the old key {}, which stays in use",
                    old.access_key_id
                );
            }
            Ok(_) => {}
            // Locked, or gone: nothing can be checked or written now, and a write that failed
            // left the entry as it was.
            Err(e) => {
                return format!(
                    "the OS keychain cannot be read now ({e}); it should still hold the old key \
                     {}, which a failed write leaves as it was: the daemon keeps using it",
                    old.access_key_id
                );
            }
        }
        match self.store(old).await {
            Ok(()) => format!(
                "the old key {} is stored again and stays in use",
                old.access_key_id
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not store the old key again");
                format!(
                    "the OS keychain may no longer hold the old key {} ({e}): the daemon keeps \
                     using it until it stops; fix the keychain, then store the key again with \
                     `credd key add`",
                    old.access_key_id
                )
            }
        }
    }

    /// Best effort: deletes a new key that is of no use. Says what became of it.
    async fn discard(&self, signer: &AwsCredentials, new: &str) -> String {
        match self
            .iam
            .delete_access_key(self.sts_region(), signer, new)
            .await
        {
            Ok(()) => "it was deleted again".to_owned(),
            Err(e) => {
                tracing::error!(new = %new, error = %e, "could not delete the unused new key");
                format!(
                    "it could not be deleted again ({e}): delete it in the IAM console or with \
                     `aws iam delete-access-key --access-key-id {new}`"
                )
            }
        }
    }
}

/// The warning when the old key outlives a rotation.
pub fn old_key_still_active(old: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "the old key {old} is still active in IAM ({e}): delete it in the IAM console or with \
         `aws iam delete-access-key --access-key-id {old}`"
    )
}

#[cfg(test)]
mod tests;
