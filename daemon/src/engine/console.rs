//! What the access session signs in to the console with, for `credd console --access`: the IAM
//! user's long-lived key (GetFederationToken must be signed by it, not by the MFA session), or
//! a federated access role's own session keys.

use std::time::SystemTime;

use super::{Engine, EngineError};
use crate::creds::AwsCredentials;

/// The access session's way into the console.
pub enum AccessConsole {
    /// An IAM user: its long-lived key, read afresh, signs GetFederationToken.
    IamUser {
        key: AwsCredentials,
        /// `arn:aws:iam::111111111111:user/alice`, when STS told.
        user_arn: Option<String>,
    },
    /// A role session (`web-identity`, `saml`): its own keys sign in.
    RoleSession {
        creds: AwsCredentials,
        arn: Option<String>,
        expires_at: Option<SystemTime>,
    },
    /// Identity Center's session is bearer tokens: no keys of its own to sign in with.
    NoKeys,
}

impl Engine {
    /// The live access session's way into the console; `LoginRequired` without one (an IAM
    /// user's console sign-in needs the login too, MFA and all, though only the key signs it).
    pub async fn access_console(&self) -> Result<AccessConsole, EngineError> {
        let Some(session) = self.session() else {
            return Err(self.login_required());
        };
        let source = self.source();
        if let Some(user) = source.iam_user() {
            let (key, _) = user.long_lived_key().await?;
            return Ok(AccessConsole::IamUser {
                key,
                user_arn: session.identity_arn.clone(),
            });
        }
        Ok(match session.signing() {
            Some(creds) => AccessConsole::RoleSession {
                creds: creds.clone(),
                arn: session.identity_arn.clone(),
                expires_at: session.expires_at,
            },
            None => AccessConsole::NoKeys,
        })
    }

    /// Whether the live access session came from an MFA login: role sessions assumed from it
    /// carry the MFA, and so do their console sessions.
    pub fn access_mfa(&self) -> bool {
        self.session().is_some_and(|s| s.mfa)
    }

    /// The STS Regions to try, in order.
    pub fn sts_regions(&self) -> Vec<String> {
        self.config().access.regions.clone()
    }
}
