//! Where credd keeps things. Client and daemon must agree on these, so they live here.
//!
//! | what | default | override |
//! | config | `<config dir>/credd/config.toml` | `CREDD_CONFIG`, `--config` |
//! | runtime dir (0700) | `$XDG_RUNTIME_DIR/credd`, else `<temp>/credd-<uid>` | `CREDD_RUNTIME_DIR` |
//! | state dir | `<state dir>/credd` | `CREDD_STATE_DIR` |

use std::env;
use std::path::PathBuf;

pub const ENV_CONFIG: &str = "CREDD_CONFIG";
pub const ENV_RUNTIME_DIR: &str = "CREDD_RUNTIME_DIR";
pub const ENV_STATE_DIR: &str = "CREDD_STATE_DIR";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config: PathBuf,
    pub runtime_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    /// Resolves every path from the environment; `config` (from `--config`) wins over `CREDD_CONFIG`.
    pub fn resolve(config: Option<PathBuf>) -> Paths {
        let base = directories::BaseDirs::new();
        let config = config
            .or_else(|| non_empty_env(ENV_CONFIG))
            .unwrap_or_else(|| {
                base.as_ref()
                    .map(|b| b.config_dir().to_path_buf())
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join("credd")
                    .join("config.toml")
            });
        let runtime_dir = non_empty_env(ENV_RUNTIME_DIR).unwrap_or_else(|| {
            match base.as_ref().and_then(|b| b.runtime_dir()) {
                Some(dir) => dir.join("credd"),
                None => env::temp_dir().join(format!("credd-{}", current_uid())),
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

    /// Where a daemon started in the background writes its log (no secrets are ever logged).
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("daemon.log")
    }
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}
