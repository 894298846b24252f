//! The one vending point: every credential that leaves the daemon, on whichever route, is taken
//! through [`Vending::vend`]. It owns the current profile (persisted in the state file) and the
//! follow window, knows the route and the caller, and hands one [`Vended`] record (never a
//! secret) to one hook. The routes only render what it returns.
//!
//! Per request it does what the routes did before it: one read of the current profile (a clone
//! of its name), one read of the config's follow window, the engine's cache and clock; the caller
//! is what the connection already knew (no system call), and the hook a `debug!` that costs
//! nothing when it is off and the audit log's copy of a few facts into a bounded queue
//! ([`crate::audit`]: who the caller is, is asked off the request path).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::config::Config;
use crate::creds::RoleCredentials;
use crate::docker::Container;
use crate::engine::{AccessConsole, Engine, EngineError};
use crate::listener::admission::own_uid;
use crate::listener::{Owner, Peer};
use crate::lock;
use crate::runtime_dir::RuntimeError;
use crate::state::{State, StateFile};

/// Where credentials leave the daemon: the audit log's own name for it, so that what the hook
/// hears is what the log says. `credd env` and `credd exec` point the SDKs at the container
/// route, so what they run is served there.
pub use credd_proto::audit::AuditRoute as Route;

/// Whether the advertised expiry is capped to the follow window, so that the SDK comes back and
/// picks up a `credd switch`: the container route's current profile, and IMDS, whose names are
/// the current profile's view. Pinned profiles and `credential_process` (one profile per AWS
/// config profile) never change identity.
fn follows(route: Route, current: bool) -> bool {
    match route {
        Route::Container => current,
        Route::Imds => true,
        Route::CredentialProcess | Route::Console | Route::Docker => false,
    }
}

/// Who asked, as far as the OS tells without extra work on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caller {
    /// The user of the calling process (`None` where the OS cannot tell, e.g. TCP on macOS).
    pub uid: Option<u32>,
    /// The calling process, where the connection says (`SO_PEERCRED` on the control socket).
    pub pid: Option<u32>,
    /// The inode of the client's TCP socket (`sock_diag` on Linux), by which the audit log
    /// finds its process ([`crate::listener::peer::pid_with_socket`]).
    pub socket_inode: Option<u64>,
}

impl Caller {
    /// A TCP caller, from what the listener learnt when it accepted the connection.
    pub fn tcp(peer: Option<&Peer>) -> Caller {
        let Some(peer) = peer else {
            return Caller::default();
        };
        let uid = match peer.owner {
            Owner::Me => Some(own_uid()),
            Owner::Other(uid) => Some(uid),
            Owner::Unknown | Owner::Unverifiable => None,
        };
        Caller {
            uid,
            pid: None,
            socket_inode: peer.socket_inode,
        }
    }

    /// A control-socket caller, from its peer credentials.
    pub fn unix(uid: u32, pid: Option<i32>) -> Caller {
        Caller {
            uid: Some(uid),
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            socket_inode: None,
        }
    }
}

/// What [`Vended::profile`] says when the access session itself left (`credd console
/// --access`): no profile can be named so (profile names have no parentheses or spaces).
pub const ACCESS_SESSION: &str = "(access session)";

/// What the hook learns of each credential that leaves: never a secret.
#[derive(Debug, Clone, Copy)]
pub struct Vended<'a> {
    pub route: Route,
    pub profile: &'a str,
    /// The profile was the current one (not named by the caller).
    pub current: bool,
    pub account_id: &'a str,
    /// The expiry the caller was told (capped to the follow window on a following route).
    pub expiration: SystemTime,
    pub caller: &'a Caller,
    /// The container it went to, on the docker route (the engine named it).
    pub container: Option<&'a Arc<Container>>,
}

/// Called once for every credential that leaves, on the request path: it must be cheap.
pub type Hook = Arc<dyn Fn(&Vended<'_>) + Send + Sync>;

/// The daemon's `debug!` line for each credential (the audit log, [`crate::audit`], is the
/// record).
pub fn log_hook() -> Hook {
    Arc::new(|v: &Vended<'_>| {
        tracing::debug!(
            route = v.route.name(),
            profile = v.profile,
            current = v.current,
            account = v.account_id,
            expiration = %humantime::format_rfc3339_seconds(v.expiration),
            container = v.container.map(|c| c.id.as_str()),
            uid = ?v.caller.uid,
            pid = ?v.caller.pid,
            socket_inode = ?v.caller.socket_inode,
            "credentials vended"
        );
    })
}

/// What a route renders.
pub struct Vend {
    pub profile: String,
    pub credentials: Arc<RoleCredentials>,
    /// The expiry to advertise: the real one, or sooner on a following route.
    pub expiration: SystemTime,
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

pub struct Vending {
    engine: Engine,
    config: watch::Receiver<Arc<Config>>,
    state_file: PathBuf,
    /// The profile the current route serves; persisted in the state file.
    current: Mutex<Option<String>>,
    hook: Hook,
}

impl Vending {
    /// The current profile is the one the state file remembers, if it is still configured, else
    /// the config's default.
    pub fn new(
        engine: Engine,
        config: watch::Receiver<Arc<Config>>,
        state_file: &Path,
        hook: Hook,
    ) -> Vending {
        let saved = State::load(state_file);
        let current = resolve_current(saved.current_profile.clone(), &config.borrow());
        let vending = Vending {
            engine,
            config,
            state_file: state_file.to_owned(),
            current: Mutex::new(current.clone()),
            hook,
        };
        // The file is what `credd prompt` reads: it must name what this daemon serves, also when
        // that is the config's default (nothing saved yet) or the saved profile is gone.
        let config = vending.config.borrow().clone();
        if let Err(e) = vending.save_if_changed(&saved, current, &config) {
            tracing::error!(error = %e, "could not save the current profile");
        }
        vending
    }

    pub fn current(&self) -> Option<String> {
        lock::lock(&self.current).clone()
    }

    /// Credentials of `profile` (`None`: the current one) for `caller` on `route`, with the
    /// expiry to advertise; the hook hears of every one served.
    pub async fn vend(
        &self,
        route: Route,
        profile: Option<String>,
        caller: &Caller,
    ) -> Result<Vend, EngineError> {
        self.vend_to(route, profile, caller, None).await
    }

    /// [`Vending::vend`] to a container a `credd docker` grant serves (pinned to its profile).
    pub async fn vend_to(
        &self,
        route: Route,
        profile: Option<String>,
        caller: &Caller,
        container: Option<&Arc<Container>>,
    ) -> Result<Vend, EngineError> {
        let current = profile.is_none();
        let profile = match profile.or_else(|| self.current()) {
            Some(p) => p,
            None => {
                return Err(EngineError::NoCurrentProfile {
                    known: self.engine.profile_names(),
                });
            }
        };
        let credentials = self.engine.credentials(&profile).await?;
        let expiration = if follows(route, current) {
            let follow_window = self.config.borrow().daemon.follow_window;
            advertised_expiration(&credentials, self.engine.now(), follow_window)
        } else {
            credentials.expiration
        };
        (self.hook)(&Vended {
            route,
            profile: &profile,
            current,
            account_id: &credentials.account_id,
            expiration,
            caller,
            container,
        });
        Ok(Vend {
            profile,
            credentials,
            expiration,
        })
    }

    /// The access session's own way into the console (`credd console --access`), for `caller`;
    /// the hook hears of it as [`ACCESS_SESSION`], expiring after `lifetime` (the console
    /// session asked for) or with the role session, whichever is sooner.
    pub async fn vend_access(
        &self,
        route: Route,
        caller: &Caller,
        lifetime: std::time::Duration,
    ) -> Result<AccessConsole, EngineError> {
        let access = self.engine.access_console().await?;
        let (arn, ends) = match &access {
            AccessConsole::IamUser { user_arn, .. } => (user_arn.as_deref(), None),
            AccessConsole::RoleSession {
                arn, expires_at, ..
            } => (arn.as_deref(), *expires_at),
            // Nothing leaves.
            AccessConsole::NoKeys => return Ok(access),
        };
        let asked = self.engine.now() + lifetime;
        let account_id = arn.and_then(|a| a.split(':').nth(4)).unwrap_or("-");
        (self.hook)(&Vended {
            route,
            profile: ACCESS_SESSION,
            current: false,
            account_id,
            expiration: ends.map_or(asked, |e| e.min(asked)),
            caller,
            container: None,
        });
        Ok(access)
    }

    /// Sets the current profile and persists it.
    pub fn switch(&self, profile: &str) -> Result<Option<String>, SwitchError> {
        let config = self.config.borrow().clone();
        if !config.profiles.contains_key(profile) {
            return Err(SwitchError::Unknown(self.engine.unknown_profile(profile)));
        }
        let previous = lock::lock(&self.current).replace(profile.to_owned());
        let saved = self.save(state_of(Some(profile.to_owned()), &config));
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

    /// A new config in force: a current profile it no longer has gives way to its default.
    /// The state file follows too, and so does the region it names (an edited `region`).
    pub fn config_changed(&self, config: &Config) {
        let mut current = lock::lock(&self.current);
        let resolved = resolve_current(current.clone(), config);
        *current = resolved.clone();
        let saved = State::load(&self.state_file);
        if let Err(e) = self.save_if_changed(&saved, resolved, config) {
            tracing::error!(error = %e, "could not save the current profile");
        }
    }

    fn save_if_changed(
        &self,
        saved: &State,
        current: Option<String>,
        config: &Config,
    ) -> Result<(), RuntimeError> {
        let state = state_of(current, config);
        if state == *saved {
            return Ok(());
        }
        self.save(state)
    }

    fn save(&self, state: State) -> Result<(), RuntimeError> {
        state.save(&self.state_file)
    }
}

/// What the state file says for `current_profile` under `config`.
fn state_of(current_profile: Option<String>, config: &Config) -> State {
    let current_region = current_profile
        .as_ref()
        .and_then(|p| config.profiles.get(p))
        .and_then(|p| p.region.clone());
    State {
        current_profile,
        current_region,
    }
}

/// The expiry a following route advertises: the real one, or sooner, so clients come back
/// within the follow window and pick up a `credd switch`. Never later than the real one.
fn advertised_expiration(
    creds: &RoleCredentials,
    now: SystemTime,
    follow_window: std::time::Duration,
) -> SystemTime {
    creds.expiration.min(now + follow_window)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_container_route_and_imds_follow_a_switch() {
        assert!(follows(Route::Container, true));
        assert!(!follows(Route::Container, false), "pinned");
        assert!(follows(Route::Imds, false));
        assert!(!follows(Route::CredentialProcess, true));
        assert!(!follows(Route::CredentialProcess, false));
        assert!(
            !follows(Route::Console, true),
            "a sign-in is for the profile it named"
        );
    }
}
