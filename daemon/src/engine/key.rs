//! The engine's side of the IAM user's long-lived key: it drives the key's
//! [`KeyAge`](crate::access::iam_user::age::KeyAge) (a look every few seconds, after each login),
//! and runs `credd key rotate` against its STS, IAM and session, moving a key-only session onto
//! the new key before the old one is deleted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use credd_proto::{KeyInfo, KeyReport};

use super::Engine;
use crate::access::AccessSession;
use crate::access::iam_user::rotate::{RotateError, Rotation};
use crate::config::KeySource;

/// How often the watch looks for a new login: a counter compared, IAM asked only after a login
/// or when a recheck is due.
const KEY_WATCH: Duration = Duration::from_secs(5);

impl Engine {
    /// `iam-user`: the long-lived key for status (no call made: what the background watch and
    /// the last rotation learned). `None` for other sources.
    pub fn key_info(&self) -> Option<KeyInfo> {
        let source = self.source();
        Some(self.inner.key.info(source.iam_user()?, self.now()))
    }

    /// Every [`KEY_WATCH`]: after a login, learns which key it read and asks IAM how old it is;
    /// then asks again once a day. Runs for the engine's life.
    pub(super) async fn watch_key(self) {
        loop {
            self.look_at_key().await;
            self.inner.clock.sleep(KEY_WATCH).await;
        }
    }

    async fn look_at_key(&self) {
        let source = self.source();
        let (Some(user), Some(session)) = (source.iam_user(), self.session()) else {
            return;
        };
        let logins = self.inner.logins.load(Ordering::SeqCst);
        let config = self.config();
        let region = config.access.regions.first().map(String::as_str);
        (self.inner.key)
            .look(user, &session, logins, region, self.now())
            .await;
    }

    /// Logs in again (the login reads the new key from the keychain) until the session signs
    /// with `key_id`: a login already under way may have read the old key just before the new
    /// one was stored, and a login that waited for it takes its session; the next one reads the
    /// keychain afresh.
    async fn move_session_to(&self, key_id: &str) -> Result<(), String> {
        for _ in 0..2 {
            self.login_direct(None).await.map_err(|e| e.to_string())?;
            let signs_with_new = self
                .session()
                .and_then(|s| s.signing().map(|k| k.access_key_id == key_id))
                .unwrap_or(false);
            if signs_with_new {
                return Ok(());
            }
        }
        Err("the session still signs with another key".to_owned())
    }

    /// The right to change the stored key (`credd key add|import|rotate|remove`), unless another
    /// such change is under way.
    pub fn try_key_change(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.inner.key.try_change()
    }

    /// `credd key rotate`: a new key made, checked, stored and read back; a key-only session
    /// moved onto it; then the old key deleted. One at a time.
    pub async fn rotate_key(&self) -> Result<KeyReport, RotateError> {
        let _one = self.try_key_change().ok_or(RotateError::Busy)?;
        let config = self.config();
        let source = self.source();
        let Some(user) = source.iam_user() else {
            return Err(RotateError::NotIamUser(
                config.access.kind().as_str().to_owned(),
            ));
        };
        if let KeySource::File { .. } = user.key {
            return Err(RotateError::NotInKeychain(user.stored_in()));
        }
        let Some(iam) = self.inner.key.iam() else {
            return Err(RotateError::NoIam);
        };
        let keychain = user.keychain.clone();
        let session = self.session();
        let rotation = Rotation {
            iam,
            sts: &self.inner.sts,
            regions: &config.access.regions,
            vault: &keychain,
            mfa_session: session
                .as_deref()
                .filter(|s| s.mfa)
                .and_then(AccessSession::signing),
            identity: session.as_deref().and_then(|s| s.identity_arn.as_deref()),
        };
        let replaced = rotation.replace().await?;
        let new_id = replaced.new.access_key_id.clone();
        (self.inner.key).rotated(new_id.clone(), replaced.created_at, self.now());
        // Without MFA the key is the session: move it onto the new key before the old one goes,
        // so no refresh is ever signed by a deleted key. An MFA session keeps going.
        let moved = if user.mfa_serial.is_none() {
            self.move_session_to(&new_id).await
        } else {
            Ok(())
        };
        let warning = match moved {
            Ok(()) => rotation.retire(&replaced).await,
            Err(e) => {
                tracing::error!(error = %e, "could not log in with the new key; the old key stays active");
                Some(format!(
                    "the new key is stored, but the daemon could not log in with it yet ({e}), \
                     so the old key {old} was kept active for the session in use: once `credd \
                     status` shows the new key logged in, delete the old one in the IAM console \
                     or with `aws iam delete-access-key --access-key-id {old}`",
                    old = replaced.old
                ))
            }
        };
        tracing::info!(new = %new_id, old = %replaced.old, "rotated the access key");
        Ok(KeyReport {
            access_key_id: new_id,
            identity: replaced.identity.clone(),
            keychain: keychain.describe(),
            previous: Some(replaced.old.clone()),
            imported_from: None,
            deleted_from_file: false,
            warning,
        })
    }
}

#[cfg(test)]
mod tests;
