//! The engine's side of Identity Center's bearer session: a Region's new authorization joined to
//! it, its tokens renewed in the background with one refresh however many want one (or taken up
//! when the AWS CLI refreshed them), role credentials from the portal with failover to replica
//! Regions, and the account list for `credd import`.

use std::sync::Arc;
use std::time::SystemTime;

use credd_proto::{BrowserLogin, SsoAccount};

use super::{Engine, EngineError, SESSION_WARNING, schedule};
use crate::access::SessionCredential;
use crate::access::source::Source;
use crate::access::sso::{
    IdentityCenter, SsoError, SsoToken, TOKEN_MIN_LEFT, bearer_session, with_token,
};
use crate::config::SsoRole;
use crate::creds::RoleCredentials;
use crate::lock;

impl Engine {
    pub(super) fn identity_center(&self) -> Option<Arc<IdentityCenter>> {
        self.source().identity_center()
    }

    /// Whether `credd login` can do without a new authorization: Identity Center's session (or
    /// the AWS CLI's login) holds a token for the Region asked for that works, and is not near
    /// its end. `false` for other sources.
    pub(super) async fn bearer_session_suffices(
        &self,
        source: &Arc<dyn Source>,
        browser: &BrowserLogin,
    ) -> Result<bool, EngineError> {
        let Some(ic) = source.clone().identity_center() else {
            return Ok(false);
        };
        let region = browser
            .region
            .clone()
            .unwrap_or_else(|| ic.config.region.clone());
        ic.configured_start_url(&region)?;
        if self.session().is_none() {
            self.adopt_outside_login();
        }
        Ok(self.has_usable_token(&region).await)
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

    /// Joins a Region's new authorization to the session (the home Region's renews it).
    pub(super) fn join_token(&self, token: SsoToken) -> Result<(), EngineError> {
        let ic = self
            .identity_center()
            .ok_or_else(|| self.login_required())?;
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
        Ok(())
    }

    /// The session's token for `region`, as it is.
    fn current_token(&self, region: &str) -> Result<SsoToken, EngineError> {
        let session = self.session().ok_or_else(|| self.login_required())?;
        session
            .tokens()
            .iter()
            .find(|t| t.region == region)
            .cloned()
            .ok_or_else(|| self.login_required())
    }

    /// `region`'s token, renewed first when it is about to lapse.
    async fn bearer_token(&self, region: &str) -> Result<SsoToken, EngineError> {
        let token = self.current_token(region)?;
        if token.left(self.now()) > TOKEN_MIN_LEFT {
            return Ok(token);
        }
        self.renew_token(region, false).await
    }

    /// Renews `region`'s token (unless someone did meanwhile, or `force`): from the AWS CLI's
    /// cache when the CLI or an SDK refreshed it, else with the refresh token.
    pub(super) async fn renew_token(
        &self,
        region: &str,
        force: bool,
    ) -> Result<SsoToken, EngineError> {
        let _one = self.inner.renew_lock.lock().await;
        let ic = self
            .identity_center()
            .ok_or_else(|| self.login_required())?;
        let token = self.current_token(region)?;
        let now = self.now();
        if !force && now < renew_token_at(&token) {
            return Ok(token);
        }
        let epoch = self.epoch();
        let mut retried = false;
        loop {
            // botocore and the CLI refresh the shared file themselves, rotating the refresh token.
            let cached = ic.cached_token(region);
            if let Some(c) = &cached
                && c.access_token != token.access_token
                && c.expires_at > token.expires_at
                && c.left(now) > TOKEN_MIN_LEFT
                && !force
            {
                let adopted = SsoToken {
                    issued_at: now,
                    registration: c
                        .registration
                        .clone()
                        .or_else(|| token.registration.clone()),
                    ..c.clone()
                };
                tracing::info!(region, "took up the token the AWS CLI or an SDK refreshed");
                self.put_token(adopted.clone());
                return Ok(adopted);
            }
            let base = match cached {
                Some(c) if c.refresh_token.is_some() && c.refresh_token != token.refresh_token => {
                    SsoToken {
                        registration: c
                            .registration
                            .clone()
                            .or_else(|| token.registration.clone()),
                        ..c
                    }
                }
                _ => token.clone(),
            };
            // On the heap while in flight (see `Sts::with_failover`).
            match Box::pin(ic.refresh(&base)).await {
                Ok(mut new) => {
                    // botocore drops credd's field when it rewrites the file.
                    new.session_start = new.session_start.or(token.session_start);
                    if self.epoch() != epoch {
                        return Err(self.login_required());
                    }
                    ic.save(&new);
                    self.put_token(new.clone());
                    let mut state = lock::write(&self.inner.session);
                    state.renew_failures = 0;
                    state.renew_retry_at = None;
                    tracing::info!(
                        region,
                        expires_in_s = new.left(self.now()).as_secs(),
                        "renewed the Identity Center access token"
                    );
                    return Ok(new);
                }
                Err(SsoError::SessionEnded { detail }) => {
                    // Refused: unless another tool refreshed (and rotated) at this very moment,
                    // the session is over.
                    let moved = ic
                        .cached_token(region)
                        .is_some_and(|c| c.refresh_token != base.refresh_token);
                    if moved && !retried {
                        retried = true;
                        continue;
                    }
                    self.token_ended(region, &detail);
                    return Err(EngineError::LoginRequired {
                        detail: Some(format!("the Identity Center session has ended: {detail}")),
                    });
                }
                Err(e) => {
                    let mut state = lock::write(&self.inner.session);
                    state.renew_failures = state.renew_failures.saturating_add(1);
                    let delay = schedule::backoff(state.renew_failures, self.jitter());
                    state.renew_retry_at = Some(self.now() + delay);
                    tracing::warn!(region, error = %e, retry_in_s = delay.as_secs(), "could not renew the Identity Center access token");
                    return Err(e.into());
                }
            }
        }
    }

    /// Puts a new token for its Region into the session.
    fn put_token(&self, token: SsoToken) {
        let mut state = lock::write(&self.inner.session);
        let Some(current) = &state.current else {
            return;
        };
        let order = self
            .identity_center()
            .map(|ic| ic.regions())
            .unwrap_or_default();
        let mut session = (**current).clone();
        session.credential = SessionCredential::Bearer(with_token(current.tokens(), token, &order));
        state.current = Some(Arc::new(session));
    }

    /// `region`'s authorization is over; with none left, so is the session.
    fn token_ended(&self, region: &str, detail: &str) {
        let mut state = lock::write(&self.inner.session);
        let Some(current) = &state.current else {
            return;
        };
        if let (Some(ic), Some(token)) = (
            self.identity_center(),
            current.tokens().iter().find(|t| t.region == region),
        ) {
            ic.session_ended(token);
        }
        let tokens: Vec<SsoToken> = current
            .tokens()
            .iter()
            .filter(|t| t.region != region)
            .cloned()
            .collect();
        if tokens.is_empty() {
            tracing::error!(%detail, "the Identity Center session has ended: run `credd login`");
            state.current = None;
            state.last_error = Some(format!("the Identity Center session has ended ({detail})"));
        } else {
            tracing::warn!(region, %detail, "the Identity Center authorization of this Region has ended");
            let mut session = (**current).clone();
            session.credential = SessionCredential::Bearer(tokens);
            state.current = Some(Arc::new(session));
        }
    }

    /// Starts background renewals of tokens that are due (called every few seconds).
    pub(super) fn renew_due(&self) {
        let Some(session) = self.session() else {
            return;
        };
        let now = self.now();
        {
            let state = lock::read(&self.inner.session);
            if state.renew_retry_at.is_some_and(|t| t > now) {
                return;
            }
        }
        for token in session.tokens() {
            if now >= renew_token_at(token) && self.inner.renew_lock.try_lock().is_ok() {
                let engine = self.clone();
                let region = token.region.clone();
                tokio::spawn(async move {
                    let _ = engine.renew_token(&region, false).await;
                });
            }
        }
    }

    /// GetRoleCredentials for an Identity Center profile (or the access role), from the home
    /// Region, or from an authorized replica when the home Region cannot answer.
    pub(super) async fn sso_role_credentials(
        &self,
        role: &SsoRole,
        access_role: bool,
    ) -> Result<RoleCredentials, EngineError> {
        let ic = self
            .identity_center()
            .ok_or_else(|| self.login_required())?;
        let session = self.session().ok_or_else(|| self.login_required())?;
        let mut last: Option<EngineError> = None;
        for token in session.tokens() {
            let region = token.region.clone();
            let token = match self.bearer_token(&region).await {
                Ok(t) => t,
                Err(EngineError::Access(crate::access::AccessError::Sso(e))) if e.is_outage() => {
                    last = Some(e.into());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let result = match ic.role_credentials(&token, role).await {
                Err(SsoError::SessionEnded { .. }) => {
                    // The token itself was refused: renew it once and ask again.
                    let token = self.renew_token(&region, true).await?;
                    ic.role_credentials(&token, role).await
                }
                other => other,
            };
            match result {
                Ok(mut creds) => {
                    self.learn_sso_user(&mut creds, access_role).await;
                    return Ok(creds);
                }
                Err(e) if e.is_outage() => {
                    tracing::warn!(region, error = %e, "Identity Center Region failed; trying the next authorized one");
                    last = Some(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| self.login_required()))
    }

    /// Asks STS who the credentials are (GetCallerIdentity: the user is the assumed role's
    /// session name), once per session, and for every refresh of the access role, whose ARN
    /// status shows.
    async fn learn_sso_user(&self, creds: &mut RoleCredentials, always: bool) {
        // Profiles refreshed together wait for the one answer rather than go on without it.
        let _one = self.inner.sso_user_lock.lock().await;
        {
            let mut state = lock::write(&self.inner.session);
            if state.sso_user_asked && !always {
                return;
            }
            state.sso_user_asked = true;
        }
        let regions = self.config().access.regions.clone();
        match crate::access::iam_user::caller_identity(&self.inner.sts, &regions, &creds.creds)
            .await
        {
            Ok((arn, _)) => {
                if always {
                    creds.assumed_arn = arn.clone();
                }
                lock::write(&self.inner.session).sso_user = Some(arn);
            }
            Err(e) => {
                tracing::info!(error = %e, "could not ask STS who the Identity Center user is")
            }
        }
    }

    /// `credd import --sso`: every account and role the user may reach.
    pub async fn sso_accounts(&self) -> Result<Vec<SsoAccount>, EngineError> {
        let Some(ic) = self.identity_center() else {
            return Err(EngineError::Unavailable {
                profile: "import".into(),
                detail: Some("the access source is not Identity Center (source = \"sso\")".into()),
            });
        };
        if self.session().is_none() {
            self.look_for_outside_login();
        }
        let session = self.session().ok_or_else(|| self.login_required())?;
        let mut last: Option<EngineError> = None;
        for token in session.tokens() {
            let token = match self.bearer_token(&token.region).await {
                Ok(t) => t,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match ic.accounts(&token).await {
                Ok(accounts) => return Ok(accounts),
                Err(e) if e.is_outage() => last = Some(e.into()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| self.login_required()))
    }
}

/// When to renew an Identity Center token: [`schedule::RENEW_LEAD`] ahead (or a third of its
/// life), so the cache file always has more than botocore's 15-minute refresh window left and the
/// CLI and SDKs reading it never refresh (and rotate the refresh token) themselves. With 1-hour
/// tokens: one refresh every 40 minutes.
pub(super) fn renew_token_at(token: &SsoToken) -> SystemTime {
    schedule::renew_at(token.expires_at, token.life())
}
