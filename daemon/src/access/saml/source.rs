//! SAML as a [`Source`]: `credd login` runs `assertion_command` once however many ask (it may
//! need the user, so nothing else runs it), and only `credd login` renews the session.

use std::sync::Arc;

use credd_proto::{Authorization, FederationInfo, Finding, LoginMethod};

use super::{ASSERTION_COMMAND_LIMIT, Saml};
use crate::access::source::{Completed, Context, Login, LoginRequest, Source, SourceStatus};
use crate::access::{AccessError, AccessSession, BoxFuture};

impl Source for Saml {
    fn authorizes(&self) -> bool {
        true
    }

    fn login(
        self: Arc<Self>,
        cx: Context,
        _request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>> {
        Box::pin(async move {
            let prompt = Authorization {
                method: LoginMethod::Command,
                url: self.config.assertion_command.join(" "),
                user_code: None,
                provider: "assertion_command".to_owned(),
                region: None,
                expires_at: crate::clock::unix(cx.now + ASSERTION_COMMAND_LIMIT),
                joined: false,
            };
            tracing::info!("running assertion_command for a SAML assertion");
            Ok(Login::Pending {
                prompt,
                completion: Box::pin(async move {
                    let made = self.assertion_login(&cx.sts, &cx.regions).await?;
                    Ok(Completed::Session(made.into()))
                }),
            })
        })
    }

    fn status(&self, session: Option<&AccessSession>) -> SourceStatus {
        SourceStatus {
            federation: Some(FederationInfo {
                provider: self.provider(),
                // The one the assertion offered, when the config names none.
                role_arn: self.config.role_arn.clone().or_else(|| {
                    session
                        .and_then(|s| s.identity_arn.as_deref())
                        .and_then(role_of_assumed)
                }),
                who: session
                    .and_then(|s| s.federation.as_ref())
                    .map(|f| f.who.clone()),
            }),
            ..SourceStatus::default()
        }
    }

    fn checks(&self) -> Vec<Finding> {
        let found = match &self.config.role_arn {
            Some(role) => format!("assertions from {}, traded for {role}", self.provider()),
            None => format!(
                "assertions from {}, traded for the one role they offer",
                self.provider()
            ),
        };
        vec![Finding::ok("identity-provider", found)]
    }
}

impl Saml {
    fn provider(&self) -> String {
        format!("assertion_command {}", self.config.assertion_command[0])
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
