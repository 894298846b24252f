//! The controlling terminal, where the client asks the user (an MFA code, a key) even when its
//! stdin, stdout and stderr are pipes.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};

/// A terminal to ask the user on: the controlling terminal, or any reader and writer (tests).
pub struct Terminal {
    pub input: Box<dyn Read>,
    output: Box<dyn Write>,
}

impl Terminal {
    /// The controlling terminal, `/dev/tty`: there even when stdin, stdout and stderr are all
    /// pipes (botocore runs `credential_process` so), absent under cron, CI, an editor's plugin
    /// host, or `setsid`.
    pub fn controlling() -> Option<Terminal> {
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
            .filter(|tty| tty.is_terminal())?;
        let input = tty.try_clone().ok()?;
        Some(Terminal::new(input, tty))
    }

    pub fn new(input: impl Read + 'static, output: impl Write + 'static) -> Terminal {
        Terminal {
            input: Box::new(input),
            output: Box::new(output),
        }
    }

    pub fn say(&mut self, text: &str) {
        // A terminal that is gone hangs the process up (SIGHUP): nothing left to tell.
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.flush();
    }
}
