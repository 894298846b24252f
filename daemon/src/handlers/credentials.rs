//! A profile's credentials over the control socket, for `credd credential-process`.

use credd_proto::{Credentials, Response, Secret};

use crate::clock::unix;
use crate::daemon::Daemon;

pub async fn handle(daemon: &Daemon, profile: Option<String>) -> Response {
    let name = match super::profile_or_current(daemon, profile) {
        Ok(name) => name,
        Err(e) => return super::error(&e),
    };
    match daemon.engine.credentials(&name).await {
        Ok(c) => Response::Credentials(Credentials {
            profile: name,
            access_key_id: c.creds.access_key_id.clone(),
            secret_access_key: c.creds.secret_access_key.clone(),
            session_token: Secret::new(c.session_token()),
            expiration: unix(c.expiration),
            account_id: Some(c.account_id.clone()),
        }),
        Err(e) => super::error(&e),
    }
}
