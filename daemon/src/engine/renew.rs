//! A session that renews itself: web identity with a new ID token (the refresh grant, the token
//! file read again, or the token command run again), an MFA session with a new code from
//! `mfa_command`. Ahead of its end, in the background, once however many timers ask, never inside
//! a request. A failed renewal backs off and retries, and the session stays valid until its end
//! (a later success brings it back after); status says why. When the identity provider refuses
//! the refresh token, the session lasts until its end and status says to run `credd login`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Engine, schedule};
use crate::access::AccessSession;
use crate::access::source::{ErrorClass, Established, Source, retry_floor};
use crate::lock;

impl Engine {
    /// Starts a background renewal when it is due (called every few seconds). A session that
    /// ended meanwhile (the laptop slept through its renewal; a restart found it expired) is
    /// renewed too, while the refresh token, the token file or command, or mfa_command works.
    pub(super) fn renew_session_due(&self) {
        let now = self.now();
        let (session, began) = {
            let state = lock::read(&self.inner.session);
            if state.renew_stopped.is_some() || state.renew_retry_at.is_some_and(|t| t > now) {
                return;
            }
            let Some(session) = state.current.clone() else {
                return;
            };
            (session, state.began)
        };
        let source = self.source();
        let Some(end) = session.expires_at else {
            return;
        };
        if source.renewal(&session).is_none() {
            return;
        }
        // Its life: from when it was issued, or else (restored at start) as configured.
        let life = session
            .federation
            .as_ref()
            .map(|f| f.issued_at)
            .or(began)
            .map_or(self.config().access.session_duration, |b| {
                end.duration_since(b).unwrap_or_default()
            });
        if now < schedule::renew_at(end, life) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            // One renewal at a time; a timer that finds one under way leaves it be.
            let Ok(_renewing) = engine.inner.renew_lock.try_lock() else {
                return;
            };
            // A renewal is a login without the user: a `credd login` under way makes the new
            // session itself, and one that comes meanwhile waits and takes this one. (An MFA code
            // is accepted once: two runs of mfa_command within one step print the same code.)
            let Ok(_login) = engine.inner.login_lock.try_write() else {
                return;
            };
            engine.renew_session(&source, session).await;
        });
    }

    /// One renewal, with the renew and login locks held.
    async fn renew_session(&self, source: &Arc<dyn Source>, session: Arc<AccessSession>) {
        let epoch = self.epoch();
        let Some(renewal) = source.clone().renew(self.context(), session.clone()) else {
            return;
        };
        let result = renewal.await;
        if self.epoch() != epoch {
            return;
        }
        let now = self.now();
        let lapsed = session.expires_at.is_some_and(|end| end <= now);
        let mut state = lock::write(&self.inner.session);
        // A login or logout meanwhile has the last word.
        if !state
            .current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &session))
        {
            return;
        }
        match result {
            // Already over when it came (a clock that is wrong, ours or STS's): kept, it would be
            // renewed again at once, and again; a failure backs off instead.
            Ok(Established {
                session: renewed, ..
            }) if renewed.expires_at.is_some_and(|end| end <= now) => {
                state.renew_failures += 1;
                let delay = schedule::backoff(state.renew_failures, self.jitter());
                state.renew_retry_at = Some(now + delay);
                let ended = renewed.expires_at.map(humantime::format_rfc3339_seconds);
                let e = format!(
                    "the new session had already ended when it came (at {}): is this machine's \
                     clock, or STS's, wrong?",
                    ended.map(|t| t.to_string()).unwrap_or_default()
                );
                tracing::warn!(error = %e, failures = state.renew_failures, retry_in_s = delay.as_secs(), "could not renew the access session");
                state.last_error = Some(format!("renewing the access session: {e}"));
            }
            Ok(Established {
                session: renewed,
                region,
            }) => {
                tracing::info!(
                    how = %source.renewal(&renewed).unwrap_or_default(),
                    expires_at = renewed.expires_at.map(crate::clock::unix),
                    "renewed the access session"
                );
                // The identity provider may have rotated the refresh token: keep the new one.
                self.keep_for_restarts(&renewed);
                state.current = Some(Arc::new(renewed));
                state.region = region;
                state.began = Some(now);
                state.renew_failures = 0;
                state.renew_retry_at = None;
                state.last_error = None;
                state.warned = false;
                drop(state);
                // A `credd login` that waited for this renewal takes its session.
                self.inner.logins.fetch_add(1, Ordering::SeqCst);
                if lapsed {
                    // The workers went idle when the session ended: start them again, afresh, as
                    // a login does.
                    for slot in self.every_slot() {
                        slot.reset_backoff();
                        slot.wake();
                    }
                }
            }
            // e.g. the identity provider refused the refresh token.
            Err(e) if e.class() == ErrorClass::LoginAgain => {
                let ends = session
                    .expires_at
                    .map(|t| format!(" before {}", humantime::format_rfc3339_seconds(t)))
                    .unwrap_or_default();
                let why = format!("{e}: run `credd login`{ends}");
                tracing::warn!(reason = %why, "the access session can no longer renew itself");
                state.renew_stopped = Some(why.clone());
                state.last_error = Some(why);
            }
            Err(e) => {
                state.renew_failures += 1;
                let delay =
                    schedule::backoff(state.renew_failures, self.jitter()).max(retry_floor(&e));
                state.renew_retry_at = Some(now + delay);
                tracing::warn!(error = %e, failures = state.renew_failures, retry_in_s = delay.as_secs(), "could not renew the access session; it stays valid until its end");
                state.last_error = Some(format!("renewing the access session: {e}"));
            }
        }
    }
}
