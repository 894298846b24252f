//! `credd console [profile]`: asks the daemon for an AWS console sign-in URL and opens it in the
//! browser, or prints it (`--print`). The URL signs in whoever opens it (for about 15 minutes):
//! it is printed only when asked for (or when no browser can be opened here), never logged.
//!
//! The browser is started with the daemon's one-shot loopback page (`ConsoleSignin::page`),
//! which redirects it to the sign-in URL once: the browser's command line (`$BROWSER`,
//! `xdg-open`, `open`), readable by every local user, holds no sign-in, and the page answers no
//! other user (on Linux; macOS cannot tell who connects to a loopback port).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{ConsoleRequest, ConsoleSignin, ErrorCode, Request, Response};
use serde_json::json;

use super::{ask, login, unexpected};
use crate::browser;
use crate::error::ClientError;
use crate::output;

/// What `credd console` was asked.
pub struct Options {
    pub profile: Option<String>,
    pub access: bool,
    pub print: bool,
    pub region: Option<String>,
    pub destination: Option<String>,
    pub duration: Option<Duration>,
}

/// `--duration`: `2h`, `90m`, `3600` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}: give seconds (`3600`) or a span such as `1h` or `90m`"))
}

pub fn run(paths: &Paths, json: bool, opts: Options) -> Result<ExitCode, ClientError> {
    let open_here = !opts.print && browser::can_open_here();
    let request = Request::Console(ConsoleRequest {
        profile: opts.profile.clone(),
        access: opts.access,
        region: opts.region.clone(),
        destination: opts.destination.clone(),
        duration_secs: opts.duration.map(|d| d.as_secs()),
        browser: open_here,
    });
    let answer = match ask(paths, &request) {
        Err(ClientError::Daemon(e)) if e.code == ErrorCode::LoginRequired => {
            if let Some(code) = login::on_demand(paths, "`credd console`", Some(e.message))? {
                return Ok(code);
            }
            ask(paths, &request)?
        }
        answer => answer?,
    };
    let signin = match answer {
        Response::Console(signin) => signin,
        other => return Err(unexpected(&request, other)),
    };
    // The daemon's one-shot page, so the browser's command line holds no sign-in; the URL
    // itself only if the daemon could not open one.
    let opened = open_here
        && match &signin.page {
            Some(page) => browser::open(page),
            None => browser::open(signin.url.expose()),
        };
    if json {
        let mut out = json!({
            "profile": signin.profile,
            "identity": signin.identity,
            "partition": signin.partition,
            "region": signin.region,
            "destination": signin.destination,
            "expires_at": signin.expires_at,
            "mfa_authenticated": signin.mfa_authenticated,
            "notes": signin.notes,
            "browser_opened": opened,
        });
        if !opened {
            out["url"] = json!(signin.url.expose());
        }
        output::json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    describe(&signin, opened, opts.print);
    if !opened {
        // stdout carries the URL alone, for a pipe (`credd console --print | wl-copy`).
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", signin.url.expose());
    }
    Ok(ExitCode::SUCCESS)
}

/// Who, where and until when, on stderr (stdout is the URL's when it is printed).
fn describe(signin: &ConsoleSignin, opened: bool, print: bool) {
    let who = match &signin.profile {
        Some(profile) => format!("profile {profile}"),
        None => "the access session".to_owned(),
    };
    let action = if opened {
        "opened the AWS console in your browser"
    } else {
        "AWS console sign-in URL"
    };
    eprintln!(
        "{action} for {who}: {} ({}, {})",
        signin.identity, signin.partition, signin.region
    );
    eprintln!("lands on {}", signin.destination);
    if let Some(t) = signin.expires_at {
        eprintln!(
            "the console session ends at {} at the latest",
            output::when(t)
        );
    }
    for note in &signin.notes {
        eprintln!("note: {note}");
    }
    if !opened {
        if !print {
            eprintln!("no browser could be opened here: open this URL yourself");
        }
        eprintln!("the URL signs in whoever opens it within 15 minutes: do not share or store it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_spans() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("`1h`"), "{e}");
    }
}
