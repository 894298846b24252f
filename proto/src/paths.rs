//! Where credd keeps things. Client and daemon must agree on these, so they live here.
//!
//! | what | default | override |
//! | config | `<config dir>/credd/config.toml` | `CREDD_CONFIG`, `--config` |
//! | runtime dir (0700) | `$XDG_RUNTIME_DIR/credd`, else a private dir (below) | `CREDD_RUNTIME_DIR` |
//! | state dir | `<state dir>/credd` | `CREDD_STATE_DIR` |
//!
//! The runtime dir never defaults to a guessable name in a shared, world-writable directory such
//! as `/tmp`: another user could create it first and listen there in credd's place. Without
//! `$XDG_RUNTIME_DIR` it is `$TMPDIR/credd` where `$TMPDIR` is the user's alone (macOS), else
//! `<cache dir>/credd/run`.

use std::env;
use std::path::PathBuf;

pub const ENV_CONFIG: &str = "CREDD_CONFIG";
pub const ENV_RUNTIME_DIR: &str = "CREDD_RUNTIME_DIR";
pub const ENV_STATE_DIR: &str = "CREDD_STATE_DIR";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config: PathBuf,
    /// Whether `--config` or `CREDD_CONFIG` named the config, rather than the default: then the
    /// client tells the daemon which file it meant, and a daemon running another one refuses.
    pub config_named: bool,
    pub runtime_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    /// Resolves every path from the environment; `config` (from `--config`) wins over `CREDD_CONFIG`.
    pub fn resolve(config: Option<PathBuf>) -> Paths {
        let base = directories::BaseDirs::new();
        let config = config.or_else(|| non_empty_env(ENV_CONFIG));
        let config_named = config.is_some();
        let config = config.unwrap_or_else(|| {
            base.as_ref()
                .map(|b| b.config_dir().to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."))
                .join("credd")
                .join("config.toml")
        });
        let runtime_dir = non_empty_env(ENV_RUNTIME_DIR).unwrap_or_else(|| {
            match base.as_ref().and_then(|b| b.runtime_dir()) {
                Some(dir) => dir.join("credd"),
                None => fallback_runtime_dir(base.as_ref()),
            }
        });
        let state_dir = non_empty_env(ENV_STATE_DIR).unwrap_or_else(|| {
            base.as_ref()
                .map(|b| {
                    b.state_dir()
                        .unwrap_or_else(|| b.data_local_dir())
                        .to_path_buf()
                })
                .unwrap_or_else(|| PathBuf::from("."))
                .join("credd")
        });
        Paths {
            config: absolute(config),
            config_named,
            runtime_dir: absolute(runtime_dir),
            state_dir: absolute(state_dir),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("control.sock")
    }

    pub fn token_file(&self) -> PathBuf {
        self.runtime_dir.join("http.token")
    }

    /// Held (flock) by the running daemon: two daemons can never share a runtime dir.
    pub fn lock_file(&self) -> PathBuf {
        self.runtime_dir.join("daemon.lock")
    }

    /// The access session kept across daemon restarts (0600, runtime dir only, gone on logout).
    pub fn session_file(&self) -> PathBuf {
        self.runtime_dir.join("session.json")
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    /// The audit log: one JSON line per group of credentials that left ([`crate::audit`]).
    pub fn audit_log(&self) -> PathBuf {
        self.state_dir.join("audit.jsonl")
    }

    /// The audit log before its last rotation: [`Paths::audit_log`] is renamed so when it
    /// passes its size bound, replacing the one before.
    pub fn audit_log_rotated(&self) -> PathBuf {
        self.state_dir.join("audit.jsonl.1")
    }

    /// The programs `[audit] notify_new` has seen take each profile (path, hash).
    pub fn audit_known(&self) -> PathBuf {
        self.state_dir.join("audit-known.json")
    }

    /// The containers' grants (`credd docker`) and the containers holding them: digests of the
    /// grants, never the grants.
    pub fn docker_grants(&self) -> PathBuf {
        self.state_dir.join("docker-grants.json")
    }

    /// Where a daemon started in the background writes its log (no secrets are ever logged).
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("daemon.log")
    }
}

/// Without `XDG_RUNTIME_DIR`: the temp dir when it is this user's alone (macOS gives every user
/// one), else a directory under the user's cache dir. Never `/tmp/<name>`, which anyone can take.
fn fallback_runtime_dir(base: Option<&directories::BaseDirs>) -> PathBuf {
    let tmp = env::temp_dir();
    if is_private_to_me(&tmp) {
        return tmp.join("credd");
    }
    base.map(|b| b.cache_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
        .join("credd")
        .join("run")
}

/// A real directory owned by this user that no one else may write into.
fn is_private_to_me(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == current_uid() && m.mode() & 0o022 == 0)
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// `path` with every symlink and `..` resolved while it exists, else as it is: two names of one
/// config file (a dotfiles symlink, `./config.toml`) compare equal this way.
pub fn canonical(path: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// `uid 65534 (nobody)`, or just `uid 65534` when the name is unknown.
pub fn user(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to overwrite.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf` (whose size we pass) and sets `result` to
    // `&pwd` on success; the name it points to lives in `buf`, read before `buf` is dropped.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_shared_temp_dir_is_never_the_runtime_dir() {
        // /tmp-like: writable by everyone (root owns the real one; the mode alone disqualifies).
        let shared = std::env::temp_dir().join(format!("credd-paths-test-{}", std::process::id()));
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(!is_private_to_me(&shared));
        // A per-user temp dir, as macOS gives every user.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(is_private_to_me(&shared));
        std::fs::remove_dir(&shared).unwrap();
        assert!(!is_private_to_me(&shared), "a missing dir is not ours");
    }
}
