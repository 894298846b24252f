//! `credd reload`: the daemon re-reads its config now (it also watches the file).

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Reload;
    match ask(paths, &request)? {
        Response::Reloaded {
            path,
            profiles,
            warnings,
        } => {
            if json {
                output::json(&json!({ "path": path, "profiles": profiles, "warnings": warnings }));
            } else {
                println!(
                    "config reloaded from {path} ({})",
                    credd_proto::human::count(profiles, "profile", "profiles")
                );
                for w in warnings {
                    eprintln!("warning: {w}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(&request, other)),
    }
}
