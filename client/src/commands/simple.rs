//! The verbs whose whole job is one request and a line of output:
//! `profiles`, `switch`, `reload`, `logout`.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::connection::ClientError;
use crate::output;

pub fn profiles(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let Response::Profiles { current, profiles } = ask(paths, &Request::Profiles)? else {
        return Err(ClientError::Other("unexpected answer to profiles".into()));
    };
    if json {
        output::json(&json!({ "current": current, "profiles": profiles }));
        return Ok(ExitCode::SUCCESS);
    }
    if profiles.is_empty() {
        println!("no profiles configured");
    }
    let width = profiles.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &profiles {
        let mark = if current.as_deref() == Some(&p.name) {
            "*"
        } else {
            " "
        };
        let via = p
            .via
            .as_deref()
            .map(|v| format!("  via {v}"))
            .unwrap_or_default();
        let region = p
            .region
            .as_deref()
            .map(|r| format!("  {r}"))
            .unwrap_or_default();
        println!("{mark} {:width$}  {}{region}{via}", p.name, p.role_arn);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn switch(paths: &Paths, json: bool, profile: String) -> Result<ExitCode, ClientError> {
    match ask(paths, &Request::Switch { profile })? {
        Response::Switched { previous, current } => {
            if json {
                output::json(&json!({ "previous": previous, "current": current }));
            } else {
                println!("current profile: {current}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(other)),
    }
}

pub fn reload(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    match ask(paths, &Request::Reload)? {
        Response::Reloaded {
            path,
            profiles,
            warnings,
        } => {
            if json {
                output::json(&json!({ "path": path, "profiles": profiles, "warnings": warnings }));
            } else {
                println!("config reloaded from {path} ({profiles} profiles)");
                for w in warnings {
                    eprintln!("warning: {w}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(other)),
    }
}

pub fn logout(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    match ask(paths, &Request::Logout)? {
        Response::LoggedOut { forgotten } => {
            if json {
                output::json(&json!({ "forgotten": forgotten }));
            } else {
                println!("logged out; {forgotten} credentials forgotten");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(other)),
    }
}
