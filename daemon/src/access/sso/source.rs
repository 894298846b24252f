//! Identity Center as a [`Source`]: a browser or device authorization per Region, whose bearer
//! tokens the engine renews; the login is shared with the AWS CLI through its token cache, and
//! profiles without a role of their own are signed by the access role.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credd_proto::{Finding, SsoInfo, SsoRegionInfo};

use super::{IdentityCenter, SsoError, SsoToken};
use crate::access::source::{
    Completed, Context, ErrorClass, Login, LoginRequest, Refuser, SessionSigner, Source,
    SourceStatus,
};
use crate::access::{AccessError, AccessSession, BoxFuture, SessionCredential};
use crate::clock::unix;

/// A token with less than this left is renewed before use rather than sent.
pub const TOKEN_MIN_LEFT: Duration = Duration::from_secs(60);

impl Source for IdentityCenter {
    fn authorizes(&self) -> bool {
        true
    }

    fn login(
        self: Arc<Self>,
        _cx: Context,
        request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>> {
        Box::pin(async move {
            let browser = request.browser;
            let region = browser
                .region
                .clone()
                .unwrap_or_else(|| self.config.region.clone());
            self.configured_start_url(&region)?;
            let method = self.method(browser.method, browser.display);
            let pending = self.authorize(method, &region).await?;
            tracing::info!(
                region,
                ?method,
                "waiting for the user to approve the Identity Center login"
            );
            let completion = pending.completion;
            Ok(Login::Pending {
                prompt: pending.prompt,
                completion: Box::pin(async move { Ok(Completed::Token(completion.await?)) }),
            })
        })
    }

    fn signer(&self) -> SessionSigner {
        SessionSigner::AccessRole
    }

    fn shares_login(&self) -> bool {
        true
    }

    fn adopt(&self) -> Option<AccessSession> {
        self.from_cli_cache()
    }

    fn logged_out(self: Arc<Self>, ended: &AccessSession) {
        self.logout(ended.tokens());
    }

    fn status(&self, session: Option<&AccessSession>) -> SourceStatus {
        let tokens = session.map(|s| s.tokens()).unwrap_or_default();
        SourceStatus {
            federation: None,
            shared_storage: self
                .cache_file
                .as_ref()
                .map(|f| format!("the AWS CLI token cache: {}", f.display())),
            sso: Some(SsoInfo {
                session_name: self.config.session.clone(),
                start_url: self.config.start_url.clone(),
                region: tokens
                    .first()
                    .map_or_else(|| self.config.region.clone(), |t| t.region.clone()),
                token_expires_at: tokens.first().map(|t| unix(t.expires_at)),
                session_ends_at: session.and_then(|s| s.expected_end).map(unix),
                cache_file: self.cache_file.as_ref().map_or_else(
                    || "none (no home directory)".to_owned(),
                    |f| f.display().to_string(),
                ),
                regions: self
                    .regions()
                    .into_iter()
                    .map(|region| SsoRegionInfo {
                        authorized: tokens.iter().any(|t| t.region == region),
                        start_url: self.start_url(&region).unwrap_or_default().to_owned(),
                        region,
                    })
                    .collect(),
            }),
        }
    }

    fn identity(&self, _session: &AccessSession, user: Option<&str>) -> Option<String> {
        let who = user.map_or_else(String::new, |arn| {
            format!("{} in ", crate::access::session_name_from_arn(Some(arn)))
        });
        Some(format!(
            "{who}Identity Center session {} ({})",
            self.config.session, self.config.start_url
        ))
    }

    fn checks(&self) -> Vec<Finding> {
        vec![replicas_check(&self.config.region, &self.regions()[1..])]
    }

    fn identity_center(self: Arc<Self>) -> Option<Arc<IdentityCenter>> {
        Some(self)
    }
}

impl IdentityCenter {
    /// The session an AWS CLI (or earlier credd) login left in the token cache, if still
    /// usable: a valid access token, or one a refresh token can renew.
    pub fn from_cli_cache(&self) -> Option<AccessSession> {
        let now = self.now();
        let tokens: Vec<SsoToken> = self
            .regions()
            .iter()
            .filter_map(|region| self.cached_token(region))
            .filter(|t| t.left(now) > TOKEN_MIN_LEFT || t.refresh_token.is_some())
            .collect();
        if tokens.is_empty() {
            return None;
        }
        for t in &tokens {
            self.adopt_registration(t);
        }
        let expected_end = tokens
            .first()
            .and_then(|t| t.session_start)
            .map(|start| start + self.session_length);
        Some(bearer_session(tokens, expected_end))
    }
}

/// A session of Identity Center `tokens`, expected to end at `expected_end`.
pub fn bearer_session(tokens: Vec<SsoToken>, expected_end: Option<SystemTime>) -> AccessSession {
    AccessSession {
        credential: SessionCredential::Bearer(tokens),
        identity_arn: None,
        expires_at: None,
        expected_end,
        mfa: false,
        federation: None,
    }
}

/// `tokens` with `token` in place of its Region's, in `order` (the home Region first).
pub fn with_token(tokens: &[SsoToken], token: SsoToken, order: &[String]) -> Vec<SsoToken> {
    let mut tokens: Vec<SsoToken> = tokens
        .iter()
        .filter(|t| t.region != token.region)
        .cloned()
        .collect();
    tokens.push(token);
    tokens.sort_by_key(|t| order.iter().position(|r| *r == t.region));
    tokens
}

impl SsoError {
    /// What the caller should do about it.
    pub fn class(&self) -> ErrorClass {
        match self {
            SsoError::Unreachable { .. } => ErrorClass::Retry,
            SsoError::SessionEnded { .. }
            | SsoError::AuthorizationExpired
            | SsoError::AuthorizationDenied
            | SsoError::AuthorizationCancelled => ErrorClass::LoginAgain,
            SsoError::Forbidden { .. }
            | SsoError::WrongStartUrl { .. }
            | SsoError::Refused { .. } => ErrorClass::Refused(Refuser::Aws),
        }
    }
}

/// `sso-replicas`: Identity Center in one Region is down with that Region; a multi-Region
/// instance's replicas (`sso_replicas`) let `credd login --region` sign in elsewhere.
fn replicas_check(home: &str, replicas: &[String]) -> Finding {
    if replicas.is_empty() {
        Finding::warning(
            "sso-replicas",
            format!("Identity Center in {home} only: no sso_replicas"),
        )
        .why(format!(
            "while {home} is down nobody can sign in, and every role credential ends within \
             the hour"
        ))
        .fix(
            "replicate the Identity Center instance to a second Region (multi-Region IAM \
             Identity Center) and list it: `sso_replicas = [{ region = \"...\", start_url = \
             \"...\" }]` in [access]; `credd login --region` then signs in there",
        )
    } else {
        Finding::ok(
            "sso-replicas",
            format!(
                "Identity Center in {home}, replicas {}",
                replicas.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod checks_tests {
    use credd_proto::Severity;

    #[test]
    fn identity_center_without_replicas_gets_the_regional_advice() {
        let alone = super::replicas_check("us-east-1", &[]);
        assert_eq!(
            (alone.check.as_str(), alone.severity),
            ("sso-replicas", Severity::Warning)
        );
        assert!(alone.fix.is_some_and(|f| f.contains("sso_replicas")));
        let replicated = super::replicas_check("us-east-1", &["eu-west-1".to_owned()]);
        assert_eq!(replicated.severity, Severity::Ok);
        assert_eq!(
            replicated.found,
            "Identity Center in us-east-1, replicas eu-west-1"
        );
    }
}
