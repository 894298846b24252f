//! `credd refresh`: a refresh now, through the profile's worker (single flight: however many ask
//! at once, and whatever the schedule or backoff says, one STS call answers them all).

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::creds::RoleCredentials;

/// How long `credd refresh` waits for its refresh ([`credd_proto::REFRESH_WAIT_SECS`]); a
/// chained profile's includes the wait for its `via`. The refresh goes on in the background past
/// it.
pub const REFRESH_WAIT: Duration = Duration::from_secs(credd_proto::REFRESH_WAIT_SECS);

impl Engine {
    /// New credentials for profile `name` now, or why not. Never asks the user: without a
    /// session it answers `LoginRequired` at once.
    pub async fn refresh_now(&self, name: &str) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self.slot(name)?;
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        if self.session().is_none() && !self.look_for_outside_login() {
            if !self.login_under_way() {
                return Err(self.login_required());
            }
            // The daemon's own login (at start, or an `mfa_command`) may make one.
            let _ = tokio::time::timeout_at(deadline, self.inner.login_lock.read()).await;
            if self.session().is_none() {
                return Err(self.login_required());
            }
        }
        let mut results = slot.subscribe();
        let target = slot.force();
        loop {
            let (done, failure) = slot.attempts_done();
            if done >= target {
                return match (failure, slot.cached()) {
                    (Some(e), _) => Err(e),
                    (None, Some(c)) => Ok(c),
                    // A logout came between the refresh and this look.
                    (None, None) => Err(self.login_required()),
                };
            }
            if self.session().is_none() {
                // Logged out meanwhile: the worker now idles until a login.
                return Err(self.login_required());
            }
            if !self.slot(name).is_ok_and(|now| Arc::ptr_eq(&now, &slot)) {
                // A config edit replaced (or removed) the profile meanwhile.
                return match self.slot(name) {
                    Ok(_) => Err(EngineError::Unavailable {
                        profile: name.to_owned(),
                        detail: Some(
                            "the profile's config changed during the refresh; its new \
                             credentials are being fetched"
                                .to_owned(),
                        ),
                    }),
                    Err(e) => Err(e),
                };
            }
            if tokio::time::timeout_at(deadline, results.changed())
                .await
                .is_err()
            {
                return Err(EngineError::Unavailable {
                    profile: name.to_owned(),
                    detail: Some(format!(
                        "the refresh did not finish within {}; it goes on in the background",
                        credd_proto::human::duration(REFRESH_WAIT.as_secs())
                    )),
                });
            }
        }
    }
}
