//! `credd refresh [<profile>|--all]`: new credentials now, through each profile's worker (one
//! STS call however many ask), answered with each outcome; never a prompt in the daemon.

use credd_proto::{RefreshOutcome, Response};
use tokio::task::JoinSet;

use crate::clock::unix;
use crate::daemon::Daemon;
use crate::engine::EngineError;

pub async fn handle(daemon: &Daemon, profile: Option<String>, all: bool) -> Response {
    let names = if all {
        daemon.engine.profile_names()
    } else {
        match profile.or_else(|| daemon.vending.current()) {
            Some(name) => vec![name],
            None => {
                return super::error(&EngineError::NoCurrentProfile {
                    known: daemon.engine.profile_names(),
                });
            }
        }
    };
    // One unknown name is the whole answer: there is nothing else to report.
    if let [name] = names.as_slice()
        && !daemon.config().profiles.contains_key(name)
    {
        return super::error(&daemon.engine.unknown_profile(name));
    }
    let mut refreshes = JoinSet::new();
    for (i, name) in names.into_iter().enumerate() {
        let engine = daemon.engine.clone();
        refreshes.spawn(async move {
            let outcome = match engine.refresh_now(&name).await {
                Ok(c) => RefreshOutcome {
                    profile: name,
                    expires_at: Some(unix(c.expiration)),
                    sts_region: Some(c.region.clone()),
                    error: None,
                },
                Err(e) => RefreshOutcome {
                    profile: name,
                    expires_at: None,
                    sts_region: None,
                    error: Some(super::reply(&e)),
                },
            };
            (i, outcome)
        });
    }
    let mut outcomes: Vec<(usize, RefreshOutcome)> = refreshes.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    Response::Refreshed {
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
    }
}
