//! `credd login`: (re)establishes the access session. Without a code when one is needed, the
//! answer is `MfaRequired` and the client asks the user. A browser-based source answers
//! `AuthorizationPending` at once; the client shows it and waits with `LoginWait`.

use credd_proto::{BrowserLogin, Response, Secret};

use crate::access::AccessError;
use crate::daemon::Daemon;
use crate::engine::{EngineError, LoginOutcome, LoginStart};

pub async fn handle(daemon: &Daemon, mfa_code: Option<Secret>, browser: BrowserLogin) -> Response {
    match daemon.engine.login(mfa_code, browser).await {
        Ok(LoginStart::Done(outcome)) => logged_in(daemon, outcome),
        Ok(LoginStart::Pending(authorization)) => Response::AuthorizationPending(authorization),
        Err(EngineError::Access(AccessError::MfaRequired { serial })) => {
            Response::MfaRequired { serial }
        }
        Err(e) => super::error(&e),
    }
}

pub async fn wait(daemon: &Daemon) -> Response {
    match daemon.engine.login_wait().await {
        Ok(outcome) => logged_in(daemon, outcome),
        Err(e) => super::error(&e),
    }
}

pub fn cancel(daemon: &Daemon) -> Response {
    Response::LoginCancelled {
        cancelled: daemon.engine.login_cancel(),
    }
}

fn logged_in(daemon: &Daemon, outcome: LoginOutcome) -> Response {
    Response::LoggedIn {
        access: Box::new(daemon.engine.access_info()),
        profiles_ready: outcome.ready,
        profiles: outcome.total,
    }
}
