//! The IAM user's long-lived key as status shows it: where it is kept, which one the daemon read,
//! and how old it is (iam:ListAccessKeys, asked in the background after a login and then once a
//! day, never inside a request); and `credd key rotate` run against the engine's STS, IAM and
//! session, which moves a key-only session onto the new key before the old one is deleted.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use credd_proto::{KeyInfo, KeyReport};

use super::Engine;
use crate::access::AccessSession;
use crate::access::iam_user::iam::{Iam, IamError};
use crate::access::iam_user::rotate::{RotateError, Rotation};
use crate::clock::unix;
use crate::config::KeySource;
use crate::lock;

/// Past this age status and the log say to rotate the key: the 90 days of the CIS AWS
/// benchmark (a key made on 1 March is flagged from 30 May).
pub const KEY_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// The key's creation date is asked again this long after IAM last answered, so a key crosses
/// [`KEY_MAX_AGE`] in status within a day of doing so, however long the session lasts.
const AGE_RECHECK: Duration = Duration::from_secs(24 * 3600);
/// After IAM could not answer (offline, throttled), the next try.
const AGE_RETRY: Duration = Duration::from_secs(15 * 60);
/// How often the watch looks for a new login: a counter compared, IAM asked only after a login
/// or when a recheck is due.
const KEY_WATCH: Duration = Duration::from_secs(5);

/// The status warning for a key made at `created_at`, once it is past [`KEY_MAX_AGE`].
pub fn age_warning(created_at: SystemTime, now: SystemTime) -> Option<String> {
    let age = now.duration_since(created_at).ok()?;
    (age > KEY_MAX_AGE).then(|| {
        format!(
            "the key is {} days old: run `credd key rotate`",
            age.as_secs() / 86_400
        )
    })
}

/// What the engine knows of the long-lived key.
#[derive(Default)]
struct Known {
    /// The key the daemon last read.
    access_key_id: Option<String>,
    /// When IAM made that key, once ListAccessKeys said.
    created_at: Option<SystemTime>,
    /// When to ask IAM again; `None`: at the next look.
    next_ask: Option<SystemTime>,
    /// The engine's login count when the watch last looked.
    logins_seen: u64,
    /// Logged once: the user may not call iam:ListAccessKeys.
    denied_noted: bool,
    /// The key whose age the log warned of.
    warned: Option<String>,
}

/// The engine's part for the key: IAM, what is known, and one rotation at a time.
pub(super) struct KeyWatch {
    /// `None`: no IAM (unit tests that do not script it): no age, no rotation.
    iam: Option<Iam>,
    known: std::sync::Mutex<Known>,
    /// One `credd key` change at a time: each reads what the keychain holds, then replaces it.
    changing: tokio::sync::Mutex<()>,
}

impl KeyWatch {
    pub(super) fn new(iam: Option<Iam>) -> KeyWatch {
        if let Some(url) = iam.as_ref().and_then(Iam::endpoint_override) {
            tracing::info!(endpoint = %url, "IAM endpoint overridden by the environment");
        }
        KeyWatch {
            iam,
            known: std::sync::Mutex::new(Known::default()),
            changing: tokio::sync::Mutex::new(()),
        }
    }
}

impl Engine {
    /// `iam-user`: the long-lived key for status (no call made: what the background watch and
    /// the last rotation learned). `None` for other sources.
    pub fn key_info(&self) -> Option<KeyInfo> {
        let source = self.source();
        let user = source.iam_user()?;
        let known = lock::lock(&self.inner.key.known);
        Some(KeyInfo {
            stored_in: user.stored_in(),
            access_key_id: known.access_key_id.clone(),
            created_at: known.created_at.map(unix),
            warning: known
                .created_at
                .and_then(|t| age_warning(t, self.inner.clock.now())),
        })
    }

    /// The long-lived key behind `session`, as far as the engine can tell: a session without
    /// MFA signs with the key itself; an MFA session's key is the one its login read.
    fn key_behind(&self, session: &AccessSession) -> Option<String> {
        if !session.mfa {
            return session.signing().map(|k| k.access_key_id.clone());
        }
        self.source().iam_user()?.last_key_id()
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
        let Some(iam) = &self.inner.key.iam else {
            return;
        };
        let config = self.config();
        if config.access.iam_user().is_none() {
            return;
        }
        let Some(session) = self.session() else {
            return;
        };
        let Some(signer) = session.signing().cloned() else {
            return;
        };
        let now = self.inner.clock.now();
        let id = {
            let mut known = lock::lock(&self.inner.key.known);
            let logins = self.inner.logins.load(Ordering::SeqCst);
            if known.logins_seen != logins {
                known.logins_seen = logins;
                if let Some(id) = self.key_behind(&session)
                    && known.access_key_id.as_deref() != Some(id.as_str())
                {
                    known.access_key_id = Some(id);
                    known.created_at = None;
                }
                known.next_ask = None;
            }
            if known.next_ask.is_some_and(|t| now < t) {
                return;
            }
            let Some(id) = known.access_key_id.clone() else {
                return;
            };
            // Not asked again before this, whatever the answer.
            known.next_ask = Some(now + AGE_RETRY);
            id
        };
        let region = config.access.regions.first().map(String::as_str);
        let answer = iam.list_access_keys(region, &signer).await;
        let mut known = lock::lock(&self.inner.key.known);
        if known.access_key_id.as_deref() != Some(id.as_str()) {
            // A rotation or a login changed the key meanwhile: this answer is about another.
            return;
        }
        match answer {
            Ok(keys) => {
                known.created_at = keys
                    .iter()
                    .find(|k| k.access_key_id == id)
                    .and_then(|k| k.created_at);
                known.next_ask = Some(now + AGE_RECHECK);
                if known.created_at.is_none() {
                    tracing::debug!(key = %id, "iam:ListAccessKeys does not list the key");
                }
            }
            Err(IamError::AccessDenied { message, .. }) => {
                known.next_ask = Some(now + AGE_RECHECK);
                if !known.denied_noted {
                    known.denied_noted = true;
                    tracing::info!(detail = %message, "the IAM user may not call iam:ListAccessKeys, so status cannot show how old the key is");
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not ask IAM how old the key is"),
        }
        if let Some(warning) = known.created_at.and_then(|t| age_warning(t, now))
            && known.warned.as_deref() != Some(id.as_str())
        {
            known.warned = Some(id.clone());
            tracing::warn!(key = %id, "{warning}");
        }
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
        self.inner.key.changing.try_lock().ok()
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
        let Some(iam) = &self.inner.key.iam else {
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
        {
            let mut known = lock::lock(&self.inner.key.known);
            known.access_key_id = Some(new_id.clone());
            known.created_at = replaced.created_at;
            known.next_ask = replaced
                .created_at
                .map(|_| self.inner.clock.now() + AGE_RECHECK);
            known.warned = None;
        }
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
