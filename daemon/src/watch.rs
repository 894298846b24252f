//! Follows edits of the config file and applies them live.
//!
//! The config's directory is watched, not the file: editors save by writing a new file and
//! renaming it over the old one. A config symlinked from elsewhere (a dotfiles repo) is edited
//! where it really lives, so that directory is watched too. Bursts of events are debounced into
//! one reload.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use crate::daemon::Daemon;

/// Editors write, chmod and rename in quick succession; reload once they are done.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Returns the watcher, which must be kept alive; `None` (with a warning) if watching is not
/// possible, in which case `credd reload` and SIGHUP still work.
pub fn watch_config(daemon: Arc<Daemon>) -> Option<notify::RecommendedWatcher> {
    let places = watched_places(&daemon.paths.config);
    let names: Vec<OsString> = places.iter().map(|(_, name)| name.clone()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    // An edit saved after start-up read the config but before the watch began would go
    // unnoticed: look once more as soon as the watch is on.
    let _ = tx.send(());
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // Reading the config (ours included) raises access events: only changes count, or
            // every reload would trigger the next one.
            if let Ok(event) = event
                && !matches!(event.kind, EventKind::Access(_))
                && event.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| names.iter().any(|name| name == n))
                })
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
    let mut watching = 0;
    for (dir, _) in &places {
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => watching += 1,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config dir; use `credd reload` after edits");
            }
        }
    }
    if watching == 0 {
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

/// (directory, file name) of the config and, when it is a symlink, of the file it points to.
fn watched_places(config: &Path) -> Vec<(PathBuf, OsString)> {
    let real = std::fs::canonicalize(config).ok();
    let mut places = Vec::new();
    for path in std::iter::once(config).chain(real.as_deref()) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let place = (dir.to_path_buf(), name.to_owned());
            if !places.contains(&place) {
                places.push(place);
            }
        }
    }
    places
}
