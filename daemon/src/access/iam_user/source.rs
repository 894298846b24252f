//! The IAM user as a [`Source`]: its key, with an MFA code when `mfa_serial` asks for one;
//! unattended without MFA or with `mfa_command`, which also renews an MFA session.

use std::sync::Arc;

use super::IamUser;
use crate::access::source::{Context, Established, Fact, Login, LoginRequest, Source};
use crate::access::{AccessError, AccessSession, BoxFuture};

impl Source for IamUser {
    fn is_unattended(&self) -> bool {
        self.mfa_serial.is_none() || self.mfa_command.is_some()
    }

    fn mfa_serial(&self) -> Option<&str> {
        self.mfa_serial.as_deref()
    }

    fn login(
        self: Arc<Self>,
        cx: Context,
        request: LoginRequest,
    ) -> BoxFuture<'static, Result<Login, AccessError>> {
        Box::pin(async move {
            match self
                .start_session(&cx.sts, &cx.regions, request.mfa_code)
                .await
            {
                Ok(made) => Ok(Login::Done(made.into())),
                Err(AccessError::MfaRequired { serial }) => Ok(Login::NeedsMfa { serial }),
                Err(e) => Err(e),
            }
        })
    }

    fn renewal(&self, session: &AccessSession) -> Option<String> {
        self.mfa_command
            .as_ref()
            .filter(|_| session.mfa)
            .map(|c| format!("with mfa_command {}", c.program()))
    }

    fn renew(
        self: Arc<Self>,
        cx: Context,
        session: Arc<AccessSession>,
    ) -> Option<BoxFuture<'static, Result<Established, AccessError>>> {
        Source::renewal(&*self, &session)?;
        Some(Box::pin(async move {
            // Given no code, the login runs mfa_command for one.
            (self.start_session(&cx.sts, &cx.regions, None).await).map(Established::from)
        }))
    }

    fn posture(&self) -> Vec<Fact> {
        vec![
            Fact::new("key", self.stored_in()),
            Fact::new(
                "mfa",
                match (&self.mfa_serial, &self.mfa_command) {
                    (None, _) => "none: the long-lived key signs every AssumeRole".to_owned(),
                    (Some(serial), None) => format!("{serial}, a code at each login"),
                    (Some(serial), Some(c)) => {
                        format!("{serial}, codes from mfa_command {}", c.program())
                    }
                },
            ),
        ]
    }

    fn iam_user(&self) -> Option<&IamUser> {
        Some(self)
    }
}
