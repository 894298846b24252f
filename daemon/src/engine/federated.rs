//! Web identity's session renews itself: ahead of its end, a new ID token (the refresh grant,
//! the token file read again, or the token command run again) is traded for new access-role
//! credentials, in the background and once however many timers ask. When the identity provider
//! refuses the refresh token, the session lasts until its end and status says to run
//! `credd login`. SAML sessions are renewed only by `credd login` (the command may need the
//! user), so they are warned about ahead of their end like an MFA session.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::FederationInfo;

use super::{Engine, schedule};
use crate::access::web_identity::{OidcError, WebIdentity};
use crate::access::{AccessError, AccessSession, AccessSource};
use crate::config::{AccessConfig, SourceConfig, WebIdentityToken};
use crate::lock;

/// A self-renewing session is renewed this long before it ends, or a third of its life when
/// that is shorter: the profiles assumed from it then still have time to refresh from it.
const RENEW_LEAD: Duration = Duration::from_secs(20 * 60);

impl Engine {
    /// When the session should be renewed, if it renews itself.
    fn federated_renew_at(&self, session: &AccessSession) -> Option<SystemTime> {
        let federation = session.federation.as_ref()?;
        federation.renews.as_ref()?;
        let end = session.expires_at?;
        let life = end.duration_since(federation.issued_at).unwrap_or_default();
        Some(end - RENEW_LEAD.min(life / 3))
    }

    /// Starts a background renewal when it is due (called every few seconds). A session that
    /// ended meanwhile (the laptop slept through its renewal; a restart found it expired) is
    /// renewed too, while the refresh token or the token file or command still works.
    pub(super) fn renew_federated_due(&self) {
        let now = self.now();
        let session = {
            let state = lock::read(&self.inner.session);
            if state.renew_stopped.is_some() || state.renew_retry_at.is_some_and(|t| t > now) {
                return;
            }
            let Some(session) = state.current.clone() else {
                return;
            };
            session
        };
        let source = lock::read(&self.inner.source).clone();
        let AccessSource::WebIdentity(web) = &*source else {
            return;
        };
        if self
            .federated_renew_at(&session)
            .is_some_and(|at| now >= at)
        {
            let engine = self.clone();
            let web = web.clone();
            tokio::spawn(async move {
                // One renewal at a time; a timer that finds one under way leaves it be.
                let Ok(_renewing) = engine.inner.renew_lock.try_lock() else {
                    return;
                };
                engine.renew_federated(&web, session).await;
            });
        }
    }

    /// One renewal of the web identity session, with the renew lock held.
    async fn renew_federated(&self, web: &Arc<WebIdentity>, session: Arc<AccessSession>) {
        let epoch = self.epoch();
        let refresh = session
            .federation
            .as_ref()
            .and_then(|f| f.refresh_token.clone());
        let config = self.config();
        let result = match web.unattended_token(refresh.as_ref()).await {
            Ok(tokens) => {
                web.exchange(&self.inner.sts, &config.access.regions, tokens)
                    .await
            }
            Err(e) => Err(e),
        };
        if self.epoch() != epoch {
            return;
        }
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
            Ok((renewed, region)) => {
                tracing::info!(
                    expires_at = renewed.expires_at.map(super::unix),
                    "renewed the access session with a new ID token"
                );
                // The identity provider may have rotated the refresh token: keep the new one.
                self.keep_for_restarts(&renewed);
                state.current = Some(Arc::new(renewed));
                state.region = Some(region);
                state.renew_failures = 0;
                state.renew_retry_at = None;
                state.last_error = None;
                state.warned = false;
            }
            Err(AccessError::Oidc(e @ OidcError::RefreshRefused(_))) => {
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
                let delay = schedule::backoff(state.renew_failures, self.jitter());
                state.renew_retry_at = Some(self.now() + delay);
                tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "could not renew the access session; it stays valid until its end");
                state.last_error = Some(format!("renewing the access session: {e}"));
            }
        }
    }

    /// Status's view of a `web-identity` or `saml` source.
    pub(super) fn federation_info(
        &self,
        access: &AccessConfig,
        session: Option<&AccessSession>,
    ) -> Option<FederationInfo> {
        let (provider, role_arn) = match &access.source {
            SourceConfig::WebIdentity(w) => {
                let provider = match &w.token {
                    WebIdentityToken::Oidc(o) => o.issuer.clone(),
                    WebIdentityToken::File(p) => format!("token_file {}", p.display()),
                    WebIdentityToken::Command(c) => format!("token_command {}", c[0]),
                };
                (provider, Some(w.role_arn.clone()))
            }
            SourceConfig::Saml(s) => (
                format!("assertion_command {}", s.assertion_command[0]),
                s.role_arn.clone().or_else(|| {
                    session
                        .and_then(|s| s.identity_arn.as_deref())
                        .and_then(role_of_assumed)
                }),
            ),
            _ => return None,
        };
        let federation = session.and_then(|s| s.federation.as_ref());
        Some(FederationInfo {
            provider,
            role_arn,
            who: federation.map(|f| f.who.clone()),
        })
    }
}

/// `arn:aws:sts::111111111111:assumed-role/NAME/session` → `arn:aws:iam::111111111111:role/NAME`.
fn role_of_assumed(arn: &str) -> Option<String> {
    let (prefix, rest) = arn.split_once(":assumed-role/")?;
    let account = prefix.rsplit(':').next()?;
    let partition = prefix.split(':').nth(1)?;
    let name = rest.split('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{name}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_role_of_an_assumed_role_arn() {
        assert_eq!(
            super::role_of_assumed("arn:aws:sts::111111111111:assumed-role/AccessFromSAML/alice"),
            Some("arn:aws:iam::111111111111:role/AccessFromSAML".to_owned())
        );
        assert_eq!(
            super::role_of_assumed("arn:aws:iam::111111111111:user/alice"),
            None
        );
    }
}
