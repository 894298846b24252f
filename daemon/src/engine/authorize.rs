//! `credd login` for every source: a direct login (a key, an MFA code), or a browser/device
//! authorization that the user approves while `credd login` waits; exactly one at a time.

use credd_proto::{Authorization, BrowserLogin, Secret, SsoAccount};

use super::{Engine, EngineError, LoginOutcome};

pub enum LoginStart {
    Done(LoginOutcome),
    Pending(Authorization),
}

impl Engine {
    pub async fn login(
        &self,
        mfa_code: Option<Secret>,
        _browser: BrowserLogin,
    ) -> Result<LoginStart, EngineError> {
        self.login_direct(mfa_code).await.map(LoginStart::Done)
    }

    pub async fn login_wait(&self) -> Result<LoginOutcome, EngineError> {
        Err(self.login_required())
    }

    pub fn login_cancel(&self) -> bool {
        false
    }

    pub async fn sso_accounts(&self) -> Result<Vec<SsoAccount>, EngineError> {
        Err(self.login_required())
    }
}
