//! `credd import --sso`: for every account and role Identity Center offers the logged-in user,
//! the profile to add or why not, against the config loaded when the list arrives.

use credd_proto::{ErrorCode, ErrorReply, Response};

use crate::config::{AccessSourceKind, sso_import};
use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    let source = daemon.config().access.kind();
    if source != AccessSourceKind::Sso {
        return Response::Error(ErrorReply::new(
            ErrorCode::ConfigInvalid,
            not_identity_center(source),
        ));
    }
    match daemon.engine.sso_accounts().await {
        Ok(accounts) => Response::SsoImport {
            accounts: accounts.len(),
            entries: sso_import(&daemon.config(), &accounts),
        },
        Err(e) => super::error(&e),
    }
}

/// `credd import --sso` under another access source: say which, and what to run instead.
fn not_identity_center(source: AccessSourceKind) -> String {
    format!(
        "the access source is {} (source = \"{}\" in [access]); `credd import --sso` lists the \
         account roles of IAM Identity Center and needs source = \"sso\": to import the \
         profiles of ~/.aws/config, run `credd import` (without --sso)",
        match source {
            AccessSourceKind::IamUser => "an IAM user's key",
            AccessSourceKind::Sso => "IAM Identity Center",
            AccessSourceKind::WebIdentity => "an OpenID identity provider",
            AccessSourceKind::Saml => "a SAML identity provider",
        },
        source.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_source_is_named_with_what_to_run_instead() {
        let said = not_identity_center(AccessSourceKind::IamUser);
        assert!(
            said.starts_with("the access source is an IAM user's key (source = \"iam-user\""),
            "{said}"
        );
        assert!(said.contains("needs source = \"sso\""), "{said}");
        assert!(
            said.contains("run `credd import` (without --sso)"),
            "{said}"
        );
    }
}
