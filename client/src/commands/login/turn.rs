//! Turn-taking between logins on demand: a file lock in the runtime dir, so `make -j` or
//! Terraform starting several `credd` at once gets one prompt, and the holder's session ID in the
//! file, so a waiter on another terminal says what it waits for.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Duration;

use credd_proto::paths::Paths;

use super::console::Console;
use crate::error::ClientError;

/// In the runtime dir: held by the login on demand under way.
const TURN_FILE: &str = "login-on-demand.lock";

/// Waits for the login on demand another `credd` is making, then holds the turn until dropped
/// (the lock goes with the process: a killed `credd` never leaves it held). The holder writes its
/// session ID in the file: one that shares it shares the terminal (a terminal belongs to one
/// session), where the prompt is already showing; any other says what it waits for.
pub(super) fn take_turn(paths: &Paths, console: &mut Console) -> Result<File, ClientError> {
    let path = paths.runtime_dir.join(TURN_FILE);
    let turn_error = |source| ClientError::LoginTurn {
        path: path.clone(),
        source,
    };
    // Private, and never through a link: the runtime dir is checked as ours, this is belt and
    // braces for a file that outlives any one `credd`.
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(turn_error)?;
    // One an older credd made with the umask's mode.
    let _ = file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    // SAFETY: getsid(0) asks about this process; it cannot fail for it.
    let session = unsafe { libc::getsid(0) }.to_string();
    if file.try_lock().is_err() {
        let holder = holder_session(&mut file);
        if holder.is_some_and(|holder| holder != session) {
            console.say("credd: waiting for the login under way in another terminal.\n");
        }
        file.lock().map_err(turn_error)?;
    }
    // Only a hint for the next waiter: a failure to write it costs a message, nothing more.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(session.as_bytes(), 0));
    Ok(file)
}

/// The session ID the turn's holder wrote, once it has (it takes the lock first, then writes):
/// `None` when it has not within a moment, and then nothing is said.
fn holder_session(file: &mut File) -> Option<String> {
    for _ in 0..20 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        if !holder.is_empty() {
            return Some(holder);
        }
        std::thread::sleep(Duration::from_millis(10));
        let _ = std::io::Seek::rewind(file);
    }
    None
}
