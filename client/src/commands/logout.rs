//! `credd logout`: the daemon forgets every credential it holds.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Logout;
    match ask(paths, &request)? {
        Response::LoggedOut { forgotten } => {
            if json {
                output::json(&json!({ "forgotten": forgotten }));
            } else {
                println!(
                    "logged out; {} forgotten",
                    credd_proto::human::count(forgotten, "credential", "credentials")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&request, other)),
    }
}
