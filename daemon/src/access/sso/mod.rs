//! `source = "sso"`: IAM Identity Center. The session is a bearer token from SSO OIDC (a browser
//! login with PKCE, or the device grant), refreshed in the background with its refresh token for
//! as long as the organization's session length allows; profiles get role credentials from the
//! portal (GetRoleCredentials). credd owns the login; the token is shared with the AWS CLI through
//! its cache file ([`cache`]).
//!
//! Both services are unsigned (the token is the authorization), so their SDK clients need no
//! credentials; they share the daemon's one HTTP client and honour `AWS_ENDPOINT_URL_SSO_OIDC`,
//! `AWS_ENDPOINT_URL_SSO` and `AWS_ENDPOINT_URL` like the AWS CLI.

pub mod cache;
mod oidc;
mod portal;
mod source;
pub use source::{TOKEN_MIN_LEFT, bearer_session, with_token};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::SharedHttpClient;
use credd_proto::{LoginMethod, Secret};

use crate::clock::Clock;
use crate::config::SsoConfig;
use crate::lock;
use crate::sdk::Clients;

pub use oidc::Pending;

/// An Identity Center access token and what renews it.
#[derive(Debug, Clone)]
pub struct SsoToken {
    pub access_token: Secret,
    pub expires_at: SystemTime,
    /// When credd got it (`UNIX_EPOCH` when read from the cache: unknown).
    pub issued_at: SystemTime,
    /// When the user logged in (the browser or device approval), carried across refreshes:
    /// with the organization's session length, when the session will end. Kept in the cache
    /// file as `creddSessionStart` (the CLI ignores it; botocore drops it when it rewrites).
    pub session_start: Option<SystemTime>,
    pub refresh_token: Option<Secret>,
    /// The OIDC client the token was issued to; refreshing needs it.
    pub registration: Option<Registration>,
    /// The Identity Center Region that issued it (the home Region or a replica).
    pub region: String,
}

impl SsoToken {
    pub fn left(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// How long it was issued for (a token read from the cache, whose issue time is unknown,
    /// counts as issued at the epoch: a long life).
    pub fn life(&self) -> Duration {
        self.expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default()
    }
}

/// A RegisterClient result, reused until it expires (about 90 days).
#[derive(Debug, Clone)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Secret,
    pub expires_at: SystemTime,
    /// Registered for the authorization-code grant (`Some(true)`), the device grant
    /// (`Some(false)`), or unknown (read from the AWS CLI's cache).
    pub pkce: Option<bool>,
}

/// What went wrong with Identity Center, sorted by what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    /// The session is over: the organization's session length passed, the grant was revoked,
    /// or the token is refused. Only a new login helps.
    #[error("the Identity Center session has ended ({detail})")]
    SessionEnded { detail: String },
    #[error(
        "Identity Center refused role {role_name} in account {account_id}: {message} (has your access to it been removed?)"
    )]
    Forbidden {
        account_id: String,
        role_name: String,
        message: String,
    },
    #[error(
        "Identity Center in {region} refused the start URL {start_url}: {message}; check sso_start_url and sso_region"
    )]
    WrongStartUrl {
        region: String,
        start_url: String,
        message: String,
    },
    /// The Region did not answer (connection failure, timeout, 5xx, throttling).
    #[error("Identity Center in {region} cannot be reached: {detail}")]
    Unreachable { region: String, detail: String },
    #[error("the login was not approved before it lapsed: run `credd login` again")]
    AuthorizationExpired,
    #[error("the login was denied in the browser")]
    AuthorizationDenied,
    #[error("the login was cancelled")]
    AuthorizationCancelled,
    #[error("Identity Center in {region}: {code}: {message}")]
    Refused {
        region: String,
        code: String,
        message: String,
    },
}

impl SsoError {
    pub fn is_outage(&self) -> bool {
        matches!(self, SsoError::Unreachable { .. })
    }
}

/// Where the two services are: the environment's overrides, else AWS's regional endpoints.
#[derive(Debug, Clone, Default)]
struct Endpoints {
    oidc: Option<String>,
    portal: Option<String>,
}

impl Endpoints {
    fn from_env() -> Endpoints {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let general = var("AWS_ENDPOINT_URL");
        Endpoints {
            oidc: var("AWS_ENDPOINT_URL_SSO_OIDC").or_else(|| general.clone()),
            portal: var("AWS_ENDPOINT_URL_SSO").or(general),
        }
    }

    /// The OIDC base URL for the browser's authorize step.
    fn oidc_base(&self, region: &str) -> String {
        match &self.oidc {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://oidc.{region}.amazonaws.com"),
        }
    }
}

/// The Identity Center instance of the config, and the clients that reach it.
pub struct IdentityCenter {
    pub config: SsoConfig,
    /// The organization's session length (`session_duration`): how long after a login the
    /// session is expected to end.
    pub session_length: Duration,
    /// The AWS CLI token cache file of the session; `None` when there is no home directory.
    pub cache_file: Option<PathBuf>,
    clock: Clock,
    endpoints: Endpoints,
    /// Kept across logins and reused until it expires, per Region.
    registrations: Mutex<HashMap<String, Registration>>,
    oidc_clients: Clients<aws_sdk_ssooidc::Client>,
    portal_clients: Clients<aws_sdk_sso::Client>,
    /// A few GetRoleCredentials in flight per Region, like STS's calls.
    portal_gates: crate::sts::gate::Gates,
    /// Per Region, the access token of the session Identity Center last refused. The AWS CLI's
    /// cache file may still hold it: taken up again, it would bring a dead session back (and
    /// `credd login` would find nothing to do).
    ended: Mutex<HashMap<String, Secret>>,
}

impl IdentityCenter {
    pub fn new(
        config: &SsoConfig,
        session_length: Duration,
        cache_dir: Option<PathBuf>,
        clock: Clock,
        http: SharedHttpClient,
    ) -> IdentityCenter {
        let cache_file = cache_dir
            .or_else(cache::default_dir)
            .map(|dir| cache::path(&dir, &config.session));
        let endpoints = Endpoints::from_env();
        IdentityCenter {
            config: config.clone(),
            session_length,
            cache_file,
            oidc_clients: Clients::new(
                aws_sdk_ssooidc::Client::new,
                clock.clone(),
                http.clone(),
                endpoints.oidc.clone(),
                oidc::LIMITS,
            ),
            portal_clients: Clients::new(
                aws_sdk_sso::Client::new,
                clock.clone(),
                http,
                endpoints.portal.clone(),
                portal::LIMITS,
            ),
            portal_gates: Default::default(),
            clock,
            endpoints,
            registrations: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
        }
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The start URL to authorize in `region`: the home one, or the replica's.
    pub fn start_url(&self, region: &str) -> Option<&str> {
        if region == self.config.region {
            return Some(&self.config.start_url);
        }
        self.config
            .replicas
            .iter()
            .find(|r| r.region == region)
            .map(|r| r.start_url.as_str())
    }

    /// [`IdentityCenter::start_url`], or why `region` cannot be authorized.
    pub fn configured_start_url(&self, region: &str) -> Result<&str, SsoError> {
        self.start_url(region).ok_or_else(|| SsoError::Refused {
            region: region.to_owned(),
            code: "UnknownRegion".into(),
            message: format!(
                "{region} is neither sso_region nor one of sso_replicas (configured: {})",
                self.regions().join(", ")
            ),
        })
    }

    /// The home Region first, then the replicas.
    pub fn regions(&self) -> Vec<String> {
        std::iter::once(self.config.region.clone())
            .chain(self.config.replicas.iter().map(|r| r.region.clone()))
            .collect()
    }

    /// The cache file of `region`'s token: the CLI's own for the home Region; a replica's
    /// authorization is credd's alone (the CLI keeps one per session).
    fn cache_file_of(&self, region: &str) -> Option<PathBuf> {
        let file = self.cache_file.as_ref()?;
        if region == self.config.region {
            Some(file.clone())
        } else {
            let dir = file.parent()?;
            Some(cache::path(
                dir,
                &format!("{}/{region}", self.config.session),
            ))
        }
    }

    /// The token the AWS CLI (or an earlier credd) left for `region`, if any, unless it is one
    /// of a session that has ended.
    pub fn cached_token(&self, region: &str) -> Option<SsoToken> {
        let file = self.cache_file_of(region)?;
        let start_url = self.start_url(region)?;
        let token = match cache::read(&file, start_url, region) {
            Ok(token) => token?,
            Err(e) => {
                tracing::warn!(error = %e, "not using the AWS CLI token cache");
                return None;
            }
        };
        let ended = lock::lock(&self.ended).get(region).is_some_and(|dead| {
            use subtle::ConstantTimeEq;
            bool::from(
                dead.expose()
                    .as_bytes()
                    .ct_eq(token.access_token.expose().as_bytes()),
            )
        });
        (!ended).then_some(token)
    }

    /// Identity Center refused `token`'s session: it is never taken up from the cache again.
    pub fn session_ended(&self, token: &SsoToken) {
        lock::lock(&self.ended).insert(token.region.clone(), token.access_token.clone());
    }

    /// Shares `token` with the AWS CLI and the SDKs; a failure is logged, not fatal.
    pub fn save(&self, token: &SsoToken) {
        let (Some(file), Some(start_url)) = (
            self.cache_file_of(&token.region),
            self.start_url(&token.region),
        ) else {
            return;
        };
        if let Err(e) = cache::write(&file, start_url, token) {
            tracing::warn!(error = %e, "could not write the AWS CLI token cache");
        }
    }

    fn registration(&self, region: &str, pkce: bool) -> Option<Registration> {
        lock::lock(&self.registrations)
            .get(region)
            .filter(|r| r.pkce.is_none_or(|p| p == pkce))
            .filter(|r| r.expires_at > self.now() + Duration::from_secs(3600))
            .cloned()
    }

    fn remember_registration(&self, region: &str, registration: &Registration) {
        lock::lock(&self.registrations).insert(region.to_owned(), registration.clone());
    }

    fn forget_registration(&self, region: &str) {
        lock::lock(&self.registrations).remove(region);
    }

    /// A registration found in the cache file is worth reusing for the next login.
    pub fn adopt_registration(&self, token: &SsoToken) {
        if let Some(r) = &token.registration {
            let mut regs = lock::lock(&self.registrations);
            regs.entry(token.region.clone())
                .or_insert_with(|| r.clone());
        }
    }

    /// How `credd login` authorizes: the client's choice, else the config's, else the browser
    /// when the client has a display.
    pub fn method(&self, asked: Option<LoginMethod>, display: bool) -> LoginMethod {
        use crate::config::SsoLogin;
        // Identity Center runs no command: asking for one leaves the choice to the config.
        match (
            asked.filter(|m| *m != LoginMethod::Command),
            self.config.login,
        ) {
            (Some(m), _) => m,
            (None, SsoLogin::Browser) => LoginMethod::Browser,
            (None, SsoLogin::Device) => LoginMethod::Device,
            (None, SsoLogin::Auto) if display => LoginMethod::Browser,
            (None, SsoLogin::Auto) => LoginMethod::Device,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_tokens_or_the_client_secret() {
        let token = SsoToken {
            access_token: Secret::new("aoaAAAAAGEXAMPLEACCESS"),
            expires_at: SystemTime::UNIX_EPOCH,
            issued_at: SystemTime::UNIX_EPOCH,
            session_start: None,
            refresh_token: Some(Secret::new("aorAAAAAGEXAMPLEREFRESH")),
            registration: Some(Registration {
                client_id: "client-id".into(),
                client_secret: Secret::new("eyJraWQiOiJleGFtcGxlU0VDUkVU"),
                expires_at: SystemTime::UNIX_EPOCH,
                pkce: Some(true),
            }),
            region: "us-east-1".into(),
        };
        let shown = format!("{token:?}");
        for secret in ["EXAMPLEACCESS", "EXAMPLEREFRESH", "eyJraWQi"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("client-id") && shown.contains("us-east-1"));
    }
}
