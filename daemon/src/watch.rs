//! Follows edits of the config file and applies them live.
//!
//! The config's directory is watched, not the file: editors save by writing a new file and
//! renaming it over the old one. A config symlinked from elsewhere (a dotfiles repo) is edited
//! where it really lives, so that directory is watched too. Bursts of events are debounced into
//! one reload. A watched directory that is deleted takes its watch with it: its parent (or the
//! nearest ancestor still there) is watched too, so that the directory made again is seen, watched
//! again, and its config applied; meanwhile the last good config stays in force.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::daemon::Daemon;

/// Editors write, chmod and rename in quick succession; reload once they are done.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the config for the daemon's lifetime (the task it spawns owns the watcher). If
/// watching is not possible it warns, and `credd reload` and SIGHUP still work.
pub fn watch_config(daemon: Arc<Daemon>) {
    let places = watched_places(&daemon.paths.config);
    let files: Vec<PathBuf> = places.iter().map(|(dir, name)| dir.join(name)).collect();
    let dirs: Vec<PathBuf> = places.iter().map(|(dir, _)| dir.clone()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    // An edit saved after start-up read the config but before the watch began would go
    // unnoticed: look once more as soon as the watch is on.
    let _ = tx.send(());
    let relevant = dirs.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the config (ours included) raises access events: only changes count, or
        // every reload would trigger the next one. A parent's other entries do not count either.
        if let Ok(event) = event
            && !matches!(event.kind, EventKind::Access(_))
            && event
                .paths
                .iter()
                .any(|p| files.contains(p) || relevant.iter().any(|d| d.starts_with(p)))
        {
            let _ = tx.send(());
        }
    });
    let watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config; use `credd reload` after edits");
            return;
        }
    };
    let mut watches = Watches {
        watcher,
        dirs,
        watched: Vec::new(),
    };
    if !watches.renew() {
        return;
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
            // Before reading: a file written right after its directory came back is then seen.
            watches.renew();
            let _ = daemon.reload();
        }
    });
}

/// The watches in place: each config dir and its parent, or, while a dir is gone, the nearest
/// ancestor still there.
struct Watches {
    watcher: RecommendedWatcher,
    dirs: Vec<PathBuf>,
    watched: Vec<PathBuf>,
}

impl Watches {
    /// Watches afresh what is there now: a dir deleted and made again between two looks is a
    /// new dir, whose old watch is dead. Whether anything is watched.
    fn renew(&mut self) -> bool {
        for old in self.watched.drain(..) {
            let _ = self.watcher.unwatch(&old);
        }
        let mut wanted: Vec<PathBuf> = Vec::new();
        for dir in &self.dirs {
            let present = nearest_existing(dir);
            for path in present
                .as_deref()
                .into_iter()
                .chain(dir.parent().filter(|p| p.is_dir()))
            {
                if !wanted.iter().any(|w| w == path) {
                    wanted.push(path.to_path_buf());
                }
            }
            if present.as_deref() != Some(dir.as_path()) {
                tracing::warn!(dir = %dir.display(), "the config's directory is gone; watching for it to come back");
            }
        }
        for path in wanted {
            match self.watcher.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => self.watched.push(path),
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "cannot watch the config dir; use `credd reload` after edits");
                }
            }
        }
        !self.watched.is_empty()
    }
}

/// `dir`, or its nearest ancestor that exists.
fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
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
