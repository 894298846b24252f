//! `[access]`: how the daemon logs into the administrative access account.
//!
//! One table for every source, so this module picks the source, refuses the keys that belong to
//! another one, and hands the rest to that source's file (`iam_user.rs`, `sso.rs`,
//! `web_identity.rs`, `saml.rs`).

mod iam_user;
mod saml;
mod sso;
mod web_identity;

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{check_region, parse_role_arn};
use super::{ConfigError, Validator};

pub use iam_user::{
    DEFAULT_AWS_PROFILE, DEFAULT_SESSION_DURATION, IamUserConfig, KeySource, SESSION_MAX,
    SESSION_MIN,
};
pub use saml::SamlConfig;
pub use sso::{
    DEFAULT_SSO_SESSION_DURATION, SSO_SESSION_MAX, SSO_SESSION_MIN, SsoConfig, SsoLogin,
    SsoReplica, SsoRole,
};
pub use web_identity::{
    DEFAULT_FEDERATED_DURATION, FEDERATED_MAX, FEDERATED_MIN, OidcConfig, WebIdentityConfig,
    WebIdentityToken,
};

/// The STS region when `regions` is not set (`sso` defaults to `sso_region`).
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
    /// The source and its own settings.
    pub source: SourceConfig,
    /// `iam-user`: the GetSessionToken session's length. `sso`: the organization's Identity
    /// Center session length, after which a new browser login is needed (shown by status).
    /// `web-identity`, `saml`: the access role session's length (DurationSeconds).
    pub session_duration: Duration,
    /// STS regions in order of preference (for `sso`: where AssumeRole goes for `role_arn`
    /// profiles; Identity Center itself is reached in `sso_region` and its replicas).
    pub regions: Vec<String>,
}

/// Each source's own settings: a source holds only what it uses.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    IamUser(IamUserConfig),
    Sso(SsoConfig),
    WebIdentity(WebIdentityConfig),
    Saml(SamlConfig),
}

impl AccessConfig {
    pub fn kind(&self) -> AccessSourceKind {
        match &self.source {
            SourceConfig::IamUser(_) => AccessSourceKind::IamUser,
            SourceConfig::Sso(_) => AccessSourceKind::Sso,
            SourceConfig::WebIdentity(_) => AccessSourceKind::WebIdentity,
            SourceConfig::Saml(_) => AccessSourceKind::Saml,
        }
    }

    pub fn iam_user(&self) -> Option<&IamUserConfig> {
        match &self.source {
            SourceConfig::IamUser(u) => Some(u),
            _ => None,
        }
    }

    pub fn sso(&self) -> Option<&SsoConfig> {
        match &self.source {
            SourceConfig::Sso(s) => Some(s),
            _ => None,
        }
    }

    /// `iam-user` with `mfa_serial`: the device `credd login` asks a code of.
    pub fn mfa_serial(&self) -> Option<&str> {
        self.iam_user().and_then(|u| u.mfa_serial.as_deref())
    }

    /// `source = "sso"` with `sso_account_id` + `sso_role_name`: the role whose credentials sign
    /// AssumeRole for `role_arn` profiles that have no `via`.
    pub fn sso_access_role(&self) -> Option<&SsoRole> {
        self.sso().and_then(|s| s.access_role.as_ref())
    }

    /// Whether a session made under `self` is still the one `other` describes (the same
    /// identity, the same way in): then a config edit keeps it.
    pub fn same_session(&self, other: &AccessConfig) -> bool {
        self.kind() == other.kind() && self.session_settings() == other.session_settings()
    }

    /// The settings a session belongs to (the identity and the way in, not details such as the
    /// login method or the session length): what a saved session is bound to, and what
    /// [`AccessConfig::same_session`] compares.
    pub fn session_settings(&self) -> String {
        match &self.source {
            SourceConfig::IamUser(u) => {
                // A file profile's line is the profile name alone, as before the keychain.
                let key = match &u.key {
                    KeySource::File { aws_profile } => aws_profile.clone(),
                    KeySource::Keychain => "(keychain)".to_owned(),
                };
                format!("{key}\n{}", u.mfa_serial.as_deref().unwrap_or(""))
            }
            SourceConfig::Sso(s) => format!("{}\n{}\n{}", s.session, s.start_url, s.region),
            SourceConfig::WebIdentity(w) => format!("{}\n{:?}", w.role_arn, w.token),
            SourceConfig::Saml(s) => format!("{:?}\n{:?}", s.assertion_command, s.role_arn),
        }
    }

    /// Whether what signs AssumeRole for a profile without `via` is role credentials (an access
    /// role, or the role the IdP's token was traded for): then STS caps the profile at 1 hour, as
    /// for any chained role.
    pub fn signs_with_role_credentials(&self) -> bool {
        !matches!(self.source, SourceConfig::IamUser(_))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    source: Spanned<String>,
    // iam-user
    key: Option<Spanned<String>>,
    aws_profile: Option<Spanned<String>>,
    mfa_serial: Option<Spanned<String>>,
    mfa_command: Option<Spanned<Vec<Spanned<String>>>>,
    // every source
    session_duration: Option<Spanned<String>>,
    regions: Option<Spanned<Vec<Spanned<String>>>>,
    // sso
    sso_session: Option<Spanned<String>>,
    sso_start_url: Option<Spanned<String>>,
    sso_region: Option<Spanned<String>>,
    sso_login: Option<Spanned<String>>,
    sso_account_id: Option<Spanned<String>>,
    sso_role_name: Option<Spanned<String>>,
    sso_replicas: Option<Spanned<Vec<Spanned<sso::RawReplica>>>>,
    // web-identity and saml
    role_arn: Option<Spanned<String>>,
    // web-identity
    oidc_issuer: Option<Spanned<String>>,
    oidc_client_id: Option<Spanned<String>>,
    oidc_scopes: Option<Spanned<Vec<Spanned<String>>>>,
    token_file: Option<Spanned<String>>,
    token_command: Option<Spanned<Vec<Spanned<String>>>>,
    // saml
    assertion_command: Option<Spanned<Vec<Spanned<String>>>>,
}

impl RawAccess {
    /// The source-specific keys present, with the sources each belongs to, in file order.
    fn owned_keys(&self) -> Vec<(&'static str, Range<usize>, &'static [AccessSourceKind])> {
        use AccessSourceKind::{IamUser, Saml, Sso, WebIdentity};
        fn span<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let mut keys: Vec<_> = [
            ("key", span(&self.key), &[IamUser][..]),
            ("aws_profile", span(&self.aws_profile), &[IamUser]),
            ("mfa_serial", span(&self.mfa_serial), &[IamUser]),
            ("mfa_command", span(&self.mfa_command), &[IamUser]),
            ("sso_session", span(&self.sso_session), &[Sso]),
            ("sso_start_url", span(&self.sso_start_url), &[Sso]),
            ("sso_region", span(&self.sso_region), &[Sso]),
            ("sso_login", span(&self.sso_login), &[Sso]),
            ("sso_account_id", span(&self.sso_account_id), &[Sso]),
            ("sso_role_name", span(&self.sso_role_name), &[Sso]),
            ("sso_replicas", span(&self.sso_replicas), &[Sso]),
            ("role_arn", span(&self.role_arn), &[WebIdentity, Saml]),
            ("oidc_issuer", span(&self.oidc_issuer), &[WebIdentity]),
            ("oidc_client_id", span(&self.oidc_client_id), &[WebIdentity]),
            ("oidc_scopes", span(&self.oidc_scopes), &[WebIdentity]),
            ("token_file", span(&self.token_file), &[WebIdentity]),
            ("token_command", span(&self.token_command), &[WebIdentity]),
            ("assertion_command", span(&self.assertion_command), &[Saml]),
        ]
        .into_iter()
        .filter_map(|(key, span, owners)| Some((key, span?, owners)))
        .collect();
        keys.sort_by_key(|(_, span, _)| span.start);
        keys
    }
}

impl Validator<'_> {
    pub(super) fn access(&self, raw: Spanned<RawAccess>) -> Result<AccessConfig, ConfigError> {
        let mut raw = raw.into_inner();
        let source = match raw.source.get_ref().as_str() {
            "iam-user" => AccessSourceKind::IamUser,
            "sso" => AccessSourceKind::Sso,
            "web-identity" => AccessSourceKind::WebIdentity,
            "saml" => AccessSourceKind::Saml,
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
        if let Some((key, span, owners)) = raw
            .owned_keys()
            .into_iter()
            .find(|(_, _, owners)| !owners.contains(&source))
        {
            return Err(self.at_key(span, key, foreign_key(key, owners, source)));
        }
        let regions = raw.regions.take();
        let mut access = match source {
            AccessSourceKind::IamUser => self.iam_user(raw)?,
            AccessSourceKind::Sso => self.sso(raw)?,
            AccessSourceKind::WebIdentity => self.web_identity(raw)?,
            AccessSourceKind::Saml => self.saml(raw)?,
        };
        if let Some(list) = regions {
            access.regions = self.regions(list)?;
        }
        Ok(access)
    }

    /// `regions`: STS regions, tried in order.
    fn regions(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.at(&list, "regions must name at least one STS region"));
        }
        let mut out: Vec<String> = Vec::new();
        for r in list.into_inner() {
            check_region(r.get_ref()).map_err(|msg| self.at(&r, format!("regions: {msg}")))?;
            if out.contains(r.get_ref()) {
                return Err(self.at(&r, format!("regions: {:?} is listed twice", r.get_ref())));
            }
            out.push(r.into_inner());
        }
        Ok(out)
    }

    /// `role_arn` in `[access]`: the access account's role that trusts the IdP.
    fn access_role_arn(&self, arn: &Spanned<String>) -> Result<(), ConfigError> {
        parse_role_arn(arn.get_ref())
            .map(drop)
            .map_err(|msg| self.at(arn, format!("role_arn: {msg}")))
    }

    /// A command line (`token_command`, `assertion_command`, `mfa_command`): a program and its
    /// arguments, run without a shell.
    fn command(
        &self,
        list: Spanned<Vec<Spanned<String>>>,
        what: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let Some(program) = list.get_ref().first() else {
            return Err(self.at(
                &list,
                format!(
                    "{what} must name a program and its arguments, e.g. [\"acme-idp\", \"token\"]"
                ),
            ));
        };
        if program.get_ref().trim().is_empty() {
            return Err(self.at(program, format!("{what}: the program name is empty")));
        }
        if let Some(bad) = list.get_ref().iter().find(|a| a.get_ref().contains('\0')) {
            return Err(self.at(bad, format!("{what}: an argument holds a NUL character")));
        }
        Ok(list
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect())
    }
}

/// Why `key` (of the sources `owners`) has no place under `source`, and what to do.
fn foreign_key(key: &str, owners: &[AccessSourceKind], source: AccessSourceKind) -> String {
    let advice = match (key, source) {
        ("key", AccessSourceKind::Sso) => {
            "it says where the IAM user's long-lived key is kept, and Identity Center logs you in \
             through sso_start_url instead; remove it"
                .to_owned()
        }
        ("key", AccessSourceKind::WebIdentity | AccessSourceKind::Saml) => {
            "your identity provider logs you in and no AWS key is kept; remove it".to_owned()
        }
        ("aws_profile", AccessSourceKind::Sso) => {
            "it names the IAM user's long-lived key, and Identity Center logs you in through \
             sso_start_url instead; remove it"
                .to_owned()
        }
        ("mfa_serial" | "mfa_command", AccessSourceKind::Sso) => {
            "Identity Center asks for MFA itself, during the browser or device login; remove it"
                .to_owned()
        }
        (
            "aws_profile" | "mfa_serial" | "mfa_command",
            AccessSourceKind::WebIdentity | AccessSourceKind::Saml,
        ) => "your identity provider asks for MFA and holds no AWS key; remove it".to_owned(),
        _ => format!("set source = {:?}, or remove it", owners[0].as_str()),
    };
    let owners: Vec<String> = owners.iter().map(|o| format!("{:?}", o.as_str())).collect();
    format!(
        "{key} belongs to source = {}, not {:?}: {advice}",
        owners.join(" or "),
        source.as_str()
    )
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{GOOD, err, sso_with};

    #[test]
    fn an_unknown_source_lists_the_four() {
        let e = err(&GOOD.replace("source = \"iam-user\"", "source = \"iam_user\""));
        assert_eq!(
            e.msg,
            "source: expected one of \"iam-user\", \"sso\", \"web-identity\", \"saml\", \
             found \"iam_user\"",
        );
    }

    #[test]
    fn iam_user_keys_are_refused_under_sso_saying_why() {
        let e = err(&sso_with("aws_profile = \"access\""));
        assert_eq!((e.line, e.col), (Some(7), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "aws_profile belongs to source = \"iam-user\", not \"sso\": it names the IAM user's \
             long-lived key, and Identity Center logs you in through sso_start_url instead; \
             remove it"
        );
        let e = err(&sso_with(
            "  mfa_serial =  \"arn:aws:iam::111111111111:mfa/alice\"",
        ));
        assert_eq!((e.line, e.col), (Some(7), Some(3)), "{e}");
        assert!(
            e.msg.starts_with(
                "mfa_serial belongs to source = \"iam-user\", not \"sso\": Identity Center asks \
                 for MFA itself"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_key_setting_belongs_to_iam_user_only() {
        let e = err(&sso_with("key = \"keychain\""));
        assert_eq!((e.line, e.col), (Some(7), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "key belongs to source = \"iam-user\", not \"sso\": it says where the IAM user's \
             long-lived key is kept, and Identity Center logs you in through sso_start_url \
             instead; remove it"
        );
    }

    #[test]
    fn the_first_foreign_key_in_the_file_is_named() {
        let text = sso_with("aws_profile = \"access\"").replace(
            "sso_session = \"acme\"",
            "mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\nsso_session = \"acme\"",
        );
        let e = err(&text);
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.msg.starts_with("mfa_serial belongs"), "{e}");
    }

    #[test]
    fn regions_are_checked_for_every_source() {
        let e = err(&sso_with("regions = []"));
        assert_eq!(
            (e.line, e.msg.as_str()),
            (Some(7), "regions must name at least one STS region")
        );
        let e = err(&sso_with("regions = [\"us-east-1\", \"us-east-1\"]"));
        assert!(e.msg.contains("\"us-east-1\" is listed twice"), "{e}");
        let e = err(&GOOD.replace("\"us-west-2\"]", "\"us-west\"]"));
        assert!(e.msg.starts_with("regions: expected a region"), "{e}");
    }
}
