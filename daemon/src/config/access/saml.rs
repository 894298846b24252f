//! `source = "saml"`: the company's SAML identity provider. A command the user configures (the
//! IdP's own CLI, or a script) prints a base64 SAMLResponse; credd trades it for the access role's
//! credentials (AssumeRoleWithSAML).

use std::time::Duration;

use super::{
    AccessConfig, DEFAULT_FEDERATED_DURATION, DEFAULT_REGION, FEDERATED_MAX, FEDERATED_MIN,
};
use super::{RawAccess, SourceConfig};
use crate::config::{ConfigError, Validator};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlConfig {
    /// Prints a base64 SAMLResponse on stdout.
    pub assertion_command: Vec<String>,
    /// Which of the assertion's roles to assume; needed when it offers several.
    pub role_arn: Option<String>,
    /// `session_duration` when set; else the assertion's `SessionDuration`, else 1 hour.
    pub duration: Option<Duration>,
}

impl Validator<'_> {
    /// The `saml` keys of `[access]` (the other sources' keys are already refused); `regions` is
    /// the caller's.
    pub(super) fn saml(&self, raw: RawAccess) -> Result<AccessConfig, ConfigError> {
        let Some(command) = raw.assertion_command else {
            return Err(self.at(
                &raw.source,
                "source = \"saml\" needs assertion_command in [access]: a command that prints a \
                 base64 SAMLResponse (your identity provider's CLI, or a script), e.g.\n\
                 assertion_command = [\"acme-idp\", \"saml\"]",
            ));
        };
        let assertion_command = self.command(command, "assertion_command")?;
        let role_arn = match raw.role_arn {
            Some(arn) => {
                self.access_role_arn(&arn)?;
                Some(arn.into_inner())
            }
            None => None,
        };
        let duration = match raw.session_duration {
            Some(d) => Some(self.duration_in(
                &d,
                "session_duration",
                (FEDERATED_MIN, FEDERATED_MAX),
                "AssumeRoleWithSAML",
            )?),
            None => None,
        };
        Ok(AccessConfig {
            source: SourceConfig::Saml(SamlConfig {
                assertion_command,
                role_arn,
                duration,
            }),
            session_duration: duration.unwrap_or(DEFAULT_FEDERATED_DURATION),
            regions: vec![DEFAULT_REGION.to_owned()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{err, ok};

    const SAML: &str = r#"
[access]
source = "saml"
assertion_command = ["acme-idp", "saml"]

[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
"#;

    #[test]
    fn the_issue_example_loads() {
        let c = ok(SAML);
        let SourceConfig::Saml(s) = &c.access.source else {
            panic!("saml expected")
        };
        assert_eq!(s.assertion_command, ["acme-idp", "saml"]);
        assert_eq!((s.role_arn.as_deref(), s.duration), (None, None));
        assert_eq!(c.access.session_duration, DEFAULT_FEDERATED_DURATION);
        let c = ok(&SAML.replace(
            "source = \"saml\"",
            "source = \"saml\"\nrole_arn = \"arn:aws:iam::111111111111:role/AccessFromSAML\"\n\
             session_duration = \"8h\"",
        ));
        let SourceConfig::Saml(s) = &c.access.source else {
            panic!("saml expected")
        };
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/AccessFromSAML")
        );
        assert_eq!(s.duration, Some(Duration::from_secs(8 * 3600)));
    }

    #[test]
    fn bad_saml_settings_say_what_to_do() {
        let e = err(&SAML.replace("assertion_command = [\"acme-idp\", \"saml\"]\n", ""));
        assert!(
            e.msg
                .starts_with("source = \"saml\" needs assertion_command"),
            "{e}"
        );
        let e = err(&SAML.replace("[\"acme-idp\", \"saml\"]", "[\" \"]"));
        assert_eq!(e.msg, "assertion_command: the program name is empty");
        let e = err(&SAML.replace(
            "source = \"saml\"",
            "source = \"saml\"\nrole_arn = \"AccessFromSAML\"",
        ));
        assert!(e.msg.starts_with("role_arn: expected arn:aws:iam::"), "{e}");
        let e = err(&SAML.replace(
            "source = \"saml\"",
            "source = \"saml\"\noidc_issuer = \"https://x\"",
        ));
        assert!(
            e.msg
                .starts_with("oidc_issuer belongs to source = \"web-identity\", not \"saml\""),
            "{e}"
        );
        let e = err(&SAML.replace(
            "source = \"saml\"",
            "source = \"saml\"\nsso_session = \"x\"",
        ));
        assert!(e.msg.contains("set source = \"sso\""), "{e}");
    }
}
