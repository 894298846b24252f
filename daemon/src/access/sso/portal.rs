//! The Identity Center portal: role credentials for an account and permission set
//! (GetRoleCredentials), and what the user may reach (ListAccounts, ListAccountRoles).

use std::time::{Duration, UNIX_EPOCH};

use credd_proto::{Secret, SsoAccount};

use super::oidc::classify;
use super::{IdentityCenter, SsoError, SsoToken};
use crate::config::SsoRole;
use crate::creds::{AwsCredentials, RoleCredentials};
use crate::sdk::Limits;

/// Each portal call: one attempt 5 s, all of it 12 s (like STS).
pub(super) const LIMITS: Limits = Limits {
    connect: None,
    attempt: Duration::from_secs(5),
    operation: Duration::from_secs(12),
    max_attempts: 2,
};
/// The largest page the portal hands out.
const PAGE: i32 = 100;

impl IdentityCenter {
    fn portal(&self, region: &str) -> aws_sdk_sso::Client {
        self.portal_clients.get(region)
    }

    /// One GetRoleCredentials: the permission set decides how long they last (1 h to 12 h).
    pub async fn role_credentials(
        &self,
        token: &SsoToken,
        role: &SsoRole,
    ) -> Result<RoleCredentials, SsoError> {
        let region = &token.region;
        // Queued before the SDK sends it, so its timeouts count from then.
        let _pass = self.portal_gates.get(region).enter().await;
        // On the heap while in flight (see `Sts::with_failover`).
        let out = Box::pin(
            self.portal(region)
                .get_role_credentials()
                .access_token(token.access_token.expose())
                .account_id(&role.account_id)
                .role_name(&role.role_name)
                .send(),
        )
        .await
        .map_err(|e| match classify(region, e) {
            SsoError::Refused { code, message, .. }
                if code == "ForbiddenException" || code == "ResourceNotFoundException" =>
            {
                SsoError::Forbidden {
                    account_id: role.account_id.clone(),
                    role_name: role.role_name.clone(),
                    message,
                }
            }
            other => other,
        })?;
        let empty = || SsoError::Refused {
            region: region.clone(),
            code: "EmptyResponse".into(),
            message: "GetRoleCredentials returned no credentials".into(),
        };
        let c = out.role_credentials.ok_or_else(empty)?;
        let (Some(access_key_id), Some(secret), Some(session_token)) =
            (c.access_key_id, c.secret_access_key, c.session_token)
        else {
            return Err(empty());
        };
        let expiration =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(c.expiration).unwrap_or(0));
        Ok(RoleCredentials {
            creds: AwsCredentials {
                access_key_id,
                secret_access_key: Secret::from(secret),
                session_token: Some(Secret::from(session_token)),
                expiration: Some(expiration),
            },
            issued: self.now(),
            expiration,
            assumed_arn: format!(
                "Identity Center role {} in {}",
                role.role_name, role.account_id
            ),
            account_id: role.account_id.clone(),
            region: region.clone(),
        })
    }

    /// Every account and role the user may reach, every page of both lists.
    pub async fn accounts(&self, token: &SsoToken) -> Result<Vec<SsoAccount>, SsoError> {
        let region = &token.region;
        let client = self.portal(region);
        let mut pages = client
            .list_accounts()
            .access_token(token.access_token.expose())
            .max_results(PAGE)
            .into_paginator()
            .send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(region, e))?;
            for a in page.account_list.unwrap_or_default() {
                let Some(account_id) = a.account_id else {
                    continue;
                };
                accounts.push(SsoAccount {
                    account_name: a.account_name.unwrap_or_else(|| account_id.clone()),
                    account_id,
                    email: a.email_address,
                    roles: Vec::new(),
                });
            }
        }
        for account in &mut accounts {
            let mut pages = client
                .list_account_roles()
                .access_token(token.access_token.expose())
                .account_id(&account.account_id)
                .max_results(PAGE)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify(region, e))?;
                account.roles.extend(
                    page.role_list
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|r| r.role_name),
                );
            }
            account.roles.sort();
        }
        accounts.sort_by(|a, b| {
            a.account_name
                .cmp(&b.account_name)
                .then(a.account_id.cmp(&b.account_id))
        });
        Ok(accounts)
    }
}

impl IdentityCenter {
    /// `credd logout`: the shared login ends for the AWS CLI too (as `aws sso logout` does):
    /// the cache files go, and Identity Center is asked to end the tokens (best effort, in the
    /// background; the files are gone either way).
    pub fn logout(self: &std::sync::Arc<Self>, tokens: &[SsoToken]) {
        for region in self.regions() {
            if let Some(file) = self.cache_file_of(&region) {
                match std::fs::remove_file(&file) {
                    Ok(()) => {
                        tracing::info!(file = %file.display(), "removed the AWS CLI token cache file")
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %file.display(), error = %e, "could not remove the AWS CLI token cache file")
                    }
                }
            }
        }
        for token in tokens.iter().cloned() {
            let ic = self.clone();
            tokio::spawn(async move {
                let result = ic
                    .portal(&token.region)
                    .logout()
                    .access_token(token.access_token.expose())
                    .send()
                    .await;
                if let Err(e) = result {
                    tracing::info!(region = %token.region, error = %classify(&token.region, e), "Identity Center did not confirm the logout");
                }
            });
        }
    }
}
