//! A pseudo-terminal, for the scenarios where `credd` must find a person to ask: a program
//! attached to it has it as its controlling terminal (`/dev/tty`), as when started from an
//! interactive shell, whatever its stdout and stderr are; the test reads the screen and types.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::POLL_INTERVAL;
use crate::server::lock;

pub struct Terminal {
    /// The terminal's other side: what is typed goes in here, what is shown comes out.
    master: File,
    /// The terminal itself, as a program sees it.
    slave: OwnedFd,
    /// Everything shown so far (the echo of what was typed included).
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    pub fn open() -> Terminal {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty stores two new descriptors in the two ints; no name buffer, default
        // termios and window size (null pointers) are allowed.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened for this process and nothing else owns them.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        for fd in [&master, &slave] {
            // Other tests spawn processes at the same time: none of them may inherit the terminal.
            // SAFETY: F_SETFD on a descriptor this process owns.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let master = File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master
            .try_clone()
            .expect("clone the terminal's master side");
        let shown = screen.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            // Ends with EIO once no program holds the terminal any more (and it is dropped).
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                lock(&shown).extend_from_slice(&chunk[..n]);
            }
        });
        Terminal {
            master,
            slave,
            screen,
        }
    }

    /// Makes this terminal `command`'s controlling terminal and its stdin (stdout and stderr stay
    /// as `command` has them). [`crate::world::World::command`] has already put `command` in a
    /// session of its own, as a login shell's job control would; otherwise this does.
    pub fn attach(&self, command: &mut Command) {
        command.stdin(self.stdio());
        let tty = self.slave.as_raw_fd();
        // SAFETY: only async-signal-safe calls (getsid, getpid, setsid, ioctl) between fork and
        // exec, on a descriptor that stays open until exec (CLOEXEC closes it then; the session
        // keeps its controlling terminal).
        unsafe {
            command.pre_exec(move || {
                if libc::getsid(0) != libc::getpid() && libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(tty, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The terminal as a program's stdin, stdout or stderr.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("clone the terminal"))
    }

    /// Everything shown so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&lock(&self.screen)).into_owned()
    }

    /// Waits until the screen shows `needle`; panics showing the screen otherwise.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, deadline: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            if start.elapsed() > deadline {
                panic!("the terminal did not show {needle:?} within {deadline:?}:\n{screen}");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Types `keys` as they are: no Enter added (a Tab, `\r` for Enter in a full-screen
    /// program, `\x01` for Ctrl-A).
    pub fn type_keys(&self, keys: &str) {
        let mut master = &self.master;
        master
            .write_all(keys.as_bytes())
            .and_then(|()| master.flush())
            .expect("type on the terminal");
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        let mut master = &self.master;
        master
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| master.flush())
            .expect("type on the terminal");
    }
}
