//! `credd import --sso`: for every account and role Identity Center offers the logged-in user,
//! the profile to add or why not, against the config loaded when the list arrives.

use credd_proto::Response;

use crate::config::sso_import;
use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon) -> Response {
    match daemon.engine.sso_accounts().await {
        Ok(accounts) => Response::SsoImport {
            accounts: accounts.len(),
            entries: sso_import(&daemon.config(), &accounts),
        },
        Err(e) => super::error(&e),
    }
}
