//! Keeps a session the user had to make (an MFA session; a web identity session with the identity
//! provider's refresh token; a SAML session) across daemon restarts, so a restart under a service
//! manager does not prompt again. The file lives only in the runtime dir (0700 dir, 0600 file) and only when that
//! dir is memory-backed (tmpfs): a secret never reaches persistent disk. Elsewhere the session is
//! kept in memory only, and `status` says so. The file is bound to the access settings it came
//! from, checked to be ours alone when read back, and deleted on logout.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credd_proto::Secret;
use serde::{Deserialize, Serialize};

use super::federated::Federation;
use super::{AccessSession, SessionCredential};
use crate::creds::AwsCredentials;
use crate::runtime_dir::{self, RuntimeError};

/// A session with less than this left is not worth restoring (unless the identity provider's
/// refresh token renews it).
const RESTORE_MIN_LEFT: Duration = Duration::from_secs(60);
/// A saved session is a few hundred bytes; anything much larger was not written by us.
const MAX_FILE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct Stored {
    source: String,
    /// The access settings it came from ([`Binding::settings`]).
    settings: String,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    expires_at: u64,
    identity_arn: Option<String>,
    #[serde(default)]
    mfa: bool,
    #[serde(default)]
    federation: Option<StoredFederation>,
}

#[derive(Serialize, Deserialize)]
struct StoredFederation {
    who: String,
    refresh_token: Option<Secret>,
    renews: Option<String>,
    issued_at: u64,
}

/// What a stored session must match to be restored: the same source and settings (profile and
/// device; role, issuer and client; command).
pub struct Binding<'a> {
    pub source: &'a str,
    pub settings: String,
}

/// Where sessions are kept across restarts: the runtime dir when it is memory-backed, else
/// nowhere (memory only).
pub struct SessionStore {
    path: PathBuf,
    /// Why the session cannot outlive the daemon, when it cannot.
    memory_only: Option<String>,
}

impl SessionStore {
    /// `trusted = false`: the runtime dir was open to others, so a file in it is not restored.
    pub fn new(path: &Path, trusted: bool) -> SessionStore {
        let dir = path.parent().unwrap_or(path);
        let memory_only = (!runtime_dir::is_memory_backed(dir)).then(|| {
            format!(
                "{} is on persistent disk, not tmpfs; a daemon restart needs a new `credd login`",
                dir.display()
            )
        });
        let store = SessionStore {
            path: path.to_path_buf(),
            memory_only,
        };
        if !trusted || store.memory_only.is_some() {
            // Left by an older credd or planted: either way not to be read, nor left on disk.
            store.remove();
        }
        store
    }

    /// For `status`: where a restart finds the session.
    pub fn describe(&self) -> String {
        match &self.memory_only {
            None => format!("the runtime dir (tmpfs): {}", self.path.display()),
            Some(why) => format!("memory only: {why}"),
        }
    }

    pub fn save(&self, binding: &Binding<'_>, session: &AccessSession) -> Result<(), RuntimeError> {
        if self.memory_only.is_some() {
            return Ok(());
        }
        let (Some(expires_at), Some(signing)) = (session.expires_at, session.signing()) else {
            return Ok(());
        };
        let stored = Stored {
            source: binding.source.to_owned(),
            settings: binding.settings.clone(),
            mfa: session.mfa,
            federation: session.federation.as_ref().map(|f| StoredFederation {
                who: f.who.clone(),
                refresh_token: f.refresh_token.clone(),
                renews: f.renews.clone(),
                issued_at: f
                    .issued_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            }),
            access_key_id: signing.access_key_id.clone(),
            secret_access_key: signing.secret_access_key.clone(),
            session_token: signing.session_token.clone(),
            expires_at: expires_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            identity_arn: session.identity_arn.clone(),
        };
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(&stored).expect("session serializes"));
        runtime_dir::write_private_file(&self.path, &json)
    }

    pub fn load(&self, binding: &Binding<'_>, now: SystemTime) -> Option<AccessSession> {
        if self.memory_only.is_some() {
            return None;
        }
        let bytes = match runtime_dir::read_private_file(&self.path, MAX_FILE) {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::warn!("{e}: not restoring the saved session");
                self.remove();
                return None;
            }
        };
        let stored: Stored = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "ignoring unreadable saved session");
                return None;
            }
        };
        if stored.source != binding.source || stored.settings != binding.settings {
            tracing::info!("saved session belongs to other access settings; not restoring it");
            return None;
        }
        let expires_at = UNIX_EPOCH + Duration::from_secs(stored.expires_at);
        let renewable = stored
            .federation
            .as_ref()
            .is_some_and(|f| f.refresh_token.is_some());
        if !renewable && expires_at.duration_since(now).unwrap_or_default() < RESTORE_MIN_LEFT {
            return None;
        }
        Some(AccessSession {
            credential: SessionCredential::Signing(AwsCredentials {
                access_key_id: stored.access_key_id.clone(),
                secret_access_key: stored.secret_access_key.clone(),
                session_token: stored.session_token.clone(),
                expiration: Some(expires_at),
            }),
            identity_arn: stored.identity_arn.clone(),
            expires_at: Some(expires_at),
            expected_end: None,
            mfa: stored.mfa,
            federation: stored.federation.as_ref().map(|f| Federation {
                who: f.who.clone(),
                refresh_token: f.refresh_token.clone(),
                renews: f.renews.clone(),
                issued_at: UNIX_EPOCH + Duration::from_secs(f.issued_at),
            }),
        })
    }

    pub fn remove(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "could not delete the saved session")
            }
        }
    }
}
