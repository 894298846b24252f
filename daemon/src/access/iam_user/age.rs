//! The IAM user's long-lived key as status shows it: which one the daemon read and how old it is
//! (iam:ListAccessKeys, asked in the background after a login and then once a day, never inside
//! a request), and one `credd key` change at a time. The engine owns one [`KeyAge`] for its life
//! (it outlives config edits) and drives it.

use std::time::{Duration, SystemTime};

use credd_proto::{Finding, KeyInfo};

use super::IamUser;
use super::iam::{Iam, IamError};
use crate::access::AccessSession;
use crate::clock::unix;
use crate::lock;

/// Past this age status and the log say to rotate the key: the 90 days of the CIS AWS
/// benchmark (a key made on 1 March is flagged from 30 May).
pub const KEY_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// The key's creation date is asked again this long after IAM last answered, so a key crosses
/// [`KEY_MAX_AGE`] in status within a day of doing so, however long the session lasts.
const AGE_RECHECK: Duration = Duration::from_secs(24 * 3600);
/// After IAM could not answer (offline, throttled), the next try.
const AGE_RETRY: Duration = Duration::from_secs(15 * 60);
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

/// IAM, what is known of the key, and one change at a time.
pub struct KeyAge {
    /// `None`: no IAM (unit tests that do not script it): no age, no rotation.
    iam: Option<Iam>,
    known: std::sync::Mutex<Known>,
    /// One `credd key` change at a time: each reads what the keychain holds, then replaces it.
    changing: tokio::sync::Mutex<()>,
}

impl KeyAge {
    pub fn new(iam: Option<Iam>) -> KeyAge {
        if let Some(url) = iam.as_ref().and_then(Iam::endpoint_override) {
            tracing::info!(endpoint = %url, "IAM endpoint overridden by the environment");
        }
        KeyAge {
            iam,
            known: std::sync::Mutex::new(Known::default()),
            changing: tokio::sync::Mutex::new(()),
        }
    }
}

impl KeyAge {
    /// IAM, for `credd key rotate`; `None` in unit tests that do not script it.
    pub fn iam(&self) -> Option<&Iam> {
        self.iam.as_ref()
    }

    /// The right to change the stored key, unless another such change is under way.
    pub fn try_change(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.changing.try_lock().ok()
    }

    /// Status's view of `user`'s key (no call made: what the watch and the last rotation
    /// learned).
    pub fn info(&self, user: &IamUser, now: SystemTime) -> KeyInfo {
        let known = lock::lock(&self.known);
        KeyInfo {
            stored_in: user.stored_in(),
            access_key_id: known.access_key_id.clone(),
            created_at: known.created_at.map(unix),
            warning: known.created_at.and_then(|t| age_warning(t, now)),
        }
    }

    /// A rotation made `access_key_id` (created at `created_at`, when IAM said) the key.
    pub fn rotated(&self, access_key_id: String, created_at: Option<SystemTime>, now: SystemTime) {
        let mut known = lock::lock(&self.known);
        known.access_key_id = Some(access_key_id);
        known.created_at = created_at;
        known.next_ask = created_at.map(|_| now + AGE_RECHECK);
        known.warned = None;
    }

    /// One look: after a login (`logins` moved), learns which key `session` signs with and asks
    /// IAM how old it is; then asks again once a day.
    pub async fn look(
        &self,
        user: &IamUser,
        session: &AccessSession,
        logins: u64,
        region: Option<&str>,
        now: SystemTime,
    ) {
        let Some(iam) = &self.iam else {
            return;
        };
        let Some(signer) = session.signing().cloned() else {
            return;
        };
        let id = {
            let mut known = lock::lock(&self.known);
            if known.logins_seen != logins {
                known.logins_seen = logins;
                if let Some(id) = key_behind(user, session)
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
        let answer = iam.list_access_keys(region, &signer).await;
        let mut known = lock::lock(&self.known);
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
}

/// The long-lived key behind `session`, as far as can be told: a session without MFA signs
/// with the key itself; an MFA session's key is the one its login read.
fn key_behind(user: &IamUser, session: &AccessSession) -> Option<String> {
    if !session.mfa {
        return session.signing().map(|k| k.access_key_id.clone());
    }
    user.last_key_id()
}

impl KeyAge {
    /// `credd doctor`'s `key-age`: asks IAM now (iam:ListAccessKeys, signed as the watch signs)
    /// how old the key behind `session` is, and keeps the answer for status.
    pub async fn check(
        &self,
        user: &IamUser,
        session: &AccessSession,
        region: Option<&str>,
        now: SystemTime,
    ) -> Finding {
        const CHECK: &str = "key-age";
        let Some(iam) = &self.iam else {
            return Finding::info(CHECK, "not checked: no IAM client");
        };
        let (Some(signer), Some(id)) = (session.signing(), key_behind(user, session)) else {
            return Finding::info(
                CHECK,
                "not checked: which key the session was made with is not known yet",
            );
        };
        let created_at = match iam.list_access_keys(region, signer).await {
            Ok(keys) => keys
                .iter()
                .find(|k| k.access_key_id == id)
                .and_then(|k| k.created_at),
            Err(e @ IamError::AccessDenied { .. }) => {
                return Finding::info(CHECK, format!("not checked: {e}"));
            }
            Err(e) => return Finding::info(CHECK, format!("could not check: {e}")),
        };
        let Some(created_at) = created_at else {
            return Finding::info(
                CHECK,
                format!("not checked: iam:ListAccessKeys does not list the key {id}"),
            );
        };
        {
            let mut known = lock::lock(&self.known);
            if known.access_key_id.as_deref() == Some(id.as_str()) {
                known.created_at = Some(created_at);
            }
        }
        key_age_finding(&id, created_at, now, user.aws_profile())
    }
}

/// `key-age`: a key past [`KEY_MAX_AGE`] is a warning. `aws_profile`: the key is read from that
/// profile of the shared credentials file, which `credd key rotate` does not rotate.
pub fn key_age_finding(
    id: &str,
    created_at: SystemTime,
    now: SystemTime,
    aws_profile: Option<&str>,
) -> Finding {
    let days = now.duration_since(created_at).unwrap_or_default().as_secs() / 86_400;
    let found = format!("the access key {id} is {days} days old");
    if age_warning(created_at, now).is_none() {
        return Finding::ok("key-age", found);
    }
    let fix = match aws_profile {
        None => "rotate it: `credd key rotate` (a new key made, checked and stored before the \
                 old one is deleted)"
            .to_owned(),
        Some(profile) => format!(
            "move it into the OS keychain (`credd key import --profile {profile} --delete`, \
             then drop aws_profile from [access]) and rotate it: `credd key rotate`"
        ),
    };
    Finding::warning("key-age", found)
        .why(
            "a long-lived key is as exposed as every place it was ever copied to; the CIS AWS \
             benchmark rotates them every 90 days",
        )
        .fix(fix)
}

#[cfg(test)]
mod doctor_tests {
    use std::time::{Duration, SystemTime};

    use credd_proto::Severity;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_key_past_90_days_is_a_warning_with_the_rotation() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let young = super::key_age_finding("AKIA1", now - 90 * DAY, now, None);
        assert_eq!(young.severity, Severity::Ok);
        assert_eq!(young.found, "the access key AKIA1 is 90 days old");
        let old = super::key_age_finding("AKIA1", now - 120 * DAY, now, None);
        assert_eq!(old.severity, Severity::Warning);
        assert_eq!(old.found, "the access key AKIA1 is 120 days old");
        assert!(old.fix.is_some_and(|f| f.contains("`credd key rotate`")));
        let in_file = super::key_age_finding("AKIA1", now - 120 * DAY, now, Some("access"));
        assert!(
            in_file
                .fix
                .is_some_and(|f| f.contains("`credd key import --profile access --delete`"))
        );
    }
}
