//! `credd switch <profile>`: makes PROFILE the one the current route serves; the daemon
//! remembers it across restarts and names the known profiles when PROFILE is not one.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool, profile: String) -> Result<ExitCode, ClientError> {
    let request = Request::Switch { profile };
    match ask(paths, &request)? {
        Response::Switched { previous, current } => {
            if json {
                output::json(&json!({ "previous": previous, "current": current }));
            } else {
                println!("current profile: {current}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&request, other)),
    }
}
