//! `credd key add|import|remove`: the IAM user's long-lived key in the OS keychain. A key is
//! checked with STS (GetCallerIdentity) before it is stored, and read back after; only then is
//! it taken out of the shared credentials file (`import --delete`). Where the key alone is the
//! session (no MFA), the caller logs in again with it at once ([`relogin_needed`]).
//! `credd key rotate` is [`super::rotate`].

use credd_proto::{KeyReport, Secret};
use subtle::ConstantTimeEq;

use super::key_file::{self, KeyFileError};
use super::keychain::{Keychain, KeychainError, StoredKey};
use super::{KeyOrigin, caller_identity, refused_key};
use crate::access::AccessError;
use crate::config::{Config, DEFAULT_AWS_PROFILE, KeySource};
use crate::sts::{FailureKind, Sts};

/// What a key verb works with.
pub struct KeyContext<'a> {
    pub config: &'a Config,
    /// Checks the key (GetCallerIdentity) before it is stored.
    pub sts: &'a Sts,
    pub keychain: &'a Keychain,
}

/// A key stored, and what the user should know; [`Stored::report`] is the answer.
pub struct Stored {
    pub report: KeyReport,
    pub warnings: Vec<String>,
}

impl Stored {
    /// The answer, with `more` warnings (e.g. from logging in again).
    pub fn report(mut self, more: Option<String>) -> KeyReport {
        self.warnings.extend(more);
        self.report.warning = (!self.warnings.is_empty()).then(|| self.warnings.join("; "));
        self.report
    }
}

/// Why a key verb did nothing (or stopped half-way); each message says what to do.
pub enum KeyError {
    /// The key as typed cannot be an AWS key.
    Malformed(String),
    Access(AccessError),
    Keychain(KeychainError),
    File(KeyFileError),
    /// The keychain gave back something else than what was just stored.
    Mismatch(String),
    Internal(String),
}

impl KeyError {
    /// STS could not be reached to check the key: trying again later may work.
    pub fn is_outage(&self) -> bool {
        matches!(self, KeyError::Access(AccessError::Sts(f)) if f.kind == FailureKind::Outage)
    }

    pub fn message(&self) -> String {
        match self {
            KeyError::Malformed(m) | KeyError::Mismatch(m) | KeyError::Internal(m) => m.clone(),
            KeyError::Access(AccessError::Sts(f)) => format!(
                "the key could not be checked with STS ({f}), so nothing was stored: try again \
                 when STS answers"
            ),
            KeyError::Access(e) => format!("{e}; nothing was stored"),
            KeyError::Keychain(e) => e.to_string(),
            KeyError::File(e) => e.to_string(),
        }
    }
}

impl From<KeychainError> for KeyError {
    fn from(e: KeychainError) -> Self {
        KeyError::Keychain(e)
    }
}

impl From<KeyFileError> for KeyError {
    fn from(e: KeyFileError) -> Self {
        KeyError::File(e)
    }
}

/// `credd key add`: check, store, read back.
pub async fn add(
    cx: &KeyContext<'_>,
    access_key_id: String,
    secret_access_key: Secret,
) -> Result<Stored, KeyError> {
    let keychain = cx.keychain;
    let key = StoredKey {
        access_key_id: access_key_id.trim().to_owned(),
        secret_access_key,
    };
    check_shape(&key)?;
    let config = cx.config;
    let stored = check_and_store(cx, &key, &KeyOrigin::Given).await?;
    tracing::info!(access_key_id = %key.access_key_id, keychain = %keychain.describe(), "IAM user key stored in the keychain");
    let mut warnings = Vec::new();
    warnings.extend(uses_other_key(config, keychain));
    warnings.extend(volatile_note(keychain));
    Ok(stored.with(keychain, None, false, warnings))
}

/// A key checked with STS and stored (read back) in the keychain.
struct Checked {
    access_key_id: String,
    /// Whose key it is, as STS answered.
    identity: String,
    /// The key the keychain held before.
    previous: Option<String>,
}

/// Checks `key` with STS, then stores it, replacing (and naming) the keychain's key.
async fn check_and_store(
    cx: &KeyContext<'_>,
    key: &StoredKey,
    origin: &KeyOrigin,
) -> Result<Checked, KeyError> {
    let identity = verify(cx, key, origin).await?;
    let previous = previous_key(cx.keychain).await?;
    store(cx.keychain, key).await?;
    Ok(Checked {
        access_key_id: key.access_key_id.clone(),
        identity,
        previous,
    })
}

impl Checked {
    fn with(
        self,
        keychain: &Keychain,
        imported_from: Option<String>,
        deleted_from_file: bool,
        warnings: Vec<String>,
    ) -> Stored {
        Stored {
            report: KeyReport {
                access_key_id: self.access_key_id,
                identity: self.identity,
                keychain: keychain.describe(),
                previous: self.previous,
                imported_from,
                deleted_from_file,
                warning: None,
            },
            warnings,
        }
    }
}

/// `credd key import`: the key of a shared-credentials profile, checked, stored, read back, and
/// then (when asked, and the keychain keeps it across reboots) taken out of the file.
pub async fn import(
    cx: &KeyContext<'_>,
    profile: Option<String>,
    delete_from_file: bool,
) -> Result<Stored, KeyError> {
    let (config, keychain) = (cx.config, cx.keychain);
    let profile = profile
        .filter(|p| !p.trim().is_empty())
        .or_else(|| {
            config
                .access
                .iam_user()
                .and_then(|u| u.aws_profile())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| DEFAULT_AWS_PROFILE.to_owned());
    let path = key_file::credentials_path(None);
    let creds = key_file::read_key(&path, &profile).await?;
    let from = format!("{} [{profile}]", path.display());
    if creds.session_token.is_some() {
        return Err(KeyError::Malformed(format!(
            "{from} holds temporary credentials (it has an aws_session_token), not an IAM user's \
             long-lived key: nothing was imported; import the profile that holds the IAM user's \
             key (--profile NAME), or run `credd key add`"
        )));
    }
    let key = StoredKey {
        access_key_id: creds.access_key_id.clone(),
        secret_access_key: creds.secret_access_key.clone(),
    };
    let origin = KeyOrigin::File {
        path: path.clone(),
        profile: profile.clone(),
    };
    let stored = check_and_store(cx, &key, &origin).await?;
    tracing::info!(access_key_id = %key.access_key_id, from = %from, keychain = %keychain.describe(), "IAM user key imported into the keychain");
    let mut warnings = Vec::new();
    let mut deleted = false;
    if delete_from_file {
        if keychain.forgets_at_reboot() == Some(true) {
            warnings.push(format!(
                "the key stays in {from} too: {} forgets it when the machine restarts, so the \
                 file is its only lasting copy",
                keychain.describe()
            ));
        } else {
            match key_file::remove_key(&path, &profile) {
                Ok(removed) => {
                    deleted = removed;
                    tracing::info!(file = %path.display(), profile = %profile, "the key was removed from the shared credentials file");
                }
                Err(e) => warnings.push(e.to_string()),
            }
        }
    } else {
        warnings.extend(volatile_note(keychain));
    }
    warnings.extend(uses_other_key(config, keychain));
    if let Some(KeySource::File { aws_profile }) = config.access.iam_user().map(|u| &u.key) {
        let reads = format!("{} [{aws_profile}]", path.display());
        let consequence = if deleted && *aws_profile == profile {
            ", where the key is no longer: the next login fails until you do"
        } else {
            ""
        };
        warnings.push(format!(
            "the config still reads the key from {reads}: remove aws_profile (and key = \"file\") \
             from [access] in {} to use the keychain{consequence}",
            config.path.display()
        ));
    }
    Ok(stored.with(keychain, Some(from), deleted, warnings))
}

/// `credd key remove`.
/// `credd key remove`: whether there was a key to remove.
pub async fn remove(keychain: &Keychain) -> Result<bool, KeyError> {
    let removed = keychain.remove().await?;
    if removed {
        tracing::info!(keychain = %keychain.describe(), "IAM user key removed from the keychain");
    }
    Ok(removed)
}

/// Refuses what cannot be an AWS access key, before anything reaches AWS or the keychain.
fn check_shape(key: &StoredKey) -> Result<(), KeyError> {
    let id = &key.access_key_id;
    if id.is_empty() {
        return Err(KeyError::Malformed(
            "the access key ID is empty: give the key ID (e.g. AKIAIOSFODNN7EXAMPLE) first, the \
             secret access key second"
                .to_owned(),
        ));
    }
    if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyError::Malformed(format!(
            "{id:?} is not an access key ID (16 to 128 letters and digits, e.g. \
             AKIAIOSFODNN7EXAMPLE): give the key ID first, the secret access key second"
        )));
    }
    let secret = key.secret_access_key.expose();
    if secret.trim().is_empty() {
        return Err(KeyError::Malformed(
            "the secret access key is empty: give it on the line after the key ID".to_owned(),
        ));
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KeyError::Malformed(
            "the secret access key holds spaces or control characters: paste it alone, as the \
             IAM console showed it"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Who the key belongs to, as STS says when the key signs GetCallerIdentity.
async fn verify(
    cx: &KeyContext<'_>,
    key: &StoredKey,
    origin: &KeyOrigin,
) -> Result<String, KeyError> {
    let creds = key.credentials();
    caller_identity(cx.sts, &cx.config.access.regions, &creds)
        .await
        .map(|(arn, _region)| arn)
        .map_err(|f| KeyError::Access(refused_key(&key.access_key_id, origin, f)))
}

/// The key ID the keychain holds now, if any; an entry that is not a credd key is replaced.
async fn previous_key(keychain: &Keychain) -> Result<Option<String>, KeyError> {
    match keychain.read().await {
        Ok(key) => Ok(key.map(|k| k.access_key_id)),
        Err(KeychainError::Corrupt { keychain, detail }) => {
            tracing::warn!(keychain = %keychain, detail = %detail, "replacing a keychain entry that held no usable key");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes `key` and reads it back: only a key the keychain gives back counts as stored.
async fn store(keychain: &Keychain, key: &StoredKey) -> Result<(), KeyError> {
    keychain.write(key).await?;
    let back = keychain.read().await?;
    let same = back.as_ref().is_some_and(|b| {
        b.access_key_id == key.access_key_id
            && bool::from(
                b.secret_access_key
                    .expose()
                    .as_bytes()
                    .ct_eq(key.secret_access_key.expose().as_bytes()),
            )
    });
    if same {
        Ok(())
    } else {
        Err(KeyError::Mismatch(format!(
            "{} did not give back the key just stored ({}): run `credd key add` again, and \
             check the entry with your keychain's tool",
            keychain.describe(),
            match back {
                Some(b) => format!("it holds {}", b.access_key_id),
                None => "it holds none".to_owned(),
            }
        )))
    }
}

/// When the config reads the key from elsewhere, the stored one is not used yet.
fn uses_other_key(config: &Config, keychain: &Keychain) -> Option<String> {
    match config.access.iam_user() {
        None => Some(format!(
            "the key is stored in {}, but the config's source is {:?}: it is used once [access] \
             has source = \"iam-user\"",
            keychain.describe(),
            config.access.kind().as_str()
        )),
        Some(_) => None,
    }
}

/// The kernel keyring keeps its keys only until the machine restarts.
fn volatile_note(keychain: &Keychain) -> Option<String> {
    (keychain.forgets_at_reboot() == Some(true)).then(|| {
        format!(
            "{} forgets the key when the machine restarts (and after a few days logged out): \
             keep the key somewhere safe to `credd key add` it again, or run a Secret Service \
             (gnome-keyring) so credd stores it there",
            keychain.describe()
        )
    })
}

/// Whether the stored key is the session (`key = "keychain"`, no MFA): then the daemon logs in
/// again with it at once; an MFA session stays until it ends (the next `credd login` uses the
/// key).
pub fn relogin_needed(config: &Config) -> bool {
    config
        .access
        .iam_user()
        .is_some_and(|user| user.key == KeySource::Keychain && user.mfa_serial.is_none())
}
