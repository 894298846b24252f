//! `mfa_command`: a command that prints a one-time code of the IAM user's MFA device (e.g.
//! `ykman oath accounts code -s aws`), so the daemon logs in, and renews the MFA session before it
//! ends, with no prompt.
//!
//! The code is the last field of the first output line whose last field is exactly six digits,
//! fields being separated by spaces or colons: `123456` (ykman's `-s`, `oathtool`), `aws:123456`,
//! or ykman's `Amazon Web Services:alice  123456` without `-s` (one matching account). Nothing
//! of the output ever appears in an error or the log: it is the code.

use std::time::Duration;

use credd_proto::Secret;

use crate::access::AccessError;
use crate::access::command::Runner;

/// How long the command may take: long enough for a YubiKey that wants a touch.
pub const MFA_COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// A code is accepted within its 30-second TOTP step, and once only: a refused code is not worth
/// retrying before the next step brings a new one.
pub const TOTP_STEP: Duration = Duration::from_secs(30);

pub struct MfaCommand {
    argv: Vec<String>,
    runner: Runner,
}

impl MfaCommand {
    pub fn new(argv: Vec<String>, runner: Runner) -> MfaCommand {
        MfaCommand { argv, runner }
    }

    /// The program, as configured (for status and errors).
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// Runs the command for a code.
    pub async fn code(&self) -> Result<Secret, AccessError> {
        let output = self
            .runner
            .run(&self.argv, "mfa_command", MFA_COMMAND_LIMIT)
            .await?;
        first_code(output.expose())
            .map(Secret::new)
            .ok_or_else(|| AccessError::MfaCommandNoCode {
                program: self.program().to_owned(),
            })
    }
}

fn first_code(output: &str) -> Option<&str> {
    output.lines().find_map(|line| {
        let last = line
            .split(|c: char| c.is_whitespace() || c == ':')
            .rfind(|field| !field.is_empty())?;
        (last.len() == 6 && last.bytes().all(|b| b.is_ascii_digit())).then_some(last)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::access::command::CommandError;

    #[test]
    fn the_code_is_the_first_line_ending_in_six_digits() {
        for (output, code) in [
            ("123456", Some("123456")),
            ("123456\n", Some("123456")),
            ("aws:123456", Some("123456")),
            (
                "Amazon Web Services:alice@acme.example  012345",
                Some("012345"),
            ),
            ("Touch your YubiKey...\n654321", Some("654321")),
            ("aws:111111\ngithub:222222", Some("111111")),
            ("12345", None),
            ("1234567", None),
            ("alice123456", None),
            ("123456 aws", None),
            ("", None),
            ("１２３４５６", None),
        ] {
            assert_eq!(first_code(output), code, "{output:?}");
        }
    }

    fn scripted(output: &'static str) -> MfaCommand {
        MfaCommand::new(
            vec!["ykman".into(), "oath".into()],
            Runner::Scripted(Arc::new(move |_: &[String]| Ok(Secret::new(output)))),
        )
    }

    #[tokio::test]
    async fn output_without_a_code_is_refused_without_showing_it() {
        let e = scripted("no code here: 12345 SECRET")
            .code()
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "mfa_command `ykman` printed no 6-digit code");
        assert!(!format!("{e:?}").contains("SECRET"));
        assert_eq!(
            scripted("aws:123456").code().await.unwrap().expose(),
            "123456"
        );
    }

    #[tokio::test]
    async fn a_real_command_runs_without_a_shell_and_a_failure_says_why() {
        let sh = |script: &str| {
            MfaCommand::new(
                vec!["/bin/sh".into(), "-c".into(), script.into()],
                Runner::System,
            )
        };
        let code = sh("echo 'aws:098765'").code().await.unwrap();
        assert_eq!(code.expose(), "098765");
        let e = sh("echo 'no YubiKey detected' >&2; exit 2")
            .code()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AccessError::Command(CommandError::Failed { .. })),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "mfa_command `/bin/sh` failed (exit status: 2): no YubiKey detected"
        );
    }
}
