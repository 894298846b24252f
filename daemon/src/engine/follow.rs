//! Following the config: one slot per configured profile, a new access source when its
//! settings change.

use std::sync::Arc;

use super::slot::Slot;
use super::wiring::source_for;
use super::{Engine, access_role_profile};
use crate::config::Config;
use crate::lock;

impl Engine {
    /// Keeps one slot per configured profile (and one for the Identity Center access role); a
    /// profile whose settings changed gets a new slot.
    pub(super) fn reconcile_slots(&self, config: &Config) {
        let wanted = &config.profiles;
        {
            let role = config
                .access
                .sso_access_role()
                .cloned()
                .map(access_role_profile);
            let mut slot = lock::write(&self.inner.access_role);
            if slot.as_ref().map(|s| s.profile()) != role.as_ref() {
                if let Some(old) = slot.take() {
                    old.stop();
                }
                *slot = role.map(|profile| {
                    let new = Arc::new(Slot::new(profile));
                    new.start(self.clone());
                    new
                });
            }
        }
        let mut slots = lock::write(&self.inner.slots);
        slots.retain(|name, slot| {
            let keep = wanted.get(name) == Some(slot.profile());
            if !keep {
                slot.stop();
            }
            keep
        });
        for (name, profile) in wanted {
            if !slots.contains_key(name) {
                let slot = Arc::new(Slot::new(profile.clone()));
                slot.start(self.clone());
                slots.insert(name.clone(), slot);
            }
        }
    }

    pub(super) async fn follow_config(self) {
        let mut rx = self.inner.config.clone();
        let mut access = rx.borrow().access.clone();
        while rx.changed().await.is_ok() {
            let config = rx.borrow_and_update().clone();
            let new_source = || {
                source_for(
                    &config.access,
                    self.inner.credentials_file.as_ref(),
                    self.inner.sso_cache_dir.as_ref(),
                    &self.inner.sts,
                    &self.inner.clock,
                    &self.inner.commands,
                    &self.inner.oidc_http,
                )
            };
            if !config.access.same_session(&access) {
                tracing::info!("access settings changed; the old session is dropped");
                // Not a logout: a login shared with the AWS CLI stays the CLI's.
                self.forget_all();
                *lock::write(&self.inner.source) = new_source();
                self.adopt_outside_login();
                self.auto_login();
            } else if config.access != access {
                // Same session, other details (login method, replicas, session length,
                // mfa_command).
                let was_unattended = self.source().is_unattended();
                *lock::write(&self.inner.source) = new_source();
                if !was_unattended && self.session().is_none() {
                    // An mfa_command was added: the daemon can log in by itself now.
                    self.auto_login();
                }
            }
            access = config.access.clone();
            self.reconcile_slots(&config);
            // min_remaining may have changed: let every worker recompute its schedule.
            for slot in self.every_slot() {
                slot.wake();
            }
        }
    }
}
