//! The commands an access source runs for a secret: `token_command` (an ID token),
//! `assertion_command` (a SAMLResponse) and `mfa_command` (a one-time code). No shell, no stdin;
//! stdout is the secret and is wiped after use; on failure the last line of stderr says why (the
//! output never does: it may hold the secret). A command that outlives its time limit, or whose
//! login is cancelled, is killed.

use std::process::Stdio;
#[cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use credd_proto::Secret;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

/// More than any token or assertion: a command printing more is not printing one.
const MAX_STDOUT: u64 = 1024 * 1024;
/// Enough stderr to find its last line.
const MAX_STDERR: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("could not run {what} `{program}`: {detail}")]
    Spawn {
        what: &'static str,
        program: String,
        detail: String,
    },
    #[error("{what} `{program}` failed ({status}){}", last_line.as_deref().map(|l| format!(": {l}")).unwrap_or_default())]
    Failed {
        what: &'static str,
        program: String,
        status: String,
        /// The last non-empty line of its stderr.
        last_line: Option<String>,
    },
    #[error("{what} `{program}` did not finish within {}, and was stopped", humantime::format_duration(*limit))]
    TimedOut {
        what: &'static str,
        program: String,
        limit: Duration,
    },
    #[error("{what} `{program}` printed nothing on stdout{}", last_line.as_deref().map(|l| format!(" (stderr: {l})")).unwrap_or_default())]
    Empty {
        what: &'static str,
        program: String,
        last_line: Option<String>,
    },
    #[error("{what} `{program}` printed more than {} KiB on stdout: not a single token", MAX_STDOUT / 1024)]
    TooLong { what: &'static str, program: String },
}

/// How commands are run: as processes, or in unit tests by a script. A test on the simulated
/// clock cannot wait for a real process: its paused time jumps to the next timer meanwhile, past
/// the command's time limit.
#[derive(Clone, Default)]
pub enum Runner {
    #[default]
    System,
    #[cfg(test)]
    Scripted(Script),
}

/// A unit test's stand-in for commands: the argv in, the output (or the failure) out.
#[cfg(test)]
pub type Script = Arc<dyn Fn(&[String]) -> Result<Secret, CommandError> + Send + Sync>;

impl Runner {
    /// [`run`], or the script's answer.
    pub async fn run(
        &self,
        argv: &[String],
        what: &'static str,
        limit: Duration,
    ) -> Result<Secret, CommandError> {
        match self {
            Runner::System => run(argv, what, limit).await,
            #[cfg(test)]
            Runner::Scripted(script) => script(argv),
        }
    }
}

/// Runs `argv` (`what` names it in errors, e.g. "assertion_command") and returns its trimmed
/// stdout.
pub async fn run(
    argv: &[String],
    what: &'static str,
    limit: Duration,
) -> Result<Secret, CommandError> {
    let (program, args) = argv
        .split_first()
        .expect("config checks a command names a program");
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            what,
            program: program.clone(),
            detail: e.to_string(),
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let work = async {
        let (out, err, status) = tokio::join!(
            read_capped(stdout, MAX_STDOUT + 1),
            read_capped(stderr, MAX_STDERR),
            child.wait()
        );
        (out, err, status)
    };
    let Ok((out, err, status)) = tokio::time::timeout(limit, work).await else {
        // Dropping the child kills it (kill_on_drop).
        return Err(CommandError::TimedOut {
            what,
            program: program.clone(),
            limit,
        });
    };
    let last_line = last_line(&err);
    let status = status.map_err(|e| CommandError::Spawn {
        what,
        program: program.clone(),
        detail: e.to_string(),
    })?;
    if !status.success() {
        return Err(CommandError::Failed {
            what,
            program: program.clone(),
            status: status.to_string(),
            last_line,
        });
    }
    if out.len() as u64 > MAX_STDOUT {
        return Err(CommandError::TooLong {
            what,
            program: program.clone(),
        });
    }
    let text = String::from_utf8_lossy(&out);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CommandError::Empty {
            what,
            program: program.clone(),
            last_line,
        });
    }
    let secret = Secret::new(trimmed);
    if let std::borrow::Cow::Owned(s) = text {
        drop(Zeroizing::new(s));
    }
    Ok(secret)
}

async fn read_capped(from: impl AsyncRead + Unpin, cap: u64) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::new());
    // A read error leaves what was read; the exit status tells what happened.
    let _ = from.take(cap).read_to_end(&mut buf).await;
    buf
}

/// The last non-empty line, at most 300 characters, without control characters.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    Some(line.chars().filter(|c| !c.is_control()).take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn stdout_is_the_secret_and_failures_say_the_last_stderr_line() {
        let limit = Duration::from_secs(5);
        let ok = run(
            &sh("echo '  tok3n '; echo noise >&2"),
            "token_command",
            limit,
        )
        .await;
        assert_eq!(ok.unwrap().expose(), "tok3n");
        let e = run(
            &sh("echo SECRET; echo first >&2; echo 'password refused' >&2; exit 3"),
            "token_command",
            limit,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "token_command `/bin/sh` failed (exit status: 3): password refused"
        );
        assert!(!format!("{e:?}").contains("SECRET"));
        let e = run(&sh("echo only-stderr >&2"), "assertion_command", limit)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "assertion_command `/bin/sh` printed nothing on stdout (stderr: only-stderr)"
        );
        let e = run(&["/nonexistent/idp".to_owned()], "assertion_command", limit)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("could not run assertion_command `/nonexistent/idp`: "),
            "{e}"
        );
        let e = run(&sh("sleep 10"), "token_command", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "token_command `/bin/sh` did not finish within 200ms, and was stopped"
        );
    }
}
