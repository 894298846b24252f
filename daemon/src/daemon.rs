//! The daemon's shared state: the config in force, the current profile, the engine, the HTTP
//! token.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use credd_proto::paths::Paths;
use tokio::sync::watch;

use crate::access::persist::SessionStore;
use crate::config::{self, Config, ConfigError};
use crate::engine::{Engine, EngineError, Wiring};
use crate::http_token::HttpToken;
use crate::lock;
use crate::runtime_dir::RuntimeError;
use crate::state::State;

pub struct Daemon {
    pub paths: Paths,
    pub started_at: SystemTime,
    config_tx: watch::Sender<Arc<Config>>,
    config_status: Mutex<ConfigStatus>,
    /// The profile the current route serves; persisted in the state file.
    current: Mutex<Option<String>>,
    pub engine: Engine,
    /// What the container routes ask for in `Authorization`; replaced on logout.
    pub http_token: HttpToken,
    /// `http://127.0.0.1:PORT` once the HTTP API listens.
    pub http_url: OnceLock<String>,
}

pub struct ConfigStatus {
    /// When the config in force was applied.
    pub loaded_at: SystemTime,
    /// The last rejected edit; the config in force is the previous good one.
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error(transparent)]
    Unknown(#[from] EngineError),
    #[error(
        "switched to {profile:?} for now, but it could not be remembered across restarts: {reason}"
    )]
    NotSaved {
        profile: String,
        reason: RuntimeError,
    },
}

impl Daemon {
    /// Must be called inside the tokio runtime (the engine starts its workers).
    pub fn new(paths: Paths, config: Config, http_token: HttpToken, store: SessionStore) -> Daemon {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let state = State::load(&paths.state_file());
        let current = resolve_current(state.current_profile, &config);
        let warnings = config.warnings.clone();
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let engine = Engine::start(config_rx, store, Wiring::system());
        Daemon {
            paths,
            started_at: SystemTime::now(),
            config_tx,
            config_status: Mutex::new(ConfigStatus {
                loaded_at: SystemTime::now(),
                error: None,
                warnings,
            }),
            current: Mutex::new(current),
            engine,
            http_token,
            http_url: OnceLock::new(),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config_tx.borrow().clone()
    }

    pub fn config_status<R>(&self, f: impl FnOnce(&ConfigStatus) -> R) -> R {
        f(&lock::lock(&self.config_status))
    }

    pub fn current_profile(&self) -> Option<String> {
        lock::lock(&self.current).clone()
    }

    /// Re-reads the config; a valid one replaces the one in force, an invalid one is reported
    /// and kept out.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        match config::load(&self.paths.config) {
            Ok(new) => {
                let new = Arc::new(new);
                let old = self.config();
                let mut warnings = new.warnings.clone();
                if new.daemon.listen != old.daemon.listen {
                    warnings.push(format!(
                        "listen = {} takes effect when credd-daemon restarts; it serves on {} until then",
                        new.daemon.listen,
                        self.http_url.get().map(String::as_str).unwrap_or("the old address")
                    ));
                }
                if *new == *old {
                    self.set_config_status(None, Some(warnings));
                    return Ok(new);
                }
                for warning in &warnings {
                    tracing::warn!("{warning}");
                }
                self.config_tx.send_replace(new.clone());
                self.set_config_status(None, Some(warnings));
                {
                    let mut current = lock::lock(&self.current);
                    let resolved = resolve_current(current.clone(), &new);
                    if *current != resolved {
                        *current = resolved;
                        if let Err(e) = self.save_state(current.clone()) {
                            tracing::error!(error = %e, "could not save the current profile");
                        }
                    }
                }
                tracing::info!(profiles = new.profiles.len(), "config applied");
                Ok(new)
            }
            Err(e) => {
                tracing::error!("config edit rejected, the previous config stays in force: {e}");
                self.set_config_status(Some(e.to_string()), None);
                Err(e)
            }
        }
    }

    /// `warnings: None` leaves them as they are (a rejected edit changes nothing in force).
    fn set_config_status(&self, error: Option<String>, warnings: Option<Vec<String>>) {
        let mut status = lock::lock(&self.config_status);
        if let Some(warnings) = warnings {
            status.loaded_at = SystemTime::now();
            status.warnings = warnings;
        }
        status.error = error;
    }

    /// Sets the current profile and persists it.
    pub fn switch(&self, profile: &str) -> Result<Option<String>, SwitchError> {
        let config = self.config();
        if !config.profiles.contains_key(profile) {
            return Err(SwitchError::Unknown(EngineError::UnknownProfile {
                name: profile.to_owned(),
                known: config.profiles.keys().cloned().collect(),
            }));
        }
        let previous = {
            let mut current = lock::lock(&self.current);
            current.replace(profile.to_owned())
        };
        let saved = self.save_state(Some(profile.to_owned()));
        tracing::info!(
            from = previous.as_deref().unwrap_or("-"),
            to = profile,
            "switched"
        );
        saved.map_err(|reason| SwitchError::NotSaved {
            profile: profile.to_owned(),
            reason,
        })?;
        Ok(previous)
    }

    fn save_state(&self, current_profile: Option<String>) -> Result<(), RuntimeError> {
        State { current_profile }.save(&self.paths.state_file())
    }
}

/// The remembered profile if it still exists, else the config's default.
fn resolve_current(remembered: Option<String>, config: &Config) -> Option<String> {
    match remembered {
        Some(p) if config.profiles.contains_key(&p) => Some(p),
        Some(p) => {
            tracing::warn!(profile = %p, "the current profile is no longer configured; using default_profile");
            config.default_profile.clone()
        }
        None => config.default_profile.clone(),
    }
}
