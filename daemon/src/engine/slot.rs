//! One profile's cache slot and the worker task that alone refreshes it.
//!
//! The worker sleeps until the schedule says refresh (or a backoff ends), or until woken by a
//! request, a login, a config change or a jump of the wall clock (the machine slept), and then
//! recomputes; so however many requests wake it, one STS call is in flight per profile and every
//! waiter sees its result.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tracing::Instrument;

use super::schedule;
use super::{Engine, EngineError};
use crate::config::Profile;
use crate::creds::RoleCredentials;
use crate::lock;
use crate::sts::gate::{Urgency, with_urgency};

/// A chained call must not be signed with credentials about to lapse mid-flight.
const SIGNING_MIN_LEFT: Duration = Duration::from_secs(60);

pub struct Slot {
    profile: Profile,
    cached: RwLock<Option<Arc<RoleCredentials>>>,
    status: Mutex<Status>,
    wake: Notify,
    /// Bumped after every refresh attempt; waiters watch it.
    results: watch::Sender<u64>,
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Default)]
struct Status {
    last_refresh: Option<SystemTime>,
    last_error: Option<String>,
    failures: u32,
    retry_at: Option<SystemTime>,
    /// When the refreshes began failing: the first failure since the last success (a login's
    /// fresh start does not end the streak, a success does).
    failing_since: Option<SystemTime>,
    /// Whether this failing streak was told of (the log, a desktop notification).
    told: bool,
    /// Drawn once per credential, so the schedule does not move every time it is recomputed.
    jitter: f64,
    /// `credd refresh` asked for a refresh now, past the schedule and any backoff.
    forced: bool,
    /// A refresh is under way (a `credd refresh` then joins it rather than start another).
    in_flight: bool,
    /// Refresh attempts finished, and the last one's error (`None`: it succeeded).
    attempts: u64,
    last_failure: Option<EngineError>,
}

pub struct StatusView {
    pub last_refresh: Option<SystemTime>,
    pub next_refresh: Option<SystemTime>,
    pub last_error: Option<String>,
    pub failures: u32,
    pub failing_since: Option<SystemTime>,
    pub retry_at: Option<SystemTime>,
}

enum Due {
    Now,
    At(SystemTime),
    /// Nothing to do until woken (no session to refresh from).
    Idle,
}

impl Slot {
    pub fn new(profile: Profile) -> Slot {
        Slot {
            profile,
            cached: RwLock::new(None),
            status: Mutex::new(Status::default()),
            wake: Notify::new(),
            results: watch::Sender::new(0),
            task: Mutex::new(None),
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        lock::lock(&self.status)
    }

    pub fn cached(&self) -> Option<Arc<RoleCredentials>> {
        lock::read(&self.cached).clone()
    }

    /// Cached credentials with at least `min_remaining` left.
    pub fn servable(
        &self,
        now: SystemTime,
        min_remaining: Duration,
    ) -> Option<Arc<RoleCredentials>> {
        lock::read(&self.cached)
            .as_ref()
            .filter(|c| schedule::servable(c.expiration, now, min_remaining))
            .cloned()
    }

    /// Cached credentials still comfortably valid, for when refreshing is not possible.
    pub fn degraded(&self, now: SystemTime) -> Option<Arc<RoleCredentials>> {
        lock::read(&self.cached)
            .as_ref()
            .filter(|c| schedule::servable(c.expiration, now, schedule::OUTAGE_FLOOR))
            .cloned()
    }

    pub fn usable_for_signing(&self, now: SystemTime) -> Option<Arc<RoleCredentials>> {
        lock::read(&self.cached)
            .as_ref()
            .filter(|c| schedule::servable(c.expiration, now, SIGNING_MIN_LEFT))
            .cloned()
    }

    /// Whether a refresh is under way (queued for its STS call or waiting for the answer).
    pub fn refreshing(&self) -> bool {
        self.status().in_flight
    }

    pub fn is_failing(&self) -> bool {
        self.status().failures > 0
    }

    pub fn last_error(&self) -> Option<String> {
        self.status().last_error.clone()
    }

    /// When the refreshes have been failing for `after` by `now` and nobody was told yet: since
    /// when, and the last error; marks the streak told.
    pub fn failing_untold(&self, now: SystemTime, after: Duration) -> Option<(SystemTime, String)> {
        let mut s = self.status();
        let since = s.failing_since?;
        if s.told || now.duration_since(since).unwrap_or_default() < after {
            return None;
        }
        s.told = true;
        Some((since, s.last_error.clone().unwrap_or_default()))
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.results.subscribe()
    }

    /// Whether someone waits for this slot's next result: a request that found nothing
    /// servable, a chained profile's refresh that signs with it, a login warming it, `credd
    /// refresh`; each watches its results meanwhile.
    pub fn waited_for(&self) -> bool {
        self.results.receiver_count() > 0
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks for a refresh now (`credd refresh`), joining the one under way if there is one:
    /// returns the number of finished attempts to wait for ([`Slot::attempts_done`]).
    pub fn force(&self) -> u64 {
        let mut s = self.status();
        if !s.in_flight {
            s.forced = true;
        }
        let target = s.attempts + 1;
        drop(s);
        self.wake.notify_one();
        target
    }

    /// Finished refresh attempts, and the last one's error.
    pub fn attempts_done(&self) -> (u64, Option<EngineError>) {
        let s = self.status();
        (s.attempts, s.last_failure.clone())
    }

    /// After a login, a failing profile should try again at once.
    pub fn reset_backoff(&self) {
        let mut s = self.status();
        s.failures = 0;
        s.retry_at = None;
    }

    /// Drops the cached credentials; true if there were any.
    pub fn forget(&self) -> bool {
        let had = lock::write(&self.cached).take().is_some();
        let mut s = self.status();
        *s = Status {
            last_error: s.last_error.take(),
            forced: s.forced,
            in_flight: s.in_flight,
            attempts: s.attempts,
            last_failure: s.last_failure.take(),
            ..Status::default()
        };
        self.results.send_modify(|n| *n = n.wrapping_add(1));
        had
    }

    /// `next_refresh` is the backoff's end, or the scheduled refresh of the cached credentials
    /// (one of `profiles`).
    pub fn status_view(&self, min_remaining: Duration, profiles: usize) -> StatusView {
        let s = self.status();
        let next_refresh = s.retry_at.or_else(|| {
            lock::read(&self.cached).as_ref().map(|c| {
                schedule::refresh_at_among(
                    c.issued,
                    c.expiration,
                    min_remaining,
                    s.jitter,
                    profiles,
                )
            })
        });
        StatusView {
            last_refresh: s.last_refresh,
            next_refresh,
            last_error: s.last_error.clone(),
            failures: s.failures,
            failing_since: s.failing_since,
            retry_at: s.retry_at,
        }
    }

    pub fn start(self: &Arc<Self>, engine: Engine) {
        let slot = self.clone();
        let span = tracing::info_span!("profile", name = %self.profile.name);
        let handle = tokio::spawn(slot.run(engine).instrument(span));
        *lock::lock(&self.task) = Some(handle.abort_handle());
    }

    pub fn stop(&self) {
        if let Some(task) = lock::lock(&self.task).take() {
            task.abort();
        }
        self.forget();
    }

    fn due(&self, engine: &Engine, now: SystemTime) -> Due {
        if engine.session().is_none() {
            return Due::Idle;
        }
        let s = self.status();
        if s.forced {
            return Due::Now;
        }
        if let Some(retry_at) = s.retry_at {
            return if retry_at <= now {
                Due::Now
            } else {
                Due::At(retry_at)
            };
        }
        let Some(c) = lock::read(&self.cached).clone() else {
            return Due::Now;
        };
        let min_remaining = engine.inner.config.borrow().daemon.min_remaining;
        let at = schedule::refresh_at_among(
            c.issued,
            c.expiration,
            min_remaining,
            s.jitter,
            engine.profile_count(),
        );
        if at <= now { Due::Now } else { Due::At(at) }
    }

    pub(super) async fn run(self: Arc<Self>, engine: Engine) {
        loop {
            let now = engine.now();
            match self.due(&engine, now) {
                Due::Now => {}
                Due::At(at) => {
                    let wait = at.duration_since(now).unwrap_or_default();
                    tokio::select! {
                        () = engine.inner.clock.sleep(wait) => {}
                        () = self.wake.notified() => {}
                    }
                    continue;
                }
                Due::Idle => {
                    self.wake.notified().await;
                    continue;
                }
            }
            {
                let mut s = self.status();
                s.forced = false;
                s.in_flight = true;
            }
            let epoch = engine.epoch();
            // Its STS (or Identity Center) call queues behind others unless someone waits for
            // this slot's result meanwhile.
            let slot = self.clone();
            let urgency = Urgency::new(move || slot.waited_for());
            // Boxed: an idle worker (all but a few of 500) keeps only its small loop state.
            let refreshed = Box::pin(with_urgency(urgency, engine.refresh(&self))).await;
            let result = self.too_short_is_a_failure(&engine, refreshed);
            if engine.epoch() != epoch {
                // A logout happened meanwhile: whatever came back must not be kept.
                tracing::debug!("dropping a refresh that finished after a logout");
                self.finished(Some(engine.login_required()));
                continue;
            }
            let failure = result.as_ref().err().cloned();
            self.record(&engine, result);
            self.finished(failure);
        }
    }

    /// Credentials that come with less than `min_remaining` left (a clock that is wrong, ours or
    /// the service's) would be due for refresh at once, and again, with no backoff: a failure,
    /// which backs off, and leaves what is cached in place.
    fn too_short_is_a_failure(
        &self,
        engine: &Engine,
        result: Result<RoleCredentials, EngineError>,
    ) -> Result<RoleCredentials, EngineError> {
        let creds = result?;
        let now = engine.now();
        let min_remaining = engine.inner.config.borrow().daemon.min_remaining;
        if schedule::servable(creds.expiration, now, min_remaining) {
            return Ok(creds);
        }
        let left = creds.remaining(now);
        Err(EngineError::Unavailable {
            profile: self.profile.name.clone(),
            detail: Some(format!(
                "the new credentials expire at {} ({}s from now), less than min_remaining: is \
                 this machine's clock, or the service's, wrong?",
                humantime::format_rfc3339_seconds(creds.expiration),
                left.as_secs()
            )),
        })
    }

    /// Ends an attempt: counted before waiters are woken, so each sees its own.
    fn finished(&self, failure: Option<EngineError>) {
        {
            let mut s = self.status();
            s.in_flight = false;
            s.attempts = s.attempts.wrapping_add(1);
            s.last_failure = failure;
        }
        self.results.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn record(&self, engine: &Engine, result: Result<RoleCredentials, EngineError>) {
        let now = engine.now();
        match result {
            Ok(creds) => {
                tracing::info!(
                    expires_in_s = creds.remaining(now).as_secs(),
                    region = %creds.region,
                    "refreshed"
                );
                *lock::write(&self.cached) = Some(Arc::new(creds));
                let mut s = self.status();
                *s = Status {
                    last_refresh: Some(now),
                    jitter: engine.jitter(),
                    in_flight: s.in_flight,
                    forced: s.forced,
                    attempts: s.attempts,
                    ..Status::default()
                };
            }
            Err(EngineError::LoginRequired { .. }) => {
                // Nothing to retry until a login; the worker idles.
                let mut s = self.status();
                s.last_error = Some("not logged in".to_owned());
                s.failures = 0;
                s.retry_at = None;
                // Not the profile failing: the session's end is told of instead.
                s.failing_since = None;
                s.told = false;
            }
            Err(e) => {
                let mut s = self.status();
                s.failures = s.failures.saturating_add(1);
                s.failing_since.get_or_insert(now);
                let delay = schedule::backoff(s.failures, engine.jitter());
                s.retry_at = Some(now + delay);
                s.last_error = Some(e.to_string());
                tracing::warn!(error = %e, failures = s.failures, retry_in_ms = delay.as_millis() as u64, "refresh failed");
            }
        }
    }
}
