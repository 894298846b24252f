//! Debian's headless Chromium, as the owner's own browser: a real web page in it is the attack
//! (`attacks::browser`). It runs as the test's user (the daemon's), with a fresh profile in a
//! temp dir, and host names of the attacker's resolved to loopback addresses
//! (`--host-resolver-rules`), as a DNS name of theirs may resolve anywhere they like. Installed
//! with apt-get when missing (CI starts clean); killed whole (its process group) when dropped.

use std::fs::File;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::install::apt_install;

/// The Debian package's launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The most of its stderr a failure message shows (its tail).
const STDERR_SHOWN: usize = 8 * 1024;

/// Makes sure Debian's `chromium` is installed (as root, apt-get installs it, once); its path.
pub fn ensure_installed() -> PathBuf {
    let missing = || {
        if Path::new(CHROMIUM).is_file() {
            Vec::new()
        } else {
            vec!["chromium".to_owned()]
        }
    };
    apt_install("a headless Chromium", "chromium-install", missing)
        .unwrap_or_else(|e| panic!("{e}"));
    PathBuf::from(CHROMIUM)
}

/// A running headless Chromium showing one page.
pub struct Chromium {
    child: Child,
    stderr: PathBuf,
    // Last: removed after Drop::drop has killed the browser writing into it.
    dir: tempfile::TempDir,
}

impl Chromium {
    /// Opens `url` in a new headless Chromium whose resolver maps each `(name, address)` of
    /// `hosts`.
    pub fn open(url: &str, hosts: &[(&str, IpAddr)]) -> Chromium {
        let program = ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("credd-chromium-")
            .tempdir()
            .expect("create Chromium's profile dir");
        let profile = dir.path().join("profile");
        let stderr = dir.path().join("stderr");
        let rules: Vec<String> = hosts
            .iter()
            .map(|(name, address)| format!("MAP {name} {address}"))
            .collect();
        let mut command = Command::new(&program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // The page's console lines, for a failure message.
                "--enable-logging=stderr",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--host-resolver-rules={}", rules.join(", ")))
            .arg(url)
            // Nothing of ours (AWS_*, CREDD_*, the developer's HOME) in its environment.
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .current_dir(dir.path())
            // A group of its own: the launcher script, the browser and its zygotes, renderers
            // and utility processes are all killed together.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("create Chromium's stderr file"));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Chromium { child, stderr, dir }
    }

    /// Whether the browser has exited (it should not, before it is killed).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The tail of what it printed on stderr (its own errors, the page's console).
    pub fn stderr(&self) -> String {
        let text = std::fs::read(&self.stderr).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(STDERR_SHOWN)..];
        String::from_utf8_lossy(tail).into_owned()
    }

    /// Its profile dir (for a failure message).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let group = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) of the process group we started (its leader is our unreaped child,
        // so the id cannot have been reused).
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
