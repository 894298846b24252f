//! Whom the client may talk to. Before a single byte goes out (an MFA code, a request for keys),
//! the runtime dir must be a real directory of this user's that no one else can enter, and the
//! process on the other end of the control socket must run as this user. Anything else may be
//! another local user listening in credd's place.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use credd_proto::paths::{current_uid, user};

/// Why a runtime dir or a socket peer is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distrust {
    /// A symlink, a file, anything but a plain directory.
    NotADirectory,
    OwnedBy(u32),
    /// Group or others may enter it: `mode` (permission bits).
    OpenToOthers {
        mode: u32,
    },
    /// The process listening on the socket runs as another user.
    PeerIs(u32),
    /// The peer's user could not be read: the OS's error number says why.
    PeerUnknown {
        errno: Option<i32>,
    },
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::NotADirectory => write!(f, "it is not a plain directory (a symlink?)"),
            Distrust::OwnedBy(uid) => write!(f, "it belongs to {}, not to you", user(*uid)),
            Distrust::OpenToOthers { mode } => {
                write!(f, "others may enter it (mode {mode:04o}; credd needs 0700)")
            }
            Distrust::PeerIs(uid) => write!(
                f,
                "the process listening on it runs as {}, not as you",
                user(*uid)
            ),
            Distrust::PeerUnknown { errno } => {
                let why = errno.map_or_else(
                    || "the system gave no reason".to_owned(),
                    |n| io::Error::from_raw_os_error(n).to_string(),
                );
                write!(f, "its listener's user cannot be checked: {why}")
            }
        }
    }
}

/// Whether `dir` exists, and if so that it is ours alone. `Ok(false)`: nothing there yet (the
/// daemon creates it when it starts).
pub fn runtime_dir(dir: &Path) -> Result<bool, Distrust> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        // Unreadable (e.g. a parent we cannot search): connecting will say so.
        Err(_) => return Ok(true),
    };
    if !meta.is_dir() {
        return Err(Distrust::NotADirectory);
    }
    if meta.uid() != current_uid() {
        return Err(Distrust::OwnedBy(meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Distrust::OpenToOthers {
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(true)
}

/// The peer of a connected control socket runs as this user.
pub fn peer(stream: &UnixStream) -> Result<(), Distrust> {
    match peer_uid(stream) {
        Ok(uid) if uid == current_uid() => Ok(()),
        Ok(uid) => Err(Distrust::PeerIs(uid)),
        Err(e) => Err(Distrust::PeerUnknown {
            errno: e.raw_os_error(),
        }),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills exactly one ucred; `len` says how large ours is.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: getpeereid writes two ids into the locals it is given.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_private_directory_of_ours_is_trusted() {
        let base = std::env::temp_dir().join(format!("credd-trust-{}", std::process::id()));
        let dir = base.join("run");
        assert_eq!(
            runtime_dir(&dir),
            Ok(false),
            "missing: nothing to trust yet"
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(runtime_dir(&dir), Ok(true));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            runtime_dir(&dir),
            Err(Distrust::OpenToOthers { mode: 0o755 })
        );
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(runtime_dir(&link), Err(Distrust::NotADirectory));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_socket_pair_of_our_own_is_trusted() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer(&a), Ok(()));
    }

    #[test]
    fn an_unreadable_peer_says_what_the_os_said() {
        let why = Distrust::PeerUnknown {
            errno: Some(libc::EBADF),
        };
        assert_eq!(
            why.to_string(),
            format!(
                "its listener's user cannot be checked: {}",
                io::Error::from_raw_os_error(libc::EBADF)
            )
        );
    }

    #[test]
    fn users_are_named_when_known() {
        assert_eq!(user(0), "uid 0 (root)");
        assert_eq!(user(4_000_000_000), "uid 4000000000");
    }
}
