//! `credd switch <profile>`: makes PROFILE the one the current route serves; the daemon
//! remembers it across restarts and names the known profiles when PROFILE is not one. Without
//! PROFILE on a terminal, a fuzzy-filtered picker of the profiles, the current one marked.

use std::fs::OpenOptions;
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use dialoguer::FuzzySelect;
use dialoguer::console::Term;
use serde_json::json;

use super::{ask, unexpected};
use crate::error::ClientError;
use crate::output;

/// `profile` is `None` only on a terminal (`main` makes it required elsewhere): then the user
/// picks one.
pub fn run(paths: &Paths, json: bool, profile: Option<String>) -> Result<ExitCode, ClientError> {
    let profile = match profile {
        Some(profile) => profile,
        None => pick(paths)?,
    };
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

/// The picker, on the controlling terminal: type to filter, arrows to move, Enter to choose, Esc to leave.
fn pick(paths: &Paths) -> Result<String, ClientError> {
    let request = Request::Profiles;
    let (current, profiles) = match ask(paths, &request)? {
        Response::Profiles { current, profiles } => (current, profiles),
        other => return Err(unexpected(&request, other)),
    };
    if profiles.is_empty() {
        return Err(ClientError::NoProfiles {
            config: paths.config.clone(),
        });
    }
    let mut names: Vec<String> = profiles.into_iter().map(|p| p.name).collect();
    let at = names
        .iter()
        .position(|n| Some(n) == current.as_ref())
        .unwrap_or(0);
    // Drawn on the terminal itself, as fzf does: stdout and stderr may be pipes.
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(ClientError::Picker)?;
    let term = Term::read_write_pair(tty.try_clone().map_err(ClientError::Picker)?, tty);
    let chosen = FuzzySelect::new()
        .with_prompt("Switch to profile (type to filter)")
        .items(labels(&names, current.as_deref()))
        .default(at)
        .interact_on_opt(&term);
    // The picker hides the cursor while it draws; a Ctrl-C must not leave it hidden.
    let _ = term.show_cursor();
    match chosen {
        Ok(Some(i)) => Ok(names.swap_remove(i)),
        Ok(None) => Err(ClientError::NoProfileChosen),
        Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
            Err(ClientError::NoProfileChosen)
        }
        Err(dialoguer::Error::IO(e)) => Err(ClientError::Picker(e)),
    }
}

/// What the picker shows: each name, the current one marked as `credd profiles` marks it.
fn labels(names: &[String], current: Option<&str>) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            if Some(n.as_str()) == current {
                format!("{n} (current)")
            } else {
                n.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_profile_is_marked() {
        let names = ["staging".to_owned(), "prod".to_owned()];
        assert_eq!(labels(&names, Some("prod")), ["staging", "prod (current)"]);
        assert_eq!(labels(&names, None), ["staging", "prod"]);
    }
}
