//! The audit log on disk: JSON lines appended to `audit.jsonl` (0600, in the private state dir,
//! never through a symlink). Before a write would take it past its bound it is renamed to
//! `audit.jsonl.1` (replacing the one before), so at most twice the bound is ever on disk. A
//! write that fails is logged once, not per line, and the daemon serves on; the next batch tries
//! again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub struct LogFile {
    path: PathBuf,
    rotated: PathBuf,
    file: Option<File>,
    /// Its size as far as this writer knows (what it found when it opened it, and wrote since).
    size: u64,
    /// The last write failed, and that was logged.
    failing: bool,
}

impl LogFile {
    pub fn new(path: PathBuf, rotated: PathBuf) -> LogFile {
        LogFile {
            path,
            rotated,
            file: None,
            size: 0,
            failing: false,
        }
    }

    /// Appends `lines` (whole lines, each ending in `\n`), rotating first when they would take
    /// the file past `max_size`.
    pub fn append(&mut self, lines: &[u8], max_size: u64) {
        match self.try_append(lines, max_size) {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(file = %self.path.display(), "audit: the log is written again");
                }
            }
            Err(e) => {
                self.file = None;
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(
                        file = %self.path.display(),
                        error = %e,
                        "audit: cannot write the audit log; credentials are served but not recorded until it can be written"
                    );
                }
            }
        }
    }

    fn try_append(&mut self, lines: &[u8], max_size: u64) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        // Line by line as far as the bound goes: a batch larger than what is left of it is
        // split across the rotation.
        let (mut start, mut end) = (0, 0);
        for line in lines.split_inclusive(|b| *b == b'\n') {
            let kept = self.size + (end - start) as u64;
            if kept > 0 && kept + line.len() as u64 > max_size {
                self.write(&lines[start..end])?;
                std::fs::rename(&self.path, &self.rotated)?;
                self.open()?;
                start = end;
            }
            end += line.len();
        }
        self.write(&lines[start..end])
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().expect("opened before");
        file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_before_it_passes_its_bound_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rotated) = (dir.path().join("a.jsonl"), dir.path().join("a.jsonl.1"));
        let mut log = LogFile::new(path.clone(), rotated.clone());
        let line = format!("{}\n", "x".repeat(99)); // 100 bytes
        for _ in 0..35 {
            log.append(line.as_bytes(), 1000);
            let on_disk = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
            assert!(on_disk(&path) <= 1000, "{}", on_disk(&path));
            assert!(on_disk(&path) + on_disk(&rotated) <= 2000);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5);
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap().lines().count(),
            10
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_batch_larger_than_what_is_left_is_split_across_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rotated) = (dir.path().join("a.jsonl"), dir.path().join("a.jsonl.1"));
        let mut log = LogFile::new(path.clone(), rotated.clone());
        let line = format!("{}\n", "x".repeat(99));
        log.append(line.repeat(3).as_bytes(), 1000);
        log.append(line.repeat(12).as_bytes(), 1000);
        let lines = |p: &PathBuf| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!((lines(&rotated), lines(&path)), (10, 5));
    }

    #[test]
    fn a_failing_write_is_retried_with_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("gone");
        let mut log = LogFile::new(sub.join("a.jsonl"), sub.join("a.jsonl.1"));
        log.append(b"1\n", 1000);
        assert!(log.failing);
        std::fs::create_dir(&sub).unwrap();
        log.append(b"2\n", 1000);
        assert!(!log.failing);
        assert_eq!(std::fs::read_to_string(sub.join("a.jsonl")).unwrap(), "2\n");
    }

    #[test]
    fn a_symlink_in_its_place_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        let path = dir.path().join("a.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut log = LogFile::new(path, dir.path().join("a.jsonl.1"));
        log.append(b"1\n", 1000);
        assert!(log.failing);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    }
}
