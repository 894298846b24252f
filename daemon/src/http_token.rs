//! The HTTP token: 256 random bits, hex, in a 0600 file without a trailing newline (a newline
//! breaks botocore, Go, Rust and Node). A new one at every daemon start: while the daemon was
//! down, another user may have held its port and collected the old token from the SDKs that
//! knocked. `credd logout` and `credd reset-token` replace it too, locking out every holder of
//! the old one. SDKs that re-read the file at each refresh (botocore, Go, JS, Rust, Java) carry
//! on; a process that read it once (the AWS CLI v2) needs a restart.

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
    /// A new token, written to `path` (replacing whatever is there).
    pub fn create(path: &Path) -> Result<HttpToken, RuntimeError> {
        let token = fresh(path)?;
        runtime_dir::write_private_file(path, token.expose().as_bytes())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_at_every_start_and_replaced_on_rotate() {
        let dir = std::env::temp_dir().join(format!("credd-token-{}", std::process::id()));
        runtime_dir::ensure_private_dir(&dir, runtime_dir::RUNTIME).unwrap();
        let path = dir.join("http.token");
        let first = HttpToken::create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 64);
        assert!(first.matches(text.as_bytes()));
        assert!(!first.matches(&text.as_bytes()[..63]));

        let again = HttpToken::create(&path).unwrap();
        let restarted = std::fs::read_to_string(&path).unwrap();
        assert_ne!(restarted, text, "a restart replaces it");
        assert!(!again.matches(text.as_bytes()));
        again.rotate().unwrap();
        let rotated = std::fs::read_to_string(&path).unwrap();
        assert_ne!(rotated, restarted);
        assert!(!again.matches(restarted.as_bytes()));
        assert!(again.matches(rotated.as_bytes()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
