//! The hot path: a profile's credentials from cache, never waiting on STS for more than
//! [`COLD_WAIT`].

use std::sync::Arc;

use super::{COLD_WAIT, Engine, EngineError};
use crate::creds::RoleCredentials;

impl Engine {
    /// The hot path: a profile's credentials with at least `min_remaining` left, from cache.
    /// Never waits on STS for more than [`COLD_WAIT`].
    pub async fn credentials(&self, name: &str) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self.slot(name)?;
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        if let Some(c) = slot.servable(self.now(), min_remaining) {
            return Ok(c);
        }
        let deadline = tokio::time::Instant::now() + COLD_WAIT;
        if self.session().is_none() && self.look_for_outside_login() {
            // The AWS CLI logged in meanwhile: the warm-up it started may answer in time.
            let mut results = slot.subscribe();
            slot.wake();
            let _ = tokio::time::timeout_at(deadline, results.changed()).await;
            if let Some(c) = slot.servable(self.now(), min_remaining) {
                return Ok(c);
            }
        }
        if self.session().is_none() && self.login_under_way() {
            // A login is under way (the daemon's own, at start): give it the same bounded wait.
            let _ = tokio::time::timeout_at(deadline, self.inner.login_lock.read()).await;
        }
        if self.session().is_none() {
            // Whatever is cached is still valid AWS credentials; serve it while it lasts.
            if let Some(c) = slot.degraded(self.now()) {
                return Ok(c);
            }
            if self.login_under_way() {
                // STS is slow to answer the login: nothing for the user to do yet.
                return Err(EngineError::Unavailable {
                    profile: name.to_owned(),
                    detail: Some("the login to the access account is still under way".to_owned()),
                });
            }
            return Err(self.login_required());
        }
        // Below min_remaining but still valid: the refresh is late (STS slow or down). Serve
        // what is cached at once rather than make the request wait on STS.
        if let Some(c) = slot.degraded(self.now()) {
            slot.wake();
            tracing::debug!(profile = %name, left_s = c.remaining(self.now()).as_secs(), "serving credentials below min_remaining while the refresh is late");
            return Ok(c);
        }
        if !slot.is_failing() {
            let mut results = slot.subscribe();
            slot.wake();
            loop {
                if let Some(c) = slot.servable(self.now(), min_remaining) {
                    return Ok(c);
                }
                if slot.is_failing()
                    || tokio::time::timeout_at(deadline, results.changed())
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }
        Err(EngineError::Unavailable {
            profile: name.to_owned(),
            detail: slot.last_error(),
        })
    }

    /// Whether a login holds (or waits for) the login lock. Other requests looking at the same
    /// moment share the read side, so they never count as one.
    pub(super) fn login_under_way(&self) -> bool {
        self.inner.login_lock.try_read().is_err()
    }
}
