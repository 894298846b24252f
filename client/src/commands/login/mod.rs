//! `credd login`: asks the daemon to log in. When it answers that an MFA code is needed, asks the
//! user (on the terminal, never echoing into logs) and tries again. When it answers with a browser
//! or device authorization (Identity Center, the company's OpenID provider), shows it, opens the
//! browser where that makes sense, and waits for the daemon to see it approved; when it answers
//! that it runs the SAML `assertion_command`, waits for that. Ctrl-C abandons either.
//!
//! Progress goes to stderr, the result to stdout, so `credd login --json > result.json` works.
//!
//! The same flow runs on demand ([`on_demand()`]) when `credd exec`, `credd env` or
//! `credd credential-process` find the access session missing or over: then the prompts, the
//! instructions and the result all go to the controlling terminal, because stdout and stderr
//! belong to the caller (botocore reads `credential_process`'s stdout as JSON).
//!
//! One module per idea: `flow` is the conversation with the daemon, `on_demand` and `turn` the
//! logins on demand and their turn-taking between terminals, `console` where the user is told
//! and asked (the MFA code), `present` what is shown. This module holds the verbs.

mod console;
mod flow;
mod on_demand;
mod present;
mod turn;

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{LoginMethod, Secret};

use crate::error::ClientError;
use crate::output;
use crate::terminal::Terminal;
use console::{Console, read_code_line};
use flow::{Ended, log_in, send_cancel};
use present::summary;

pub use on_demand::on_demand;

/// The exit code of a login the user interrupted (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: u8 = 130;

/// What the user asked of `credd login`. No `Debug`: it holds the MFA code as typed.
#[derive(Default)]
pub struct Options {
    /// `--mfa-code`: the code, or `-` to read it from stdin.
    pub mfa_code: Option<String>,
    /// `--browser` / `--device-code`; `None`: the config's `sso_login` decides.
    pub method: Option<LoginMethod>,
    /// `--region`: authorize this replica Region instead of the home Region.
    pub region: Option<String>,
    /// `--no-open`: show the URL, never open it here.
    pub no_open: bool,
}

pub fn run(paths: &Paths, json: bool, opts: Options) -> Result<ExitCode, ClientError> {
    let code = match opts.mfa_code.as_deref() {
        Some("-") => Some(read_code_line(&mut std::io::stdin().lock())?),
        Some(c) => Some(Secret::new(c)),
        None => None,
    };
    let mut console = Console {
        terminal: Terminal::controlling(),
        progress_on_terminal: false,
        json,
    };
    let (access, profiles_ready, profiles) = match log_in(paths, &opts, code, &mut console)? {
        Ended::LoggedIn {
            access,
            profiles_ready,
            profiles,
        } => (access, profiles_ready, profiles),
        Ended::Stopped(code) => return Ok(code),
    };
    if json {
        output::json(&serde_json::json!({
            "access": access,
            "profiles_ready": profiles_ready,
            "profiles": profiles,
        }));
    } else {
        print!("{}", summary(&access, profiles_ready, profiles));
        if let Some(w) = &access.warning {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `credd login --cancel`: abandons a pending browser or device authorization.
pub fn cancel(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let cancelled = send_cancel(paths)?;
    if json {
        output::json(&serde_json::json!({ "cancelled": cancelled }));
    } else if cancelled {
        println!("login cancelled");
    } else {
        println!("no login was waiting for approval");
    }
    Ok(ExitCode::SUCCESS)
}
