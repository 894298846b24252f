//! The credential engine: the access session, one cached slot per profile, and the background
//! workers that keep every slot fresh.
//!
//! Requests only ever read the cache. Each profile has one worker task that alone calls STS for
//! it (single flight by construction); requests that find nothing servable wake it and wait a
//! bounded time for its next result. Providers ([`crate::access`], [`role`]) know nothing of
//! caching; this module knows nothing of HTTP.

mod authorize;
mod federated;
#[cfg(test)]
mod federated_tests;
mod key;
mod login_needed;
#[cfg(test)]
mod mfa_command_tests;
#[cfg(test)]
mod notify_tests;
mod renew;
pub mod role;
pub mod schedule;
mod session;
mod slot;
mod sso;
#[cfg(test)]
mod sso_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use credd_proto::{ProfileState, ProfileStatus};
use tokio::sync::watch;

use crate::access::command::Runner;
use crate::access::iam::Iam;
use crate::access::iam_user::IamUser;
use crate::access::persist::SessionStore;
use crate::access::saml::Saml;
use crate::access::sso::{IdentityCenter, SsoError};
use crate::access::web_identity::WebIdentity;
use crate::access::{AccessError, AccessSource, SessionCredential};
use crate::clock::{Clock, unix};
use crate::config::{AccessConfig, Config, Profile, ProfileKind, SourceConfig};
use crate::creds::RoleCredentials;
use crate::desktop::{Desktop, Notice, Notifier};
use crate::lock;
use crate::sts::{FailureKind, Sts, StsFailure};
pub use authorize::LoginStart;
pub use session::{LoginOutcome, SESSION_WARNING, WALL_CHECK};
use session::{SessionState, binding};
use slot::Slot;

/// A request that finds nothing servable waits this long for the worker's next result before it
/// answers 503. Well under the SDKs' own timeouts (Go's IMDS client waits 500 ms for headers).
pub const COLD_WAIT: Duration = Duration::from_millis(400);
/// How long a chained profile's worker waits for the profile it is assumed through.
const CHAIN_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("unknown profile {name:?}; known profiles: {}", list(known))]
    UnknownProfile { name: String, known: Vec<String> },
    #[error(
        "no current profile: choose one with `credd switch <profile>` (known: {})",
        list(known)
    )]
    NoCurrentProfile { known: Vec<String> },
    #[error("not logged in{}: run `credd login`", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    LoginRequired { detail: Option<String> },
    #[error("credentials for {profile:?} are not available yet{}; retrying in the background", detail.as_deref().map(|d| format!(" (last error: {d})")).unwrap_or_default())]
    Unavailable {
        profile: String,
        detail: Option<String>,
    },
    /// The access source could not log in (an STS failure is [`EngineError::Sts`] instead).
    #[error(transparent)]
    Access(AccessError),
    #[error(transparent)]
    Sts(#[from] StsFailure),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none configured".to_owned()
    } else {
        names.join(", ")
    }
}

impl From<AccessError> for EngineError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Sts(f) => EngineError::Sts(f),
            AccessError::Sso(SsoError::SessionEnded { detail }) => EngineError::LoginRequired {
                detail: Some(format!("the Identity Center session has ended: {detail}")),
            },
            e => EngineError::Access(e),
        }
    }
}

impl From<SsoError> for EngineError {
    fn from(e: SsoError) -> Self {
        EngineError::from(AccessError::Sso(e))
    }
}

/// The slot of the Identity Center access-account role (`[access] sso_account_id` +
/// `sso_role_name`), whose credentials sign AssumeRole for `role_arn` profiles. Profile names
/// cannot start with a dot, so it never meets a configured one; it is not served.
pub const ACCESS_ROLE: &str = ".access-role";

/// What the engine reaches outside itself. The daemon uses [`Wiring::system`]; unit tests a
/// simulated clock, a scripted STS, a seeded jitter, scripted commands and a notifier that
/// records.
pub struct Wiring {
    pub clock: Clock,
    pub sts: Sts,
    /// Draws the refresh and backoff jitter.
    pub rng: fastrand::Rng,
    /// The shared credentials file of the `iam-user` source; `None`: the SDKs' own lookup
    /// (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub credentials_file: Option<PathBuf>,
    /// The AWS CLI's SSO token cache dir; `None`: `~/.aws/sso/cache`.
    pub sso_cache_dir: Option<PathBuf>,
    /// Runs the access source's commands (`mfa_command`).
    pub commands: Runner,
    /// Where desktop notifications go (when `[daemon] notify` allows them).
    pub notifier: Arc<dyn Notifier>,
    /// IAM, for the key's age in status and `credd key rotate`; `None`: neither (unit tests
    /// that do not script IAM).
    pub iam: Option<Iam>,
}

impl Wiring {
    pub fn system() -> Wiring {
        let clock = Clock::system();
        let sts = Sts::from_env(clock.clone());
        Wiring {
            iam: Some(Iam::from_env(clock.clone(), sts.http_client())),
            sts,
            clock,
            rng: fastrand::Rng::new(),
            credentials_file: None,
            sso_cache_dir: None,
            commands: Runner::System,
            notifier: Arc::new(Desktop::default()),
        }
    }
}

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: watch::Receiver<Arc<Config>>,
    store: SessionStore,
    clock: Clock,
    sts: Sts,
    rng: Mutex<fastrand::Rng>,
    credentials_file: Option<PathBuf>,
    sso_cache_dir: Option<PathBuf>,
    commands: Runner,
    notifier: Arc<dyn Notifier>,
    source: RwLock<Arc<AccessSource>>,
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
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Bumped by every logout: work started before it (a refresh in flight, the daemon's own
    /// login retries) must not bring credentials back.
    epoch: AtomicU64,
    /// Bumped by every login that made a session: a login that waited for another takes its
    /// session.
    logins: AtomicU64,
    /// The IAM user's long-lived key: its age, and one rotation at a time.
    key: key::KeyWatch,
}

fn source_for(
    config: &AccessConfig,
    credentials_file: Option<&PathBuf>,
    sso_cache_dir: Option<&PathBuf>,
    sts: &Sts,
    clock: &Clock,
    commands: &Runner,
) -> Arc<AccessSource> {
    Arc::new(match &config.source {
        SourceConfig::IamUser(user) => AccessSource::IamUser(IamUser::new(
            user,
            config.session_duration,
            credentials_file.cloned(),
            commands.clone(),
        )),
        SourceConfig::Sso(sso) => AccessSource::IdentityCenter(Arc::new(IdentityCenter::new(
            sso,
            config.session_duration,
            sso_cache_dir.cloned(),
            clock.clone(),
            sts.http_client(),
        ))),
        SourceConfig::WebIdentity(w) => {
            AccessSource::WebIdentity(Arc::new(WebIdentity::new(w, config.session_duration)))
        }
        SourceConfig::Saml(saml) => AccessSource::Saml(Arc::new(Saml {
            config: saml.clone(),
        })),
    })
}

fn access_role_profile(role: crate::config::SsoRole) -> Profile {
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
        let source = source_for(
            &cfg.access,
            wiring.credentials_file.as_ref(),
            wiring.sso_cache_dir.as_ref(),
            &wiring.sts,
            &wiring.clock,
            &wiring.commands,
        );
        let restored = match source.identity_center() {
            Some(ic) => sso::from_cli_cache(ic),
            None => store.load(&binding(&cfg.access), wiring.clock.now()),
        };
        if restored.is_some() {
            tracing::info!("restored the access session saved before the restart");
        }
        let inner = Arc::new(Inner {
            config,
            source: RwLock::new(source),
            clock: wiring.clock,
            sts: wiring.sts,
            rng: Mutex::new(wiring.rng),
            credentials_file: wiring.credentials_file,
            sso_cache_dir: wiring.sso_cache_dir,
            commands: wiring.commands,
            notifier: wiring.notifier,
            session: RwLock::new(SessionState::restored(restored)),
            login_lock: Arc::new(tokio::sync::RwLock::new(())),
            authorize_lock: tokio::sync::Mutex::new(()),
            pending: Mutex::new(None),
            renew_lock: tokio::sync::Mutex::new(()),
            sso_user_lock: tokio::sync::Mutex::new(()),
            slots: RwLock::new(BTreeMap::new()),
            epoch: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            key: key::KeyWatch::new(wiring.iam),
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

    /// A configured profile's slot (the internal access-role slot is not one).
    fn slot(&self, name: &str) -> Result<Arc<Slot>, EngineError> {
        if name != ACCESS_ROLE
            && let Some(slot) = self.any_slot(name)
        {
            return Ok(slot);
        }
        Err(EngineError::UnknownProfile {
            name: name.to_owned(),
            known: self.profile_names(),
        })
    }

    fn any_slot(&self, name: &str) -> Option<Arc<Slot>> {
        lock::read(&self.inner.slots).get(name).cloned()
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        let slots = lock::read(&self.inner.slots);
        slots.values().cloned().collect()
    }

    /// The daemon's STS client (its regions' preference, its endpoint), for checking a key
    /// before it is stored.
    pub fn sts(&self) -> &Sts {
        &self.inner.sts
    }

    pub fn profile_names(&self) -> Vec<String> {
        let slots = lock::read(&self.inner.slots);
        slots
            .keys()
            .filter(|n| *n != ACCESS_ROLE)
            .cloned()
            .collect()
    }

    /// The hot path: a profile's credentials with at least `min_remaining` left, from cache.
    /// Never waits on STS for more than [`COLD_WAIT`].
    pub async fn credentials(&self, name: &str) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self.slot(name)?;
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        if let Some(c) = slot.servable(self.now(), min_remaining) {
            return Ok(c);
        }
        let deadline = tokio::time::Instant::now() + COLD_WAIT;
        if self.session().is_none() && self.look_for_cli_login() {
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
    fn login_under_way(&self) -> bool {
        self.inner.login_lock.try_read().is_err()
    }

    /// Credentials to sign a chained AssumeRole with: valid, not necessarily servable.
    async fn signing_credentials_of(
        &self,
        name: &str,
    ) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self
            .any_slot(name)
            .ok_or_else(|| EngineError::Unavailable {
                profile: name.to_owned(),
                detail: Some("no such profile to sign with".to_owned()),
            })?;
        let deadline = tokio::time::Instant::now() + CHAIN_WAIT;
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
                return Err(EngineError::Unavailable {
                    profile: name.to_owned(),
                    detail: slot.last_error(),
                });
            }
        }
    }

    /// One refresh of one profile, called only by that profile's worker.
    async fn refresh(&self, slot: &Slot) -> Result<RoleCredentials, EngineError> {
        let session = self.session().ok_or_else(|| self.login_required())?;
        let profile = slot.profile();
        let role_arn = match &profile.kind {
            ProfileKind::Sso(role) => return self.sso_role_credentials(role, &profile.name).await,
            ProfileKind::AssumeRole { role_arn } => role_arn,
        };
        // What signs: the profile it goes `via`, the access session's key, or Identity Center's
        // access role.
        let chained;
        let signer = match (&profile.via, &session.credential) {
            (None, SessionCredential::Signing(key)) => key,
            (via, _) => {
                let by = via.as_deref().unwrap_or(ACCESS_ROLE);
                chained = self.signing_credentials_of(by).await?;
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
            signer,
            &session_name,
        )
        .await;
        match result {
            Err(f)
                if f.kind == FailureKind::Expired
                    && profile.via.is_none()
                    && session.signing().is_some() =>
            {
                self.session_expired(&f);
                Err(self.login_required())
            }
            other => other.map_err(EngineError::from),
        }
    }

    /// Wakes every worker past its backoff and waits up to `wait` for them to have credentials.
    /// Stops early when a logout happens meanwhile.
    async fn warm(&self, wait: Duration) -> (usize, usize) {
        let epoch = self.epoch();
        let slots = self.all_slots();
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
            let counted = slot.profile().name != ACCESS_ROLE;
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

    pub fn profile_status(&self) -> Vec<ProfileStatus> {
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        let now = self.now();
        self.all_slots()
            .iter()
            .filter(|slot| slot.profile().name != ACCESS_ROLE)
            .map(|slot| {
                let p = slot.profile();
                let cached = slot.cached();
                let view = slot.status_view(min_remaining);
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
                            session::minutes(now.duration_since(since).unwrap_or_default())
                        )),
                        (e, _) => e,
                    },
                    sts_region: cached.as_ref().map(|c| c.region.clone()),
                    assumed_arn: cached.as_ref().map(|c| c.assumed_arn.clone()),
                }
            })
            .collect()
    }

    /// Keeps one slot per configured profile (and one for the Identity Center access role); a
    /// profile whose settings changed gets a new slot.
    fn reconcile_slots(&self, config: &Config) {
        let mut wanted = config.profiles.clone();
        if let Some(role) = config.access.sso_access_role().cloned() {
            wanted.insert(ACCESS_ROLE.to_owned(), access_role_profile(role));
        }
        let mut slots = lock::write(&self.inner.slots);
        slots.retain(|name, slot| {
            let keep = wanted.get(name) == Some(slot.profile());
            if !keep {
                slot.stop();
            }
            keep
        });
        for (name, profile) in &wanted {
            if !slots.contains_key(name) {
                let slot = Arc::new(Slot::new(profile.clone()));
                slot.start(self.clone());
                slots.insert(name.clone(), slot);
            }
        }
    }

    async fn follow_config(self) {
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
                )
            };
            if !config.access.same_session(&access) {
                tracing::info!("access settings changed; the old session is dropped");
                // Not a logout: a login shared with the AWS CLI stays the CLI's.
                self.forget_all();
                *lock::write(&self.inner.source) = new_source();
                if let Some(ic) = lock::read(&self.inner.source).identity_center().cloned() {
                    self.adopt_cli_login(&ic);
                }
                self.auto_login();
            } else if config.access != access {
                // Same session, other details (login method, replicas, session length,
                // mfa_command).
                let was_unattended = lock::read(&self.inner.source).is_unattended();
                *lock::write(&self.inner.source) = new_source();
                if !was_unattended && self.session().is_none() {
                    // An mfa_command was added: the daemon can log in by itself now.
                    self.auto_login();
                }
            }
            access = config.access.clone();
            self.reconcile_slots(&config);
            // min_remaining may have changed: let every worker recompute its schedule.
            for slot in self.all_slots() {
                slot.wake();
            }
        }
    }
}
