//! `credd prompt`: the current profile, for a shell prompt. It runs before every prompt, so it
//! reads the state file the daemon keeps (`<state dir>/credd/state.json`, rewritten by the
//! daemon at each switch, config edit and start) instead of asking the daemon: no socket, no
//! daemon started. And a prompt wants no noise: no current profile, or no state file, prints
//! nothing, and it never fails (exit 0) nor prints an error.
//!
//! `--region` prints the current profile's region instead, for the region hook of
//! `credd env --hook`; it exits 1 (silently) when no state file can be read, so that the hook
//! leaves the shell's region alone rather than unset it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use credd_proto::paths::{Paths, current_uid};
use credd_proto::state::State;

use crate::output;

/// Far more than a profile name and a region need.
const MAX_LEN: u64 = 64 * 1024;

pub fn run(paths: &Paths, json: bool, region: bool) -> ExitCode {
    let state = read(&paths.state_file());
    if json {
        let state = state.unwrap_or_default();
        output::json(&serde_json::json!({
            "profile": state.current_profile,
            "region": state.current_region,
        }));
        return ExitCode::SUCCESS;
    }
    let shown = match (&state, region) {
        (None, true) => return ExitCode::FAILURE,
        (None, false) => None,
        (Some(state), false) => state.current_profile.as_deref(),
        (Some(state), true) => state.current_region.as_deref(),
    };
    // A prompt shows it as it is: nothing that could move the cursor or retitle the terminal.
    if let Some(shown) = shown.filter(|s| !s.is_empty() && !s.chars().any(char::is_control)) {
        println!("{shown}");
    }
    ExitCode::SUCCESS
}

/// The state file when it is a regular file of this user's (as the daemon writes it); `None`
/// otherwise, or when it cannot be read or parsed.
pub fn read(path: &Path) -> Option<State> {
    let file = fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != current_uid() || meta.len() > MAX_LEN {
        return None;
    }
    let mut text = Vec::new();
    file.take(MAX_LEN).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_daemon_writes_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(read(&path), None, "no file");
        fs::write(
            &path,
            r#"{"current_profile": "prod", "current_region": "eu-west-1"}"#,
        )
        .unwrap();
        let state = read(&path).unwrap();
        assert_eq!(state.current_profile.as_deref(), Some("prod"));
        assert_eq!(state.current_region.as_deref(), Some("eu-west-1"));
        fs::write(&path, "{").unwrap();
        assert_eq!(read(&path), None, "corrupt");
        assert_eq!(read(dir.path()), None, "a directory");
    }
}
