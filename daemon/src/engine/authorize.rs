//! `credd login` for every source: a direct login (a key, an MFA code, a token another tool
//! provides), or a pending login `credd login` waits for: a browser/device authorization the user
//! approves (Identity Center, credd's own OIDC login) or a run of `assertion_command` (SAML).
//! However many `credd login`s ask at once, one pending login is started and all of them wait for
//! it; requests and timers never start one (nothing prompts at the wrong moment).

use std::sync::Arc;

use credd_proto::{Authorization, BrowserLogin, Secret};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::session::{LoginOutcome, WARM_WAIT};
use super::{Engine, EngineError};
use crate::access::source::{Completed, Login, LoginRequest};
use crate::access::sso::SsoError;
use crate::access::{AccessError, BoxFuture};
use crate::lock;

pub enum LoginStart {
    Done(LoginOutcome),
    Pending(Authorization),
}

type Outcome = Option<Result<LoginOutcome, EngineError>>;

/// The authorization waiting for the user.
pub(super) struct PendingLogin {
    prompt: Authorization,
    /// `None` until the authorization ends.
    done: watch::Sender<Outcome>,
    task: AbortHandle,
}

impl Engine {
    /// `credd login`.
    pub async fn login(
        &self,
        mfa_code: Option<Secret>,
        browser: BrowserLogin,
    ) -> Result<LoginStart, EngineError> {
        let source = self.source();
        if !source.authorizes() {
            return self.login_direct(mfa_code).await.map(LoginStart::Done);
        }
        // Concurrent logins queue here while one starts, then join it.
        let _starting = self.inner.authorize_lock.lock().await;
        if let Some(joined) = self.joined() {
            return Ok(LoginStart::Pending(joined));
        }
        // No new browser tab while the session renews itself, or (Identity Center) while the
        // session has plenty left: the user, or the AWS CLI, already logged in.
        let suffices = (self.session().is_some() && self.renews_itself())
            || self.bearer_session_suffices(&source, &browser).await?;
        if suffices {
            let (ready, total) = self.warm(WARM_WAIT).await;
            return Ok(LoginStart::Done(LoginOutcome { ready, total }));
        }
        let request = LoginRequest {
            mfa_code: None,
            browser,
        };
        let started = source
            .login(self.context(), request)
            .await
            .map_err(|e| self.login_failed(e))?;
        let epoch = self.epoch();
        match started {
            Login::Pending { prompt, completion } => {
                let engine = self.clone();
                let work = async move {
                    match completion.await {
                        Ok(completed) => engine.finish_login(completed, epoch).await,
                        Err(e) => Err(engine.login_failed(e)),
                    }
                };
                Ok(LoginStart::Pending(
                    self.begin_pending(prompt, Box::pin(work)),
                ))
            }
            Login::Done(made) => self
                .finish_login(Completed::Session(made), epoch)
                .await
                .map(LoginStart::Done),
            Login::NeedsMfa { serial } => Err(AccessError::MfaRequired { serial }.into()),
        }
    }

    /// The authorization already waiting for the user, for a `credd login` that joins it.
    fn joined(&self) -> Option<Authorization> {
        lock::lock(&self.inner.pending)
            .as_ref()
            .map(|pending| Authorization {
                joined: true,
                ..pending.prompt.clone()
            })
    }

    /// Records a failed login for status and the log, and passes its error on.
    pub(super) fn login_failed(&self, e: AccessError) -> EngineError {
        let e = EngineError::from(e);
        tracing::warn!(error = %e, "the login did not complete");
        lock::write(&self.inner.session).last_error = Some(e.to_string());
        e
    }

    /// Makes `work` the pending login: every `credd login` waits for it (single flight) until it
    /// ends or is cancelled. Called with the authorize lock held.
    fn begin_pending(
        &self,
        prompt: Authorization,
        work: BoxFuture<'static, Result<LoginOutcome, EngineError>>,
    ) -> Authorization {
        let (done, _) = watch::channel(None);
        let engine = self.clone();
        // The task waits until the pending login is recorded, so that its end always finds it.
        let (recorded, go) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if go.await.is_err() {
                return;
            }
            let result = work.await;
            engine.end_pending(Some(result));
        });
        *lock::lock(&self.inner.pending) = Some(Arc::new(PendingLogin {
            prompt: prompt.clone(),
            done,
            task: task.abort_handle(),
        }));
        let _ = recorded.send(());
        prompt
    }

    /// Installs the session a login made (or joins Identity Center's new token to it), then
    /// warms every profile.
    async fn finish_login(
        &self,
        completed: Completed,
        epoch: u64,
    ) -> Result<LoginOutcome, EngineError> {
        self.no_logout_since(epoch)?;
        match completed {
            Completed::Session(made) => self.set_session(made.session, made.region),
            Completed::Token(token) => self.join_token(token)?,
        }
        let (ready, total) = self.warm(WARM_WAIT).await;
        Ok(LoginOutcome { ready, total })
    }

    /// Publishes how the pending authorization ended and forgets it.
    fn end_pending(&self, result: Outcome) {
        if let Some(pending) = lock::lock(&self.inner.pending).take() {
            pending.done.send_replace(result);
        }
    }

    pub(super) fn pending_authorization(&self) -> Option<Authorization> {
        lock::lock(&self.inner.pending)
            .as_ref()
            .map(|p| p.prompt.clone())
    }

    /// `credd login` after `AuthorizationPending`: waits for the authorization to end.
    pub async fn login_wait(&self) -> Result<LoginOutcome, EngineError> {
        let pending = lock::lock(&self.inner.pending).clone();
        let Some(pending) = pending else {
            if self.session().is_some() {
                let (ready, total) = self.warm(std::time::Duration::ZERO).await;
                return Ok(LoginOutcome { ready, total });
            }
            return Err(self.login_required());
        };
        let mut rx = pending.done.subscribe();
        drop(pending);
        let ended = rx.wait_for(Option::is_some).await;
        match ended {
            Ok(outcome) => outcome
                .clone()
                .unwrap_or_else(|| Err(self.login_required())),
            Err(_) => Err(EngineError::from(AccessError::Sso(
                SsoError::AuthorizationCancelled,
            ))),
        }
    }

    /// Abandons the pending authorization; true if there was one.
    pub fn login_cancel(&self) -> bool {
        let Some(pending) = lock::lock(&self.inner.pending).take() else {
            return false;
        };
        pending.task.abort();
        pending
            .done
            .send_replace(Some(Err(EngineError::from(AccessError::Sso(
                SsoError::AuthorizationCancelled,
            )))));
        tracing::info!("the pending login was cancelled");
        true
    }
}
