//! The daemon's shared state: the config in force, the current profile, the engine.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use credd_proto::paths::Paths;
use tokio::sync::watch;

use crate::config::{self, Config, ConfigError};
use crate::engine::{Engine, EngineError};
use crate::state::State;

pub struct Daemon {
    pub paths: Paths,
    pub started_at: SystemTime,
    config_tx: watch::Sender<Arc<Config>>,
    config_status: Mutex<ConfigStatus>,
    /// The profile the current route serves; persisted in the state file.
    current: Mutex<Option<String>>,
    pub engine: Engine,
    /// `http://127.0.0.1:PORT` once the HTTP API listens.
    pub http_url: OnceLock<String>,
}

pub struct ConfigStatus {
    pub loaded_at: SystemTime,
    /// The last rejected edit; the config in force is the previous good one.
    pub error: Option<String>,
}

impl Daemon {
    /// Must be called inside the tokio runtime (the engine starts its workers).
    pub fn new(paths: Paths, config: Config) -> Daemon {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let state = State::load(&paths.state_file());
        let current = resolve_current(state.current_profile, &config);
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let engine = Engine::start(config_rx, paths.clone());
        Daemon {
            paths,
            started_at: SystemTime::now(),
            config_tx,
            config_status: Mutex::new(ConfigStatus {
                loaded_at: SystemTime::now(),
                error: None,
            }),
            current: Mutex::new(current),
            engine,
            http_url: OnceLock::new(),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config_tx.borrow().clone()
    }

    pub fn config_status<R>(&self, f: impl FnOnce(&ConfigStatus) -> R) -> R {
        f(&self.config_status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn current_profile(&self) -> Option<String> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the config; a valid one replaces the one in force, an invalid one is reported
    /// and kept out.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        match config::load(&self.paths.config) {
            Ok(new) => {
                let new = Arc::new(new);
                if *new == *self.config() {
                    self.set_config_status(None);
                    return Ok(new);
                }
                for warning in &new.warnings {
                    tracing::warn!("{warning}");
                }
                self.config_tx.send_replace(new.clone());
                self.set_config_status(None);
                {
                    let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
                    let resolved = resolve_current(current.clone(), &new);
                    if *current != resolved {
                        *current = resolved;
                        self.save_state(current.clone());
                    }
                }
                tracing::info!(profiles = new.profiles.len(), "config applied");
                Ok(new)
            }
            Err(e) => {
                tracing::error!("config edit rejected, the previous config stays in force: {e}");
                self.set_config_status(Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn set_config_status(&self, error: Option<String>) {
        let mut status = self.config_status.lock().unwrap_or_else(|p| p.into_inner());
        status.loaded_at = SystemTime::now();
        status.error = error;
    }

    /// Sets the current profile and persists it.
    pub fn switch(&self, profile: &str) -> Result<Option<String>, EngineError> {
        let config = self.config();
        if !config.profiles.contains_key(profile) {
            return Err(EngineError::UnknownProfile {
                name: profile.to_owned(),
                known: config.profiles.keys().cloned().collect(),
            });
        }
        let previous = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            current.replace(profile.to_owned())
        };
        self.save_state(Some(profile.to_owned()));
        tracing::info!(
            from = previous.as_deref().unwrap_or("-"),
            to = profile,
            "switched"
        );
        Ok(previous)
    }

    fn save_state(&self, current_profile: Option<String>) {
        let state = State { current_profile };
        if let Err(e) = state.save(&self.paths.state_file()) {
            tracing::error!(error = %e, "could not save the current profile");
        }
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
