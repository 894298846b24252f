//! Keeps an MFA session across daemon restarts, so a restart under a service manager does not
//! prompt again. The file lives only in the runtime dir (0700 dir, 0600 file, tmpfs on most
//! systems), is bound to the access settings it came from, and is deleted on logout.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credd_proto::Secret;
use serde::{Deserialize, Serialize};

use super::AccessSession;
use crate::creds::AwsCredentials;
use crate::runtime::{self, RuntimeError};

/// A session with less than this left is not worth restoring.
const RESTORE_MIN_LEFT: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct Stored {
    source: String,
    aws_profile: String,
    mfa_serial: Option<String>,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    expires_at: u64,
    identity_arn: Option<String>,
}

/// What a stored session must match to be restored: the same source, profile and device.
pub struct Binding<'a> {
    pub source: &'a str,
    pub aws_profile: &'a str,
    pub mfa_serial: Option<&'a str>,
}

pub fn save(
    path: &Path,
    binding: &Binding<'_>,
    session: &AccessSession,
) -> Result<(), RuntimeError> {
    let Some(expires_at) = session.expires_at else {
        return Ok(());
    };
    let stored = Stored {
        source: binding.source.to_owned(),
        aws_profile: binding.aws_profile.to_owned(),
        mfa_serial: binding.mfa_serial.map(str::to_owned),
        access_key_id: session.signing.access_key_id.clone(),
        secret_access_key: session.signing.secret_access_key.clone(),
        session_token: session.signing.session_token.clone(),
        expires_at: expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        identity_arn: session.identity_arn.clone(),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&stored).expect("session serializes"));
    runtime::write_private_file(path, &json)
}

pub fn load(path: &Path, binding: &Binding<'_>, now: SystemTime) -> Option<AccessSession> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
    let stored: Stored = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable saved session");
            return None;
        }
    };
    if stored.source != binding.source
        || stored.aws_profile != binding.aws_profile
        || stored.mfa_serial.as_deref() != binding.mfa_serial
    {
        tracing::info!("saved session belongs to other access settings; not restoring it");
        return None;
    }
    let expires_at = UNIX_EPOCH + Duration::from_secs(stored.expires_at);
    if expires_at.duration_since(now).unwrap_or_default() < RESTORE_MIN_LEFT {
        return None;
    }
    Some(AccessSession {
        signing: AwsCredentials {
            access_key_id: stored.access_key_id.clone(),
            secret_access_key: stored.secret_access_key.clone(),
            session_token: stored.session_token.clone(),
            expiration: Some(expires_at),
        },
        identity_arn: stored.identity_arn.clone(),
        expires_at: Some(expires_at),
        mfa: true,
    })
}

pub fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "could not delete the saved session")
        }
    }
}
