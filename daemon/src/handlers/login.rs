//! `credd login`: (re)establishes the access session. Without a code when one is needed, the
//! answer is `MfaRequired` and the client asks the user.

use credd_proto::{Response, Secret};

use crate::Daemon;
use crate::access::AccessError;
use crate::engine::EngineError;

pub async fn handle(daemon: &Daemon, mfa_code: Option<Secret>) -> Response {
    match daemon.engine.login(mfa_code).await {
        Ok(outcome) => Response::LoggedIn {
            access: daemon.engine.access_info(),
            profiles_ready: outcome.ready,
            profiles: outcome.total,
        },
        Err(EngineError::Access(AccessError::MfaRequired { serial })) => {
            Response::MfaRequired { serial }
        }
        Err(e) => super::error(&e),
    }
}
