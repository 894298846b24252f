//! The interactive shells the shell-integration scenarios run (`credd completions`, the prompt
//! hook of `credd env --hook`): bash, and zsh and fish installed from Debian by apt-get when the
//! tests run as root ([`crate::install::apt_install`]); as another user a missing one fails its
//! test with the command to run.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::install::apt_install;
use crate::session_bus::find_program;

/// The shell `name` (`bash`, `zsh`, `fish`), installed first if it is missing.
pub fn shell(name: &str) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find_program(name) {
        return found;
    }
    let missing = || match find_program(name) {
        Some(_) => Vec::new(),
        None => vec![name.to_owned()],
    };
    apt_install(&format!("the {name} scenarios"), "shells-install", missing)
        .unwrap_or_else(|e| panic!("{e}"));
    find_program(name).unwrap_or_else(|| panic!("{name} is still not on PATH after apt-get"))
}
