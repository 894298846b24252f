//! `credd login`: asks the daemon to log in; when it answers that an MFA code is needed, asks the
//! user (on the terminal, never echoing into logs) and tries again.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{AccessInfo, Request, Response, Secret};
use zeroize::Zeroize;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output::{self, relative};

pub fn run(paths: &Paths, json: bool, mfa_code: Option<String>) -> Result<ExitCode, ClientError> {
    let code = match mfa_code.as_deref() {
        Some("-") => Some(read_code_line(&mut std::io::stdin().lock())?),
        Some(c) => Some(Secret::new(c)),
        None => None,
    };
    let request = Request::Login {
        mfa_code: code,
        browser: Default::default(),
    };
    let mut answer = ask(paths, &request)?;
    if let Response::MfaRequired { serial } = &answer {
        let code = prompt_code(serial)?;
        answer = ask(
            paths,
            &Request::Login {
                mfa_code: Some(code),
                browser: Default::default(),
            },
        )?;
    }
    let Response::LoggedIn {
        access,
        profiles_ready,
        profiles,
    } = answer
    else {
        return Err(unexpected(&request, answer));
    };
    if json {
        output::json(&serde_json::json!({
            "access": access,
            "profiles_ready": profiles_ready,
            "profiles": profiles,
        }));
    } else {
        print(&access, profiles_ready, profiles);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(info: &AccessInfo, ready: usize, total: usize) {
    let who = info.identity.as_deref().unwrap_or("(identity unknown)");
    match info.expires_at {
        Some(t) => println!("logged in as {who}; session ends {}", relative(t)),
        None => println!("logged in as {who}"),
    }
    if ready < total {
        println!(
            "{ready} of {total} profiles ready; the rest are still being fetched (see `credd status`)"
        );
    } else if total > 0 {
        println!("{total} profiles ready");
    }
}

fn read_code_line(input: &mut impl BufRead) -> Result<Secret, ClientError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(ClientError::MfaCodeUnreadable)?;
    let code = Secret::new(line.trim());
    line.zeroize();
    if code.is_empty() {
        return Err(ClientError::MfaCodeEmpty);
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
        _ => Err(ClientError::MfaNoTerminal {
            serial: serial.to_owned(),
        }),
    }
}
