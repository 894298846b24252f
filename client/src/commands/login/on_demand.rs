//! Logins on demand: `credd exec`, `credd env` and `credd credential-process` log in on the
//! controlling terminal when the access session is missing or over, one terminal at a time
//! ([`super::turn`]), and fail at once when there is no terminal to ask on.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use super::Options;
use super::console::Console;
use super::flow::{Ended, log_in};
use super::present::summary;
use super::turn::take_turn;
use crate::commands::{ask, unexpected};
use crate::error::ClientError;
use crate::terminal::Terminal;

/// A login on demand, for `credd exec`, `credd env` and `credd credential-process` (`verb`, as
/// the user typed it) when the access session is missing or over: the flow of `credd login`, its
/// prompts, instructions and result on the controlling terminal. `Ok(None)`: logged in (or
/// another `credd` did meanwhile), go on; `Ok(Some(code))`: interrupted, exit with `code`.
/// Without a terminal it fails at once, never waits: with `reason` (the daemon's
/// `LoginRequired` message; `None`: asked of the daemon) and the instruction to run
/// `credd login`.
pub fn on_demand(
    paths: &Paths,
    verb: &str,
    reason: Option<String>,
) -> Result<Option<ExitCode>, ClientError> {
    match Terminal::controlling() {
        Some(terminal) => on_terminal(paths, verb, terminal),
        None => Err(ClientError::LoginNoTerminal {
            reason: reason.unwrap_or_else(|| why_logged_out(paths)),
        }),
    }
}

/// [`on_demand`] with `terminal` to talk on. Logins on demand take turns (a file lock in the
/// runtime dir): `make -j` or Terraform starting several `credd` at once gets one MFA prompt, and
/// those that waited go on with the session it made.
fn on_terminal(
    paths: &Paths,
    verb: &str,
    terminal: Terminal,
) -> Result<Option<ExitCode>, ClientError> {
    let mut console = Console {
        terminal: Some(terminal),
        progress_on_terminal: true,
        json: false,
    };
    let _turn = take_turn(paths, &mut console)?;
    if !still_needed(paths)? {
        return Ok(None);
    }
    console.say(&format!(
        "credd: {verb} needs the access session, which is missing or over: logging in.\n"
    ));
    match log_in(paths, &Options::default(), None, &mut console)? {
        Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => {
            console.say(&summary(&access, profiles_ready, profiles));
            if let Some(w) = &access.warning {
                console.say(&format!("warning: {w}\n"));
            }
            Ok(None)
        }
        Ended::Stopped(code) => Ok(Some(code)),
    }
}

/// Whether the daemon still waits for the user (the `credd` that had the turn before may have
/// logged in).
fn still_needed(paths: &Paths) -> Result<bool, ClientError> {
    let request = Request::Endpoint { profile: None };
    match ask(paths, &request)? {
        Response::Endpoint(info) => Ok(info.needs_login),
        other => Err(unexpected(&request, other)),
    }
}

/// Why there is no session, as the daemon's `LoginRequired` says it: ``not logged in (the
/// access session has expired): run `credd login` ``.
fn why_logged_out(paths: &Paths) -> String {
    let detail = match ask(paths, &Request::Status) {
        Ok(Response::Status(report)) => report.access.last_error,
        _ => None,
    };
    match detail {
        Some(d) => format!("not logged in ({d}): run `credd login`"),
        None => "not logged in: run `credd login`".to_owned(),
    }
}
