//! One module per verb: build the request, send it, print the response.

pub mod audit;
pub mod completions;
pub mod console;
pub mod credential_process;
pub mod dist_files;
pub mod docker;
pub mod doctor;
pub mod env;
pub mod exec;
pub mod import;
pub mod key;
pub mod login;
pub mod logout;
pub mod profiles;
pub mod prompt;
pub mod refresh;
pub mod reload;
pub mod reset_token;
pub mod service;
pub mod status;
pub mod stop;
pub mod switch;

use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::connection::{Connection, REPLY_TIMEOUT};
use crate::error::ClientError;

/// Sends one request; an error reply becomes an error.
pub fn ask(paths: &Paths, request: &Request) -> Result<Response, ClientError> {
    ask_within(paths, request, REPLY_TIMEOUT)
}

/// [`ask`] for a request whose answer may take up to `timeout` (at least the usual timeout).
pub fn ask_within(
    paths: &Paths,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let mut conn = Connection::open(paths)?;
    match conn.request_within(request, timeout)? {
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
