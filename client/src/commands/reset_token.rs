//! `credd reset-token`: replaces the HTTP API token, locking out every holder of the old one
//! (programs that re-read the token file, as most SDKs do, carry on with the new one).

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::ResetToken;
    match ask(paths, &request)? {
        Response::TokenReset => {
            let token_file = paths.token_file().display().to_string();
            if json {
                output::json(&serde_json::json!({ "token_file": token_file }));
            } else {
                println!(
                    "HTTP API token replaced in {token_file}; the old one no longer works \
                     (restart programs that read it only once, such as the AWS CLI v2)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&request, other)),
    }
}
