//! One refresh of one profile: what signs its AssumeRole (the session's keys, the Identity
//! Center access role, or the profile it goes `via`), and the warm-up after a login.

use std::sync::Arc;
use std::time::Duration;

use super::slot::Slot;
use super::{ACCESS_ROLE, CHAIN_WAIT, CHAIN_WAIT_MOST, Engine, EngineError, role};
use crate::access::SessionCredential;
use crate::access::source::SessionSigner;
use crate::config::ProfileKind;
use crate::creds::AwsCredentials;
use crate::creds::RoleCredentials;
use crate::lock;
use crate::sts::FailureKind;

/// What signs a `role_arn` profile's AssumeRole.
enum Signer<'a> {
    /// The access session's own keys (an IAM user's, a federated role session's).
    SessionKeys(&'a AwsCredentials),
    /// The Identity Center access role's credentials.
    AccessRole,
    /// The credentials of the profile it goes `via`.
    Profile(&'a str),
}

impl Engine {
    /// Credentials to sign a chained AssumeRole with, from `slot`: valid, not necessarily
    /// servable.
    /// Waits [`CHAIN_WAIT`] for its next result, longer (up to [`CHAIN_WAIT_MOST`]) while its
    /// refresh is under way: queued behind other calls it has not timed out, and its call, once
    /// sent, has the SDK's timeouts.
    async fn signing_credentials(&self, slot: &Slot) -> Result<Arc<RoleCredentials>, EngineError> {
        let start = tokio::time::Instant::now();
        let mut deadline = start + CHAIN_WAIT;
        loop {
            let mut results = slot.subscribe();
            if let Some(c) = slot.usable_for_signing(self.now()) {
                return Ok(c);
            }
            slot.wake();
            if tokio::time::timeout_at(deadline, results.changed())
                .await
                .is_err()
            {
                if slot.refreshing() && deadline < start + CHAIN_WAIT_MOST {
                    deadline = (deadline + CHAIN_WAIT).min(start + CHAIN_WAIT_MOST);
                    continue;
                }
                return Err(EngineError::Unavailable {
                    profile: slot.profile().name.clone(),
                    detail: slot.last_error(),
                });
            }
        }
    }

    /// The slot whose credentials sign for `signer`.
    fn signing_slot(&self, signer: &Signer<'_>) -> Result<Arc<Slot>, EngineError> {
        let found = match signer {
            Signer::Profile(name) => lock::read(&self.inner.slots).get(*name).cloned(),
            Signer::AccessRole => self.access_role(),
            Signer::SessionKeys(_) => None,
        };
        found.ok_or_else(|| {
            let (name, detail) = match signer {
                Signer::Profile(name) => (*name, "no such profile to sign with"),
                _ => (ACCESS_ROLE, "[access] names no access role to sign with"),
            };
            EngineError::Unavailable {
                profile: name.to_owned(),
                detail: Some(detail.to_owned()),
            }
        })
    }

    /// One refresh of one profile, called only by that profile's worker.
    pub(super) async fn refresh(&self, slot: &Slot) -> Result<RoleCredentials, EngineError> {
        let session = self.session().ok_or_else(|| self.login_required())?;
        let profile = slot.profile();
        let role_arn = match &profile.kind {
            ProfileKind::Sso(role) => {
                let access_role = self.access_role().is_some_and(|a| std::ptr::eq(&*a, slot));
                return self.sso_role_credentials(role, access_role).await;
            }
            ProfileKind::AssumeRole { role_arn } => role_arn,
        };
        // The source says what signs; a `via` profile overrides it.
        let signer = match (&profile.via, self.source().signer(), session.signing()) {
            (Some(via), _, _) => Signer::Profile(via),
            (None, SessionSigner::AccessRole, _) => Signer::AccessRole,
            (None, SessionSigner::SessionKeys, Some(key)) => Signer::SessionKeys(key),
            // The source changed under a session that has no keys: a new login is due.
            (None, SessionSigner::SessionKeys, None) => return Err(self.login_required()),
        };
        let chained;
        let keys = match &signer {
            Signer::SessionKeys(key) => *key,
            other => {
                chained = self
                    .signing_credentials(&*self.signing_slot(other)?)
                    .await?;
                &chained.creds
            }
        };
        let session_name = profile.session_name.clone().unwrap_or_else(|| {
            match &session.credential {
                // The Identity Center user, so that CloudTrail shows who acted.
                SessionCredential::Bearer(_) => crate::access::session_name_from_arn(
                    lock::read(&self.inner.session).sso_user.as_deref(),
                ),
                SessionCredential::Signing(_) => session.default_session_name(),
            }
        });
        let config = self.config();
        let result = role::assume(
            &self.inner.sts,
            &config.access.regions,
            profile,
            role_arn,
            keys,
            &session_name,
        )
        .await;
        match result {
            Err(f)
                if f.kind == FailureKind::Expired && matches!(signer, Signer::SessionKeys(_)) =>
            {
                self.session_expired(&f);
                Err(self.login_required())
            }
            other => other.map_err(EngineError::from),
        }
    }

    /// Wakes every worker past its backoff and waits up to `wait` for them to have credentials.
    /// Stops early when a logout happens meanwhile.
    pub(super) async fn warm(&self, wait: Duration) -> (usize, usize) {
        let epoch = self.epoch();
        let access_role = self.access_role();
        let slots = self.every_slot();
        for slot in &slots {
            slot.reset_backoff();
            slot.wake();
        }
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        let deadline = tokio::time::Instant::now() + wait;
        let mut ready = 0;
        let mut total = 0;
        for slot in &slots {
            // The access role is waited for (role_arn profiles need it) but is not a profile.
            let counted = !access_role.as_ref().is_some_and(|a| Arc::ptr_eq(a, slot));
            total += usize::from(counted);
            let mut results = slot.subscribe();
            loop {
                if slot.servable(self.now(), min_remaining).is_some() {
                    ready += usize::from(counted);
                    break;
                }
                if slot.is_failing()
                    || self.epoch() != epoch
                    || tokio::time::timeout_at(deadline, results.changed())
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }
        (ready, total)
    }
}
