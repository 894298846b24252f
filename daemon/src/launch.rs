//! Starting the daemon in the background and the readiness handshake.
//!
//! `credd-daemon` (without `--foreground`) re-executes itself with `--foreground --log-file` in a
//! new session (the log rotated by the daemon itself; stderr, for what escapes it, appended to the
//! same file) and waits for one line on a pipe: `ready` or `error: ...`. The client's autostart
//! runs exactly this, so there is one start-up path.
//! Under systemd the same moment is reported with `sd_notify(READY=1)`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use credd_proto::paths::{ENV_CONFIG, ENV_RUNTIME_DIR, ENV_STATE_DIR, Paths};

/// Environment variable naming the fd a foreground daemon reports readiness on.
pub const ENV_READY_FD: &str = "CREDD_READY_FD";
/// The fd number the pipe is given in the child.
const READY_FD: i32 = 3;
/// Start-up is a config parse and a few binds; 20 s means something is badly wrong.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn start_in_background(paths: &Paths) -> anyhow::Result<()> {
    crate::runtime_dir::ensure_private_dir(&paths.state_dir, crate::runtime_dir::STATE)?;
    let log_path = paths.log_file();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&log_path)
        .with_context(|| format!("opening log file {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating credd-daemon")?;
    let (reader, writer) = std::io::pipe().context("creating the readiness pipe")?;
    let writer_fd = writer.as_raw_fd();

    let mut cmd = Command::new(exe);
    cmd.arg("--foreground")
        .arg("--log-file")
        .arg(&log_path)
        .env(ENV_CONFIG, &paths.config)
        .env(ENV_RUNTIME_DIR, &paths.runtime_dir)
        .env(ENV_STATE_DIR, &paths.state_dir)
        .env(ENV_READY_FD, READY_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // A new session: no controlling terminal, untouched by the shell's Ctrl-C or hangup.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if writer_fd == READY_FD {
                let flags = libc::fcntl(READY_FD, libc::F_GETFD);
                libc::fcntl(READY_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(writer_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting credd-daemon --foreground")?;
    drop(writer);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(reader).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) if line.trim() == "ready" => {
            eprintln!(
                "credd-daemon started (pid {}); log: {}",
                child.id(),
                log_path.display()
            );
            Ok(())
        }
        Ok(line) => {
            let _ = child.wait();
            match line.trim().strip_prefix("error: ") {
                Some(msg) => bail!("{msg}"),
                None => bail!(
                    "credd-daemon exited during start-up; see {}",
                    log_path.display()
                ),
            }
        }
        Err(_) => {
            let _ = child.kill();
            bail!(
                "credd-daemon did not become ready within {}s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            )
        }
    }
}

/// Reports the outcome of start-up to whoever started us: the launcher's pipe and/or systemd.
pub fn report_startup(outcome: Result<(), &str>) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Some(fd) = std::env::var(ENV_READY_FD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        // SAFETY: the launcher passed this fd to us for exactly this one write; we own it now.
        let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let line = match outcome {
            Ok(()) => "ready\n".to_owned(),
            Err(msg) => format!("error: {}\n", msg.replace('\n', " ")),
        };
        let _ = pipe.write_all(line.as_bytes());
    }
    if outcome.is_ok() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}
