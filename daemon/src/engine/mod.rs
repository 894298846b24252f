//! The credential engine: the access session, one cached slot per profile, and the background
//! workers that keep every slot fresh.
//!
//! Requests only ever read the cache. Each profile has one worker task that alone calls STS for
//! it (single flight by construction); requests that find nothing servable wake it and wait a
//! bounded time for its next result. Providers ([`crate::access`], [`role`]) know nothing of
//! caching; this module knows nothing of HTTP.

pub mod role;
pub mod schedule;
mod slot;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credd_proto::{AccessInfo, ProfileState, ProfileStatus, Secret};
use tokio::sync::watch;

use crate::access::iam_user::IamUser;
use crate::access::persist::{self, SessionStore};
use crate::access::{AccessError, AccessSession, AccessSource};
use crate::config::{AccessConfig, Config};
use crate::creds::RoleCredentials;
use crate::lock;
use crate::sts::{FailureKind, Sts, StsFailure};
use slot::Slot;

/// A request that finds nothing servable waits this long for the worker's next result before it
/// answers 503. Well under the SDKs' own timeouts (Go's IMDS client waits 500 ms for headers).
pub const COLD_WAIT: Duration = Duration::from_millis(400);
/// How long a chained profile's worker waits for the profile it is assumed through.
const CHAIN_WAIT: Duration = Duration::from_secs(15);
/// `credd login` waits this long for the profiles to warm before it reports.
const WARM_WAIT: Duration = Duration::from_secs(5);
/// Status and the log warn this long before the access session ends.
pub const SESSION_WARNING: Duration = Duration::from_secs(60 * 60);

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
    #[error("MFA code needed for {serial}")]
    MfaRequired { serial: String },
    #[error("{0}")]
    InvalidMfaCode(String),
    #[error("{0}")]
    Access(String),
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
            AccessError::MfaRequired { serial } => EngineError::MfaRequired { serial },
            AccessError::MalformedMfaCode => EngineError::InvalidMfaCode(e.to_string()),
            AccessError::MfaCodeRefused(_) => EngineError::InvalidMfaCode(e.to_string()),
            AccessError::NoKey { .. } => EngineError::Access(e.to_string()),
            AccessError::Sts(f) => EngineError::Sts(f),
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
    sts: Sts,
    source: RwLock<Arc<dyn AccessSource>>,
    session: RwLock<SessionState>,
    /// Serializes logins; never held by a request.
    login_lock: tokio::sync::Mutex<()>,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Bumped by every logout: work started before it (a refresh in flight, the daemon's own
    /// login retries) must not bring credentials back.
    epoch: AtomicU64,
}

#[derive(Default)]
struct SessionState {
    current: Option<Arc<AccessSession>>,
    region: Option<String>,
    last_error: Option<String>,
    warned: bool,
}

pub struct LoginOutcome {
    /// Profiles with fresh credentials once the warm-up wait ended, of `total`.
    pub ready: usize,
    pub total: usize,
}

fn source_for(config: &AccessConfig) -> Arc<dyn AccessSource> {
    // Config validation admits only the sources built in.
    Arc::new(IamUser::new(config))
}

fn binding(config: &AccessConfig) -> persist::Binding<'_> {
    persist::Binding {
        source: config.source.as_str(),
        aws_profile: &config.aws_profile,
        mfa_serial: config.mfa_serial.as_deref(),
    }
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Engine {
    /// Restores a saved MFA session, logs in by itself when no user is needed, starts a worker
    /// per profile and follows config changes. Must be called inside the tokio runtime.
    pub fn start(config: watch::Receiver<Arc<Config>>, store: SessionStore) -> Engine {
        let cfg = config.borrow().clone();
        let restored = store.load(&binding(&cfg.access), SystemTime::now());
        if restored.is_some() {
            tracing::info!("restored the access session saved before the restart");
        }
        let inner = Arc::new(Inner {
            config,
            sts: Sts::from_env(),
            source: RwLock::new(source_for(&cfg.access)),
            session: RwLock::new(SessionState {
                current: restored.map(Arc::new),
                ..SessionState::default()
            }),
            login_lock: tokio::sync::Mutex::new(()),
            slots: RwLock::new(BTreeMap::new()),
            epoch: AtomicU64::new(0),
            store,
        });
        if let Some(url) = inner.sts.endpoint_override() {
            tracing::info!(endpoint = %url, "STS endpoint overridden by the environment");
        }
        let engine = Engine { inner };
        engine.reconcile_slots(&cfg);
        engine.auto_login();
        tokio::spawn(engine.clone().follow_config());
        tokio::spawn(engine.clone().watch_session_expiry());
        engine
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    fn config(&self) -> Arc<Config> {
        self.inner.config.borrow().clone()
    }

    fn session(&self) -> Option<Arc<AccessSession>> {
        let state = lock::read(&self.inner.session);
        state
            .current
            .clone()
            .filter(|s| s.expires_at.is_none_or(|t| t > SystemTime::now()))
    }

    fn login_required(&self) -> EngineError {
        let state = lock::read(&self.inner.session);
        let detail = match &state.current {
            Some(_) => Some("the access session has expired".to_owned()),
            None => state.last_error.clone(),
        };
        EngineError::LoginRequired { detail }
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>, EngineError> {
        let slots = lock::read(&self.inner.slots);
        slots
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownProfile {
                name: name.to_owned(),
                known: slots.keys().cloned().collect(),
            })
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        let slots = lock::read(&self.inner.slots);
        slots.values().cloned().collect()
    }

    pub fn profile_names(&self) -> Vec<String> {
        let slots = lock::read(&self.inner.slots);
        slots.keys().cloned().collect()
    }

    /// The hot path: a profile's credentials with at least `min_remaining` left, from cache.
    /// Never waits on STS for more than [`COLD_WAIT`].
    pub async fn credentials(&self, name: &str) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self.slot(name)?;
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        if let Some(c) = slot.servable(SystemTime::now(), min_remaining) {
            return Ok(c);
        }
        let deadline = tokio::time::Instant::now() + COLD_WAIT;
        if self.session().is_none() && self.inner.login_lock.try_lock().is_err() {
            // A login is under way (the daemon's own, at start): give it the same bounded wait.
            let _ = tokio::time::timeout_at(deadline, self.inner.login_lock.lock()).await;
        }
        if self.session().is_none() {
            // Whatever is cached is still valid AWS credentials; serve it while it lasts.
            if let Some(c) = slot.degraded(SystemTime::now()) {
                return Ok(c);
            }
            return Err(self.login_required());
        }
        // Below min_remaining but still valid: the refresh is late (STS slow or down). Serve
        // what is cached at once rather than make the request wait on STS.
        if let Some(c) = slot.degraded(SystemTime::now()) {
            slot.wake();
            tracing::debug!(profile = %name, left_s = c.remaining(SystemTime::now()).as_secs(), "serving credentials below min_remaining while the refresh is late");
            return Ok(c);
        }
        if !slot.is_failing() {
            let mut results = slot.subscribe();
            slot.wake();
            loop {
                if let Some(c) = slot.servable(SystemTime::now(), min_remaining) {
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

    /// Credentials to sign a chained AssumeRole with: valid, not necessarily servable.
    async fn signing_credentials_of(
        &self,
        name: &str,
    ) -> Result<Arc<RoleCredentials>, EngineError> {
        let slot = self.slot(name)?;
        let deadline = tokio::time::Instant::now() + CHAIN_WAIT;
        loop {
            let mut results = slot.subscribe();
            if let Some(c) = slot.usable_for_signing(SystemTime::now()) {
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
        let config = self.config();
        let profile = slot.profile();
        let signer = match &profile.via {
            None => session.signing.clone(),
            Some(via) => self.signing_credentials_of(via).await?.creds.clone(),
        };
        let session_name = profile
            .session_name
            .clone()
            .unwrap_or_else(|| session.default_session_name());
        let result = role::assume(
            &self.inner.sts,
            &config.access.regions,
            profile,
            &signer,
            &session_name,
        )
        .await;
        match result {
            Err(f) if f.kind == FailureKind::Expired && profile.via.is_none() => {
                self.session_expired(&f);
                Err(self.login_required())
            }
            other => other.map_err(EngineError::from),
        }
    }

    fn session_expired(&self, failure: &StsFailure) {
        let mut state = lock::write(&self.inner.session);
        if state.current.take().is_some() {
            // A restart must not bring the dead session back.
            self.inner.store.remove();
            tracing::error!(error = %failure, "the access session was refused as expired: run `credd login`");
            state.last_error = Some("the access session has expired".to_owned());
        }
    }

    /// `credd login`: (re)establishes the access session, then warms every profile.
    pub async fn login(&self, mfa_code: Option<Secret>) -> Result<LoginOutcome, EngineError> {
        let _guard = self.inner.login_lock.lock().await;
        let epoch = self.epoch();
        let config = self.config();
        let source = lock::read(&self.inner.source).clone();
        let result = source
            .login(&self.inner.sts, &config.access.regions, mfa_code)
            .await;
        let (session, region) = match result {
            Ok(ok) => ok,
            Err(AccessError::MfaRequired { serial }) => {
                return Err(EngineError::MfaRequired { serial });
            }
            Err(e) => {
                let e = EngineError::from(e);
                tracing::error!(error = %e, "login failed");
                lock::write(&self.inner.session).last_error = Some(e.to_string());
                return Err(e);
            }
        };
        if self.epoch() != epoch {
            return Err(EngineError::LoginRequired {
                detail: Some("logged out while the login was under way".to_owned()),
            });
        }
        if session.mfa
            && let Err(e) = self.inner.store.save(&binding(&config.access), &session)
        {
            tracing::warn!(error = %e, "could not save the session for restarts");
        }
        let session = Arc::new(session);
        {
            let mut state = lock::write(&self.inner.session);
            *state = SessionState {
                current: Some(session.clone()),
                region: Some(region),
                last_error: None,
                warned: false,
            };
        }
        tracing::info!(
            identity = session.identity_arn.as_deref().unwrap_or("unknown"),
            expires_at = session.expires_at.map(unix),
            "logged in"
        );
        let (ready, total) = self.warm(WARM_WAIT).await;
        if self.epoch() != epoch {
            return Err(EngineError::LoginRequired {
                detail: Some("logged out while the login was under way".to_owned()),
            });
        }
        Ok(LoginOutcome { ready, total })
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
        for slot in &slots {
            let mut results = slot.subscribe();
            loop {
                if slot.servable(SystemTime::now(), min_remaining).is_some() {
                    ready += 1;
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
        (ready, slots.len())
    }

    /// The daemon logs in by itself when the source needs nobody (a key without MFA).
    fn auto_login(&self) {
        let unattended = lock::read(&self.inner.source).is_unattended();
        if self.session().is_some() {
            let engine = self.clone();
            tokio::spawn(async move {
                engine.warm(Duration::ZERO).await;
            });
        } else if unattended {
            // STS may be unreachable right now (laptop just woke up, VPN not up yet): keep trying
            // with backoff until it works, someone logs in or out, or the source changes.
            let engine = self.clone();
            let epoch = self.epoch();
            tokio::spawn(async move {
                let mut failures = 0;
                while engine.session().is_none() && engine.epoch() == epoch {
                    if engine.login(None).await.is_ok() {
                        return;
                    }
                    failures += 1;
                    let delay = schedule::backoff(failures, rand::random::<f64>());
                    tracing::info!(retry_in_s = delay.as_secs(), "will try logging in again");
                    tokio::time::sleep(delay).await;
                }
            });
        }
    }

    /// `credd logout`: forgets the session and every cached credential.
    pub fn logout(&self) -> usize {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        let mut forgotten = 0;
        {
            let mut state = lock::write(&self.inner.session);
            if state.current.take().is_some() {
                forgotten += 1;
            }
            *state = SessionState {
                last_error: Some("logged out".to_owned()),
                ..SessionState::default()
            };
        }
        self.inner.store.remove();
        for slot in self.all_slots() {
            if slot.forget() {
                forgotten += 1;
            }
        }
        tracing::info!(forgotten, "logged out; every credential forgotten");
        forgotten
    }

    pub fn access_info(&self) -> AccessInfo {
        let config = self.config();
        let state = lock::read(&self.inner.session);
        let now = SystemTime::now();
        let session = state
            .current
            .as_ref()
            .filter(|s| s.expires_at.is_none_or(|t| t > now));
        let warning = session.and_then(|s| s.expires_at).and_then(|t| {
            let left = t.duration_since(now).unwrap_or_default();
            (left < SESSION_WARNING).then(|| {
                format!(
                    "the access session ends in {}: run `credd login` to renew it",
                    crate::config::fmt_duration(Duration::from_secs(left.as_secs()))
                )
            })
        });
        AccessInfo {
            source: config.access.source.as_str().to_owned(),
            logged_in: session.is_some(),
            identity: session.and_then(|s| s.identity_arn.clone()),
            expires_at: session.and_then(|s| s.expires_at).map(unix),
            mfa_serial: config.access.mfa_serial.clone(),
            sts_region: session.and(state.region.clone()),
            warning,
            last_error: if session.is_none() && state.current.is_some() {
                Some("the access session has expired".to_owned())
            } else {
                state.last_error.clone()
            },
            // Only an MFA session is worth keeping; a bare key logs in again by itself.
            session_storage: config
                .access
                .mfa_serial
                .is_some()
                .then(|| self.inner.store.describe()),
        }
    }

    pub fn profile_status(&self) -> Vec<ProfileStatus> {
        let min_remaining = self.inner.config.borrow().daemon.min_remaining;
        let now = SystemTime::now();
        self.all_slots()
            .iter()
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
                    role_arn: p.role_arn.clone(),
                    via: p.via.clone(),
                    state,
                    expires_at: cached.as_ref().map(|c| unix(c.expiration)),
                    last_refresh: view.last_refresh.map(unix),
                    next_refresh: view.next_refresh.map(unix),
                    last_error: view.last_error,
                    sts_region: cached.as_ref().map(|c| c.region.clone()),
                    assumed_arn: cached.as_ref().map(|c| c.assumed_arn.clone()),
                }
            })
            .collect()
    }

    /// Keeps one slot per configured profile; a profile whose settings changed gets a new slot.
    fn reconcile_slots(&self, config: &Config) {
        let mut slots = lock::write(&self.inner.slots);
        slots.retain(|name, slot| {
            let keep = config.profiles.get(name) == Some(slot.profile());
            if !keep {
                slot.stop();
            }
            keep
        });
        for (name, profile) in &config.profiles {
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
            if config.access.source != access.source
                || config.access.aws_profile != access.aws_profile
                || config.access.mfa_serial != access.mfa_serial
            {
                tracing::info!("access settings changed; the old session is dropped");
                *lock::write(&self.inner.source) = source_for(&config.access);
                self.logout();
                self.auto_login();
            } else if config.access.session_duration != access.session_duration {
                *lock::write(&self.inner.source) = source_for(&config.access);
            }
            access = config.access.clone();
            self.reconcile_slots(&config);
            // min_remaining may have changed: let every worker recompute its schedule.
            for slot in self.all_slots() {
                slot.wake();
            }
        }
    }

    /// Warns once in the log when the access session nears its end.
    async fn watch_session_expiry(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let mut state = lock::write(&self.inner.session);
            let Some(expires_at) = state.current.as_ref().and_then(|s| s.expires_at) else {
                continue;
            };
            let left = expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if left < SESSION_WARNING && !state.warned {
                state.warned = true;
                tracing::warn!(
                    left_min = left.as_secs() / 60,
                    "the access session ends soon: run `credd login` to renew it"
                );
            }
        }
    }
}
