//! The OS keychain entry that holds the IAM user's long-lived key (`credd`/`aws-access-key`): the
//! Secret Service (GNOME Keyring, KWallet) on a Linux desktop, the kernel keyring (keyutils) on a
//! headless Linux machine, the login Keychain on macOS.
//!
//! The store calls block and may try to unlock the keychain (a prompt): each runs on a blocking
//! thread under [`KEYCHAIN_TIMEOUT`], so a locked keychain or an unanswered prompt is an error
//! that says what to do, never a hang. The store is chosen at first use and kept while it works.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use credd_proto::Secret;
use keyring_core::{CredentialStore, Entry};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::creds::AwsCredentials;
use crate::lock;

/// The entry's service and user (Secret Service attributes `service` and `username`; the
/// macOS item's service and account; the kernel key `keyring:aws-access-key@credd`).
pub const SERVICE: &str = "credd";
pub const USER: &str = "aws-access-key";

/// How long one keychain call may take, unlocking included. A prompt shown on the desktop gets
/// this long to be answered; a locked GNOME Keyring without a prompter fails at once.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The IAM user's key as the keychain holds it: `{"AccessKeyId": .., "SecretAccessKey": ..}`.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: Secret,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .finish()
    }
}

impl StoredKey {
    /// The key as credentials that sign STS calls (a long-lived key: no token, no expiry).
    pub fn credentials(&self) -> AwsCredentials {
        AwsCredentials::long_lived(&self.access_key_id, &self.secret_access_key)
    }

    /// The JSON the keychain holds, in a buffer that is wiped when dropped (sized up front, so
    /// no reallocation leaves a copy behind).
    fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            64 + self.access_key_id.len() + self.secret_access_key.expose().len() * 2,
        ));
        serde_json::to_writer(&mut *out, self).expect("a struct of strings serializes");
        out
    }

    /// What the keychain gave back; `Err` says what is wrong with it, never what it holds.
    fn from_json(bytes: &[u8]) -> Result<StoredKey, String> {
        let key: StoredKey = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's messages quote no input, only positions and expectations.
            format!("not credd's JSON {{\"AccessKeyId\", \"SecretAccessKey\"}}: {e}")
        })?;
        if key.access_key_id.trim().is_empty() || key.secret_access_key.is_empty() {
            return Err("the key ID or the secret is empty".to_owned());
        }
        Ok(key)
    }
}

/// Which kind of store holds the entry: it decides the advice in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SecretService,
    KernelKeyring,
    #[cfg(target_os = "macos")]
    MacKeychain,
    /// A store given by the caller (tests: `keyring_core::mock`).
    Given,
}

#[derive(Clone)]
struct Backend {
    store: Arc<CredentialStore>,
    kind: Kind,
    /// e.g. `Secret Service (default collection)`.
    name: String,
}

impl Backend {
    fn describe(&self) -> String {
        format!("{}: {SERVICE}/{USER}", self.name)
    }
}

/// The OS keychain entry of the IAM user's key. Cheap to clone: clones share the chosen store
/// (and its D-Bus connection).
#[derive(Clone)]
pub struct Keychain {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: the platform's store, probed at first use.
    given: Option<Backend>,
    /// The platform's store once a probe found one; dropped after a failure that may mean the
    /// connection is stale (a restarted keyring daemon), so the next call probes again.
    chosen: Mutex<Option<Backend>>,
    timeout: Duration,
}

impl Default for Keychain {
    fn default() -> Self {
        Keychain::new()
    }
}

impl Keychain {
    /// The platform's store, chosen at first use. Every `new()` of the process shares one choice
    /// and one connection.
    pub fn new() -> Keychain {
        static PLATFORM: OnceLock<Keychain> = OnceLock::new();
        PLATFORM
            .get_or_init(|| Keychain {
                inner: Arc::new(Inner {
                    given: None,
                    chosen: Mutex::new(None),
                    timeout: KEYCHAIN_TIMEOUT,
                }),
            })
            .clone()
    }

    /// The entry in `store` instead of the platform's (tests: `keyring_core::mock::Store`);
    /// `name` is what [`Keychain::describe`] calls it.
    pub fn with_store(store: Arc<CredentialStore>, name: &str, timeout: Duration) -> Keychain {
        Keychain {
            inner: Arc::new(Inner {
                given: Some(Backend {
                    store,
                    kind: Kind::Given,
                    name: name.to_owned(),
                }),
                chosen: Mutex::new(None),
                timeout,
            }),
        }
    }

    /// Where the key is kept, e.g. `Secret Service (default collection): credd/aws-access-key`;
    /// before the first use, the stores that will be tried.
    pub fn describe(&self) -> String {
        match self.backend_known() {
            Some(b) => b.describe(),
            None => format!("{}: {SERVICE}/{USER}", platform_name()),
        }
    }

    /// Whether the chosen store forgets its entries at reboot (the kernel keyring); `None`
    /// before the first use.
    pub fn forgets_at_reboot(&self) -> Option<bool> {
        self.backend_known().map(|b| b.kind == Kind::KernelKeyring)
    }

    fn backend_known(&self) -> Option<Backend> {
        match &self.inner.given {
            Some(b) => Some(b.clone()),
            None => lock::lock(&self.inner.chosen).clone(),
        }
    }

    /// The key the keychain holds; `None`: no entry.
    pub async fn read(&self) -> Result<Option<StoredKey>, KeychainError> {
        self.call(|entry, backend| match entry.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                StoredKey::from_json(&bytes)
                    .map(Some)
                    .map_err(|detail| KeychainError::Corrupt {
                        keychain: backend.describe(),
                        detail,
                    })
            }
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e, backend)),
        })
        .await
    }

    /// Stores `key`, replacing the one there.
    pub async fn write(&self, key: &StoredKey) -> Result<(), KeychainError> {
        let json = key.to_json();
        self.call(move |entry, backend| entry.set_secret(&json).map_err(|e| classify(e, backend)))
            .await
    }

    /// Forgets the key; whether there was one.
    pub async fn remove(&self) -> Result<bool, KeychainError> {
        self.call(|entry, backend| match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(e, backend)),
        })
        .await
    }

    /// Runs `op` on the entry on a blocking thread (the stores block, and zbus' blocking API
    /// runs its own runtime, which must not start on an async worker), within the timeout.
    async fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Entry, &Backend) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, KeychainError> {
        let this = self.clone();
        let work = tokio::task::spawn_blocking(move || {
            let backend = this.backend()?;
            let entry = backend
                .store
                .build(SERVICE, USER, None)
                .map_err(|e| classify(e, &backend))?;
            let result = op(&entry, &backend);
            if let Err(e) = &result
                && e.may_be_stale()
            {
                this.forget(&backend);
            }
            result
        });
        match tokio::time::timeout(self.inner.timeout, work).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(KeychainError::Platform {
                keychain: self.describe(),
                detail: format!("the keychain call failed: {join}"),
            }),
            Err(_) => {
                // The blocked thread still holds the old connection; the next call makes a new one.
                let keychain = self.describe();
                if let Some(b) = self.backend_known() {
                    self.forget(&b);
                }
                Err(KeychainError::TimedOut {
                    keychain,
                    after_s: self.inner.timeout.as_secs(),
                })
            }
        }
    }

    /// The store to use: the given one, the one chosen before, or a new probe. The kernel
    /// keyring is only the fallback: while it is the choice, each call first looks again for a
    /// Secret Service, which may have started after the daemon (a service started before the
    /// desktop session's keyring).
    fn backend(&self) -> Result<Backend, KeychainError> {
        if let Some(b) = &self.inner.given {
            return Ok(b.clone());
        }
        let chosen = lock::lock(&self.inner.chosen).clone();
        if let Some(b) = &chosen
            && b.kind != Kind::KernelKeyring
        {
            return Ok(b.clone());
        }
        let found = platform::probe()?;
        if chosen.is_none_or(|c| c.kind != found.kind) {
            tracing::info!(keychain = %found.describe(), "using the OS keychain");
            *lock::lock(&self.inner.chosen) = Some(found.clone());
        }
        Ok(found)
    }

    fn forget(&self, backend: &Backend) {
        let mut chosen = lock::lock(&self.inner.chosen);
        if chosen
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.store, &backend.store))
        {
            *chosen = None;
        }
    }
}

/// What goes wrong with the keychain; each message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    #[error(
        "the keychain {keychain} is locked ({detail}): {}",
        unlock_advice(keychain)
    )]
    Locked { keychain: String, detail: String },
    #[error(
        "the keychain {keychain} did not answer within {after_s} s (it may be waiting for an \
         unlock prompt nobody answered): {}",
        unlock_advice(keychain)
    )]
    TimedOut { keychain: String, after_s: u64 },
    #[error(
        "no OS keychain credd can use here: {tried}. Start a Secret Service in your session \
         (Debian/Ubuntu: `apt install gnome-keyring`, then log in to a desktop, or run \
         `gnome-keyring-daemon --start --components=secrets` with DBUS_SESSION_BUS_ADDRESS set), \
         or keep the key in the shared credentials file: set key = \"file\" in [access]"
    )]
    Unavailable { tried: String },
    #[error(
        "the keychain {keychain} refused credd access ({detail}): {}, or keep the key in the \
         shared credentials file: set key = \"file\" in [access]",
        refused_advice(keychain)
    )]
    Refused { keychain: String, detail: String },
    #[error("the keychain {keychain} failed: {detail}")]
    Platform { keychain: String, detail: String },
    #[error(
        "the keychain entry {keychain} does not hold a usable key ({detail}): run `credd key add` \
         to replace it, or `credd key remove` to forget it"
    )]
    Corrupt { keychain: String, detail: String },
    #[error(
        "{count} keychain entries match {keychain}, so credd cannot tell which key is meant: \
         remove them (`secret-tool clear service {SERVICE} username {USER}`, or Passwords and \
         Keys), then run `credd key add`"
    )]
    Ambiguous { keychain: String, count: usize },
}

impl KeychainError {
    /// Whether the store's connection may be what failed (a keyring daemon restarted), so the
    /// next call should connect afresh.
    fn may_be_stale(&self) -> bool {
        matches!(
            self,
            KeychainError::Platform { .. } | KeychainError::TimedOut { .. }
        )
    }
}

/// How to unlock the keychain named `keychain`.
fn unlock_advice(keychain: &str) -> &'static str {
    if keychain.starts_with("the macOS login Keychain") {
        "unlock the login Keychain (Keychain Access, or `security unlock-keychain \
         ~/Library/Keychains/login.keychain-db`), then try again"
    } else if keychain.starts_with("the kernel keyring") {
        "check that the kernel keyring answers (`keyctl show @s`), then try again"
    } else {
        "unlock the \"login\" keyring (on a desktop: in Passwords and Keys (seahorse), or log \
         out and in; without one: `gnome-keyring-daemon --replace --unlock \
         --components=secrets` with the keyring's password on stdin), then try again"
    }
}

/// What to check when the keychain named `keychain` refuses access.
fn refused_advice(keychain: &str) -> &'static str {
    if keychain.starts_with("the kernel keyring") {
        "check that this session may use the kernel keyring (`keyctl show @s`; container \
         sandboxes often block keyctl)"
    } else if keychain.starts_with("the macOS login Keychain") {
        "allow credd-daemon to use the item in Keychain Access"
    } else {
        "check that the keychain lets credd-daemon use the item"
    }
}

/// A store's error as a [`KeychainError`]. Never formats what an error may carry of the secret
/// (`BadEncoding` and `BadDataFormat` hold the raw bytes).
fn classify(e: keyring_core::Error, backend: &Backend) -> KeychainError {
    use keyring_core::Error as E;
    let keychain = backend.describe();
    let detail = |err: &(dyn std::error::Error + 'static)| crate::access::error_chain(err);
    match e {
        E::NoStorageAccess(err) => match backend.kind {
            Kind::KernelKeyring => KeychainError::Refused {
                keychain,
                detail: detail(&*err),
            },
            _ => KeychainError::Locked {
                keychain,
                detail: detail(&*err),
            },
        },
        E::BadEncoding(_) => KeychainError::Corrupt {
            keychain,
            detail: "it is not UTF-8 text".to_owned(),
        },
        E::BadDataFormat(_, _) => KeychainError::Corrupt {
            keychain,
            detail: "the store could not decode it".to_owned(),
        },
        E::Ambiguous(entries) => KeychainError::Ambiguous {
            keychain,
            count: entries.len(),
        },
        E::PlatformFailure(err) => KeychainError::Platform {
            keychain,
            detail: detail(&*err),
        },
        E::NoEntry => KeychainError::Platform {
            keychain,
            detail: "the entry vanished during the call".to_owned(),
        },
        // Invalid, TooLong, NotSupportedByStore, NoDefaultStore and future kinds: their
        // messages name parameters and limits, never the secret.
        other => KeychainError::Platform {
            keychain,
            detail: other.to_string(),
        },
    }
}

/// The stores this platform tries, for [`Keychain::describe`] before the first use.
fn platform_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "the macOS login Keychain"
    } else if cfg!(target_os = "linux") {
        "the OS keychain (Secret Service, else the kernel keyring)"
    } else {
        "the OS keychain (none on this platform)"
    }
}

#[cfg(target_os = "linux")]
mod kernel;

#[cfg(target_os = "linux")]
mod platform {
    use keyring_core::api::CredentialStoreApi;

    use super::{Backend, KeychainError, Kind, SERVICE, USER};

    /// The Secret Service when one answers on the session bus, else the kernel keyring when
    /// this process may use it (container sandboxes often block keyctl).
    pub(super) fn probe() -> Result<Backend, KeychainError> {
        let secret_service = match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => {
                return Ok(Backend {
                    store,
                    kind: Kind::SecretService,
                    name: "Secret Service (default collection)".to_owned(),
                });
            }
            Err(e) => crate::access::error_chain(&e),
        };
        let kernel = match super::kernel::Store::new() {
            Ok(store) => {
                let usable = store
                    .build(SERVICE, USER, None)
                    .and_then(|entry| entry.get_secret().map(drop));
                match usable {
                    Ok(()) | Err(keyring_core::Error::NoEntry) => {
                        return Ok(Backend {
                            store,
                            kind: Kind::KernelKeyring,
                            name: "the kernel keyring (keyutils)".to_owned(),
                        });
                    }
                    Err(e) => crate::access::error_chain(&e),
                }
            }
            Err(e) => crate::access::error_chain(&e),
        };
        Err(KeychainError::Unavailable {
            tried: format!(
                "no Secret Service answers on the session bus ({}), and the kernel keyring is \
                 blocked for this process ({})",
                without_prefix(&secret_service),
                without_prefix(&kernel)
            ),
        })
    }

    /// keyring-core's "Platform failure: " adds nothing to a message that says which store.
    fn without_prefix(detail: &str) -> &str {
        ["Platform failure: ", "Couldn't access platform storage: "]
            .iter()
            .find_map(|p| detail.strip_prefix(p))
            .unwrap_or(detail)
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::{Backend, KeychainError, Kind};

    /// The user's login Keychain.
    pub(super) fn probe() -> Result<Backend, KeychainError> {
        match apple_native_keyring_store::keychain::Store::new() {
            Ok(store) => Ok(Backend {
                store,
                kind: Kind::MacKeychain,
                name: "the macOS login Keychain".to_owned(),
            }),
            Err(e) => Err(KeychainError::Unavailable {
                tried: crate::access::error_chain(&e),
            }),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod platform {
    use super::{Backend, KeychainError};

    pub(super) fn probe() -> Result<Backend, KeychainError> {
        Err(KeychainError::Unavailable {
            tried: "credd knows no OS keychain on this platform".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_core::mock;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn key() -> StoredKey {
        StoredKey {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: Secret::new(SECRET),
        }
    }

    fn mock_keychain() -> (Keychain, Arc<mock::Store>) {
        let store = mock::Store::new().expect("a mock store");
        let keychain = Keychain::with_store(store.clone(), "the mock store", KEYCHAIN_TIMEOUT);
        (keychain, store)
    }

    /// The mock credential behind the entry, to plant errors and raw bytes.
    fn with_cred<T>(store: &Arc<mock::Store>, f: impl FnOnce(&mock::Cred) -> T) -> T {
        use keyring_core::api::CredentialStoreApi;
        let entry = store.build(SERVICE, USER, None).expect("an entry");
        let cred: &mock::Cred = entry.as_any().downcast_ref().expect("a mock credential");
        f(cred)
    }

    fn raw(store: &Arc<mock::Store>) -> Option<Vec<u8>> {
        with_cred(store, |c| {
            c.inner.lock().expect("mock lock").borrow().secret.clone()
        })
    }

    #[tokio::test]
    async fn a_key_is_written_as_small_json_read_back_and_removed() {
        let (keychain, store) = mock_keychain();
        assert!(keychain.read().await.unwrap().is_none(), "empty at first");
        keychain.write(&key()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw(&store).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": SECRET})
        );
        let back = keychain.read().await.unwrap().expect("the key");
        assert_eq!(back.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(back.secret_access_key.expose(), SECRET);
        let creds = back.credentials();
        assert_eq!(creds.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(creds.session_token.is_none() && creds.expiration.is_none());
        assert!(keychain.remove().await.unwrap(), "there was one");
        assert!(!keychain.remove().await.unwrap(), "gone");
        assert!(keychain.read().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_write_replaces_the_key() {
        let (keychain, _) = mock_keychain();
        keychain.write(&key()).await.unwrap();
        let newer = StoredKey {
            access_key_id: "AKIANEWERKEY00000000".to_owned(),
            secret_access_key: Secret::new("other"),
        };
        keychain.write(&newer).await.unwrap();
        let back = keychain.read().await.unwrap().unwrap();
        assert_eq!(back.access_key_id, "AKIANEWERKEY00000000");
        assert_eq!(back.secret_access_key.expose(), "other");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?} {:?}", key(), key().credentials());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
    }

    #[tokio::test]
    async fn an_entry_that_is_not_a_credd_key_is_corrupt_and_the_message_quotes_nothing_of_it() {
        let (keychain, store) = mock_keychain();
        for (planted, why) in [
            (
                format!("password {SECRET}").into_bytes(),
                "not credd's JSON",
            ),
            (
                format!("{{\"SecretAccessKey\": \"{SECRET}\"}}").into_bytes(),
                "missing field `AccessKeyId`",
            ),
            (
                format!("{{\"AccessKeyId\": \"\", \"SecretAccessKey\": \"{SECRET}\"}}")
                    .into_bytes(),
                "empty",
            ),
        ] {
            with_cred(&store, |c| {
                c.inner.lock().unwrap().borrow_mut().secret = Some(planted.clone())
            });
            let e = keychain.read().await.expect_err("corrupt");
            assert!(matches!(e, KeychainError::Corrupt { .. }), "{e:?}");
            let text = format!("{e} {e:?}");
            assert!(text.contains(why), "{text}");
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains("run `credd key add`"), "{text}");
        }
        // Bytes a store cannot decode as text: the error keeps them, the message does not.
        with_cred(&store, |c| {
            c.set_error(keyring_core::Error::BadEncoding(SECRET.as_bytes().to_vec()))
        });
        let e = keychain.read().await.expect_err("not UTF-8");
        assert!(!format!("{e} {e:?}").contains(SECRET));
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[tokio::test]
    async fn store_errors_say_what_is_wrong_and_how_to_fix_it() {
        let (keychain, store) = mock_keychain();
        let io = |msg: &str| -> keyring_core::error::PlatformError {
            Box::new(std::io::Error::other(msg.to_owned()))
        };
        with_cred(&store, |c| {
            c.set_error(keyring_core::Error::NoStorageAccess(io(
                "SS error: prompt dismissed",
            )))
        });
        let e = keychain.read().await.expect_err("locked");
        assert!(matches!(e, KeychainError::Locked { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "the keychain the mock store: credd/aws-access-key is locked (SS error: prompt \
                 dismissed): unlock the \"login\" keyring"
            ),
            "{text}"
        );
        with_cred(&store, |c| {
            c.set_error(keyring_core::Error::PlatformFailure(io("zbus error")))
        });
        let e = keychain.write(&key()).await.expect_err("failed");
        assert_eq!(
            e.to_string(),
            "the keychain the mock store: credd/aws-access-key failed: zbus error"
        );
        with_cred(&store, |c| {
            c.set_error(keyring_core::Error::Ambiguous(Vec::new()))
        });
        let e = keychain.remove().await.expect_err("ambiguous");
        assert!(
            e.to_string()
                .contains("`secret-tool clear service credd username aws-access-key`"),
            "{e}"
        );
        // After each error the entry works again.
        keychain.write(&key()).await.unwrap();
        assert!(keychain.read().await.unwrap().is_some());
    }

    #[test]
    fn the_messages_of_a_missing_or_stuck_keychain_say_what_to_do() {
        let e = KeychainError::Unavailable {
            tried: "no Secret Service answers on the session bus (x), and the kernel keyring is \
                    blocked for this process (y)"
                .to_owned(),
        };
        let text = e.to_string();
        assert!(text.contains("`apt install gnome-keyring`"), "{text}");
        assert!(text.contains("set key = \"file\" in [access]"), "{text}");
        let e = KeychainError::TimedOut {
            keychain: "the macOS login Keychain: credd/aws-access-key".to_owned(),
            after_s: 20,
        };
        let text = e.to_string();
        assert!(text.contains("did not answer within 20 s"), "{text}");
        assert!(text.contains("security unlock-keychain"), "{text}");
    }

    #[tokio::test]
    async fn a_store_that_hangs_times_out_instead_of_hanging_the_caller() {
        /// A store whose entries block until released (as a prompt nobody answers).
        struct Stuck(Arc<std::sync::Barrier>);
        #[derive(Debug)]
        struct StuckCred(Arc<std::sync::Barrier>);
        impl keyring_core::api::CredentialApi for StuckCred {
            fn set_secret(&self, _: &[u8]) -> keyring_core::Result<()> {
                self.0.wait();
                Ok(())
            }
            fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
                self.0.wait();
                Err(keyring_core::Error::NoEntry)
            }
            fn delete_credential(&self) -> keyring_core::Result<()> {
                self.0.wait();
                Ok(())
            }
            fn get_credential(
                &self,
            ) -> keyring_core::Result<Option<Arc<keyring_core::Credential>>> {
                Ok(None)
            }
            fn get_specifiers(&self) -> Option<(String, String)> {
                None
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
        impl keyring_core::api::CredentialStoreApi for Stuck {
            fn vendor(&self) -> String {
                "stuck".into()
            }
            fn id(&self) -> String {
                "stuck".into()
            }
            fn build(
                &self,
                _: &str,
                _: &str,
                _: Option<&std::collections::HashMap<&str, &str>>,
            ) -> keyring_core::Result<Entry> {
                Ok(Entry::new_with_credential(Arc::new(StuckCred(
                    self.0.clone(),
                ))))
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
        let release = Arc::new(std::sync::Barrier::new(2));
        let keychain = Keychain::with_store(
            Arc::new(Stuck(release.clone())),
            "a stuck store",
            Duration::from_millis(100),
        );
        let started = std::time::Instant::now();
        let e = keychain.read().await.expect_err("timed out");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(e, KeychainError::TimedOut { .. }), "{e:?}");
        assert!(e.to_string().contains("within 0 s") || e.to_string().contains("prompt"));
        release.wait();
    }

    #[tokio::test]
    async fn the_platform_probe_runs_from_the_runtime_without_panicking() {
        // zbus' blocking API starts a runtime of its own: from an async worker that panics, from
        // the blocking thread it must not. Whatever this machine offers, the answer is a store or
        // the Unavailable error, never a panic.
        let keychain = Keychain::new();
        match keychain.read().await {
            Ok(_) => assert!(keychain.forgets_at_reboot().is_some()),
            Err(e) => assert!(
                matches!(
                    e,
                    KeychainError::Unavailable { .. }
                        | KeychainError::Locked { .. }
                        | KeychainError::TimedOut { .. }
                        | KeychainError::Refused { .. }
                ),
                "{e:?}"
            ),
        }
    }
}
