//! `credd login`: asks the daemon to log in; when it answers that an MFA code is needed, asks the
//! user (on the terminal, never echoing into logs) and tries again.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{AccessInfo, Request, Response, Secret};
use zeroize::Zeroize;

use super::{ask, unexpected};
use crate::connection::ClientError;
use crate::output::{self, relative};

pub fn run(paths: &Paths, json: bool, mfa_code: Option<String>) -> Result<ExitCode, ClientError> {
    let code = match mfa_code.as_deref() {
        Some("-") => Some(read_code_line(&mut std::io::stdin().lock())?),
        Some(c) => Some(Secret::new(c)),
        None => None,
    };
    let info = match ask(paths, &Request::Login { mfa_code: code })? {
        Response::LoggedIn(info) => info,
        Response::MfaRequired { serial } => {
            let code = prompt_code(&serial)?;
            match ask(
                paths,
                &Request::Login {
                    mfa_code: Some(code),
                },
            )? {
                Response::LoggedIn(info) => info,
                other => return Err(unexpected(other)),
            }
        }
        other => return Err(unexpected(other)),
    };
    if json {
        output::json(&info);
    } else {
        print(&info);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(info: &AccessInfo) {
    let who = info.identity.as_deref().unwrap_or("(identity unknown)");
    match info.expires_at {
        Some(t) => println!("logged in as {who}; session ends {}", relative(t)),
        None => println!("logged in as {who}"),
    }
}

fn read_code_line(input: &mut impl BufRead) -> Result<Secret, ClientError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| ClientError::Other(format!("reading the MFA code: {e}")))?;
    let code = Secret::new(line.trim());
    line.zeroize();
    if code.is_empty() {
        return Err(ClientError::Other("no MFA code given".into()));
    }
    Ok(code)
}

/// Prompts on the controlling terminal; a script without one must pass `--mfa-code -`.
fn prompt_code(serial: &str) -> Result<Secret, ClientError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty");
    match tty {
        Ok(mut tty) if std::io::stdin().is_terminal() || tty.is_terminal() => {
            let _ = write!(tty, "MFA code for {serial}: ");
            let _ = tty.flush();
            read_code_line(&mut std::io::BufReader::new(tty))
        }
        _ => Err(ClientError::Other(format!(
            "an MFA code for {serial} is needed and there is no terminal to ask on; \
             pass it with `credd login --mfa-code -` on stdin"
        ))),
    }
}
