//! Status's view of a `web-identity` or `saml` source: where the token or assertion comes from,
//! the access role it is traded for, and who the identity provider says the user is. (How web
//! identity's session renews itself is [`super::renew`]'s; SAML sessions are renewed only by
//! `credd login`, the command may need the user, so they are warned about ahead of their end like
//! an MFA session.)

use credd_proto::FederationInfo;

use super::Engine;
use crate::access::AccessSession;
use crate::config::{AccessConfig, SourceConfig, WebIdentityToken};

impl Engine {
    /// Status's view of a `web-identity` or `saml` source.
    pub(super) fn federation_info(
        &self,
        access: &AccessConfig,
        session: Option<&AccessSession>,
    ) -> Option<FederationInfo> {
        let (provider, role_arn) = match &access.source {
            SourceConfig::WebIdentity(w) => {
                let provider = match &w.token {
                    WebIdentityToken::Oidc(o) => o.issuer.clone(),
                    WebIdentityToken::File(p) => format!("token_file {}", p.display()),
                    WebIdentityToken::Command(c) => format!("token_command {}", c[0]),
                };
                (provider, Some(w.role_arn.clone()))
            }
            SourceConfig::Saml(s) => (
                format!("assertion_command {}", s.assertion_command[0]),
                s.role_arn.clone().or_else(|| {
                    session
                        .and_then(|s| s.identity_arn.as_deref())
                        .and_then(role_of_assumed)
                }),
            ),
            _ => return None,
        };
        let federation = session.and_then(|s| s.federation.as_ref());
        Some(FederationInfo {
            provider,
            role_arn,
            who: federation.map(|f| f.who.clone()),
        })
    }
}

/// `arn:aws:sts::111111111111:assumed-role/NAME/session` → `arn:aws:iam::111111111111:role/NAME`.
fn role_of_assumed(arn: &str) -> Option<String> {
    let (prefix, rest) = arn.split_once(":assumed-role/")?;
    let account = prefix.rsplit(':').next()?;
    let partition = prefix.split(':').nth(1)?;
    let name = rest.split('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{name}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_role_of_an_assumed_role_arn() {
        assert_eq!(
            super::role_of_assumed("arn:aws:sts::111111111111:assumed-role/AccessFromSAML/alice"),
            Some("arn:aws:iam::111111111111:role/AccessFromSAML".to_owned())
        );
        assert_eq!(
            super::role_of_assumed("arn:aws:iam::111111111111:user/alice"),
            None
        );
    }
}
