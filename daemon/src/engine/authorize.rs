//! `credd login` for every source: a direct login (a key, an MFA code, a token another tool
//! provides), or a pending login `credd login` waits for: a browser/device authorization the user
//! approves (Identity Center, credd's own OIDC login) or a run of `assertion_command` (SAML).
//! However many `credd login`s ask at once, one pending login is started and all of them wait for
//! it; requests and timers never start one (nothing prompts at the wrong moment).

use std::sync::Arc;

use credd_proto::{Authorization, BrowserLogin, LoginMethod, Secret};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::session::{LoginOutcome, SESSION_WARNING, WARM_WAIT};
use super::sso::{bearer_session, with_token};
use super::{Engine, EngineError};
use crate::access::saml::{ASSERTION_COMMAND_LIMIT, Saml};
use crate::access::sso::{IdentityCenter, SsoError, SsoToken};
use crate::access::web_identity::WebIdentity;
use crate::access::{AccessError, AccessSession, AccessSource, BoxFuture};
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
        let source = lock::read(&self.inner.source).clone();
        match &*source {
            AccessSource::IdentityCenter(ic) => self.login_sso(ic, browser).await,
            AccessSource::WebIdentity(w) if w.oidc.is_some() => {
                self.login_oidc(w.clone(), browser).await
            }
            AccessSource::Saml(saml) => self.login_saml(saml.clone()).await,
            AccessSource::IamUser(_) | AccessSource::WebIdentity(_) => {
                self.login_direct(mfa_code).await.map(LoginStart::Done)
            }
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

    async fn login_sso(
        &self,
        ic: &Arc<IdentityCenter>,
        browser: BrowserLogin,
    ) -> Result<LoginStart, EngineError> {
        // Concurrent logins queue here while one starts, then join it.
        let _starting = self.inner.authorize_lock.lock().await;
        if let Some(joined) = self.joined() {
            return Ok(LoginStart::Pending(joined));
        }
        let region = browser
            .region
            .clone()
            .unwrap_or_else(|| ic.config.region.clone());
        ic.configured_start_url(&region)?;
        // No new browser tab while the session has plenty left: the user (or the AWS CLI)
        // already logged in.
        if self.session().is_none() {
            self.adopt_cli_login(ic);
        }
        if self.has_usable_token(&region).await {
            let (ready, total) = self.warm(WARM_WAIT).await;
            return Ok(LoginStart::Done(LoginOutcome { ready, total }));
        }
        let method = ic.method(browser.method, browser.display);
        let pending = ic.authorize(method, &region).await.map_err(|e| {
            let e = EngineError::from(AccessError::Sso(e));
            tracing::error!(error = %e, "could not start the Identity Center login");
            lock::write(&self.inner.session).last_error = Some(e.to_string());
            e
        })?;
        tracing::info!(
            region,
            ?method,
            "waiting for the user to approve the Identity Center login"
        );
        let epoch = self.epoch();
        let engine = self.clone();
        let ic = ic.clone();
        let completion = pending.completion;
        let work = async move {
            match completion.await {
                Ok(token) => engine.finish_sso_login(&ic, token, epoch).await,
                Err(e) => Err(engine.login_failed(AccessError::Sso(e))),
            }
        };
        Ok(LoginStart::Pending(
            self.begin_pending(pending.prompt, Box::pin(work)),
        ))
    }

    /// credd's own OIDC login: a browser or device authorization, whose ID token is then traded
    /// with STS.
    async fn login_oidc(
        &self,
        source: Arc<WebIdentity>,
        browser: BrowserLogin,
    ) -> Result<LoginStart, EngineError> {
        let _starting = self.inner.authorize_lock.lock().await;
        if let Some(joined) = self.joined() {
            return Ok(LoginStart::Pending(joined));
        }
        // No new browser tab while the session renews itself.
        if self.session().is_some() && self.renews_itself() {
            let (ready, total) = self.warm(WARM_WAIT).await;
            return Ok(LoginStart::Done(LoginOutcome { ready, total }));
        }
        let oidc = source
            .oidc
            .clone()
            .expect("called for credd's own OIDC login");
        let method = match (browser.method, browser.display) {
            (Some(m @ (LoginMethod::Browser | LoginMethod::Device)), _) => m,
            (_, true) => LoginMethod::Browser,
            (_, false) => LoginMethod::Device,
        };
        let pending = oidc
            .authorize(method)
            .await
            .map_err(|e| self.login_failed(e.into()))?;
        tracing::info!(issuer = %oidc.config.issuer, ?method, "waiting for the user to approve the login at the identity provider");
        let epoch = self.epoch();
        let engine = self.clone();
        let completion = pending.completion;
        let work = async move {
            let tokens = completion
                .await
                .map_err(|e| engine.login_failed(e.into()))?;
            let regions = engine.config().access.regions.clone();
            let result = source.exchange(&engine.inner.sts, &regions, tokens).await;
            engine.finish_federated_login(result, epoch).await
        };
        Ok(LoginStart::Pending(
            self.begin_pending(pending.prompt, Box::pin(work)),
        ))
    }

    /// SAML: runs `assertion_command` once, however many `credd login`s ask.
    async fn login_saml(&self, saml: Arc<Saml>) -> Result<LoginStart, EngineError> {
        let _starting = self.inner.authorize_lock.lock().await;
        if let Some(joined) = self.joined() {
            return Ok(LoginStart::Pending(joined));
        }
        let prompt = Authorization {
            method: LoginMethod::Command,
            url: saml.config.assertion_command.join(" "),
            user_code: None,
            provider: "assertion_command".to_owned(),
            region: None,
            expires_at: crate::clock::unix(self.now() + ASSERTION_COMMAND_LIMIT),
            joined: false,
        };
        tracing::info!("running assertion_command for a SAML assertion");
        let epoch = self.epoch();
        let engine = self.clone();
        let work = async move {
            let regions = engine.config().access.regions.clone();
            let result = saml.login(&engine.inner.sts, &regions).await;
            engine.finish_federated_login(result, epoch).await
        };
        Ok(LoginStart::Pending(
            self.begin_pending(prompt, Box::pin(work)),
        ))
    }

    /// Installs the session a federated login made, then warms every profile.
    async fn finish_federated_login(
        &self,
        result: Result<(AccessSession, String), AccessError>,
        epoch: u64,
    ) -> Result<LoginOutcome, EngineError> {
        let (session, region) = result.map_err(|e| self.login_failed(e))?;
        self.no_logout_since(epoch)?;
        self.set_session(session, region);
        let (ready, total) = self.warm(WARM_WAIT).await;
        Ok(LoginOutcome { ready, total })
    }

    /// Whether `region` holds a token that works, and the session is not near its end.
    async fn has_usable_token(&self, region: &str) -> bool {
        let Some(session) = self.session() else {
            return false;
        };
        let now = self.now();
        if session
            .ends_at()
            .is_some_and(|end| end.duration_since(now).unwrap_or_default() < SESSION_WARNING)
        {
            return false;
        }
        if !session.tokens().iter().any(|t| t.region == region) {
            return false;
        }
        match self.renew_token(region, false).await {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(error = %e, "the kept Identity Center token is not usable; a new login is needed");
                false
            }
        }
    }

    async fn finish_sso_login(
        &self,
        ic: &IdentityCenter,
        token: SsoToken,
        epoch: u64,
    ) -> Result<LoginOutcome, EngineError> {
        self.no_logout_since(epoch)?;
        ic.save(&token);
        let expected_end = token.session_start.map(|start| start + ic.session_length);
        let region = token.region.clone();
        {
            let mut state = lock::write(&self.inner.session);
            // A replica's authorization joins the session; the home Region's renews it.
            let tokens = with_token(
                state.current.as_ref().map_or(&[], |s| s.tokens()),
                token,
                &ic.regions(),
            );
            let home = region == ic.config.region;
            let keep_end = state.current.as_ref().and_then(|s| s.expected_end);
            let session = bearer_session(
                tokens,
                if home || keep_end.is_none() {
                    expected_end
                } else {
                    keep_end
                },
            );
            state.current = Some(Arc::new(session));
            state.last_error = None;
            // Perhaps another user: ask again who it is.
            state.sso_user = None;
            state.sso_user_asked = false;
            state.renew_failures = 0;
            state.renew_retry_at = None;
        }
        tracing::info!(region, "logged into Identity Center");
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
