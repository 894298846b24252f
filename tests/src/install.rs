//! Installing the harness's external tools (moto's venv, npm's oidc-provider) into directories
//! under `target/`, once per machine: the first test process to need one installs it while the
//! others wait on a lock file, and a marker naming the pinned versions makes a changed pin
//! reinstall on the next run. Debian packages (D-Bus, GNOME Keyring, SimpleSAMLphp) are installed
//! with apt-get the same way, when the tests run as root ([`apt_install`]).

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

/// Makes sure the Debian packages `missing()` names (those not installed yet, none when all are)
/// get installed, for `what` (a phrase for the messages, e.g. "a private D-Bus session bus").
/// As root, `apt-get install -y` them (after an `apt-get update` if the install fails), serialized
/// across test processes by [`lock_install`]`(lock)`; as anyone else, Err with the command to run.
pub fn apt_install(
    what: &str,
    lock: &str,
    missing: impl Fn() -> Vec<String>,
) -> Result<(), String> {
    let packages = missing();
    if packages.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "{what} needs the Debian packages {}; install them with\n    sudo {}\n\
             (or run the tests as root, as CI does, and they install themselves)",
            packages.join(" "),
            apt_install_line(&packages)
        ));
    }
    let _lock = lock_install(lock);
    // Another test process may have installed them while this one waited for the lock.
    let packages = missing();
    if packages.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    eprintln!(
        "credd-tests: installing {} with apt-get for {what} (once)",
        packages.join(" ")
    );
    if let Err(first) = apt_get("install", &packages) {
        // The package lists may be missing or stale (a fresh machine): update, then try again.
        apt_get("update", &[]).map_err(|e| format!("{first}\n{e}"))?;
        apt_get("install", &packages)?;
    }
    let still = missing();
    if !still.is_empty() {
        return Err(format!(
            "`{}` succeeded but what {what} needs from {} is still missing",
            apt_install_line(&packages),
            still.join(" ")
        ));
    }
    eprintln!(
        "credd-tests: {} installed in {:.0?}",
        packages.join(" "),
        started.elapsed()
    );
    Ok(())
}

/// The command that installs `packages`, for messages.
fn apt_install_line(packages: &[String]) -> String {
    format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// `apt-get VERB [-y --no-install-recommends packages]`; Err with apt's output on failure.
fn apt_get(verb: &str, packages: &[String]) -> Result<(), String> {
    let mut command = Command::new("apt-get");
    command
        // Waits for another apt or dpkg (not ours) instead of failing at once.
        .args(["-o", "DPkg::Lock::Timeout=300"])
        .arg(verb)
        .env("DEBIAN_FRONTEND", "noninteractive");
    if !packages.is_empty() {
        command
            .args(["-y", "--no-install-recommends"])
            .args(packages);
    }
    try_install_step(&mut command, &format!("apt-get {verb}"))
}

/// [`install_once`] of a Python venv at `dir` with `requirements` (pinned `name==version`);
/// `probe` is a file the complete venv has (`bin/moto_server`).
pub fn venv_once(dir: &Path, requirements: &[&str], probe: &str, what: &str) {
    install_once(dir, &requirements.join("\n"), probe, what, |venv| {
        // --clear: a half-made venv from an interrupted install is started over.
        run_install_step(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(venv),
            "python3 -m venv",
        );
        run_install_step(
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet"])
                .args(requirements),
            "pip install",
        );
    });
}

/// Runs one install step (`what`, e.g. "npm install") to the end; panics with its output and the
/// command line to run by hand when it cannot start or fails.
pub fn run_install_step(command: &mut Command, what: &str) {
    try_install_step(command, what).unwrap_or_else(|e| panic!("{e}"));
}

/// [`run_install_step`], with Err instead of the panic.
fn try_install_step(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| {
        format!(
            "{what} could not run ({e}): is {} installed?\nto run it by hand: {}",
            command.get_program().to_string_lossy(),
            by_hand(command)
        )
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}) while installing the tests' tools\nto run it by hand: {}\n\
         --- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        by_hand(command),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
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
