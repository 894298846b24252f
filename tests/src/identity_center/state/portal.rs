//! The portal's rules: a live access token, the user's assignments, and pagination.

use std::time::Instant;

use super::*;
use crate::identity_center::{Account, role_arn};

impl State {
    /// The session of a valid access token.
    fn bearer(&self, token: Option<&str>, now: Instant) -> Result<usize, ApiError> {
        let unauthorized = || {
            ApiError::new(
                ErrorKind::Unauthorized,
                "Session token not found or invalid",
            )
        };
        let grant = token
            .and_then(|t| self.access_tokens.get(t))
            .ok_or_else(unauthorized)?;
        if now >= grant.expires || !self.sessions[grant.session].live(now) {
            return Err(unauthorized());
        }
        Ok(grant.session)
    }

    /// Checks a GetRoleCredentials request; Ok(the ARN of the role to assume).
    pub fn role_to_assume(
        &self,
        token: Option<&str>,
        account_id: Option<&str>,
        role_name: Option<&str>,
        now: Instant,
    ) -> Result<String, ApiError> {
        self.bearer(token, now)?;
        let account_id = portal_required(account_id, "account_id")?;
        let role_name = portal_required(role_name, "role_name")?;
        let assigned = self
            .options
            .accounts
            .iter()
            .any(|a| a.id == account_id && a.roles.iter().any(|r| r == role_name));
        if !assigned {
            return Err(ApiError::new(ErrorKind::Forbidden, "No access"));
        }
        Ok(role_arn(account_id, role_name))
    }

    pub fn list_accounts(
        &self,
        token: Option<&str>,
        next_token: Option<&str>,
        max_results: Option<&str>,
        now: Instant,
    ) -> Result<Page<Account>, ApiError> {
        self.bearer(token, now)?;
        let assigned: Vec<Account> = self
            .options
            .accounts
            .iter()
            .filter(|a| !a.roles.is_empty())
            .cloned()
            .collect();
        self.page(&assigned, "accounts", next_token, max_results)
    }

    pub fn list_account_roles(
        &self,
        token: Option<&str>,
        account_id: Option<&str>,
        next_token: Option<&str>,
        max_results: Option<&str>,
        now: Instant,
    ) -> Result<Page<String>, ApiError> {
        self.bearer(token, now)?;
        let account_id = portal_required(account_id, "account_id")?;
        let roles = self
            .options
            .accounts
            .iter()
            .find(|a| a.id == account_id)
            .map(|a| a.roles.clone())
            .unwrap_or_default();
        self.page(
            &roles,
            &format!("roles/{account_id}"),
            next_token,
            max_results,
        )
    }

    /// Logout: the token's whole session ends (every token of it).
    pub fn logout(&mut self, token: Option<&str>, now: Instant) -> Result<(), ApiError> {
        let session = self.bearer(token, now)?;
        self.sessions[session].revoked = true;
        Ok(())
    }

    /// One page of `items` for the listing named `scope`: at most the page size (and at most
    /// `max_results`), with an opaque token for the next page, valid for this listing only.
    fn page<T: Clone>(
        &self,
        items: &[T],
        scope: &str,
        next_token: Option<&str>,
        max_results: Option<&str>,
    ) -> Result<Page<T>, ApiError> {
        let invalid = |what: &str| ApiError::new(ErrorKind::PortalInvalidRequest, what);
        let max = match max_results {
            None => usize::MAX,
            Some(text) => match text.parse::<usize>() {
                Ok(n @ 1..=100) => n,
                _ => return Err(invalid("max_result must be between 1 and 100")),
            },
        };
        let start = match next_token {
            None => 0,
            Some(token) => decode_page_token(token, scope)
                .filter(|offset| *offset <= items.len())
                .ok_or_else(|| invalid("Invalid next token"))?,
        };
        let size = self.options.page_size.max(1).min(max);
        let end = (start + size).min(items.len());
        let next = (end < items.len()).then(|| encode_page_token(scope, end));
        Ok((items[start..end].to_vec(), next))
    }
}

fn portal_required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorKind::PortalInvalidRequest,
            format!("{name} is required"),
        )
    })
}
