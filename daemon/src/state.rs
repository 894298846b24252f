//! The persistent state file: which profile the current route serves. No secrets, ever.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime_dir::{self, RuntimeError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub current_profile: Option<String>,
}

impl State {
    /// A missing file is a fresh start; a corrupt one is reported and ignored (it holds nothing
    /// that cannot be chosen again with `credd switch`).
    pub fn load(path: &Path) -> State {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable state file");
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read state file");
                State::default()
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), RuntimeError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::File {
                path: PathBuf::from(dir),
                source,
            })?;
        }
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        runtime_dir::write_private_file(path, &json)
    }
}
