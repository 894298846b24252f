//! Follows edits of the config file and applies them live.
//!
//! The config's directory is watched, not the file: editors save by writing a new file and
//! renaming it over the old one. Bursts of events are debounced into one reload.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::Daemon;

/// Editors write, chmod and rename in quick succession; reload once they are done.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Returns the watcher, which must be kept alive; `None` (with a warning) if watching is not
/// possible, in which case `credd reload` and SIGHUP still work.
pub fn watch_config(daemon: Arc<Daemon>) -> Option<notify::RecommendedWatcher> {
    let path = daemon.paths.config.clone();
    let dir = path.parent()?.to_path_buf();
    let name: OsString = path.file_name()?.to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && event.paths.iter().any(|p| p.file_name() == Some(&name))
            {
                let _ = tx.send(());
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config; use `credd reload` after edits");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config dir; use `credd reload` after edits");
        return None;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Swallow the rest of the burst.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            tracing::debug!("config file changed");
            let _ = daemon.reload();
        }
    });
    Some(watcher)
}
