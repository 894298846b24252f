//! The HTTP token file: 256 random bits, hex, 0600, no trailing newline (a newline breaks
//! botocore, Go, Rust and Node). An existing valid token is kept across restarts, so processes
//! that read it once (AWS CLI v2) keep working.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use credd_proto::Secret;
use credd_proto::paths::current_uid;

use crate::runtime::{self, RuntimeError};

const TOKEN_BYTES: usize = 32;

pub fn load_or_create(path: &Path) -> Result<Secret, RuntimeError> {
    if let Some(token) = existing(path) {
        return Ok(token);
    }
    let mut raw = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut *raw).map_err(|e| RuntimeError::File {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("no randomness for the token: {e}")),
    })?;
    let token = Secret::new(hex::encode(*raw));
    runtime::write_private_file(path, token.expose().as_bytes())?;
    Ok(token)
}

fn existing(path: &Path) -> Option<Secret> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.uid() != current_uid() || meta.mode() & 0o077 != 0 {
        return None;
    }
    let text = Secret::new(std::fs::read_to_string(path).ok()?);
    let ok = text.expose().len() == TOKEN_BYTES * 2
        && text.expose().bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(text)
}
