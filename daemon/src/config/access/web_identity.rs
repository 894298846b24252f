//! `source = "web-identity"`: the company's OpenID Connect identity provider. credd trades an ID
//! token for the access role's credentials (AssumeRoleWithWebIdentity). The token comes from
//! credd's own login (`oidc_issuer` + `oidc_client_id`), from a file another tool keeps fresh
//! (`token_file`), or from a command (`token_command`).

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{AccessConfig, DEFAULT_REGION, RawAccess, SourceConfig};
use crate::config::checks::check_issuer_url;
use crate::config::{ConfigError, Validator};

/// AssumeRoleWithWebIdentity / AssumeRoleWithSAML limits (a role's maximum session is at most
/// 12 hours; STS refuses more than the role allows).
pub const FEDERATED_MIN: Duration = Duration::from_secs(900);
pub const FEDERATED_MAX: Duration = Duration::from_secs(12 * 3600);
/// STS's own default, and every role's minimum maximum.
pub const DEFAULT_FEDERATED_DURATION: Duration = Duration::from_secs(3600);
/// `openid` for an ID token, `offline_access` for a refresh token (so the session renews itself),
/// `email` for a readable session name.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "offline_access", "email"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentityConfig {
    /// The access account's role that trusts the identity provider.
    pub role_arn: String,
    pub token: WebIdentityToken,
}

/// Where the ID token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebIdentityToken {
    /// credd's own login: authorization code + PKCE, or the device grant.
    Oidc(OidcConfig),
    /// Re-read at each renewal, like the SDKs' `AWS_WEB_IDENTITY_TOKEN_FILE`.
    File(PathBuf),
    /// Run at each renewal; its stdout is the token.
    Command(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// A public (native) client: no secret.
    pub client_id: String,
    /// Always holds `openid`.
    pub scopes: Vec<String>,
}

impl Validator<'_> {
    /// The `web-identity` keys of `[access]` (the other sources' keys are already refused);
    /// `regions` is the caller's.
    pub(super) fn web_identity(&self, raw: RawAccess) -> Result<AccessConfig, ConfigError> {
        let Some(role_arn) = raw.role_arn else {
            return Err(self.at(
                &raw.source,
                "source = \"web-identity\" needs role_arn in [access]: the access account's role \
                 that trusts your identity provider, e.g.\n\
                 role_arn = \"arn:aws:iam::111111111111:role/AccessFromIdP\"",
            ));
        };
        self.access_role_arn(&role_arn)?;
        let ways: Vec<(&str, std::ops::Range<usize>)> = [
            ("oidc_issuer", raw.oidc_issuer.as_ref().map(Spanned::span)),
            ("token_file", raw.token_file.as_ref().map(Spanned::span)),
            (
                "token_command",
                raw.token_command.as_ref().map(Spanned::span),
            ),
        ]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s?)))
        .collect();
        if let [(first, _), (second, span), ..] = &ways[..] {
            return Err(self.at_key(
                span.clone(),
                second,
                format!(
                    "{first} and {second} are two ways to get the ID token: keep one (oidc_issuer \
                     for credd's own login, token_file or token_command for a token another tool \
                     provides)"
                ),
            ));
        }
        let token = if let Some(issuer) = raw.oidc_issuer {
            self.oidc(issuer, raw.oidc_client_id, raw.oidc_scopes)?
        } else {
            if let Some(k) = [
                (
                    "oidc_client_id",
                    raw.oidc_client_id.as_ref().map(Spanned::span),
                ),
                ("oidc_scopes", raw.oidc_scopes.as_ref().map(Spanned::span)),
            ]
            .into_iter()
            .find_map(|(k, s)| Some((k, s?)))
            {
                return Err(self.at_key(
                    k.1,
                    k.0,
                    format!("{} is for credd's own login: it needs oidc_issuer too", k.0),
                ));
            }
            match (raw.token_file, raw.token_command) {
                (Some(file), _) => WebIdentityToken::File(self.token_file(&file)?),
                (None, Some(cmd)) => WebIdentityToken::Command(self.command(cmd, "token_command")?),
                (None, None) => {
                    return Err(self.at(
                        &raw.source,
                        "source = \"web-identity\" needs a way to get the ID token in [access]: \
                         oidc_issuer and oidc_client_id (credd's own login), token_file, or \
                         token_command, e.g.\n\
                         oidc_issuer = \"https://login.acme.example\"\n\
                         oidc_client_id = \"credd\"",
                    ));
                }
            }
        };
        let session_duration = match raw.session_duration {
            Some(d) => self.duration_in(
                &d,
                "session_duration",
                (FEDERATED_MIN, FEDERATED_MAX),
                "AssumeRoleWithWebIdentity",
            )?,
            None => DEFAULT_FEDERATED_DURATION,
        };
        Ok(AccessConfig {
            source: SourceConfig::WebIdentity(WebIdentityConfig {
                role_arn: role_arn.into_inner(),
                token,
            }),
            session_duration,
            regions: vec![DEFAULT_REGION.to_owned()],
        })
    }

    fn oidc(
        &self,
        issuer: Spanned<String>,
        client_id: Option<Spanned<String>>,
        scopes: Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<WebIdentityToken, ConfigError> {
        check_issuer_url(issuer.get_ref())
            .map_err(|msg| self.at(&issuer, format!("oidc_issuer: {msg}")))?;
        let Some(client_id) = client_id else {
            return Err(self.at_key(
                issuer.span(),
                "oidc_issuer",
                "oidc_issuer needs oidc_client_id too: the client ID your identity provider gave \
                 credd (a public, native app with the redirect URI \
                 http://127.0.0.1/oauth/callback), e.g. oidc_client_id = \"credd\"",
            ));
        };
        let id = client_id.get_ref();
        if id.trim().is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(self.at(
                &client_id,
                format!("oidc_client_id: expected the client ID, without spaces, found {id:?}"),
            ));
        }
        let scopes = match scopes {
            None => DEFAULT_OIDC_SCOPES.map(str::to_owned).to_vec(),
            Some(list) => {
                let mut out: Vec<String> = Vec::new();
                for s in list.get_ref() {
                    let v = s.get_ref();
                    if v.is_empty()
                        || v.chars()
                            .any(|c| !c.is_ascii_graphic() || c == '"' || c == '\\')
                    {
                        return Err(self.at(
                            s,
                            format!(
                                "oidc_scopes: {v:?} is not a scope (printable ASCII, no spaces)"
                            ),
                        ));
                    }
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                if !out.iter().any(|s| s == "openid") {
                    return Err(self.at(
                        &list,
                        "oidc_scopes must include \"openid\": without it there is no ID token to \
                         trade (add \"offline_access\" too, so the session renews itself)",
                    ));
                }
                out
            }
        };
        Ok(WebIdentityToken::Oidc(OidcConfig {
            issuer: issuer.into_inner(),
            client_id: client_id.into_inner(),
            scopes,
        }))
    }

    /// `token_file`: an absolute path, or one under `~/`.
    fn token_file(&self, file: &Spanned<String>) -> Result<PathBuf, ConfigError> {
        let raw = file.get_ref();
        let path = match raw.strip_prefix("~/") {
            Some(rest) => match directories::BaseDirs::new() {
                Some(dirs) => dirs.home_dir().join(rest),
                None => {
                    return Err(self.at(
                        file,
                        "token_file: ~/ is used, but there is no home directory",
                    ));
                }
            },
            None => PathBuf::from(raw),
        };
        if !path.is_absolute() {
            return Err(self.at(
                file,
                format!("token_file: expected an absolute path (or one under ~/), found {raw:?}"),
            ));
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{err, ok};

    const WEB: &str = r#"
[access]
source = "web-identity"
role_arn = "arn:aws:iam::111111111111:role/AccessFromIdP"
oidc_issuer = "https://login.acme.example"
oidc_client_id = "credd"

[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
duration = "4h"
"#;

    fn web_with(from: &str, to: &str) -> String {
        assert!(WEB.contains(from), "{from}");
        WEB.replace(from, to)
    }

    #[test]
    fn the_issue_example_loads_with_defaults() {
        let c = ok(WEB);
        assert_eq!(
            c.access.kind(),
            crate::config::AccessSourceKind::WebIdentity
        );
        assert_eq!(c.access.session_duration, DEFAULT_FEDERATED_DURATION);
        assert_eq!(c.access.regions, ["us-east-1"]);
        let SourceConfig::WebIdentity(w) = &c.access.source else {
            panic!("web identity expected")
        };
        assert_eq!(w.role_arn, "arn:aws:iam::111111111111:role/AccessFromIdP");
        assert_eq!(
            w.token,
            WebIdentityToken::Oidc(OidcConfig {
                issuer: "https://login.acme.example".into(),
                client_id: "credd".into(),
                scopes: vec!["openid".into(), "offline_access".into(), "email".into()],
            })
        );
        // Assumed from role credentials: chained, so capped at 1 hour.
        assert_eq!(c.profiles["staging"].duration.as_secs(), 3600);
        assert!(
            c.warnings.iter().any(|w| w.contains("capped at 1h")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn token_file_and_command_are_the_other_ways() {
        let c = ok(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\noidc_client_id = \"credd\"",
            "token_file = \"/run/secrets/token\"\nsession_duration = \"12h\"",
        ));
        let SourceConfig::WebIdentity(w) = &c.access.source else {
            panic!()
        };
        assert_eq!(w.token, WebIdentityToken::File("/run/secrets/token".into()));
        assert_eq!(c.access.session_duration.as_secs(), 12 * 3600);
        let c = ok(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\noidc_client_id = \"credd\"",
            "token_command = [\"acme-idp\", \"token\"]",
        ));
        let SourceConfig::WebIdentity(w) = &c.access.source else {
            panic!()
        };
        assert_eq!(
            w.token,
            WebIdentityToken::Command(vec!["acme-idp".into(), "token".into()])
        );
    }

    #[test]
    fn bad_web_identity_settings_say_what_to_do() {
        let e = err(&web_with(
            "role_arn = \"arn:aws:iam::111111111111:role/AccessFromIdP\"\n",
            "",
        ));
        assert!(
            e.msg
                .starts_with("source = \"web-identity\" needs role_arn"),
            "{e}"
        );
        let e = err(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\noidc_client_id = \"credd\"",
            "",
        ));
        assert!(e.msg.contains("needs a way to get the ID token"), "{e}");
        let e = err(&web_with(
            "oidc_client_id = \"credd\"",
            "token_file = \"/t\"",
        ));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.msg.starts_with("oidc_issuer and token_file are two ways"),
            "{e}"
        );
        let e = err(&web_with("oidc_client_id = \"credd\"\n", ""));
        assert!(
            e.msg.starts_with("oidc_issuer needs oidc_client_id too"),
            "{e}"
        );
        let e = err(&web_with(
            "https://login.acme.example",
            "http://login.acme.example",
        ));
        assert!(
            e.msg.contains("plain http: the issuer must be https://"),
            "{e}"
        );
        let e = err(&web_with(
            "oidc_client_id = \"credd\"",
            "oidc_client_id = \"credd\"\noidc_scopes = [\"email\"]",
        ));
        assert!(
            e.msg.starts_with("oidc_scopes must include \"openid\""),
            "{e}"
        );
        let e = err(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\n",
            "token_file = \"t\"\n",
        ));
        assert!(
            e.msg.starts_with("oidc_client_id is for credd's own login"),
            "{e}"
        );
        let e = err(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\noidc_client_id = \"credd\"",
            "token_file = \"relative/t\"",
        ));
        assert!(
            e.msg.starts_with("token_file: expected an absolute path"),
            "{e}"
        );
        let e = err(&web_with(
            "oidc_issuer = \"https://login.acme.example\"\noidc_client_id = \"credd\"",
            "token_command = []",
        ));
        assert!(
            e.msg.starts_with("token_command must name a program"),
            "{e}"
        );
        let e = err(&web_with(
            "source = \"web-identity\"",
            "source = \"web-identity\"\nsession_duration = \"13h\"",
        ));
        assert!(e.msg.contains("between 15m and 12h"), "{e}");
        let e = err(&web_with(
            "source = \"web-identity\"",
            "source = \"web-identity\"\nmfa_serial = \"x\"",
        ));
        assert!(
            e.msg.starts_with(
                "mfa_serial belongs to source = \"iam-user\", not \"web-identity\": your identity \
                 provider asks for MFA"
            ),
            "{e}"
        );
        let e = err(&web_with(
            "source = \"web-identity\"",
            "source = \"web-identity\"\nassertion_command = [\"x\"]",
        ));
        assert!(
            e.msg.starts_with(
                "assertion_command belongs to source = \"saml\", not \"web-identity\""
            ),
            "{e}"
        );
    }
}
