//! A profile's credentials over the control socket, for `credd credential-process`, taken
//! through the vending point.

use credd_proto::{Credentials, Response, Secret};

use crate::clock::unix;
use crate::daemon::Daemon;
use crate::vend::{Caller, Route};

pub async fn handle(daemon: &Daemon, profile: Option<String>, caller: &Caller) -> Response {
    match daemon
        .vending
        .vend(Route::CredentialProcess, profile, caller)
        .await
    {
        Ok(v) => {
            if let Some(caught_up) = daemon.audit_caught_up() {
                caught_up.await;
            }
            let c = &v.credentials;
            Response::Credentials(Credentials {
                access_key_id: c.creds.access_key_id.clone(),
                secret_access_key: c.creds.secret_access_key.clone(),
                session_token: Secret::new(c.session_token()),
                expiration: unix(v.expiration),
                account_id: Some(c.account_id.clone()),
                profile: v.profile,
            })
        }
        Err(e) => super::error(&e),
    }
}
