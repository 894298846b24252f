//! What the engine reaches outside itself, and the one place a configured access source is made.

use std::path::PathBuf;
use std::sync::Arc;

use crate::access::command::Runner;
use crate::access::iam_user::IamUser;
use crate::access::iam_user::iam::Iam;
use crate::access::saml::Saml;
use crate::access::source::Source;
use crate::access::sso::IdentityCenter;
use crate::access::web_identity::{OidcHttp, WebIdentity};
use crate::clock::Clock;
use crate::config::{AccessConfig, SourceConfig};
use crate::desktop::{Desktop, Notifier};
use crate::doctor::organizations::Organizations;
use crate::sts::Sts;

/// What the engine reaches outside itself. The daemon uses [`Wiring::system`]; unit tests a
/// simulated clock, a scripted STS, a seeded jitter, scripted commands and a notifier that
/// records.
pub struct Wiring {
    pub clock: Clock,
    pub sts: Sts,
    /// Draws the refresh and backoff jitter.
    pub rng: fastrand::Rng,
    /// The shared credentials file of the `iam-user` source; `None`: the SDKs' own lookup
    /// (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub credentials_file: Option<PathBuf>,
    /// The AWS CLI's SSO token cache dir; `None`: `~/.aws/sso/cache`.
    pub sso_cache_dir: Option<PathBuf>,
    /// Runs the access source's commands (`mfa_command`).
    pub commands: Runner,
    /// Where desktop notifications go (when `[daemon] notify` allows them).
    pub notifier: Arc<dyn Notifier>,
    /// How web identity's own OpenID login reaches the identity provider.
    pub oidc_http: OidcHttp,
    /// IAM, for the key's age in status and `credd key rotate`; `None`: neither (unit tests
    /// that do not script IAM).
    pub iam: Option<Iam>,
    /// AWS Organizations, for `credd doctor`'s management-account check; `None`: not checked
    /// (unit tests that do not script it).
    pub organizations: Option<Organizations>,
}

impl Wiring {
    pub fn system() -> Wiring {
        let clock = Clock::system();
        let sts = Sts::from_env(clock.clone());
        Wiring {
            iam: Some(Iam::from_env(clock.clone(), sts.http_client())),
            organizations: Some(Organizations::from_env(clock.clone(), sts.http_client())),
            sts,
            clock,
            rng: fastrand::Rng::new(),
            credentials_file: None,
            sso_cache_dir: None,
            commands: Runner::System,
            notifier: Arc::new(Desktop::default()),
            oidc_http: OidcHttp::default(),
        }
    }
}

/// The configured access source: the one registration line per source.
pub(super) fn source_for(
    config: &AccessConfig,
    credentials_file: Option<&PathBuf>,
    sso_cache_dir: Option<&PathBuf>,
    sts: &Sts,
    clock: &Clock,
    commands: &Runner,
    oidc_http: &OidcHttp,
) -> Arc<dyn Source> {
    let duration = config.session_duration;
    match &config.source {
        SourceConfig::IamUser(c) => Arc::new(IamUser::new(
            c,
            duration,
            credentials_file.cloned(),
            commands.clone(),
        )),
        SourceConfig::Sso(c) => Arc::new(IdentityCenter::new(
            c,
            duration,
            sso_cache_dir.cloned(),
            clock.clone(),
            sts.http_client(),
        )),
        SourceConfig::WebIdentity(c) => Arc::new(WebIdentity::new(
            c,
            duration,
            oidc_http.clone(),
            clock.clone(),
        )),
        SourceConfig::Saml(c) => Arc::new(Saml { config: c.clone() }),
    }
}
