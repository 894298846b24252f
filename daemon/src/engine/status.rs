//! Status's view of every profile.

use credd_proto::{ProfileState, ProfileStatus};

use super::{Engine, session};
use crate::clock::unix;

impl Engine {
    pub fn profile_status(&self) -> Vec<ProfileStatus> {
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        let now = self.now();
        let slots = self.profile_slots();
        let profiles = slots.len();
        slots
            .iter()
            .map(|slot| {
                let p = slot.profile();
                let cached = slot.cached();
                let view = slot.status_view(min_remaining, profiles);
                let state = if slot.servable(now, min_remaining).is_some() {
                    ProfileState::Fresh
                } else if view.failures > 0 {
                    ProfileState::Failing
                } else {
                    ProfileState::Cold
                };
                ProfileStatus {
                    name: p.name.clone(),
                    role_arn: p.role_arn().map(str::to_owned),
                    sso_role: p.sso_role(),
                    via: p.via.clone(),
                    state,
                    expires_at: cached.as_ref().map(|c| unix(c.expiration)),
                    last_refresh: view.last_refresh.map(unix),
                    next_refresh: view.next_refresh.map(unix),
                    // Since when, too: the log and a desktop notification tell of a profile
                    // failing for 5 minutes.
                    last_error: match (view.last_error, view.failing_since) {
                        (Some(e), Some(since)) => Some(format!(
                            "{e} (failing for {})",
                            session::span(now.duration_since(since).unwrap_or_default())
                        )),
                        (e, _) => e,
                    },
                    sts_region: cached.as_ref().map(|c| c.region.clone()),
                    assumed_arn: cached.as_ref().map(|c| c.assumed_arn.clone()),
                    region: p.region.clone(),
                    retry_at: view.retry_at.map(unix),
                }
            })
            .collect()
    }
}
