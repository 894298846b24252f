//! The daemon's shared state: the config in force, the engine, the vending point (which owns the
//! current profile), the HTTP token.

use crate::docker::Containers;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use credd_proto::paths::Paths;
use tokio::sync::watch;

use crate::access::persist::SessionStore;
use crate::audit::Audit;
use crate::config::{self, Config, ConfigError};
use crate::console::federation::Federation;
use crate::engine::{self, Engine};
use crate::http_token::HttpToken;
use crate::lock;
use crate::vend::{self, Vending};

pub struct Daemon {
    pub paths: Paths,
    pub started_at: SystemTime,
    config_tx: watch::Sender<Arc<Config>>,
    config_status: Mutex<ConfigStatus>,
    pub engine: Engine,
    /// Every credential that leaves goes through it; it owns the current profile.
    pub vending: Vending,
    /// Containers' grants (`credd docker`): nothing runs until the first.
    pub containers: Containers,
    /// The audit log's thread, when [`Wiring::audit`] started it.
    audit: Option<Audit>,
    /// What the container routes ask for in `Authorization`; replaced on logout.
    pub http_token: HttpToken,
    /// `http://127.0.0.1:PORT` once the HTTP API listens.
    pub http_url: OnceLock<String>,
    /// The AWS federation endpoints, for `credd console`.
    pub federation: Federation,
    /// `systemd` or `launchd` when that service manager runs this daemon.
    pub managed_by: Option<String>,
    /// `credd stop` was answered: the daemon ends.
    stop: tokio::sync::Notify,
}

pub struct ConfigStatus {
    /// When the config in force was applied.
    pub loaded_at: SystemTime,
    /// The last rejected edit; the config in force is the previous good one.
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// What the daemon reaches outside itself: [`Wiring::system`], or in tests a simulated clock, a
/// scripted STS and a hook that records what is vended.
pub struct Wiring {
    pub engine: engine::Wiring,
    /// Hears of every credential that leaves ([`vend::Vended`]).
    pub vended: vend::Hook,
    /// Whether the audit log records them too (`[audit]`, `credd audit`), before `vended`
    /// hears of them.
    pub audit: bool,
}

impl Wiring {
    pub fn system() -> Wiring {
        Wiring {
            engine: engine::Wiring::system(),
            vended: vend::log_hook(),
            audit: true,
        }
    }
}

impl Daemon {
    /// Must be called inside the tokio runtime (the engine starts its workers).
    pub fn new(
        paths: Paths,
        config: Config,
        http_token: HttpToken,
        store: SessionStore,
        wiring: Wiring,
    ) -> Daemon {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let warnings = config.warnings.clone();
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let vending_config = config_rx.clone();
        let (audit, hook) = match wiring.audit {
            true => {
                let (audit, hook) = Audit::start(
                    &paths,
                    config_rx.clone(),
                    wiring.engine.notifier.clone(),
                    wiring.vended,
                );
                (Some(audit), hook)
            }
            false => (None, wiring.vended),
        };
        let engine = Engine::start(config_rx, store, wiring.engine);
        let containers = Containers::new(vending_config.clone(), paths.docker_grants());
        let vending = Vending::new(engine.clone(), vending_config, &paths.state_file(), hook);
        Daemon {
            paths,
            started_at: SystemTime::now(),
            config_tx,
            config_status: Mutex::new(ConfigStatus {
                loaded_at: SystemTime::now(),
                error: None,
                warnings,
            }),
            engine,
            vending,
            containers,
            audit,
            http_token,
            http_url: OnceLock::new(),
            federation: Federation::from_env(),
            managed_by: service_manager(),
            stop: tokio::sync::Notify::new(),
        }
    }

    /// Ends the daemon as SIGTERM does (`credd stop`, once its answer is sent).
    pub fn request_stop(&self) {
        self.stop.notify_one();
    }

    /// A connection to the HTTP API was accepted: the audit looks for its program at once (a
    /// client such as curl exits right after its answer); what the first answer waits for.
    /// Only our own user's: another's processes are not ours to look into (the log names
    /// their uid), and a stranger's flood must not spend the lookups.
    pub fn connection_accepted(
        &self,
        peer: &crate::listener::Peer,
    ) -> Option<crate::audit::LookupDone> {
        if peer.owner != crate::listener::Owner::Me {
            return None;
        }
        self.audit
            .as_ref()?
            .connection_accepted(vend::Caller::tcp(Some(peer)))
    }

    /// What a `credd credential-process` answer waits for: the audit has looked its caller up
    /// (it exits right after the answer; its parent is the program recorded).
    pub fn audit_caught_up(&self) -> Option<crate::audit::LookupDone> {
        self.audit.as_ref()?.caught_up()
    }

    /// Writes the audit log's pending lines and ends its thread: the daemon is stopping.
    pub fn stop_audit(&self) {
        if let Some(audit) = &self.audit {
            audit.stop();
        }
    }

    /// Returns when [`Daemon::request_stop`] was called.
    pub async fn stop_requested(&self) {
        self.stop.notified().await;
    }

    pub fn config(&self) -> Arc<Config> {
        self.config_tx.borrow().clone()
    }

    pub fn config_status<R>(&self, f: impl FnOnce(&ConfigStatus) -> R) -> R {
        f(&lock::lock(&self.config_status))
    }

    /// Re-reads the config; a valid one replaces the one in force, an invalid one is reported
    /// and kept out.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        if !self.paths.config.exists() {
            // Deleted (alone, or with its directory): nothing to apply, nothing to forget.
            let loaded = self.config_status(|s| s.loaded_at);
            let e = ConfigError {
                path: self.paths.config.clone(),
                line: None,
                col: None,
                msg: format!(
                    "the config file is gone (deleted, or its directory was); the config applied \
                     at {} stays in force until a valid one is back",
                    humantime::format_rfc3339_seconds(loaded)
                ),
            };
            tracing::warn!("{e}");
            self.set_config_status(Some(e.to_string()), None);
            return Err(e);
        }
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
                self.vending.config_changed(&new);
                self.containers.config_changed(&new);
                if let Some(audit) = &self.audit {
                    audit.config_changed(&new);
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
        self.engine.set_rejected_edit(error.clone());
        let mut status = lock::lock(&self.config_status);
        if let Some(warnings) = warnings {
            status.loaded_at = SystemTime::now();
            status.warnings = warnings;
        }
        status.error = error;
    }
}

/// The service manager running this process, if any: systemd puts its service in a cgroup named
/// after the unit, launchd names the job in `XPC_SERVICE_NAME`.
fn service_manager() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if in_systemd_unit(&cgroup) {
        return Some("systemd".to_owned());
    }
    if std::env::var_os("XPC_SERVICE_NAME").is_some_and(|n| n == "com.credd.daemon") {
        return Some("launchd".to_owned());
    }
    None
}

/// Whether `/proc/self/cgroup` puts this process in credd's systemd unit (`credd.service`).
fn in_systemd_unit(cgroup: &str) -> bool {
    cgroup
        .lines()
        .filter_map(|line| line.rsplit(':').next())
        .any(|path| path.trim_end().ends_with("/credd.service"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_credd_s_own_unit_counts_as_managed() {
        let unit = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/credd.service\n";
        assert!(super::in_systemd_unit(unit));
        // A daemon started from a terminal that itself runs as a systemd service.
        let terminal = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/\
                        app-gnome-terminal.scope\n";
        assert!(!super::in_systemd_unit(terminal));
        assert!(!super::in_systemd_unit("0::/\n"));
        assert!(!super::in_systemd_unit(""));
    }
}
