//! `credd profiles`: the configured profiles, the current one marked.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Profiles;
    let (current, profiles) = match ask(paths, &request)? {
        Response::Profiles { current, profiles } => (current, profiles),
        other => return Err(unexpected(&request, other)),
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
        let role = match (&p.role_arn, &p.sso_role) {
            (Some(arn), _) => arn.clone(),
            (None, Some(sso)) => format!("Identity Center {sso}"),
            (None, None) => String::new(),
        };
        println!("{mark} {:width$}  {role}{region}{via}", p.name);
    }
    Ok(ExitCode::SUCCESS)
}
