//! The HTTP token: 256 random bits, hex, in a 0600 file without a trailing newline (a newline
//! breaks botocore, Go, Rust and Node). A valid token of ours is kept across restarts, so
//! processes that read it once (AWS CLI v2) keep working; `credd logout` and `credd reset-token`
//! replace it, locking out every holder of the old one.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use credd_proto::Secret;
use subtle::ConstantTimeEq;

use crate::lock;
use crate::runtime_dir::{self, RuntimeError};

const TOKEN_BYTES: usize = 32;

pub struct HttpToken {
    path: PathBuf,
    current: RwLock<Secret>,
}

impl HttpToken {
    /// The token in `path` if it is one of ours and `keep` allows it, else a new one. Pass
    /// `keep = false` when others may have read the file (the runtime dir was open to them).
    pub fn load_or_create(path: &Path, keep: bool) -> Result<HttpToken, RuntimeError> {
        let existing = if keep { existing(path) } else { None };
        let token = match existing {
            Some(token) => token,
            None => {
                let token = fresh(path)?;
                runtime_dir::write_private_file(path, token.expose().as_bytes())?;
                token
            }
        };
        Ok(HttpToken {
            path: path.to_path_buf(),
            current: RwLock::new(token),
        })
    }

    /// Constant time: how much of a guess is right must not show in how long the answer takes.
    pub fn matches(&self, given: &[u8]) -> bool {
        let current = lock::read(&self.current);
        bool::from(given.ct_eq(current.expose().as_bytes()))
    }

    /// A new token, in the file first: the old one stops working once the new one is readable.
    pub fn rotate(&self) -> Result<(), RuntimeError> {
        let token = fresh(&self.path)?;
        runtime_dir::write_private_file(&self.path, token.expose().as_bytes())?;
        *lock::write(&self.current) = token;
        tracing::info!(file = %self.path.display(), "HTTP token replaced; the old one no longer works");
        Ok(())
    }
}

fn fresh(path: &Path) -> Result<Secret, RuntimeError> {
    let mut raw = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut *raw).map_err(|e| RuntimeError::File {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("no randomness for the token: {e}")),
    })?;
    Ok(Secret::new(hex::encode(*raw)))
}

fn existing(path: &Path) -> Option<Secret> {
    let bytes = match runtime_dir::read_private_file(path, TOKEN_BYTES as u64 * 2) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!("{e}; writing a new HTTP token");
            return None;
        }
    };
    let ok = bytes.len() == TOKEN_BYTES * 2 && bytes.iter().all(u8::is_ascii_hexdigit);
    ok.then(|| Secret::new(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_when_trusted_replaced_on_rotate_or_when_not() {
        let dir = std::env::temp_dir().join(format!("credd-token-{}", std::process::id()));
        runtime_dir::ensure_private_dir(&dir).unwrap();
        let path = dir.join("http.token");
        let first = HttpToken::load_or_create(&path, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 64);
        assert!(first.matches(text.as_bytes()));
        assert!(!first.matches(&text.as_bytes()[..63]));

        let again = HttpToken::load_or_create(&path, true).unwrap();
        assert!(again.matches(text.as_bytes()), "kept across a restart");
        again.rotate().unwrap();
        let rotated = std::fs::read_to_string(&path).unwrap();
        assert_ne!(rotated, text);
        assert!(!again.matches(text.as_bytes()));
        assert!(again.matches(rotated.as_bytes()));

        let distrusted = HttpToken::load_or_create(&path, false).unwrap();
        assert!(
            !distrusted.matches(rotated.as_bytes()),
            "not kept when others saw it"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
