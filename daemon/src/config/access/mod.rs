//! `[access]`: how the daemon logs into the administrative access account.
//!
//! One table for every source, so this module picks the source, refuses the keys that belong to
//! another one, and hands the rest to that source's file (`iam_user.rs`, `sso.rs`).

mod iam_user;
mod sso;

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::check_region;
use super::{ConfigError, Validator};

pub use iam_user::{DEFAULT_SESSION_DURATION, SESSION_MAX, SESSION_MIN};
pub use sso::{
    DEFAULT_SSO_SESSION_DURATION, SSO_SESSION_MAX, SSO_SESSION_MIN, SsoConfig, SsoLogin,
    SsoReplica, SsoRole,
};

/// The STS region when `regions` is not set (`iam-user`; `sso` defaults to `sso_region`).
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
    /// `iam-user`: the shared-credentials profile holding the IAM user's long-lived key.
    /// Empty for every other source (the key is refused there).
    pub aws_profile: String,
    /// `iam-user` only; `None` for every other source.
    pub mfa_serial: Option<String>,
    /// `iam-user`: the GetSessionToken session's length. `sso`: the organization's Identity
    /// Center session length, after which a new browser login is needed (shown by status).
    pub session_duration: Duration,
    /// STS regions in order of preference (for `sso`: where AssumeRole goes for `role_arn`
    /// profiles; Identity Center itself is reached in `sso_region` and its replicas).
    pub regions: Vec<String>,
    /// `source = "sso"`: the Identity Center instance and how to log into it.
    pub sso: Option<SsoConfig>,
}

impl AccessConfig {
    /// `source = "sso"` with `sso_account_id` + `sso_role_name`: the role whose credentials sign
    /// AssumeRole for `role_arn` profiles that have no `via`.
    pub fn sso_access_role(&self) -> Option<&SsoRole> {
        self.sso.as_ref().and_then(|s| s.access_role.as_ref())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    source: Spanned<String>,
    // iam-user
    aws_profile: Option<Spanned<String>>,
    mfa_serial: Option<Spanned<String>>,
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
}

impl RawAccess {
    /// The source-specific keys present, with the source each belongs to, in file order.
    fn owned_keys(&self) -> Vec<(&'static str, Range<usize>, AccessSourceKind)> {
        use AccessSourceKind::{IamUser, Sso};
        fn span<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let mut keys: Vec<_> = [
            ("aws_profile", span(&self.aws_profile), IamUser),
            ("mfa_serial", span(&self.mfa_serial), IamUser),
            ("sso_session", span(&self.sso_session), Sso),
            ("sso_start_url", span(&self.sso_start_url), Sso),
            ("sso_region", span(&self.sso_region), Sso),
            ("sso_login", span(&self.sso_login), Sso),
            ("sso_account_id", span(&self.sso_account_id), Sso),
            ("sso_role_name", span(&self.sso_role_name), Sso),
            ("sso_replicas", span(&self.sso_replicas), Sso),
        ]
        .into_iter()
        .filter_map(|(key, span, owner)| Some((key, span?, owner)))
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
            other @ ("web-identity" | "saml") => {
                return Err(self.at(
                    &raw.source,
                    format!(
                        "source = {other:?} is not available in this build of credd yet; \
                         supported: \"iam-user\", \"sso\""
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
        if let Some((key, span, owner)) = raw
            .owned_keys()
            .into_iter()
            .find(|(_, _, owner)| *owner != source)
        {
            return Err(self.at_key(span, key, foreign_key(key, owner, source)));
        }
        let regions = raw.regions.take();
        let mut access = match source {
            AccessSourceKind::Sso => self.sso(raw)?,
            _ => self.iam_user(raw)?,
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
}

/// Why `key` (of source `owner`) has no place under `source`, and what to do.
fn foreign_key(key: &str, owner: AccessSourceKind, source: AccessSourceKind) -> String {
    let advice = match (key, source) {
        ("aws_profile", AccessSourceKind::Sso) => {
            "it names the IAM user's long-lived key, and Identity Center logs you in through \
             sso_start_url instead; remove it"
                .to_owned()
        }
        ("mfa_serial", AccessSourceKind::Sso) => {
            "Identity Center asks for MFA itself, during the browser or device login; remove it"
                .to_owned()
        }
        _ => format!("set source = {:?}, or remove it", owner.as_str()),
    };
    format!(
        "{key} belongs to source = {:?}, not {:?}: {advice}",
        owner.as_str(),
        source.as_str()
    )
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{GOOD, SSO, err, sso_with};

    #[test]
    fn sources_not_built_yet_are_refused() {
        for source in ["web-identity", "saml"] {
            let e = err(&SSO.replace("source = \"sso\"", &format!("source = {source:?}")));
            assert_eq!((e.line, e.col), (Some(3), Some(10)), "{e}");
            assert_eq!(
                e.msg,
                format!(
                    "source = {source:?} is not available in this build of credd yet; \
                     supported: \"iam-user\", \"sso\""
                )
            );
        }
        let e = err(&GOOD.replace("source = \"iam-user\"", "source = \"iam_user\""));
        assert!(
            e.msg
                .starts_with("source: expected one of \"iam-user\", \"sso\""),
            "{e}"
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
