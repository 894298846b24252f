//! Installing the harness's external tools (moto's venv, npm's oidc-provider) into directories
//! under `target/`, once per machine: the first test process to need one installs it while the
//! others wait on a lock file, and a marker naming the pinned versions makes a changed pin
//! reinstall on the next run.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::workspace_dir;

/// Written into an install's directory once it is complete, holding what was pinned.
const READY_MARKER: &str = "credd-tests-ready";

/// `target/NAME` in the workspace: where the harness installs its tools.
pub fn target_dir(name: &str) -> PathBuf {
    workspace_dir().join("target").join(name)
}

/// Takes the install lock `target/NAME.lock`, waiting while another thread or test process holds
/// it; the lock is released when the returned file is dropped.
pub fn lock_install(name: &str) -> File {
    let lock_path = target_dir(&format!("{name}.lock"));
    let target = lock_path.parent().expect("target/ has a parent");
    fs::create_dir_all(target).unwrap_or_else(|e| panic!("create {}: {e}", target.display()));
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("create the lock file {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    lock
}

/// Makes sure `dir` (under `target/`) holds a complete install of `pinned`: its file `probe`
/// exists and its ready marker names `pinned` exactly. Otherwise `install(dir)` runs, under
/// [`lock_install`] and after a re-check (another process may have finished meanwhile), and the
/// marker is written once it returns; an install that fails or is interrupted leaves no marker,
/// so the next run starts it over. `what` names the tool in the progress lines.
pub fn install_once(
    dir: &Path,
    pinned: &str,
    probe: &str,
    what: &str,
    install: impl FnOnce(&Path),
) {
    let ready = || {
        dir.join(probe).is_file()
            && fs::read_to_string(dir.join(READY_MARKER)).is_ok_and(|have| have == pinned)
    };
    if ready() {
        return;
    }
    let name = dir
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_else(|| panic!("{} has no name for its lock file", dir.display()));
    let _lock = lock_install(name);
    if ready() {
        return;
    }
    let started = Instant::now();
    eprintln!(
        "credd-tests: installing {what} into {} (once)",
        dir.display()
    );
    // A marker from an older pin must not survive a failed install of the new one.
    match fs::remove_file(dir.join(READY_MARKER)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", dir.join(READY_MARKER).display()),
    }
    install(dir);
    fs::write(dir.join(READY_MARKER), pinned)
        .unwrap_or_else(|e| panic!("write {}: {e}", dir.join(READY_MARKER).display()));
    eprintln!("credd-tests: {what} installed in {:.0?}", started.elapsed());
}

/// Runs one install step (`what`, e.g. "npm install") to the end; panics with its output and the
/// command line to run by hand when it cannot start or fails.
pub fn run_install_step(command: &mut Command, what: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!(
            "{what} could not run ({e}): is {} installed?\nto run it by hand: {}",
            command.get_program().to_string_lossy(),
            by_hand(command)
        )
    });
    if !output.status.success() {
        panic!(
            "{what} failed ({}) while installing the tests' tools\nto run it by hand: {}\n\
             --- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            by_hand(command),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `command` as a shell line: `cd DIR && PROGRAM ARGS...`, each word quoted where a shell needs it.
fn by_hand(command: &Command) -> String {
    let words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| shell_quote(&word.to_string_lossy()))
        .collect();
    match command.get_current_dir() {
        Some(dir) => format!(
            "cd {} && {}",
            shell_quote(&dir.to_string_lossy()),
            words.join(" ")
        ),
        None => words.join(" "),
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%_+=:,./-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_by_hand_line_quotes_what_a_shell_would_expand() {
        let mut command = Command::new("pip");
        command
            .args(["install", "moto[server]==5.2.5", "it's"])
            .current_dir("/tmp/a dir");
        assert_eq!(
            by_hand(&command),
            r"cd '/tmp/a dir' && pip install 'moto[server]==5.2.5' 'it'\''s'"
        );
    }
}
