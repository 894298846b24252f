//! `credd refresh [<profile>|--all]`: new credentials now, through the daemon's single flight;
//! prints each profile's new expiry, or why it failed (a login it needs is named, never asked
//! for here).

use std::process::ExitCode;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{ErrorCode, RefreshOutcome, Request, Response};

use super::{ask_within, unexpected};
use crate::error::ClientError;
use crate::output::{self, when};

/// The daemon's own wait, and time for its answer to come back.
const WAIT: Duration = Duration::from_secs(credd_proto::REFRESH_WAIT_SECS + 15);

pub fn run(
    paths: &Paths,
    json: bool,
    profile: Option<String>,
    all: bool,
) -> Result<ExitCode, ClientError> {
    let request = Request::Refresh { profile, all };
    let outcomes = match ask_within(paths, &request, WAIT)? {
        Response::Refreshed { outcomes } => outcomes,
        other => return Err(unexpected(&request, other)),
    };
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if json {
        output::json(&serde_json::json!({ "outcomes": outcomes }));
    } else {
        if outcomes.is_empty() {
            eprintln!("credd: no profiles configured: nothing to refresh");
        }
        for o in &outcomes {
            match &o.error {
                None => println!("{}", describe(o)),
                Some(_) => eprintln!("credd: {}", describe(o)),
            }
        }
        if outcomes.len() > 1 && failed > 0 {
            eprintln!(
                "credd: {} of {} failed",
                failed,
                credd_proto::human::count(outcomes.len(), "refresh", "refreshes")
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `prod: refreshed, expires 14:32 (in 59m 59s) [us-east-1]`, or `prod: not refreshed: ...`.
fn describe(o: &RefreshOutcome) -> String {
    match (&o.error, o.expires_at) {
        (Some(e), _) => {
            let todo = match e.code {
                // The message already says to run `credd login`; nothing was asked here.
                ErrorCode::LoginRequired => " (a login is needed first)",
                _ => "",
            };
            format!("{}: not refreshed{todo}: {}", o.profile, e.message)
        }
        (None, Some(t)) => {
            let region = o
                .sts_region
                .as_deref()
                .map(|r| format!(" [STS {r}]"))
                .unwrap_or_default();
            format!("{}: refreshed, expires {}{region}", o.profile, when(t))
        }
        (None, None) => format!("{}: refreshed", o.profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::ErrorReply;

    #[test]
    fn an_outcome_says_the_new_expiry_or_why_not() {
        let ok = RefreshOutcome {
            profile: "prod".into(),
            expires_at: Some(output::now() + 3600),
            sts_region: Some("us-east-1".into()),
            error: None,
        };
        let text = describe(&ok);
        assert!(text.starts_with("prod: refreshed, expires "), "{text}");
        assert!(
            text.ends_with(" (in 1h) [STS us-east-1]") || text.contains("(in 59m"),
            "{text}"
        );
        let login = RefreshOutcome {
            profile: "prod".into(),
            expires_at: None,
            sts_region: None,
            error: Some(ErrorReply::new(
                ErrorCode::LoginRequired,
                "not logged in: run `credd login`",
            )),
        };
        assert_eq!(
            describe(&login),
            "prod: not refreshed (a login is needed first): not logged in: run `credd login`"
        );
    }
}
