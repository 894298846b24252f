//! The credential engine: the access session, one cached slot per profile, and the background
//! workers that keep every slot fresh.
//!
//! Requests only ever read the cache ([`serve`]). Each profile has one worker task that alone
//! calls STS for it ([`slot`], [`refresh`]: single flight by construction); requests that find
//! nothing servable wake it and wait a bounded time for its next result. The access session
//! ([`session`], [`authorize`], [`renew`]) is what every source shares: single flight of logins,
//! the pending login, the logout epoch, the renewal schedule. Providers ([`crate::access`],
//! [`role`]) know nothing of caching; this module knows nothing of HTTP.

mod authorize;
mod console;
mod doctor;
mod error;
#[cfg(test)]
mod federated_tests;
mod follow;
mod key;
mod login_needed;
#[cfg(test)]
mod mfa_command_tests;
#[cfg(test)]
mod notify_tests;
mod refresh;
mod refresh_now;
mod renew;
pub mod role;
#[cfg(test)]
mod scale_tests;
pub mod schedule;
mod serve;
mod session;
mod slot;
#[cfg(test)]
mod soak_tests;
mod sso;
#[cfg(test)]
mod sso_tests;
mod status;
#[cfg(test)]
mod tests;
mod wiring;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::access::command::Runner;
use crate::access::iam_user::age::KeyAge;
use crate::access::persist::SessionStore;
use crate::access::source::{Context, Source};
use crate::clock::Clock;
use crate::config::{Config, Profile, ProfileKind, SsoRole};
use crate::desktop::{Notice, Notifier};
use crate::doctor::organizations::Organizations;
use crate::lock;
use crate::sts::Sts;
pub use authorize::LoginStart;
pub use console::AccessConsole;
pub use error::EngineError;
pub use refresh_now::REFRESH_WAIT;
pub use session::{LoginOutcome, SESSION_WARNING, WALL_CHECK};
use session::{SessionState, binding};
use slot::Slot;
pub use wiring::Wiring;

/// A request that finds nothing servable waits this long for the worker's next result before it
/// answers 503. Well under the SDKs' own timeouts (Go's IMDS client waits 500 ms for headers).
pub const COLD_WAIT: Duration = Duration::from_millis(400);
/// How long a chained profile's worker waits for the profile it is assumed through.
const CHAIN_WAIT: Duration = Duration::from_secs(15);
/// ... and at most while that profile's refresh is under way (queued behind other STS calls when
/// hundreds of profiles warm up at once).
const CHAIN_WAIT_MOST: Duration = Duration::from_secs(60);

/// What the Identity Center access role's slot is called in the log and in the errors of the
/// profiles it signs for. It is no profile: it lives beside them, never among them.
const ACCESS_ROLE: &str = "the access role";

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: watch::Receiver<Arc<Config>>,
    store: SessionStore,
    clock: Clock,
    sts: Arc<Sts>,
    rng: Mutex<fastrand::Rng>,
    credentials_file: Option<PathBuf>,
    sso_cache_dir: Option<PathBuf>,
    commands: Runner,
    notifier: Arc<dyn Notifier>,
    oidc_http: crate::access::web_identity::OidcHttp,
    source: RwLock<Arc<dyn Source>>,
    session: RwLock<SessionState>,
    /// Written by the login under way, which serializes logins. Requests only look whether a
    /// login holds it with a read probe: a concurrent request's probe must never look like one.
    login_lock: Arc<tokio::sync::RwLock<()>>,
    /// Serializes starting browser/device authorizations, so concurrent `credd login`s join one.
    authorize_lock: tokio::sync::Mutex<()>,
    /// The browser/device authorization waiting for the user, if any.
    pending: Mutex<Option<Arc<authorize::PendingLogin>>>,
    /// Serializes renewals of the access session (Identity Center's token, a session that
    /// renews itself): one however many want one.
    renew_lock: tokio::sync::Mutex<()>,
    /// Serializes asking STS who the Identity Center user is.
    sso_user_lock: tokio::sync::Mutex<()>,
    /// One slot per configured profile.
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// The Identity Center access-account role (`[access] sso_account_id` + `sso_role_name`),
    /// whose credentials sign AssumeRole for `role_arn` profiles; it is not served.
    access_role: RwLock<Option<Arc<Slot>>>,
    /// Bumped by every logout: work started before it (a refresh in flight, the daemon's own
    /// login retries) must not bring credentials back.
    epoch: AtomicU64,
    /// Bumped by every login that made a session: a login that waited for another takes its
    /// session.
    logins: AtomicU64,
    /// The IAM user's long-lived key: its age, and one rotation at a time.
    key: KeyAge,
    /// For `credd doctor`'s management-account check.
    organizations: Option<Organizations>,
    /// The config's last edit, when it was rejected: an unknown profile may be one it adds.
    rejected_edit: RwLock<Option<String>>,
}

fn access_role_profile(role: SsoRole) -> Profile {
    Profile {
        name: ACCESS_ROLE.to_owned(),
        account_id: role.account_id.clone(),
        kind: ProfileKind::Sso(role),
        region: None,
        via: None,
        external_id: None,
        duration: crate::config::ASSUME_ROLE_DEFAULT,
        session_name: None,
        source_identity: None,
        tags: Default::default(),
    }
}

impl Engine {
    /// Restores a saved MFA session, logs in by itself when no user is needed, starts a worker
    /// per profile and follows config changes. Must be called inside the tokio runtime.
    pub fn start(
        config: watch::Receiver<Arc<Config>>,
        store: SessionStore,
        wiring: Wiring,
    ) -> Engine {
        let cfg = config.borrow().clone();
        let source = wiring::source_for(
            &cfg.access,
            wiring.credentials_file.as_ref(),
            wiring.sso_cache_dir.as_ref(),
            &wiring.sts,
            &wiring.clock,
            &wiring.commands,
            &wiring.oidc_http,
        );
        let restored = if source.shares_login() {
            source.adopt()
        } else {
            store.load(&binding(&cfg.access), wiring.clock.now())
        };
        if restored.is_some() {
            tracing::info!("restored the access session saved before the restart");
        }
        let inner = Arc::new(Inner {
            config,
            source: RwLock::new(source),
            clock: wiring.clock,
            sts: Arc::new(wiring.sts),
            rng: Mutex::new(wiring.rng),
            credentials_file: wiring.credentials_file,
            sso_cache_dir: wiring.sso_cache_dir,
            commands: wiring.commands,
            notifier: wiring.notifier,
            oidc_http: wiring.oidc_http,
            session: RwLock::new(SessionState::restored(restored)),
            login_lock: Arc::new(tokio::sync::RwLock::new(())),
            authorize_lock: tokio::sync::Mutex::new(()),
            pending: Mutex::new(None),
            renew_lock: tokio::sync::Mutex::new(()),
            sso_user_lock: tokio::sync::Mutex::new(()),
            slots: RwLock::new(BTreeMap::new()),
            access_role: RwLock::new(None),
            epoch: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            key: KeyAge::new(wiring.iam),
            organizations: wiring.organizations,
            rejected_edit: RwLock::new(None),
            store,
        });
        if let Some(url) = inner.sts.endpoint_override() {
            tracing::info!(endpoint = %url, "STS endpoint overridden by the environment");
        }
        let engine = Engine { inner };
        engine.reconcile_slots(&cfg);
        engine.auto_login();
        tokio::spawn(engine.clone().follow_config());
        tokio::spawn(engine.clone().watch_time());
        tokio::spawn(engine.clone().watch_key());
        engine
    }

    /// A jitter unit in [0, 1).
    fn jitter(&self) -> f64 {
        lock::lock(&self.inner.rng).f64()
    }

    /// The access source as it is now (config edits replace it).
    fn source(&self) -> Arc<dyn Source> {
        lock::read(&self.inner.source).clone()
    }

    /// What a source's calls may use.
    fn context(&self) -> Context {
        Context {
            sts: self.inner.sts.clone(),
            regions: self.config().access.regions.clone(),
            now: self.now(),
        }
    }

    /// The wall clock, as the engine reads it (simulated in unit tests).
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    fn config(&self) -> Arc<Config> {
        self.inner.config.borrow().clone()
    }

    /// Shows `notice` on the desktop unless `[daemon] notify = false`, without account IDs or
    /// ARNs (a notification shows on a locked screen). The caller logs the same in full.
    fn notify(&self, notice: Notice) {
        if self.inner.config.borrow().daemon.notify {
            self.inner.notifier.show(notice.for_lock_screen());
        }
    }

    /// A configured profile's slot.
    fn slot(&self, name: &str) -> Result<Arc<Slot>, EngineError> {
        lock::read(&self.inner.slots)
            .get(name)
            .cloned()
            .ok_or_else(|| self.unknown_profile(name))
    }

    /// The error for a profile that is not configured, with the names that are and the config's
    /// rejected last edit, if any.
    pub fn unknown_profile(&self, name: &str) -> EngineError {
        EngineError::UnknownProfile {
            name: name.to_owned(),
            known: self.config().profiles.keys().cloned().collect(),
            rejected_edit: lock::read(&self.inner.rejected_edit).clone(),
        }
    }

    /// Tells the engine the config's last edit was rejected (`Some(why)`) or not.
    pub fn set_rejected_edit(&self, error: Option<String>) {
        *lock::write(&self.inner.rejected_edit) = error;
    }

    /// Every profile's slot.
    fn profile_slots(&self) -> Vec<Arc<Slot>> {
        lock::read(&self.inner.slots).values().cloned().collect()
    }

    /// The Identity Center access role's slot, when `[access]` names one.
    fn access_role(&self) -> Option<Arc<Slot>> {
        lock::read(&self.inner.access_role).clone()
    }

    /// Every slot: the access role's first (profiles wait for it), then the profiles'.
    fn every_slot(&self) -> Vec<Arc<Slot>> {
        self.access_role()
            .into_iter()
            .chain(self.profile_slots())
            .collect()
    }

    /// The daemon's STS client (its regions' preference, its endpoint), for checking a key
    /// before it is stored.
    pub fn sts(&self) -> &Sts {
        &self.inner.sts
    }

    /// How many profiles are configured: their refreshes spread over a window that grows with
    /// it ([`schedule::jitter_window`]).
    fn profile_count(&self) -> usize {
        lock::read(&self.inner.slots).len()
    }

    pub fn profile_names(&self) -> Vec<String> {
        lock::read(&self.inner.slots).keys().cloned().collect()
    }
}
