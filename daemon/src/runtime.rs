//! The daemon's footprint on the file system: the 0700 runtime dir, the single-instance lock,
//! the 0600 control socket (stale ones from a killed daemon are replaced) and the process
//! hardening that keeps secrets out of core dumps.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use credd_proto::paths::current_uid;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime dir {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error(
        "runtime dir {path} belongs to uid {owner}, not to you (uid {me}); refusing to use it \
         (set CREDD_RUNTIME_DIR to a directory of your own)"
    )]
    ForeignDir { path: PathBuf, owner: u32, me: u32 },
    #[error("another credd-daemon is already running for this runtime dir ({path})")]
    AlreadyRunning { path: PathBuf },
    #[error("control socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error(
        "control socket path {path} is {len} bytes, longer than the {max} a Unix socket allows; \
         set CREDD_RUNTIME_DIR to a shorter directory"
    )]
    SocketPathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
}

/// Creates `dir` (and missing parents) with mode 0700, or checks an existing one is ours and
/// private; a private dir of ours with loose permissions is tightened.
pub fn ensure_private_dir(dir: &Path) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    // symlink_metadata: a symlink planted in our place is refused, not followed.
    let meta = fs::symlink_metadata(dir).map_err(err)?;
    if !meta.is_dir() {
        return Err(err(io::Error::other("exists and is not a directory")));
    }
    let me = current_uid();
    if meta.uid() != me {
        return Err(RuntimeError::ForeignDir {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", meta.mode() & 0o777), "runtime dir was accessible to others; setting 0700");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Held for the daemon's lifetime; a second daemon on the same runtime dir fails to take it.
pub struct InstanceLock {
    _file: File,
}

pub fn lock_instance(path: &Path) -> Result<InstanceLock, RuntimeError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| RuntimeError::File {
            path: path.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(InstanceLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(RuntimeError::AlreadyRunning {
            path: path.parent().unwrap_or(path).to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(RuntimeError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// sockaddr_un's sun_path is 108 bytes on Linux and 104 on macOS, NUL included.
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// Binds the control socket with mode 0600 set before `listen`, so it is never open to others.
/// An existing socket file is replaced only when nothing answers on it.
pub fn bind_control_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, RuntimeError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(RuntimeError::SocketPathTooLong {
            path: path.to_path_buf(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    let err = |source| RuntimeError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if fs::symlink_metadata(path).is_ok() {
        if StdUnixStream::connect(path).is_ok() {
            return Err(RuntimeError::AlreadyRunning {
                path: path.to_path_buf(),
            });
        }
        tracing::info!(socket = %path.display(), "removing stale control socket of a daemon that is gone");
        fs::remove_file(path).map_err(err)?;
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(err)?;
    socket
        .bind(&SockAddr::unix(path).map_err(err)?)
        .map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
    socket.listen(128).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    Ok(std::os::unix::net::UnixListener::from(
        std::os::fd::OwnedFd::from(socket),
    ))
}

/// Writes `contents` to `path` atomically (temp file + rename) with mode 0600.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::File {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Keeps secrets out of core dumps and away from same-user ptrace where the OS allows it.
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(error = %io::Error::last_os_error(), "could not mark the daemon non-dumpable");
        }
    }
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass; lowering a limit needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "could not disable core dumps");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_created_0700_and_loose_modes_tightened() {
        let base = std::env::temp_dir().join(format!("credd-rt-test-{}", std::process::id()));
        let dir = base.join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn socket_is_0600_and_stale_socket_replaced_but_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("credd-sock-test-{}", std::process::id()));
        ensure_private_dir(&dir).unwrap();
        let path = dir.join("c.sock");
        let live = bind_control_socket(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            bind_control_socket(&path),
            Err(RuntimeError::AlreadyRunning { .. })
        ));
        drop(live); // the file stays behind, like after a SIGKILL
        assert!(path.exists());
        let _again = bind_control_socket(&path).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
