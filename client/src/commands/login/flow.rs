//! The conversation with the daemon: `Login` (again with the MFA code when one is needed), then
//! for a browser, device or command authorization `LoginWait` on a thread while Ctrl-C is
//! watched, and `LoginCancel` on a fresh connection when the user interrupts.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{AccessInfo, Authorization, BrowserLogin, Request, Response, Secret};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;

use super::console::Console;
use super::present::show;
use super::{EXIT_CANCELLED, Options};
use crate::browser;
use crate::commands::{ask, ask_within, unexpected};
use crate::error::ClientError;
use crate::output;

/// `LoginWait` is answered when the authorization ends, at the latest when it expires; the wait
/// allows this much more, for the daemon's last poll and its warm-up of the profiles. With the
/// device grant's 10 minutes, the client gives up after 11.
const WAIT_MARGIN: Duration = Duration::from_secs(60);

/// How a login ended.
pub(super) enum Ended {
    LoggedIn {
        access: Box<AccessInfo>,
        profiles_ready: usize,
        profiles: usize,
    },
    /// Ctrl-C: what happened was said; exit with this code.
    Stopped(ExitCode),
}

/// The login itself, for `credd login` and the logins on demand: asks the daemon; asks the user
/// for an MFA code when the daemon needs one; shows a browser or device authorization, or the
/// SAML command the daemon runs, and waits for it to end.
pub(super) fn log_in(
    paths: &Paths,
    opts: &Options,
    code: Option<Secret>,
    console: &mut Console,
) -> Result<Ended, ClientError> {
    let display = browser::can_open_here();
    let browser = BrowserLogin {
        method: opts.method,
        display,
        region: opts.region.clone(),
    };
    let request = Request::Login {
        mfa_code: code,
        browser: browser.clone(),
    };
    let mut answer = ask(paths, &request)?;
    if let Response::MfaRequired { serial } = &answer {
        let code = console.ask_code(serial)?;
        answer = ask(
            paths,
            &Request::Login {
                mfa_code: Some(code),
                browser,
            },
        )?;
    }
    let answer = match answer {
        Response::AuthorizationPending(authorization) => {
            // Watched from before anything is shown: a Ctrl-C from here on cancels cleanly.
            let interrupts = Interrupts::watch()?;
            show(&authorization, opts, display, console);
            match wait(paths, &authorization, interrupts)? {
                Some(answer) => answer,
                // A login that joined another one's authorization only stops waiting: the
                // `credd login` that started it is still waiting for the user.
                None if authorization.joined => {
                    console.say(
                        "stopped waiting; the login started elsewhere goes on (`credd login \
                         --cancel` ends it)\n",
                    );
                    return Ok(Ended::Stopped(ExitCode::from(EXIT_CANCELLED)));
                }
                None => return Ok(Ended::Stopped(cancel_after_interrupt(paths, console))),
            }
        }
        other => other,
    };
    match answer {
        Response::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => Ok(Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        }),
        other => Err(unexpected(&request, other)),
    }
}

pub(super) fn send_cancel(paths: &Paths) -> Result<bool, ClientError> {
    let request = Request::LoginCancel;
    match ask(paths, &request)? {
        Response::LoginCancelled { cancelled } => Ok(cancelled),
        other => Err(unexpected(&request, other)),
    }
}

/// Ctrl-C while waiting: tell the daemon on a fresh connection (the waiting one is busy); the
/// exit code of an interrupted program.
fn cancel_after_interrupt(paths: &Paths, console: &mut Console) -> ExitCode {
    match send_cancel(paths) {
        Ok(true) => console.say("login cancelled\n"),
        // It ended just before the cancel arrived (approved, refused or expired).
        Ok(false) => console
            .say("login cancelled (it had already ended; `credd status` shows the session)\n"),
        Err(e) => {
            console.say(&format!(
                "login cancelled here, but telling credd-daemon failed: {e}\n"
            ));
        }
    }
    ExitCode::from(EXIT_CANCELLED)
}

/// How long `LoginWait` may take: until the authorization expires, plus [`WAIT_MARGIN`].
fn wait_timeout(expires_at: u64, now: u64) -> Duration {
    Duration::from_secs(expires_at.saturating_sub(now)).saturating_add(WAIT_MARGIN)
}

/// SIGINT, delivered to a thread as an event instead of killing the process. A second Ctrl-C
/// (say the cancel itself hangs) ends the process the default way.
struct Interrupts {
    signals: Signals,
}

impl Interrupts {
    fn watch() -> Result<Interrupts, ClientError> {
        let signals = Signals::new([SIGINT]).map_err(ClientError::Signals)?;
        Ok(Interrupts { signals })
    }
}

/// Sends `LoginWait` from a thread and waits for whichever comes first: its answer, or a Ctrl-C
/// (`None`).
fn wait(
    paths: &Paths,
    auth: &Authorization,
    interrupts: Interrupts,
) -> Result<Option<Response>, ClientError> {
    // `Some(answer)` from the waiting thread, `None` from the signal thread.
    let (tx, rx) = mpsc::channel::<Option<Result<Response, ClientError>>>();
    let timeout = wait_timeout(auth.expires_at, output::now());
    let waiter = tx.clone();
    let paths = paths.clone();
    std::thread::spawn(move || {
        let answer = ask_within(&paths, &Request::LoginWait, timeout);
        let _ = waiter.send(Some(answer));
    });
    let mut signals = interrupts.signals;
    std::thread::spawn(move || {
        let mut pending = signals.forever();
        if pending.next().is_some() {
            let _ = tx.send(None);
        }
        if pending.next().is_some() {
            let _ = signal_hook::low_level::emulate_default_handler(SIGINT);
        }
    });
    // Both senders gone without a word cannot happen (the waiter always sends): treat it as an
    // interruption, which at worst cancels an authorization no one waits for.
    rx.recv().unwrap_or(None).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_outlasts_the_authorization() {
        assert_eq!(wait_timeout(1_000 + 600, 1_000), Duration::from_secs(660));
        // Already expired (or a clock step): still the margin, never an underflow.
        assert_eq!(wait_timeout(1_000, 2_000), WAIT_MARGIN);
    }
}
