//! `credd key add|import|rotate|remove`: the IAM user's long-lived key in the OS keychain. The
//! daemon checks, stores and removes it; this reads the key from the terminal (the secret without
//! echo) or stdin, never from arguments, and prints what the daemon reports.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{KeyReport, Request, Response, Secret};
use serde_json::json;
use zeroize::{Zeroize, Zeroizing};

use super::{ask, ask_within, unexpected};
use crate::connection::Connection;
use crate::error::ClientError;
use crate::output;
use crate::terminal::Terminal;

/// The daemon checks a key with STS, writes and reads back the keychain (which may show an unlock
/// prompt), and logs in again: more than a plain request. A rotation also waits for IAM's new key
/// to be accepted.
const KEY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Store an IAM user's access key in the OS keychain (checked with AWS first).
    ///
    /// On a terminal, asks for the access key ID and then the secret access key (not shown as
    /// you type). Without a terminal, reads them from stdin: the key ID on the first line, the
    /// secret on the second. Never from arguments, which other users can see.
    ///
    /// The daemon checks the key with STS (GetCallerIdentity) and only then stores it, replacing
    /// the key the keychain held; a key AWS refuses is not stored. With `key = "keychain"` and
    /// no MFA device, the daemon uses the new key at once.
    ///
    /// The keychain: the Secret Service (GNOME Keyring, KWallet) on a Linux desktop, the kernel
    /// keyring without one, the login Keychain on macOS; the entry is `credd`/`aws-access-key`.
    /// `--json` prints `{"access_key_id", "identity", "keychain", "previous", "imported_from",
    /// "deleted_from_file", "warning"}`.
    #[command(verbatim_doc_comment)]
    Add,
    /// Move the key of a shared-credentials profile (~/.aws/credentials) into the OS keychain.
    ///
    /// The daemon reads the profile from the shared credentials file it uses
    /// (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), checks the key with STS, stores
    /// it and reads it back. Then, with `--delete`, it removes the key's lines from the file
    /// (the whole profile when nothing else is left in it; other profiles stay). Without
    /// `--delete` or `--keep`, asks on a terminal; without one, keeps the file as it is.
    /// Then set `key = "keychain"` (or remove aws_profile) in [access] so the daemon reads the
    /// keychain.
    #[command(verbatim_doc_comment)]
    Import {
        /// The profile to import (default: the config's aws_profile, else `default`).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Remove the key from the shared credentials file once the keychain holds it.
        #[arg(long, conflicts_with = "keep")]
        delete: bool,
        /// Leave the shared credentials file as it is.
        #[arg(long)]
        keep: bool,
    },
    /// Replace the key: a new one made in IAM, checked and stored before the old one is deleted.
    ///
    /// Needs the key in the OS keychain (`key = "keychain"`) and iam:CreateAccessKey and
    /// iam:DeleteAccessKey on the user (signed with the MFA session when there is one).
    #[command(verbatim_doc_comment)]
    Rotate,
    /// Remove the key from the OS keychain.
    Remove,
}

pub fn run(paths: &Paths, json: bool, action: Action) -> Result<ExitCode, ClientError> {
    match action {
        Action::Add => add(paths, json),
        Action::Import {
            profile,
            delete,
            keep,
        } => import(paths, json, profile, delete, keep),
        Action::Rotate => rotate(paths, json),
        Action::Remove => remove(paths, json),
    }
}

/// Before anything secret is asked for: a daemon runs, or starts, with a valid config (else its
/// error now, not after the secret was typed).
fn daemon_ready(paths: &Paths) -> Result<(), ClientError> {
    if Connection::open_existing(paths).is_err() && !paths.config.exists() {
        return Err(ClientError::NoConfigYet {
            path: paths.config.clone(),
        });
    }
    let request = Request::Status;
    match ask(paths, &request)? {
        Response::Status(_) => Ok(()),
        other => Err(unexpected(&request, other)),
    }
}

fn add(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    daemon_ready(paths)?;
    let stdin = std::io::stdin();
    let (access_key_id, secret_access_key) = if stdin.is_terminal() {
        ask_on_terminal()?
    } else {
        read_two_lines(&mut stdin.lock())?
    };
    let request = Request::KeyAdd {
        access_key_id,
        secret_access_key,
    };
    let report = stored(paths, &request)?;
    if json {
        output::json(&report);
    } else {
        print!("{}", describe("stored", &report));
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    paths: &Paths,
    json: bool,
    profile: Option<String>,
    delete: bool,
    keep: bool,
) -> Result<ExitCode, ClientError> {
    let request = |delete_from_file| Request::KeyImport {
        profile: profile.clone(),
        delete_from_file,
    };
    daemon_ready(paths)?;
    let report = stored(paths, &request(delete))?;
    if delete || keep {
        if json {
            output::json(&report);
        } else {
            print!("{}", describe("imported", &report));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let from = report
        .imported_from
        .clone()
        .unwrap_or_else(|| "the shared credentials file".to_owned());
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        let again = match &profile {
            Some(p) => format!("credd key import --profile {p} --delete"),
            None => "credd key import --delete".to_owned(),
        };
        if json {
            output::json(&report);
        } else {
            print!("{}", describe("imported", &report));
            eprintln!("note: the key is still in {from}: run `{again}` to delete it from there");
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Say what was stored where before asking about the file's copy.
    if !json {
        print!("{}", describe("imported", &report));
        let _ = std::io::stdout().flush();
    }
    if !confirm(&format!(
        "the key is still in plain text in {from}: delete it from there? [Y/n] "
    ))? {
        if json {
            output::json(&report);
        } else {
            println!("kept it in {from} too");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut deleted = stored(paths, &request(true))?;
    deleted.previous = report.previous;
    if json {
        output::json(&deleted);
    } else if deleted.deleted_from_file {
        println!("deleted it from {from}");
        if let Some(warning) = &deleted.warning {
            eprintln!("warning: {warning}");
        }
    } else {
        print!("{}", describe("imported", &deleted));
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let report = stored(paths, &Request::KeyRotate)?;
    if json {
        output::json(&report);
    } else {
        print!("{}", describe("rotated: stored", &report));
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::KeyRemove;
    match ask_within(paths, &request, KEY_TIMEOUT)? {
        Response::KeyRemoved { removed, keychain } => {
            if json {
                output::json(&json!({ "removed": removed, "keychain": keychain }));
            } else if removed {
                println!("removed the key from {keychain}");
            } else {
                println!("{keychain} held no key; nothing removed");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&request, other)),
    }
}

/// Sends a verb answered with `KeyStored`.
fn stored(paths: &Paths, request: &Request) -> Result<KeyReport, ClientError> {
    match ask_within(paths, request, KEY_TIMEOUT)? {
        Response::KeyStored(report) => Ok(report),
        other => Err(unexpected(request, other)),
    }
}

/// The report for people: what is stored where, then anything to act on (stderr).
fn describe(done: &str, report: &KeyReport) -> String {
    let mut out = format!(
        "{done} key {} of {} in {}\n",
        report.access_key_id, report.identity, report.keychain
    );
    if let Some(from) = &report.imported_from {
        out.push_str(&format!(
            "  from {from}{}\n",
            if report.deleted_from_file {
                " (deleted from there)"
            } else {
                " (still there too)"
            }
        ));
    }
    match &report.previous {
        Some(previous) if *previous == report.access_key_id => {
            out.push_str("  (the keychain held this key already)\n");
        }
        Some(previous) => out.push_str(&format!("  replaces key {previous}\n")),
        None => {}
    }
    if let Some(warning) = &report.warning {
        eprintln!("warning: {warning}");
    }
    out
}

/// Asks for the key on the terminal: the ID shown as typed, the secret not.
fn ask_on_terminal() -> Result<(String, Secret), ClientError> {
    let unreadable = |e: std::io::Error| ClientError::KeyInput(format!("reading the key: {e}"));
    let mut tty = Terminal::controlling().ok_or_else(|| {
        ClientError::KeyInput("no terminal to ask on: give the key on stdin".to_owned())
    })?;
    tty.say("AWS access key ID: ");
    let mut id = String::new();
    std::io::BufReader::new(&mut tty.input)
        .read_line(&mut id)
        .map_err(unreadable)?;
    let secret = Zeroizing::new(
        rpassword::prompt_password("Secret access key (not shown): ").map_err(unreadable)?,
    );
    Ok((id.trim().to_owned(), Secret::new(secret.trim())))
}

/// Without a terminal: the key ID on the first line, the secret on the second.
fn read_two_lines(input: &mut impl BufRead) -> Result<(String, Secret), ClientError> {
    let unreadable =
        |e: std::io::Error| ClientError::KeyInput(format!("reading the key from stdin: {e}"));
    let mut id = String::new();
    input.read_line(&mut id).map_err(unreadable)?;
    let mut secret = Zeroizing::new(String::new());
    input.read_line(&mut secret).map_err(unreadable)?;
    let id = id.trim().to_owned();
    if id.is_empty() || secret.trim().is_empty() {
        return Err(ClientError::KeyInput(
            "no key on stdin: give the access key ID on the first line and the secret access \
             key on the second (e.g. from your password manager's CLI), or run `credd key add` \
             on a terminal to be asked"
                .to_owned(),
        ));
    }
    let key = Secret::new(secret.trim());
    secret.zeroize();
    Ok((id, key))
}

/// A yes/no question on the terminal; Enter means yes.
fn confirm(question: &str) -> Result<bool, ClientError> {
    let unreadable = |e: std::io::Error| ClientError::KeyInput(format!("reading the answer: {e}"));
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(unreadable)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_from_two_lines_of_stdin() {
        let (id, secret) =
            read_two_lines(&mut "AKIAIOSFODNN7EXAMPLE\r\n  s3cr3t/key \n".as_bytes()).unwrap();
        assert_eq!(id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(secret.expose(), "s3cr3t/key");
        let e = read_two_lines(&mut "AKIAIOSFODNN7EXAMPLE\n".as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no key on stdin: give the access key ID on the first line")
        );
    }

    #[test]
    fn the_report_names_the_key_where_it_is_and_what_it_replaced() {
        let report = KeyReport {
            access_key_id: "AKIANEW".into(),
            identity: "arn:aws:iam::111111111111:user/alice".into(),
            keychain: "Secret Service (default collection): credd/aws-access-key".into(),
            previous: Some("AKIAOLD".into()),
            imported_from: Some("/home/alice/.aws/credentials [default]".into()),
            deleted_from_file: true,
            warning: None,
        };
        assert_eq!(
            describe("imported", &report),
            "imported key AKIANEW of arn:aws:iam::111111111111:user/alice in Secret Service \
             (default collection): credd/aws-access-key\n  from /home/alice/.aws/credentials \
             [default] (deleted from there)\n  replaces key AKIAOLD\n"
        );
    }
}
