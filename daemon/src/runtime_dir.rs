//! The daemon's footprint on the file system: the 0700 runtime dir, the single-instance lock,
//! the 0600 control socket (stale ones from a killed daemon are replaced) and the process
//! hardening that keeps secrets out of core dumps.
//!
//! Nothing in the runtime dir is trusted because of its name: a dir others could write into is
//! refused unless empty, files are created with `O_EXCL|O_NOFOLLOW` (a planted symlink is never
//! followed), and every file read back must be a regular file of ours that only we can read.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
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
        "{} {path} belongs to uid {owner}, not to you (uid {me}); refusing to use it \
         (set {} to a directory of your own)", role.name, role.env
    )]
    ForeignDir {
        role: DirRole,
        path: PathBuf,
        owner: u32,
        me: u32,
    },
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
    #[error(
        "{} {path} was writable by others (mode {mode:04o}) and holds {entries}: \
         another user could have planted them. Check and remove them, or set {} \
         to a fresh directory of your own", role.name, role.env
    )]
    Tampered {
        role: DirRole,
        path: PathBuf,
        mode: u32,
        entries: String,
    },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("{path}: {why}; not using it")]
    Untrusted { path: PathBuf, why: &'static str },
}

/// Which of credd's private directories: what errors call it, and how to choose another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirRole {
    pub name: &'static str,
    pub env: &'static str,
}

/// The runtime dir: the control socket, the HTTP token, a saved session.
pub const RUNTIME: DirRole = DirRole {
    name: "runtime dir",
    env: "CREDD_RUNTIME_DIR",
};
/// The state dir: the current profile and the log. No secrets, but whoever writes there chooses
/// which profile the current route serves, or writes into the log.
pub const STATE: DirRole = DirRole {
    name: "state dir",
    env: "CREDD_STATE_DIR",
};

/// What [`ensure_private_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateDir {
    /// Others could read or enter it before it was tightened: whatever it held may be known to
    /// them (a token is replaced, a saved session dropped).
    pub was_open: bool,
}

/// Creates `dir` (and missing parents) with mode 0700, or checks an existing one is ours. One
/// that others could enter is closed first (0700); if they could also write into it and it is not
/// empty, it is refused: its files may be theirs.
pub fn ensure_private_dir(dir: &Path, role: DirRole) -> Result<PrivateDir, RuntimeError> {
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
            role,
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(PrivateDir { was_open: false });
    }
    // Close the door before looking inside: from here on, no one else can add an entry.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    if mode & 0o022 != 0 {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        if !names.is_empty() {
            names.sort();
            let more = names.len().saturating_sub(5);
            names.truncate(5);
            let mut entries = names.join(", ");
            if more > 0 {
                entries.push_str(&format!(" and {more} more"));
            }
            return Err(RuntimeError::Tampered {
                role,
                path: dir.to_path_buf(),
                mode,
                entries,
            });
        }
    }
    tracing::warn!(dir = %dir.display(), mode = format!("{mode:04o}"), "{} was open to others; set it to 0700", role.name);
    Ok(PrivateDir { was_open: true })
}

/// Whether files in `dir` stay in memory (tmpfs, ramfs): only there may a secret outlive the
/// process (the contract allows the runtime dir only when it is not persistent disk).
pub fn is_memory_backed(dir: &Path) -> bool {
    memory_backed(dir).unwrap_or(false)
}

#[cfg(target_os = "linux")]
fn memory_backed(dir: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statfs is a valid value for statfs(2) to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a statfs we own.
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    let kind = st.f_type as i64;
    Some(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}

#[cfg(not(target_os = "linux"))]
fn memory_backed(_dir: &Path) -> Option<bool> {
    // macOS has no tmpfs by default; its per-user temp dir is on disk.
    Some(false)
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
        .custom_flags(libc::O_NOFOLLOW)
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

/// Writes `contents` to `path` atomically (temp file + rename) with mode 0600. The temp file is
/// created new (`O_EXCL|O_NOFOLLOW`): whatever was planted under its name is removed, never
/// written through; the rename replaces a symlink at `path` rather than following it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::File {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
    };
    let result = (|| {
        let mut f = match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_file(&tmp)?;
                create()?
            }
            other => other?,
        };
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Reads a file the daemon wrote itself: `Ok(None)` when there is none; an error when it is not a
/// regular file of ours that only we can read (a symlink, a FIFO, another user's, mode 0644), or
/// larger than `max_len`. The bytes are wiped when dropped.
pub fn read_private_file(
    path: &Path,
    max_len: u64,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, RuntimeError> {
    let untrusted = |why| RuntimeError::Untrusted {
        path: path.to_path_buf(),
        why,
    };
    let failed = |source| RuntimeError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        // Not followed, and a planted FIFO cannot make the open block.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(untrusted("it is a symlink"));
        }
        Err(source) => return Err(failed(source)),
    };
    // The checks are on the open file itself: nothing can be swapped in after them.
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(untrusted("it is not a regular file"));
    }
    if meta.uid() != current_uid() {
        return Err(untrusted("it belongs to another user"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(untrusted("others may read or write it"));
    }
    if meta.len() > max_len {
        return Err(untrusted("it is larger than credd ever writes"));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(max_len).read_to_end(&mut bytes).map_err(failed)?;
    Ok(Some(bytes))
}

/// Keeps secrets out of core dumps and away from same-user ptrace where the OS allows it; every
/// file the daemon creates is private (umask 077); enough file descriptors for many clients.
pub fn harden_process() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0o077) };
    raise_open_files_limit();
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

/// Raises the soft limit on open files to the hard one: connections from many local programs
/// must not run the daemon out of descriptors before its own per-user limits apply.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass; raising a soft limit up to
    // the hard one needs no privilege.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            // macOS refuses more than OPEN_MAX for the soft limit.
            let wanted = if cfg!(target_os = "macos") {
                limit.rlim_max.min(10_240)
            } else {
                limit.rlim_max
            };
            limit.rlim_cur = wanted;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("credd-rt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn private_dir_is_created_0700_and_loose_modes_tightened() {
        let base = scratch("dir");
        let dir = base.join("a/b");
        assert_eq!(
            ensure_private_dir(&dir, RUNTIME).unwrap(),
            PrivateDir { was_open: false }
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::write(dir.join("control.sock"), "").unwrap();
        // Readable by others but not writable: nothing can have been planted, only read.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            ensure_private_dir(&dir, RUNTIME).unwrap(),
            PrivateDir { was_open: true }
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_dir_others_could_write_into_is_refused_unless_empty() {
        let dir = scratch("open");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            ensure_private_dir(&dir, RUNTIME).unwrap(),
            PrivateDir { was_open: true }
        );
        fs::write(dir.join("session.json"), "{}").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        let e = ensure_private_dir(&dir, RUNTIME).unwrap_err();
        assert!(
            matches!(e, RuntimeError::Tampered { mode: 0o1777, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("holds session.json"), "{e}");
        assert_eq!(
            fs::metadata(&dir).unwrap().mode() & 0o7777,
            0o700,
            "closed even when refused"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_temp_symlink_is_replaced_never_written_through() {
        let dir = scratch("plant");
        ensure_private_dir(&dir, RUNTIME).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.join("http.token");
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_private_file(&path, b"token").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "the symlink was replaced by a file");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"token");
        assert!(!tmp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_private_regular_files_of_ours_are_read_back() {
        let dir = scratch("read");
        ensure_private_dir(&dir, RUNTIME).unwrap();
        let path = dir.join("session.json");
        assert!(read_private_file(&path, 100).unwrap().is_none());
        write_private_file(&path, b"{}").unwrap();
        assert_eq!(&**read_private_file(&path, 100).unwrap().unwrap(), b"{}");
        assert!(read_private_file(&path, 1).is_err(), "too large");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private_file(&path, 100).unwrap_err();
        assert!(e.to_string().contains("others may read"), "{e}");
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &path).unwrap();
        let e = read_private_file(&path, 100).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        fs::remove_file(&path).unwrap();
        let fifo = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = read_private_file(&path, 100).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn tmpfs_is_told_from_disk() {
        assert!(
            is_memory_backed(Path::new("/dev/shm")),
            "/dev/shm is tmpfs on Linux (the tests keep runtime dirs there)"
        );
        assert!(
            !is_memory_backed(Path::new("/proc")),
            "a file system, but not memory for files"
        );
        assert!(!is_memory_backed(Path::new("/nonexistent-credd")));
    }

    #[test]
    fn socket_is_0600_and_stale_socket_replaced_but_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("credd-sock-test-{}", std::process::id()));
        ensure_private_dir(&dir, RUNTIME).unwrap();
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
