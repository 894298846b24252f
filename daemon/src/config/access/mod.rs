//! `[access]`: how the daemon logs into the administrative access account, one source at a time.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{check_mfa_serial, check_region};
use super::{ConfigError, Validator};

/// GetSessionToken limits for IAM users.
pub const SESSION_MIN: Duration = Duration::from_secs(900);
pub const SESSION_MAX: Duration = Duration::from_secs(129_600);
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessSourceKind {
    IamUser,
    Sso,
    WebIdentity,
    Saml,
}

impl AccessSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessSourceKind::IamUser => "iam-user",
            AccessSourceKind::Sso => "sso",
            AccessSourceKind::WebIdentity => "web-identity",
            AccessSourceKind::Saml => "saml",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessConfig {
    pub source: AccessSourceKind,
    /// The shared-credentials profile holding the IAM user's long-lived key.
    pub aws_profile: String,
    pub mfa_serial: Option<String>,
    /// `iam-user`: the GetSessionToken session's length. `sso`: the organization's Identity
    /// Center session length, after which a new browser login is needed (shown by status).
    pub session_duration: Duration,
    /// STS regions in order of preference.
    pub regions: Vec<String>,
    /// `source = "sso"`: the Identity Center instance and how to log into it.
    pub sso: Option<SsoConfig>,
}

/// How `credd login` authorizes with Identity Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SsoLogin {
    /// The browser (authorization code + PKCE) where the client has a display, else the device
    /// grant.
    #[default]
    Auto,
    Browser,
    Device,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SsoConfig {
    /// `sso_session`: names the session and the AWS CLI token cache file (sha1 of this name).
    pub session: String,
    pub start_url: String,
    /// The Identity Center instance's (home) Region.
    pub region: String,
    pub login: SsoLogin,
    /// `sso_account_id` + `sso_role_name` in `[access]`: the access-account role whose
    /// credentials sign AssumeRole for `role_arn` profiles.
    pub access_role: Option<SsoRole>,
    /// Multi-Region Identity Center: further Regions, each with its own start URL, tried in order
    /// when the home Region cannot answer.
    pub replicas: Vec<SsoReplica>,
}

/// A permission set in an account, as Identity Center names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRole {
    pub account_id: String,
    pub role_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoReplica {
    pub region: String,
    pub start_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    source: Spanned<String>,
    aws_profile: Option<Spanned<String>>,
    mfa_serial: Option<Spanned<String>>,
    session_duration: Option<Spanned<String>>,
    regions: Option<Spanned<Vec<Spanned<String>>>>,
}

impl Validator<'_> {
    pub(super) fn access(&self, raw: Spanned<RawAccess>) -> Result<AccessConfig, ConfigError> {
        let raw = raw.into_inner();
        let source = match raw.source.get_ref().as_str() {
            "iam-user" => AccessSourceKind::IamUser,
            other @ ("sso" | "web-identity" | "saml") => {
                return Err(self.at(
                    &raw.source,
                    format!(
                        "source = {other:?} is not available in this build of credd yet; \
                         supported: \"iam-user\""
                    ),
                ));
            }
            other => {
                return Err(self.at(
                    &raw.source,
                    format!(
                        "source: expected one of \"iam-user\", \"sso\", \"web-identity\", \
                         \"saml\", found {other:?}"
                    ),
                ));
            }
        };
        let aws_profile = match raw.aws_profile {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(self.at(&p, "aws_profile must not be empty"));
            }
            Some(p) => p.into_inner(),
            None => "default".to_owned(),
        };
        let mfa_serial = match raw.mfa_serial {
            Some(m) => {
                check_mfa_serial(m.get_ref())
                    .map_err(|msg| self.at(&m, format!("mfa_serial: {msg}")))?;
                Some(m.into_inner())
            }
            None => None,
        };
        let session_duration = match raw.session_duration {
            Some(d) => self.duration_in(&d, "session_duration", SESSION_MIN, SESSION_MAX)?,
            None => DEFAULT_SESSION_DURATION,
        };
        let regions = match raw.regions {
            None => vec![DEFAULT_REGION.to_owned()],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.at(&list, "regions must name at least one STS region"));
                }
                let mut out: Vec<String> = Vec::new();
                for r in list.into_inner() {
                    check_region(r.get_ref())
                        .map_err(|msg| self.at(&r, format!("regions: {msg}")))?;
                    if out.contains(r.get_ref()) {
                        return Err(
                            self.at(&r, format!("regions: {:?} is listed twice", r.get_ref()))
                        );
                    }
                    out.push(r.into_inner());
                }
                out
            }
        };
        Ok(AccessConfig {
            source,
            aws_profile,
            mfa_serial,
            session_duration,
            regions,
            sso: None,
        })
    }
}
