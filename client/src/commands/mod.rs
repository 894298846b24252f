//! One module per verb: build the request, send it, print the response.

pub mod completions;
pub mod credential_process;
pub mod env;
pub mod exec;
pub mod login;
pub mod logout;
pub mod profiles;
pub mod reload;
pub mod reset_token;
pub mod service;
pub mod status;
pub mod switch;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::connection::Connection;
use crate::error::ClientError;

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
