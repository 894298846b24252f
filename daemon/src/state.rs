//! The persistent state file: which profile the current route serves, and its region (the
//! contents are `credd_proto::state::State`, which `credd prompt` reads). No secrets, ever.

use std::path::Path;

pub use credd_proto::state::State;

use crate::runtime_dir::{self, RuntimeError};

/// Far more than a profile name needs.
const MAX_LEN: u64 = 64 * 1024;

/// Loading and saving the state file, private to this user.
pub trait StateFile: Sized {
    fn load(path: &Path) -> Self;
    fn save(&self, path: &Path) -> Result<(), RuntimeError>;
}

impl StateFile for State {
    /// A missing file is a fresh start; a corrupt one, or one that is not a private file of ours
    /// (another user's, a symlink), is reported and ignored (it holds nothing that cannot be
    /// chosen again with `credd switch`).
    fn load(path: &Path) -> State {
        match runtime_dir::read_private_file(path, MAX_LEN) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable state file");
                State::default()
            }),
            Ok(None) => State::default(),
            Err(e) => {
                tracing::warn!("ignoring the state file: {e}");
                State::default()
            }
        }
    }

    fn save(&self, path: &Path) -> Result<(), RuntimeError> {
        if let Some(dir) = path.parent() {
            runtime_dir::ensure_private_dir(dir, runtime_dir::STATE)?;
        }
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        runtime_dir::write_private_file(path, &json)
    }
}
