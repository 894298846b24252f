//! One module per verb: build the request, send it, print the response.

mod completions;
mod credential_process;
pub mod env;
mod exec;
mod login;
mod logout;
mod profiles;
mod reload;
mod reset_token;
pub mod service;
mod status;
mod switch;

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::connection::Connection;
use crate::error::ClientError;
use crate::{Cli, Command};

pub fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let paths = Paths::resolve(cli.config.clone());
    let json = cli.json;
    match cli.command {
        Command::Status => status::run(&paths, json),
        Command::Profiles => profiles::run(&paths, json),
        Command::Switch { profile } => switch::run(&paths, json, profile),
        Command::Reload => reload::run(&paths, json),
        Command::ResetToken => reset_token::run(&paths, json),
        Command::Logout => logout::run(&paths, json),
        Command::Login { mfa_code } => login::run(&paths, json, mfa_code),
        Command::Env { profile, shell } => env::run(&paths, json, profile, shell),
        Command::Exec { profile, command } => exec::run(&paths, profile, command),
        Command::CredentialProcess { profile } => credential_process::run(&paths, profile),
        Command::Completions { shell } => completions::run(shell),
        Command::Service { action } => service::run(&paths, json, action),
    }
}

/// Sends one request; an error reply becomes an error.
pub fn ask(paths: &Paths, request: &Request) -> Result<Response, ClientError> {
    let mut conn = Connection::open(paths)?;
    match conn.request(request)? {
        Response::Error(e) => Err(ClientError::Daemon(e)),
        other => Ok(other),
    }
}

/// An answer that `request` cannot have (a daemon of another version, most likely).
pub fn unexpected(request: &Request, answer: Response) -> ClientError {
    ClientError::UnexpectedAnswer {
        request: request.name(),
        answer: Box::new(answer),
    }
}
