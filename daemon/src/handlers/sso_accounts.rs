//! `credd import --sso`: every account and role Identity Center offers the logged-in user.

use credd_proto::Response;

use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    match daemon.engine.sso_accounts().await {
        Ok(accounts) => Response::SsoAccounts { accounts },
        Err(e) => super::error(&e),
    }
}
