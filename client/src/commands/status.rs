//! `credd status`.

use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{ProfileState, Request, Response, StatusReport};

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output::{self, relative};

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode, ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    if json {
        output::json(&report);
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &StatusReport) {
    println!(
        "credd-daemon {} (pid {}), up {}",
        r.daemon_version,
        r.pid,
        output::span(output::now().saturating_sub(r.started_at))
    );
    let a = &r.access;
    let who = a.identity.as_deref().unwrap_or("identity unknown");
    if a.logged_in {
        let until = a
            .expires_at
            .map(|t| format!(", session ends {}", relative(t)))
            .unwrap_or_default();
        let region = a
            .sts_region
            .as_deref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        println!("access:   {} {who}{until}{region}", a.source);
    } else {
        let why = a
            .last_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        println!(
            "access:   {}: not logged in{why}: run `credd login`",
            a.source
        );
    }
    if let Some(w) = &a.warning {
        println!("warning:  {w}");
    }
    if let Some(kept) = &a.session_storage {
        println!("session:  kept in {kept}");
    }
    println!(
        "current:  {}",
        r.current_profile
            .as_deref()
            .unwrap_or("none (credd switch <profile>)")
    );
    println!(
        "url:      {}",
        r.url.as_deref().unwrap_or("not serving HTTP")
    );
    for w in &r.config.warnings {
        println!("config:   {w}");
    }
    if let Some(e) = &r.config.error {
        println!("config:   last edit REJECTED (previous config in force):\n          {e}");
    }
    if !r.profiles.is_empty() {
        println!("profiles:");
    }
    let width = r.profiles.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &r.profiles {
        let mark = if r.current_profile.as_deref() == Some(&p.name) {
            "*"
        } else {
            " "
        };
        let state = match p.state {
            ProfileState::Fresh => "fresh",
            ProfileState::Cold => "cold",
            ProfileState::Failing => "failing",
        };
        let mut line = format!("  {mark} {:width$}  {state:7}", p.name);
        if let Some(t) = p.expires_at {
            line.push_str(&format!("  expires {}", relative(t)));
        }
        if let Some(t) = p.last_refresh {
            line.push_str(&format!("  refreshed {}", relative(t)));
        }
        if let Some(region) = &p.sts_region {
            line.push_str(&format!("  [{region}]"));
        }
        if let Some(via) = &p.via {
            line.push_str(&format!("  via {via}"));
        }
        println!("{line}");
        if let Some(e) = &p.last_error {
            println!("      last error: {e}");
        }
    }
    println!("paths:");
    println!("  config   {}", r.paths.config);
    println!("  socket   {}", r.paths.socket);
    println!("  token    {}", r.paths.token_file);
    println!("  state    {}", r.paths.state_file);
}
