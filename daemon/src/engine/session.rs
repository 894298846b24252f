//! The access session's lifecycle: restored at start, established by `credd login` (or by the
//! daemon itself when the source needs nobody), dropped on logout, on expiry, or when STS calls
//! it expired; and the watch that renews it, warns before it ends (status, the log, a desktop
//! notification), tells of profiles that keep failing, and notices when the machine slept.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use credd_proto::{AccessInfo, Secret};
use tokio::sync::OwnedRwLockWriteGuard;

use super::{Engine, EngineError, schedule};
use crate::access::persist;
use crate::access::source::{Login, LoginRequest, Source};
use crate::access::{AccessError, AccessSession};
use crate::clock::unix;
use crate::config::AccessConfig;
use crate::desktop::{Notice, shorten};
use crate::lock;
use crate::sts::StsFailure;

/// Status, the log and a desktop notification warn this long before an access session that will
/// not renew itself ends: an hour and ten minutes, or a quarter of its length for a session
/// shorter than 4 h 40 min (a 1-hour SAML session is not "ending soon" when it starts).
pub const SESSION_WARNING: Duration = Duration::from_secs(70 * 60);
/// A self-renewing session whose renewal failed this many times in a row is warned about like one
/// that does not renew itself (e.g. the YubiKey of mfa_command is not plugged in): a passing
/// failure is not.
const RENEWAL_TROUBLE: u32 = 3;
/// A profile whose refresh has been failing this long is logged and notified about, once per
/// failing streak (the backoff's cap: by then it has been tried about nine times).
pub const FAILING_NOTICE: Duration = Duration::from_secs(5 * 60);

/// A request that finds no session looks for a login made outside credd at most this often.
const OUTSIDE_LOGIN_CHECK: Duration = Duration::from_secs(1);

/// How long before `session`'s end status and the log warn of it.
fn warning_window(session: &AccessSession) -> Duration {
    let length = session
        .federation
        .as_ref()
        .and_then(|f| session.expires_at?.duration_since(f.issued_at).ok());
    length.map_or(SESSION_WARNING, |l| SESSION_WARNING.min(l / 4))
}
/// `credd login` waits this long for the profiles to warm before it reports.
pub(super) const WARM_WAIT: Duration = Duration::from_secs(5);
/// How often the wall clock is compared with monotonic time. A laptop's sleep stops monotonic
/// timers, so a refresh due during the sleep would otherwise wait out the rest of its timer
/// after waking: with this, it starts within this long of waking.
pub const WALL_CHECK: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct SessionState {
    pub(super) current: Option<Arc<AccessSession>>,
    pub(super) region: Option<String>,
    pub(super) last_error: Option<String>,
    pub(super) warned: bool,
    /// When this daemon made the session (a login or a renewal); `None` for one restored at start
    /// or taken from the AWS CLI. With its end, its length: when to renew it.
    pub(super) began: Option<SystemTime>,
    /// Renewals (Identity Center's token, a self-renewing session) that failed in a row, and when
    /// to try again.
    pub(super) renew_failures: u32,
    pub(super) renew_retry_at: Option<SystemTime>,
    /// When a request last looked for a login made outside credd.
    pub(super) last_outside_check: Option<tokio::time::Instant>,
    /// Identity Center: who the user is (an assumed-role ARN whose session name is the user),
    /// asked of STS once per session with the first role credentials, for the RoleSessionName of
    /// role_arn profiles and for status.
    pub(super) sso_user: Option<String>,
    pub(super) sso_user_asked: bool,
    /// Why the session stopped renewing itself (the identity provider refused web identity's
    /// refresh token); then it lasts until its end and `credd login` renews it.
    pub(super) renew_stopped: Option<String>,
}

impl SessionState {
    pub(super) fn restored(session: Option<AccessSession>) -> SessionState {
        SessionState {
            current: session.map(Arc::new),
            ..SessionState::default()
        }
    }

    /// The session, unless it has ended by `now`.
    fn live(&self, now: SystemTime) -> Option<&Arc<AccessSession>> {
        self.current
            .as_ref()
            .filter(|s| s.expires_at.is_none_or(|t| t > now))
    }

    /// How the session renews itself, while it does (web identity until the identity provider
    /// refuses; an MFA session with `source`'s mfa_command).
    fn renewal(&self, source: &dyn Source) -> Option<String> {
        if self.renew_stopped.is_some() {
            return None;
        }
        source.renewal(self.current.as_ref()?)
    }

    /// When the session ends and how long before that to warn of it; `None` for a session that
    /// renews itself (and is not failing to) or never ends.
    fn ending(&self, source: &dyn Source) -> Option<(SystemTime, Duration)> {
        let session = self.current.as_ref()?;
        if self.renewal(source).is_some() && self.renew_failures < RENEWAL_TROUBLE {
            return None;
        }
        Some((session.ends_at()?, warning_window(session)))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LoginOutcome {
    /// Profiles with fresh credentials once the warm-up wait ended, of `total`.
    pub ready: usize,
    pub total: usize,
}

pub(super) fn binding(config: &AccessConfig) -> persist::Binding<'_> {
    persist::Binding {
        source: config.kind().as_str(),
        settings: config.session_settings(),
    }
}

/// Whether a restart should find `session` again: one the user had to make (an MFA code, a
/// browser login whose refresh token renews it, a SAML command). A bare key, or a token another
/// tool keeps, logs in again by itself.
pub(super) fn worth_keeping(session: &AccessSession) -> bool {
    session.mfa
        || session
            .federation
            .as_ref()
            .is_some_and(|f| f.refresh_token.is_some() || f.renews.is_none())
}

const EXPIRED: &str = "the access session has expired";

impl Engine {
    /// The access session, while it lasts.
    pub(super) fn session(&self) -> Option<Arc<AccessSession>> {
        let now = self.inner.clock.now();
        lock::read(&self.inner.session).live(now).cloned()
    }

    pub(super) fn login_required(&self) -> EngineError {
        let state = lock::read(&self.inner.session);
        let detail = match &state.current {
            Some(_) => Some(EXPIRED.to_owned()),
            None => state.last_error.clone(),
        };
        EngineError::LoginRequired { detail }
    }

    /// STS refused the session as expired before its recorded end (revoked, clock skew).
    pub(super) fn session_expired(&self, failure: &StsFailure) {
        let mut state = lock::write(&self.inner.session);
        if state.current.take().is_some() {
            // A restart must not bring the dead session back.
            self.inner.store.remove();
            tracing::error!(error = %failure, "the access session was refused as expired: run `credd login`");
            state.last_error = Some(EXPIRED.to_owned());
        }
    }

    /// `credd login`: (re)establishes the access session, then warms every profile. A login
    /// that waited for another one to finish takes its session instead of logging in again (one
    /// STS call, one token command run, however many ask at once).
    pub(super) async fn login_direct(
        &self,
        mfa_code: Option<Secret>,
    ) -> Result<LoginOutcome, EngineError> {
        let logins = self.inner.logins.load(Ordering::SeqCst);
        let guard = self.inner.login_lock.clone().write_owned().await;
        if self.inner.logins.load(Ordering::SeqCst) != logins && self.session().is_some() {
            drop(guard);
            let (ready, total) = self.warm(WARM_WAIT).await;
            return Ok(LoginOutcome { ready, total });
        }
        self.login_holding(guard, mfa_code).await
    }

    /// [`Engine::login_direct`] with the login lock already taken.
    async fn login_holding(
        &self,
        _guard: OwnedRwLockWriteGuard<()>,
        mfa_code: Option<Secret>,
    ) -> Result<LoginOutcome, EngineError> {
        let epoch = self.epoch();
        let request = LoginRequest {
            mfa_code,
            ..LoginRequest::default()
        };
        let made = match self.source().login(self.context(), request).await {
            Ok(Login::Done(made)) => made,
            Ok(Login::NeedsMfa { serial }) => {
                return Err(AccessError::MfaRequired { serial }.into());
            }
            Ok(Login::Pending { .. }) => {
                // A source that authorizes is logged in by `Engine::login`, which waits for it.
                return Err(EngineError::LoginRequired {
                    detail: Some("this access source logs in with `credd login`".to_owned()),
                });
            }
            Err(e) => {
                let e = EngineError::from(e);
                tracing::error!(error = %e, "login failed");
                lock::write(&self.inner.session).last_error = Some(e.to_string());
                return Err(e);
            }
        };
        let (session, region) = (made.session, made.region);
        self.no_logout_since(epoch)?;
        self.set_session(session, region);
        let (ready, total) = self.warm(WARM_WAIT).await;
        self.no_logout_since(epoch)?;
        Ok(LoginOutcome { ready, total })
    }

    /// A login that began at `epoch` must not install a session past a logout made meanwhile.
    pub(super) fn no_logout_since(&self, epoch: u64) -> Result<(), EngineError> {
        if self.epoch() == epoch {
            return Ok(());
        }
        Err(EngineError::LoginRequired {
            detail: Some("logged out while the login was under way".to_owned()),
        })
    }

    /// Makes `session` the access session (a new login: everything about the old one is reset),
    /// and keeps it for restarts when it is worth keeping.
    pub(super) fn set_session(&self, session: AccessSession, region: Option<String>) {
        self.keep_for_restarts(&session);
        let session = Arc::new(session);
        *lock::write(&self.inner.session) = SessionState {
            current: Some(session.clone()),
            region,
            began: Some(self.now()),
            ..SessionState::default()
        };
        self.inner.logins.fetch_add(1, Ordering::SeqCst);
        tracing::info!(
            identity = session.identity_arn.as_deref().unwrap_or("unknown"),
            expires_at = session.expires_at.map(unix),
            "logged in"
        );
    }

    pub(super) fn keep_for_restarts(&self, session: &AccessSession) {
        if !worth_keeping(session) {
            return;
        }
        let config = self.config();
        if let Err(e) = self.inner.store.save(&binding(&config.access), session) {
            tracing::warn!(error = %e, "could not save the session for restarts");
        }
    }

    /// Whether the access session renews itself without the user (web identity, while the
    /// identity provider keeps renewing it; an MFA session with mfa_command).
    pub(super) fn renews_itself(&self) -> bool {
        let source = self.source();
        lock::read(&self.inner.session).renewal(&*source).is_some()
    }

    /// The daemon logs in by itself when the source needs nobody (a key without MFA, or with
    /// mfa_command).
    pub(super) fn auto_login(&self) {
        let unattended = self.source().is_unattended();
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
            // Taken here, not in the task: a request that comes before the task runs must see
            // that a login is under way and wait for it, not answer "not logged in".
            let mut first = self.inner.login_lock.clone().try_write_owned().ok();
            tokio::spawn(async move {
                let mut failures = 0;
                while engine.session().is_none() && engine.epoch() == epoch {
                    let attempt = match first.take() {
                        Some(guard) => engine.login_holding(guard, None).await,
                        None => engine.login_direct(None).await,
                    };
                    if attempt.is_ok() {
                        return;
                    }
                    failures += 1;
                    let delay = schedule::backoff(failures, engine.jitter());
                    tracing::info!(retry_in_s = delay.as_secs(), "will try logging in again");
                    engine.inner.clock.sleep(delay).await;
                }
            });
        }
    }

    /// Takes up a login made outside credd (the AWS CLI's, for Identity Center), when there is
    /// no session; true if it did.
    pub(super) fn adopt_outside_login(&self) -> bool {
        if self.session().is_some() {
            return false;
        }
        let Some(session) = self.source().adopt() else {
            return false;
        };
        {
            let mut state = lock::write(&self.inner.session);
            if state.current.is_some() {
                return false;
            }
            state.current = Some(Arc::new(session));
            state.last_error = None;
            state.sso_user = None;
            state.sso_user_asked = false;
        }
        tracing::info!("took up the login found outside credd (the AWS CLI's token cache)");
        let engine = self.clone();
        tokio::spawn(async move {
            engine.warm(Duration::ZERO).await;
        });
        true
    }

    /// For a request that found no session: a login made outside credd meanwhile counts
    /// (looked for at most every [`OUTSIDE_LOGIN_CHECK`]).
    pub(super) fn look_for_outside_login(&self) -> bool {
        if !self.source().shares_login() {
            return false;
        }
        {
            let mut state = lock::write(&self.inner.session);
            let now = tokio::time::Instant::now();
            if state
                .last_outside_check
                .is_some_and(|t| now.duration_since(t) < OUTSIDE_LOGIN_CHECK)
            {
                return false;
            }
            state.last_outside_check = Some(now);
        }
        self.adopt_outside_login()
    }

    /// `credd logout`: forgets the session and every cached credential.
    /// For Identity Center this ends the login shared with the AWS CLI too (its cache file goes,
    /// as with `aws sso logout`): otherwise the next request would take it up again.
    pub fn logout(&self) -> usize {
        let (forgotten, ended) = self.forget_all();
        if let Some(ended) = ended {
            self.source().logged_out(&ended);
        }
        forgotten
    }

    /// Forgets the session and every cached credential; returns how many, and the session.
    pub(super) fn forget_all(&self) -> (usize, Option<Arc<AccessSession>>) {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        self.login_cancel();
        let mut forgotten = 0;
        let ended;
        {
            let mut state = lock::write(&self.inner.session);
            ended = state.current.take();
            forgotten += usize::from(ended.is_some());
            *state = SessionState {
                last_error: Some("logged out".to_owned()),
                ..SessionState::default()
            };
        }
        self.inner.store.remove();
        for slot in self.every_slot() {
            if slot.forget() {
                forgotten += 1;
            }
        }
        tracing::info!(forgotten, "logged out; every credential forgotten");
        (forgotten, ended)
    }

    pub fn access_info(&self) -> AccessInfo {
        let config = self.config();
        let now = self.inner.clock.now();
        let source = self.source();
        let state = lock::read(&self.inner.session);
        let session = state.live(now);
        let renews = session.and(state.renewal(&*source));
        let warning = session.and(state.ending(&*source)).and_then(|(t, window)| {
            let left = t.duration_since(now).unwrap_or_default();
            (left < window).then(|| {
                format!(
                    "the access session ends in {}: run `credd login` to renew it",
                    span(left)
                )
            })
        });
        // The access role's ARN once it has credentials; else what the source says.
        let identity = session.and_then(|s| {
            self.access_role()
                .and_then(|slot| slot.cached())
                .map(|c| c.assumed_arn.clone())
                .or_else(|| source.identity(s, state.sso_user.as_deref()))
        });
        let shown = source.status(session.map(|s| &**s));
        AccessInfo {
            source: config.access.kind().as_str().to_owned(),
            logged_in: session.is_some(),
            identity,
            expires_at: session.and_then(|s| s.ends_at()).map(unix),
            mfa_serial: config.access.mfa_serial().map(str::to_owned),
            sts_region: session.and(state.region.clone()),
            warning,
            last_error: if session.is_none() && state.current.is_some() {
                Some(EXPIRED.to_owned())
            } else {
                state.last_error.clone()
            },
            // Only a session the user had to make is worth keeping; a bare key (or a token
            // another tool keeps) logs in again by itself.
            session_storage: if source.shares_login() {
                shown.shared_storage
            } else {
                (config.access.mfa_serial().is_some() || session.is_some_and(|s| worth_keeping(s)))
                    .then(|| self.inner.store.describe())
            },
            sso: shown.sso,
            federation: shown.federation,
            renews,
            key: self.key_info(),
            pending: self.pending_authorization(),
        }
    }

    /// Every [`WALL_CHECK`]: wakes every worker when the wall clock jumped (the machine slept,
    /// or the clock was set), so refreshes that fell due meanwhile start now; starts the
    /// session's renewals when due; and warns once (the log, a desktop notification) when the
    /// access session nears its end or a profile has been failing for [`FAILING_NOTICE`].
    pub(super) async fn watch_time(self) {
        let clock = self.inner.clock.clone();
        let mut before = clock.reading();
        loop {
            clock.sleep(WALL_CHECK).await;
            if let Some(jump) = clock.wall_jump(&before) {
                tracing::info!(
                    jump_s = jump.as_secs(),
                    "the wall clock jumped (the machine slept, or the clock was set): rechecking every profile"
                );
                for slot in self.every_slot() {
                    slot.wake();
                }
            }
            before = clock.reading();
            self.renew_due();
            self.renew_session_due();
            self.warn_session_ending();
            self.warn_failing_profiles();
        }
    }

    /// Once per session, when it nears its end.
    fn warn_session_ending(&self) {
        let source = self.source();
        let left = {
            let mut state = lock::write(&self.inner.session);
            let Some((ends_at, window)) = state.ending(&*source) else {
                return;
            };
            let left = ends_at.duration_since(self.now()).unwrap_or_default();
            if left >= window || state.warned {
                return;
            }
            state.warned = true;
            left
        };
        tracing::warn!(
            left_min = left.as_secs() / 60,
            "the access session ends soon: run `credd login` to renew it"
        );
        let summary = if left.is_zero() {
            "credd: the AWS access session has ended".to_owned()
        } else {
            format!("credd: the AWS access session ends in {}", span(left))
        };
        self.notify(Notice {
            summary,
            body: "Run `credd login` to renew it: without it, your profiles' credentials are \
                   not refreshed."
                .to_owned(),
        });
    }

    /// Once per failing streak of each profile, when it has lasted [`FAILING_NOTICE`].
    fn warn_failing_profiles(&self) {
        let now = self.now();
        // The Identity Center access role is not a profile: those it signs for say it.
        for slot in self.profile_slots() {
            let name = &slot.profile().name;
            let Some((since, error)) = slot.failing_untold(now, FAILING_NOTICE) else {
                continue;
            };
            let failing = now.duration_since(since).unwrap_or_default();
            tracing::warn!(
                profile = %name,
                failing_s = failing.as_secs(),
                error = %error,
                "the profile's credentials have failed to refresh for 5 minutes"
            );
            self.notify(Notice {
                summary: format!("credd: profile {name} is failing"),
                body: format!(
                    "Its credentials have failed to refresh for {}: {}",
                    span(failing),
                    shorten(&error)
                ),
            });
        }
    }
}

/// A span of time for people, in the style every message of credd's uses (`1h 10m`, `14m 59s`).
pub(super) fn span(d: Duration) -> String {
    credd_proto::human::duration(d.as_secs())
}
