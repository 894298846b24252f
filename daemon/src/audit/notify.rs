//! `[audit] notify_new`: the first time a program takes a profile matching one of the patterns,
//! a desktop notification. A program is its executable's path and the SHA-256 of its contents
//! (hashed once per path, size and modification time), so a binary replaced in place is new
//! again. What was seen is remembered in `audit-known.json` (0600, replaced in one rename) across
//! restarts. A program the OS does not name is told as "an unknown program" once per profile per
//! daemon run, and not remembered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::process::Program;
use crate::desktop::Notice;

/// What `audit-known.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct KnownFile {
    known: BTreeSet<Seen>,
}

/// A program that took a profile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Seen {
    exe: String,
    /// The SHA-256 of its contents, hex.
    sha256: String,
    profile: String,
}

pub struct Known {
    path: PathBuf,
    known: BTreeSet<Seen>,
    /// (path, size, mtime) → SHA-256.
    hashes: HashMap<(PathBuf, u64, Option<SystemTime>), String>,
    /// Profiles an unknown program took this run.
    unknown_told: HashSet<String>,
}

impl Known {
    /// What `path` remembers; an unreadable or corrupt file is logged and starts afresh.
    pub fn load(path: PathBuf) -> Known {
        let known = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<KnownFile>(&bytes) {
                Ok(file) => file.known,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "audit: the programs seen before cannot be read; every program is new again");
                    BTreeSet::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "audit: the programs seen before cannot be read; every program is new again");
                BTreeSet::new()
            }
        };
        Known {
            path,
            known,
            hashes: HashMap::new(),
            unknown_told: HashSet::new(),
        }
    }

    /// The notice to show when `program` (`None`: unknown, of `uid`) taking `profile` is new;
    /// remembers it.
    pub fn first_take(
        &mut self,
        program: Option<&Program>,
        uid: Option<u32>,
        profile: &str,
        route: &str,
    ) -> Option<Notice> {
        let exe = program.and_then(|p| p.exe.as_ref());
        let (Some(program), Some(exe)) = (program, exe) else {
            if !self.unknown_told.insert(profile.to_owned()) {
                return None;
            }
            let who = match uid {
                Some(uid) => format!("an unknown program ({})", credd_proto::paths::user(uid)),
                None => "an unknown program".to_owned(),
            };
            return Some(Notice {
                summary: format!("credd: {who} took {profile}"),
                body: format!(
                    "On the {route} route; the system did not say which program it was. \
                     `credd audit --profile {profile}` lists every program that took it."
                ),
            });
        };
        let hash = self.hash(program.pid, exe)?;
        let key = Seen {
            exe: exe.display().to_string(),
            sha256: hash,
            profile: profile.to_owned(),
        };
        if self.known.contains(&key) {
            return None;
        }
        self.known.insert(key);
        self.save();
        let cmdline = program
            .cmdline
            .as_ref()
            .map(|c| crate::desktop::shorten(&c.join(" ")))
            .unwrap_or_default();
        Some(Notice {
            summary: format!("credd: {} took {profile} for the first time", exe.display()),
            body: format!(
                "pid {}: {cmdline} (on the {route} route). `credd audit --profile {profile}` \
                 lists every program that took it.",
                program.pid
            ),
        })
    }

    /// The SHA-256 of what `pid` runs: its executable as the process sees it (also when the file
    /// was since replaced or deleted), else the file at `exe`.
    fn hash(&mut self, pid: u32, exe: &Path) -> Option<String> {
        let proc_exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let (source, meta) = match std::fs::metadata(&proc_exe) {
            Ok(meta) => (proc_exe, meta),
            Err(_) => (exe.to_path_buf(), std::fs::metadata(exe).ok()?),
        };
        let key = (exe.to_path_buf(), meta.len(), meta.modified().ok());
        if let Some(hash) = self.hashes.get(&key) {
            return Some(hash.clone());
        }
        let hash = match sha256(&source) {
            Ok(hash) => hash,
            Err(e) => {
                tracing::debug!(exe = %exe.display(), error = %e, "audit: cannot hash the program");
                return None;
            }
        };
        self.hashes.insert(key, hash.clone());
        Some(hash)
    }

    fn save(&self) {
        let file = KnownFile {
            known: self.known.clone(),
        };
        let result = (|| -> std::io::Result<()> {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            // NamedTempFile is 0600.
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer_pretty(&mut tmp, &file)?;
            std::io::Write::write_all(&mut tmp, b"\n")?;
            tmp.as_file().sync_all()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(file = %self.path.display(), error = %e, "audit: cannot remember the programs seen; they will be new again after a restart");
        }
    }
}

fn sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(exe: &Path) -> Program {
        Program {
            // Not a live pid of ours: the file at `exe` is hashed.
            pid: u32::MAX,
            exe: Some(exe.to_path_buf()),
            cmdline: Some(vec!["tool".into(), "--flag".into()]),
            ..Program::default()
        }
    }

    #[test]
    fn a_program_is_new_once_per_profile_until_its_binary_changes_and_restarts_remember() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "version 1").unwrap();
        let path = dir.path().join("known.json");
        let mut known = Known::load(path.clone());
        let notice = known
            .first_take(Some(&program(&exe)), Some(1000), "prod", "container")
            .expect("new");
        assert_eq!(
            notice.summary,
            format!("credd: {} took prod for the first time", exe.display())
        );
        assert!(notice.body.contains("tool --flag"), "{notice:?}");
        assert!(
            known
                .first_take(Some(&program(&exe)), Some(1000), "prod", "imds")
                .is_none()
        );
        assert!(
            known
                .first_take(Some(&program(&exe)), Some(1000), "prod-2", "imds")
                .is_some()
        );

        // Remembered across a restart, 0600.
        let mut again = Known::load(path.clone());
        assert!(
            again
                .first_take(Some(&program(&exe)), Some(1000), "prod", "container")
                .is_none()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // Replaced in place: new again.
        std::fs::write(&exe, "version 2, longer").unwrap();
        assert!(
            again
                .first_take(Some(&program(&exe)), Some(1000), "prod", "container")
                .is_some()
        );
    }

    #[test]
    fn an_unknown_program_is_told_once_per_profile_and_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known.json");
        let mut known = Known::load(path.clone());
        let notice = known
            .first_take(None, Some(0), "prod", "container")
            .expect("told");
        assert!(
            notice
                .summary
                .starts_with("credd: an unknown program (uid 0"),
            "{notice:?}"
        );
        assert!(
            known
                .first_take(None, Some(0), "prod", "container")
                .is_none()
        );
        assert!(
            known
                .first_take(None, Some(0), "prod-2", "container")
                .is_some()
        );
        assert!(!path.exists(), "nothing to remember");
        let mut restarted = Known::load(path);
        assert!(
            restarted
                .first_take(None, Some(0), "prod", "container")
                .is_some()
        );
    }

    #[test]
    fn a_corrupt_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known.json");
        std::fs::write(&path, "{").unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "x").unwrap();
        let mut known = Known::load(path);
        assert!(
            known
                .first_take(Some(&program(&exe)), None, "prod", "imds")
                .is_some()
        );
    }
}
