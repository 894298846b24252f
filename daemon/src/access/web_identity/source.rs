//! Web identity as a [`Source`]: credd's own OpenID login is an authorization the user approves
//! in a browser or with a device code; a token file or command needs nobody. Either way the
//! session renews itself with a new ID token while the identity provider gives one.

use std::sync::Arc;

use credd_proto::{FederationInfo, Finding, LoginMethod};

use super::{OidcError, WebIdentity};
use crate::access::source::{
    Completed, Context, ErrorClass, Established, Login, LoginRequest, Refuser, Source, SourceStatus,
};
use crate::access::{AccessError, AccessSession, BoxFuture};
use crate::config::WebIdentityToken;

impl Source for WebIdentity {
    fn authorizes(&self) -> bool {
        self.oidc.is_some()
    }

    fn login(
        self: Arc<Self>,
        cx: Context,
        request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>> {
        Box::pin(async move {
            let Some(oidc) = self.oidc.clone() else {
                let made = self.login_unattended(&cx.sts, &cx.regions, None).await?;
                return Ok(Login::Done(made.into()));
            };
            let method = match (request.browser.method, request.browser.display) {
                (Some(m @ (LoginMethod::Browser | LoginMethod::Device)), _) => m,
                (_, true) => LoginMethod::Browser,
                (_, false) => LoginMethod::Device,
            };
            let pending = oidc.authorize(method).await?;
            tracing::info!(issuer = %oidc.config.issuer, ?method, "waiting for the user to approve the login at the identity provider");
            let completion = pending.completion;
            Ok(Login::Pending {
                prompt: pending.prompt,
                completion: Box::pin(async move {
                    let tokens = completion.await?;
                    let made = self.exchange(&cx.sts, &cx.regions, tokens).await?;
                    Ok(Completed::Session(made.into()))
                }),
            })
        })
    }

    fn renewal(&self, session: &AccessSession) -> Option<String> {
        session.federation.as_ref()?.renews.clone()
    }

    fn renew(
        self: Arc<Self>,
        cx: Context,
        session: Arc<AccessSession>,
    ) -> Option<BoxFuture<'static, Result<Established, AccessError>>> {
        Source::renewal(&*self, &session)?;
        Some(Box::pin(async move {
            let refresh = session
                .federation
                .as_ref()
                .and_then(|f| f.refresh_token.as_ref());
            (self.login_unattended(&cx.sts, &cx.regions, refresh).await).map(Established::from)
        }))
    }

    fn status(&self, session: Option<&AccessSession>) -> SourceStatus {
        SourceStatus {
            federation: Some(FederationInfo {
                provider: self.provider(),
                role_arn: Some(self.config.role_arn.clone()),
                who: session
                    .and_then(|s| s.federation.as_ref())
                    .map(|f| f.who.clone()),
            }),
            ..SourceStatus::default()
        }
    }

    fn checks(&self) -> Vec<Finding> {
        vec![Finding::ok(
            "identity-provider",
            format!(
                "ID tokens from {}, traded for {}",
                self.provider(),
                self.config.role_arn
            ),
        )]
    }
}

impl WebIdentity {
    /// Where the ID token comes from, for status: the issuer, `token_file PATH` or
    /// `token_command PROGRAM`.
    fn provider(&self) -> String {
        match &self.config.token {
            WebIdentityToken::Oidc(o) => o.issuer.clone(),
            WebIdentityToken::File(p) => format!("token_file {}", p.display()),
            WebIdentityToken::Command(c) => format!("token_command {}", c[0]),
        }
    }
}

impl OidcError {
    /// What the caller should do about it.
    pub fn class(&self) -> ErrorClass {
        match self {
            OidcError::Unreachable { .. } => ErrorClass::Retry,
            OidcError::Discovery { .. } | OidcError::NoDeviceGrant { .. } => ErrorClass::FixConfig,
            OidcError::Denied(_)
            | OidcError::Expired
            | OidcError::Cancelled
            | OidcError::RefreshRefused(_) => ErrorClass::LoginAgain,
            OidcError::Refused(_) | OidcError::BadIdToken(_) | OidcError::NoIdToken => {
                ErrorClass::Refused(Refuser::IdentityProvider)
            }
        }
    }
}
