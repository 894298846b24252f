//! The commands an access source runs for a secret: `token_command` (an ID token),
//! `assertion_command` (a SAMLResponse) and `mfa_command` (a one-time code). No shell, no stdin;
//! stdout is the secret and is wiped after use; on failure the last line of stderr says why (the
//! output never does: it may hold the secret), short and with anything that looks like a token
//! blanked out, since it reaches status, the log and notifications.
//!
//! Each command runs in a process group of its own. One that outlives its time limit, or whose
//! login is cancelled, is killed with everything it started. One that has exited is done, even
//! when something it left in the background still holds its output open.

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
/// After the command exits, how long what it left behind may keep its output open before credd
/// stops reading: its own output is in the pipe already.
const PIPE_GRACE: Duration = Duration::from_millis(250);
/// The most of a stderr line that is shown.
const MAX_LINE: usize = 160;

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
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            what,
            program: program.clone(),
            detail: e.to_string(),
        })?;
    // Until disarmed, leaving here (a time limit, a cancelled login) kills the whole group.
    let mut group = GroupKiller(child.id());
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut out = Zeroizing::new(Vec::new());
    let mut err = Vec::new();
    let work = async {
        let reading = async {
            tokio::join!(
                read_capped(&mut stdout, &mut out, MAX_STDOUT + 1),
                read_capped(&mut stderr, &mut err, MAX_STDERR)
            )
        };
        let mut reading = std::pin::pin!(reading);
        tokio::select! {
            _ = &mut reading => child.wait().await,
            status = child.wait() => {
                // Something it started may hold the pipes open: take what is there and go.
                let _ = tokio::time::timeout(PIPE_GRACE, reading).await;
                status
            }
        }
    };
    let Ok(status) = tokio::time::timeout(limit, work).await else {
        // Dropping `group` kills the command and everything it started.
        return Err(CommandError::TimedOut {
            what,
            program: program.clone(),
            limit,
        });
    };
    group.0 = None;
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

/// Appends what `from` gives, up to `cap` bytes, to `buf` (what was read stays there when the
/// read is abandoned).
async fn read_capped(from: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>, cap: u64) {
    // A read error leaves what was read; the exit status tells what happened.
    let _ = from.take(cap).read_to_end(buf).await;
}

/// Kills the process group `.0` when dropped (`None`: disarmed).
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) {
            // SAFETY: killpg only sends a signal, to the group the command leads.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }
}

/// The last non-empty line, without control characters, at most [`MAX_LINE`] characters, with
/// every word that looks like a token (long, without spaces, letters and digits mixed) blanked
/// out: a tool that prints a token on stderr must not have it shown in status and notifications.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    let mut out = String::new();
    for (i, word) in clean.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(if looks_like_a_token(word) {
            "[hidden]"
        } else {
            word
        });
    }
    match out.char_indices().nth(MAX_LINE) {
        Some((cut, _)) => Some(format!("{}…", &out[..cut])),
        None => Some(out),
    }
}

/// 20 characters or more of the alphabets tokens use (base64, hex, JWT), with letters and digits.
fn looks_like_a_token(word: &str) -> bool {
    let word = word.trim_matches(|c: char| "\"'(),;".contains(c));
    word.len() >= 20
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-.".contains(&b))
        && word.bytes().any(|b| b.is_ascii_digit())
        && word.bytes().any(|b| b.is_ascii_alphabetic())
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

    #[test]
    fn a_token_on_stderr_is_hidden_and_the_line_kept_short() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlMTIzNDU2";
        let line = last_line(format!("first\nrefused token {jwt} (expired)\n\n").as_bytes());
        assert_eq!(line.as_deref(), Some("refused token [hidden] (expired)"));
        let line = last_line(b"key=AKIAIOSFODNN7EXAMPLE1 secret wJalrXUtnFEMI/K7MDENG/bPxRfiCY1");
        assert_eq!(line.as_deref(), Some("[hidden] secret [hidden]"));
        // Long words of prose stay.
        let line = last_line(b"authentication-unsuccessful: incomprehensibilities");
        assert_eq!(
            line.as_deref(),
            Some("authentication-unsuccessful: incomprehensibilities")
        );
        let long = last_line("x ".repeat(200).as_bytes()).unwrap();
        assert_eq!(long.chars().count(), MAX_LINE + 1, "{long}");
        assert!(long.ends_with('…'));
    }

    /// A command that leaves a child in the background holding its stdout is done when it
    /// exits; one that runs out of time is killed with everything it started.
    #[tokio::test]
    async fn the_group_is_killed_and_a_background_child_does_not_hold_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let read_pid = || -> libc::pid_t {
            std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let limit = Duration::from_secs(20);
        let started = std::time::Instant::now();
        let script = format!("sleep 30 & echo $! > {}; echo tok3n", pid_file.display());
        let ok = run(&sh(&script), "token_command", limit).await;
        assert_eq!(ok.unwrap().expose(), "tok3n");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        // SAFETY: kill(2) of the test's own background sleep (left running on success).
        unsafe { libc::kill(read_pid(), libc::SIGKILL) };

        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let e = run(&sh(&script), "token_command", Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(matches!(e, CommandError::TimedOut { .. }), "{e}");
        let pid = read_pid();
        // The grandchild is gone too (a zombie until init reaps it at most).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let running = state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'));
            if !running {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the background sleep was left running"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
