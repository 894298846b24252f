//! `source = "sso"`: IAM Identity Center. Where the instance is (start URL, Region, replicas), how
//! `credd login` authorizes, and the optional access-account role that signs AssumeRole.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{AccessConfig, RawAccess, SourceConfig};
use crate::config::checks::{
    check_account_id, check_region, check_sso_role_name, check_sso_session, check_start_url,
};
use crate::config::{ConfigError, Validator};

/// Identity Center's limits for the organization's session length (its "session duration"
/// setting); AWS's default is 8 h. credd cannot read the setting, so `session_duration` tells it.
pub const SSO_SESSION_MIN: Duration = Duration::from_secs(15 * 60);
pub const SSO_SESSION_MAX: Duration = Duration::from_secs(90 * 86_400);
pub const DEFAULT_SSO_SESSION_DURATION: Duration = Duration::from_secs(8 * 3600);

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

impl SsoLogin {
    /// The `sso_login` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SsoLogin::Auto => "auto",
            SsoLogin::Browser => "browser",
            SsoLogin::Device => "device",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SsoConfig {
    /// `sso_session`: names the session and the AWS CLI token cache file (sha1 of this name).
    pub session: String,
    /// `sso_start_url`: the AWS access portal URL; `https://`, or `http://` on a loopback host.
    pub start_url: String,
    /// `sso_region`: the Identity Center instance's (home) Region.
    pub region: String,
    /// `sso_login`, default `auto`.
    pub login: SsoLogin,
    /// `sso_account_id` + `sso_role_name` in `[access]`: the access-account role whose
    /// credentials sign AssumeRole for `role_arn` profiles.
    pub access_role: Option<SsoRole>,
    /// `sso_replicas`: multi-Region Identity Center: further Regions, each with its own start
    /// URL, tried in order when the home Region cannot answer. Never the home Region, no Region
    /// twice.
    pub replicas: Vec<SsoReplica>,
}

/// A permission set in an account, as Identity Center names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRole {
    /// 12 digits.
    pub account_id: String,
    /// The permission set's name: 1 to 64 of letters, digits and `+=,.@_-`.
    pub role_name: String,
}

/// `ACCOUNT_ID/ROLE_NAME`, as status and `credd profiles` show it.
impl fmt::Display for SsoRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account_id, self.role_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoReplica {
    pub region: String,
    pub start_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplica {
    region: Spanned<String>,
    start_url: Spanned<String>,
}

impl Validator<'_> {
    /// The `sso` keys of `[access]` (the other sources' keys are already refused); `regions`
    /// is the caller's, defaulting to `sso_region`.
    pub(super) fn sso(&self, raw: RawAccess) -> Result<AccessConfig, ConfigError> {
        let (session, start_url, region) =
            match (raw.sso_session, raw.sso_start_url, raw.sso_region) {
                (Some(session), Some(start_url), Some(region)) => (session, start_url, region),
                (session, start_url, region) => {
                    let missing = [session.is_none(), start_url.is_none(), region.is_none()];
                    return Err(self.sso_missing(&raw.source, missing));
                }
            };
        check_sso_session(session.get_ref())
            .map_err(|msg| self.at(&session, format!("sso_session: {msg}")))?;
        check_start_url(start_url.get_ref())
            .map_err(|msg| self.at(&start_url, format!("sso_start_url: {msg}")))?;
        check_region(region.get_ref())
            .map_err(|msg| self.at(&region, format!("sso_region: {msg}")))?;
        let login = match raw.sso_login {
            None => SsoLogin::default(),
            Some(l) => match l.get_ref().as_str() {
                "auto" => SsoLogin::Auto,
                "browser" => SsoLogin::Browser,
                "device" => SsoLogin::Device,
                other => {
                    return Err(self.at(
                        &l,
                        format!(
                            "sso_login: expected \"auto\" (the browser where there is one, else \
                             a device code), \"browser\" (authorization code + PKCE) or \
                             \"device\" (a code to enter on any device), found {other:?}"
                        ),
                    ));
                }
            },
        };
        let access_role = self.sso_role(raw.sso_account_id, raw.sso_role_name)?;
        let replicas = match raw.sso_replicas {
            None => Vec::new(),
            Some(list) => self.sso_replicas(list, region.get_ref())?,
        };
        let session_duration = match raw.session_duration {
            Some(d) => self.duration_in(
                &d,
                "session_duration",
                (SSO_SESSION_MIN, SSO_SESSION_MAX),
                "Identity Center",
            )?,
            None => DEFAULT_SSO_SESSION_DURATION,
        };
        Ok(AccessConfig {
            session_duration,
            regions: vec![region.get_ref().clone()],
            source: SourceConfig::Sso(SsoConfig {
                session: session.into_inner(),
                start_url: start_url.into_inner(),
                region: region.into_inner(),
                login,
                access_role,
                replicas,
            }),
        })
    }

    /// Which of the three keys Identity Center cannot do without are missing, with an example.
    fn sso_missing(&self, source: &Spanned<String>, missing: [bool; 3]) -> ConfigError {
        let required = [
            (
                missing[0],
                "sso_session",
                "sso_session = \"acme\"                              # names the login and its \
                 AWS CLI cache file",
            ),
            (
                missing[1],
                "sso_start_url",
                "sso_start_url = \"https://acme.awsapps.com/start\"  # the AWS access portal URL",
            ),
            (
                missing[2],
                "sso_region",
                "sso_region = \"us-east-1\"                          # the Identity Center \
                 instance's Region",
            ),
        ];
        let missing: Vec<_> = required.iter().filter(|(m, ..)| *m).collect();
        let names: Vec<&str> = missing.iter().map(|(_, key, _)| *key).collect();
        let names = match names.as_slice() {
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => unreachable!("called with a key missing"),
        };
        let examples: Vec<&str> = missing.iter().map(|(.., example)| *example).collect();
        self.at(
            source,
            format!(
                "source = \"sso\" needs {names} in [access], e.g.\n{}",
                examples.join("\n")
            ),
        )
    }

    /// `sso_account_id` + `sso_role_name`: both or neither.
    fn sso_role(
        &self,
        account_id: Option<Spanned<String>>,
        role_name: Option<Spanned<String>>,
    ) -> Result<Option<SsoRole>, ConfigError> {
        let (account_id, role_name) = match (account_id, role_name) {
            (None, None) => return Ok(None),
            (Some(a), Some(r)) => (a, r),
            (Some(a), None) => {
                return Err(self.at_key(
                    a.span(),
                    "sso_account_id",
                    "sso_account_id needs sso_role_name too: together they name an account's \
                     permission set; set both, or neither",
                ));
            }
            (None, Some(r)) => {
                return Err(self.at_key(
                    r.span(),
                    "sso_role_name",
                    "sso_role_name needs sso_account_id too: together they name an account's \
                     permission set; set both, or neither",
                ));
            }
        };
        check_account_id(account_id.get_ref())
            .map_err(|msg| self.at(&account_id, format!("sso_account_id: {msg}")))?;
        check_sso_role_name(role_name.get_ref())
            .map_err(|msg| self.at(&role_name, format!("sso_role_name: {msg}")))?;
        Ok(Some(SsoRole {
            account_id: account_id.into_inner(),
            role_name: role_name.into_inner(),
        }))
    }

    fn sso_replicas(
        &self,
        list: Spanned<Vec<Spanned<RawReplica>>>,
        home: &str,
    ) -> Result<Vec<SsoReplica>, ConfigError> {
        let mut out: Vec<SsoReplica> = Vec::new();
        for replica in list.into_inner() {
            let RawReplica { region, start_url } = replica.into_inner();
            let r = region.get_ref();
            check_region(r).map_err(|msg| self.at(&region, format!("sso_replicas: {msg}")))?;
            if r == home {
                return Err(self.at(
                    &region,
                    format!(
                        "sso_replicas: {r:?} is the home Region (sso_region); list only the \
                         Regions Identity Center replicates to"
                    ),
                ));
            }
            if out.iter().any(|o| &o.region == r) {
                return Err(self.at(&region, format!("sso_replicas: {r:?} is listed twice")));
            }
            check_start_url(start_url.get_ref())
                .map_err(|msg| self.at(&start_url, format!("sso_replicas: start_url: {msg}")))?;
            out.push(SsoReplica {
                region: region.into_inner(),
                start_url: start_url.into_inner(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::testing::{SSO, err, ok, sso_with};

    #[test]
    fn sso_access_loads_with_defaults() {
        let c = ok(SSO);
        let a = &c.access;
        assert_eq!(a.kind(), crate::config::AccessSourceKind::Sso);
        assert_eq!(a.session_duration, DEFAULT_SSO_SESSION_DURATION);
        assert_eq!(
            a.regions,
            ["us-east-1"],
            "STS regions default to sso_region"
        );
        assert_eq!((a.iam_user(), a.mfa_serial()), (None, None));
        let sso = a.sso().expect("sso config");
        assert_eq!(sso.session, "acme");
        assert_eq!(sso.start_url, "https://acme.awsapps.com/start");
        assert_eq!(sso.region, "us-east-1");
        assert_eq!(sso.login, SsoLogin::Auto);
        assert_eq!(sso.replicas, []);
        let role = a.sso_access_role().expect("access role");
        assert_eq!(role.to_string(), "111111111111/AccessAdmin");
    }

    #[test]
    fn sso_settings_override_the_defaults() {
        let c = ok(&sso_with(
            "sso_login = \"device\"\nsession_duration = \"90d\"\nregions = [\"us-west-2\", \"us-east-1\"]",
        ));
        assert_eq!(c.access.sso().unwrap().login, SsoLogin::Device);
        assert_eq!(c.access.session_duration, Duration::from_secs(90 * 86_400));
        assert_eq!(c.access.regions, ["us-west-2", "us-east-1"]);
        let c = ok(&sso_with("sso_login = \"browser\""));
        assert_eq!(c.access.sso().unwrap().login, SsoLogin::Browser);
        // Without an access role, role_arn profiles go `via` an Identity Center profile.
        let c = ok(&SSO
            .replace("sso_account_id = \"111111111111\"\n", "")
            .replace("sso_role_name = \"AccessAdmin\"\n", "")
            .replace("[profiles.prod]\n", "[profiles.prod]\nvia = \"staging\"\n"));
        assert_eq!(c.access.sso_access_role(), None);
    }

    #[test]
    fn missing_sso_keys_are_named_with_an_example() {
        let e = err(&SSO.replace("sso_start_url = \"https://acme.awsapps.com/start\"\n", ""));
        assert_eq!((e.line, e.col), (Some(3), Some(10)), "{e}");
        assert!(
            e.msg.starts_with(
                "source = \"sso\" needs sso_start_url in [access], e.g.\n\
                 sso_start_url = \"https://acme.awsapps.com/start\""
            ),
            "{e}"
        );
        let e = err("[access]\nsource = \"sso\"\n");
        assert!(
            e.msg.starts_with(
                "source = \"sso\" needs sso_session, sso_start_url and sso_region in [access]"
            ),
            "{e}"
        );
        assert_eq!(e.msg.lines().count(), 4, "{e}");
    }

    #[test]
    fn sso_values_are_checked_where_written() {
        let e = err(&SSO.replace("\"acme\"", "\"acme corp\""));
        assert_eq!((e.line, e.col), (Some(4), Some(15)), "{e}");
        assert!(
            e.msg
                .starts_with("sso_session: character ' ' is not allowed"),
            "{e}"
        );

        let e = err(&SSO.replace("https://acme", "http://acme"));
        assert_eq!((e.line, e.col), (Some(5), Some(17)), "{e}");
        assert!(
            e.msg
                .starts_with("sso_start_url: \"http://acme.awsapps.com/start\" is plain http")
        );
        let e = err(&SSO.replace("https://acme.awsapps.com/start", "acme.awsapps.com"));
        assert!(
            e.msg
                .starts_with("sso_start_url: expected the AWS access portal URL"),
            "{e}"
        );
        let c = ok(&SSO.replace("https://acme.awsapps.com", "http://127.0.0.1:4567"));
        assert_eq!(
            c.access.sso().unwrap().start_url,
            "http://127.0.0.1:4567/start"
        );

        let e = err(&SSO.replace("sso_region = \"us-east-1\"", "sso_region = \"us-east\""));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.msg.starts_with("sso_region: expected a region"), "{e}");

        let e = err(&sso_with("sso_login = \"pkce\""));
        assert_eq!((e.line, e.col), (Some(7), Some(13)), "{e}");
        assert!(e.msg.starts_with("sso_login: expected \"auto\""), "{e}");
        assert!(e.msg.ends_with("found \"pkce\""), "{e}");
    }

    #[test]
    fn session_duration_within_identity_center_limits() {
        let e = err(&sso_with("session_duration = \"91d\""));
        assert_eq!(e.line, Some(7), "{e}");
        assert!(
            e.msg.starts_with(
                "session_duration must be between 15m and 90days (Identity Center limits)"
            ),
            "{e}"
        );
        assert!(
            err(&sso_with("session_duration = \"10m\""))
                .msg
                .contains("between 15m")
        );
    }

    #[test]
    fn access_role_needs_account_and_name() {
        let e = err(&SSO.replace("sso_role_name = \"AccessAdmin\"\n", ""));
        assert_eq!((e.line, e.col), (Some(7), Some(1)), "{e}");
        assert_eq!(
            e.msg,
            "sso_account_id needs sso_role_name too: together they name an account's permission \
             set; set both, or neither"
        );
        let e = err(&SSO.replace("sso_account_id = \"111111111111\"\n", ""));
        assert_eq!((e.line, e.col), (Some(7), Some(1)), "{e}");
        assert!(
            e.msg.starts_with("sso_role_name needs sso_account_id too"),
            "{e}"
        );
        let e = err(&SSO.replace("\"111111111111\"", "\"11111111111\""));
        assert_eq!((e.line, e.col), (Some(7), Some(18)), "{e}");
        assert!(
            e.msg.starts_with("sso_account_id: expected a 12-digit"),
            "{e}"
        );
        let e = err(&SSO.replace("\"AccessAdmin\"", "\"Access Admin\""));
        assert_eq!(e.line, Some(8), "{e}");
        assert!(
            e.msg
                .starts_with("sso_role_name: expected a permission set name"),
            "{e}"
        );
    }

    #[test]
    fn replicas_are_other_regions_each_with_a_start_url() {
        let replicas = |list: &str| sso_with(&format!("sso_replicas = [{list}]"));
        let c = ok(&replicas(
            "{ region = \"eu-west-1\", start_url = \"https://ssoins-1.portal.eu-west-1.app.aws\" },\n\
             { region = \"ap-south-1\", start_url = \"https://ssoins-1.portal.ap-south-1.app.aws\" }",
        ));
        let got = c.access.sso().unwrap().replicas.clone();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].region, "eu-west-1");
        assert_eq!(
            got[1].start_url,
            "https://ssoins-1.portal.ap-south-1.app.aws"
        );

        let e = err(&replicas(
            "{ region = \"us-east-1\", start_url = \"https://a.example/start\" }",
        ));
        assert_eq!((e.line, e.col), (Some(7), Some(28)), "{e}");
        assert!(
            e.msg
                .contains("\"us-east-1\" is the home Region (sso_region)"),
            "{e}"
        );
        let e = err(&replicas(
            "{ region = \"eu-west-1\", start_url = \"https://a.example/start\" },\n\
             { region = \"eu-west-1\", start_url = \"https://b.example/start\" }",
        ));
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.msg.contains("\"eu-west-1\" is listed twice"), "{e}");
        let e = err(&replicas(
            "{ region = \"eu-west\", start_url = \"https://a.example/start\" }",
        ));
        assert!(e.msg.starts_with("sso_replicas: expected a region"), "{e}");
        let e = err(&replicas(
            "{ region = \"eu-west-1\", start_url = \"http://a.example/start\" }",
        ));
        assert!(
            e.msg
                .starts_with("sso_replicas: start_url: \"http://a.example/start\" is plain")
        );
        let e = err(&replicas("{ region = \"eu-west-1\" }"));
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.msg.contains("start_url"), "{e}");
        let e = err(&replicas(
            "{ region = \"eu-west-1\", start_url = \"https://a.example\", x = 1 }",
        ));
        assert!(e.msg.contains("unknown field `x`"), "{e}");
    }
}
