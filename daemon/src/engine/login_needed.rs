//! Whether the access session waits for the user: then `credd exec`, `credd env` and
//! `credd credential-process` log in on the terminal before they go on (or say at once that
//! `credd login` is needed), instead of handing out a route that answers 503 `LoginRequired`.

use super::Engine;
use crate::lock;

impl Engine {
    /// True when there is no live access session and only the user can make one (an MFA code, a
    /// browser sign-in, a SAML command the user answers). False while the daemon logs in by
    /// itself ([`crate::access::AccessSource::is_unattended`]: a key without MFA, a token another
    /// tool keeps), and once the AWS CLI left an Identity Center login to take up.
    pub fn needs_login(&self) -> bool {
        if self.session().is_some() {
            return false;
        }
        if lock::read(&self.inner.source).is_unattended() {
            return false;
        }
        // A login made with `aws sso login` meanwhile counts (looked for at most so often).
        !self.look_for_outside_login() && self.session().is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use credd_proto::Secret;

    use super::super::tests::{STAGING_ONLY, config_text, credentials_file, start_engine, t0};
    use crate::clock::Clock;
    use crate::testing::sts::FakeSts;

    #[tokio::test(start_paused = true)]
    async fn only_a_session_the_user_must_make_waits_for_a_login() {
        for (mfa, user_needed) in [
            (
                "mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n",
                true,
            ),
            ("", false),
        ] {
            let dir = tempfile::tempdir().expect("a temp dir");
            let credentials = credentials_file(dir.path());
            let clock = Clock::simulated(t0());
            let (_sts, client) = FakeSts::new(&clock);
            let config = config_text(&format!("session_duration = \"1h\"\n{mfa}"), STAGING_ONLY);
            let (engine, _config) =
                start_engine(dir.path(), &config, &clock, client, Some(credentials));
            // A key without MFA: the daemon logs in by itself, nobody is asked.
            assert_eq!(engine.needs_login(), user_needed, "{mfa:?}");
            if !user_needed {
                continue;
            }
            engine
                .login_direct(Some(Secret::new("123456")))
                .await
                .expect("login");
            assert!(!engine.needs_login(), "logged in");
            clock.sleep(Duration::from_secs(3601)).await;
            assert!(engine.needs_login(), "the session is over");
        }
    }
}
