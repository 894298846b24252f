//! The kernel keyring (keyutils), where a headless Linux machine keeps the IAM user's key: in the
//! user keyring (`@u`: every session and service of this user sees it; gone at reboot), never
//! linked into the persistent keyring, and readable by this user's uid alone.
//!
//! Why not as keyutils stores usually do it (a key in the session keyring, also linked into the
//! persistent keyring, with the default rights): a key's "possessor" rights go to any process
//! that can reach it from its own keyrings, whatever its uid. A process of another user that
//! shares the owner's session keyring (`sudo -u other` from a desktop login keeps it) reaches the
//! session keyring, the persistent keyring linked into it and the user keyring linked by PAM, and
//! could read the key. Here the key grants possessors nothing and the owner's uid everything, and
//! its rights are set before the secret is written into it.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::{CredentialApi, CredentialPersistence, CredentialStoreApi};
use keyring_core::{Credential, Entry, Error};
use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

/// What a key holds until its rights are set: never the secret.
const PLACEHOLDER: &[u8] = b"-";

#[derive(Debug)]
pub struct Store;

impl Store {
    /// The store, if this process may use the kernel keyring at all (container sandboxes often
    /// block `keyctl`).
    pub fn new() -> Result<Arc<Store>, Error> {
        user_keyring()?;
        Ok(Arc::new(Store))
    }
}

impl CredentialStoreApi for Store {
    fn vendor(&self) -> String {
        "credd's kernel keyring store (user keyring, owner-only keys)".to_owned()
    }

    fn id(&self) -> String {
        "credd-keyutils".to_owned()
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        _modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        Ok(Entry::new_with_credential(Arc::new(Cred {
            // The description linux-keyutils-keyring-store gave the same entry, so a key stored
            // by an older credd is found (and moved) too.
            description: format!("keyring:{user}@{service}"),
            specifiers: (service.to_owned(), user.to_owned()),
        })))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn persistence(&self) -> CredentialPersistence {
        CredentialPersistence::UntilReboot
    }
}

/// One entry: a `user` key of this description in the user keyring.
#[derive(Debug)]
struct Cred {
    description: String,
    specifiers: (String, String),
}

impl CredentialApi for Cred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        if secret.is_empty() {
            return Err(Error::Invalid("secret".into(), "cannot be empty".into()));
        }
        let ring = user_keyring()?;
        let key = match ring.search(&self.description) {
            Ok(key) => key,
            Err(KeyError::KeyDoesNotExist) => ring
                .add_key(&self.description, PLACEHOLDER)
                .map_err(platform)?,
            Err(e) => return Err(platform(e)),
        };
        // The rights first (an older key may have the default ones), then the secret.
        key.set_perms(owner_only()).map_err(platform)?;
        key.update(&secret).map_err(platform)?;
        forget_legacy(&self.description, Some(key));
        Ok(())
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        let ring = user_keyring()?;
        match ring.search(&self.description) {
            Ok(key) => {
                // A key this credd stored has these rights already; one it did not is fixed.
                key.set_perms(owner_only()).map_err(platform)?;
                key.read_to_vec().map_err(platform)
            }
            Err(KeyError::KeyDoesNotExist) => {
                // Stored by an older credd in the session keyring: moved here (set_secret
                // invalidates the old copy).
                let legacy = legacy_key(&self.description).ok_or(Error::NoEntry)?;
                let secret = zeroize::Zeroizing::new(legacy.read_to_vec().map_err(platform)?);
                self.set_secret(&secret)?;
                tracing::info!(
                    "moved the key from the session keyring to the user keyring, readable by you alone"
                );
                Ok(secret.to_vec())
            }
            Err(e) => Err(platform(e)),
        }
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        let ring = user_keyring()?;
        let ours = ring.search(&self.description);
        let had_legacy = forget_legacy(&self.description, ours.as_ref().ok().copied());
        match ours {
            Ok(key) => key.invalidate().map_err(platform),
            Err(KeyError::KeyDoesNotExist) if had_legacy => Ok(()),
            Err(KeyError::KeyDoesNotExist) => Err(Error::NoEntry),
            Err(e) => Err(platform(e)),
        }
    }

    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        match user_keyring()?.search(&self.description) {
            Ok(_) => Ok(None),
            Err(KeyError::KeyDoesNotExist) => Err(Error::NoEntry),
            Err(e) => Err(platform(e)),
        }
    }

    fn get_specifiers(&self) -> Option<(String, String)> {
        Some(self.specifiers.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// This user's keyring, created when missing.
fn user_keyring() -> keyring_core::Result<KeyRing> {
    KeyRing::from_special_id(KeyRingIdentifier::User, true)
        .map_err(|e| Error::NoStorageAccess(Box::new(e)))
}

/// Everything to the owner's uid; nothing to possessors, the group or anyone else.
fn owner_only() -> linux_keyutils::KeyPermissions {
    KeyPermissionsBuilder::builder()
        .user(Permission::ALL)
        .build()
}

/// The key an older credd stored in the session keyring (and linked into the persistent one).
/// A search of the session keyring looks at its own keys before the keyrings linked into it
/// (the user keyring, by PAM), so it finds such a key before ours.
fn legacy_key(description: &str) -> Option<linux_keyutils::Key> {
    KeyRing::from_special_id(KeyRingIdentifier::Session, false)
        .ok()?
        .search(description)
        .ok()
}

/// Invalidates the older credd's copy, if there is one other than `ours`; whether there was.
fn forget_legacy(description: &str, ours: Option<linux_keyutils::Key>) -> bool {
    let id = |k: linux_keyutils::Key| k.get_id().as_raw_id();
    legacy_key(description)
        .filter(|legacy| ours.is_none_or(|ours| id(ours) != id(*legacy)))
        .is_some_and(|legacy| legacy.invalidate().is_ok())
}

fn platform(e: KeyError) -> Error {
    match e {
        KeyError::AccessDenied | KeyError::PermissionDenied => Error::NoStorageAccess(Box::new(e)),
        other => Error::PlatformFailure(Box::new(other)),
    }
}
