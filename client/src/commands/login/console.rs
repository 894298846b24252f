//! Where a login talks with the user: the controlling terminal or stderr for what is said, the
//! terminal for the MFA code, read one line at a time into buffers wiped on drop.

use std::io::{ErrorKind, Read};

use credd_proto::Secret;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::terminal::Terminal;

/// Where a login talks with the user.
pub(super) struct Console {
    /// Where an MFA code is asked for; `None`: there is no terminal to ask on.
    pub(super) terminal: Option<Terminal>,
    /// The instructions and progress go to the terminal (a login on demand), else to stderr.
    pub(super) progress_on_terminal: bool,
    /// `credd login --json`: a pending authorization is one JSON line on stderr instead.
    pub(super) json: bool,
}

impl Console {
    pub(super) fn say(&mut self, text: &str) {
        match &mut self.terminal {
            Some(terminal) if self.progress_on_terminal => terminal.say(text),
            _ => eprint!("{text}"),
        }
    }

    pub(super) fn ask_code(&mut self, serial: &str) -> Result<Secret, ClientError> {
        match &mut self.terminal {
            Some(terminal) => terminal.ask_code(serial),
            // A script without one must pass `--mfa-code -`.
            None => Err(ClientError::MfaNoTerminal {
                serial: serial.to_owned(),
            }),
        }
    }
}

impl Terminal {
    pub(super) fn ask_code(&mut self, serial: &str) -> Result<Secret, ClientError> {
        self.say(&format!("MFA code for {serial}: "));
        read_code_line(&mut self.input)
    }
}

/// The longest line read as an MFA code (codes are 6 digits; the rest is slack for spaces).
const MAX_CODE_LINE: usize = 64;

/// One line of `input`, the MFA code, kept only in buffers wiped on drop: read a byte at a time
/// into room reserved beforehand, so neither a reader's buffer nor a reallocation leaves a copy.
pub(super) fn read_code_line(input: &mut impl Read) -> Result<Secret, ClientError> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_CODE_LINE));
    let mut byte = Zeroizing::new([0u8; 1]);
    loop {
        match input.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() < MAX_CODE_LINE => line.push(byte[0]),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::MfaCodeUnreadable(e)),
        }
    }
    // Not UTF-8 is not a code: the daemon refuses the replacement characters as such.
    let code = Secret::new(String::from_utf8_lossy(&line).trim());
    if code.is_empty() {
        return Err(ClientError::MfaCodeEmpty);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal whose keyboard types `typed` and whose screen is shared with the test.
    fn terminal(typed: &str) -> (Terminal, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Screen(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Screen {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let screen = Screen(Default::default());
        let shown = screen.0.clone();
        let keyboard = std::io::Cursor::new(typed.as_bytes().to_vec());
        (Terminal::new(keyboard, screen), shown)
    }

    #[test]
    fn the_code_is_asked_and_read_on_the_terminal_one_line_at_a_time() {
        let (terminal, screen) = terminal("123456\r\nnext line\n");
        let mut console = Console {
            terminal: Some(terminal),
            progress_on_terminal: true,
            json: false,
        };
        console.say("logging in.\n");
        let code = console.ask_code("arn:aws:iam::1:mfa/alice").unwrap();
        assert_eq!(code.expose(), "123456");
        let shown = String::from_utf8(screen.lock().unwrap().clone()).unwrap();
        assert_eq!(
            shown,
            "logging in.\nMFA code for arn:aws:iam::1:mfa/alice: "
        );
        // Only the code's line was read: what follows is left to whoever reads next.
        let Some(terminal) = console.terminal.as_mut() else {
            unreachable!()
        };
        let mut rest = String::new();
        terminal.input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "next line\n");
    }

    #[test]
    fn an_empty_or_endless_line_is_no_code_and_no_terminal_says_how_to_pass_one() {
        let (terminal, _) = terminal("\n");
        let mut console = Console {
            terminal: Some(terminal),
            progress_on_terminal: false,
            json: false,
        };
        assert!(matches!(
            console.ask_code("s"),
            Err(ClientError::MfaCodeEmpty)
        ));
        // Ctrl-D at the prompt.
        assert!(matches!(
            read_code_line(&mut std::io::empty()),
            Err(ClientError::MfaCodeEmpty)
        ));
        let long = format!("{}\n", "9".repeat(10_000));
        let code = read_code_line(&mut long.as_bytes()).unwrap();
        assert_eq!(code.expose().len(), MAX_CODE_LINE, "capped, never grown");
        let mut console = Console {
            terminal: None,
            progress_on_terminal: false,
            json: false,
        };
        let e = console.ask_code("arn:aws:iam::1:mfa/alice").unwrap_err();
        assert!(e.to_string().contains("--mfa-code -"), "{e}");
    }
}
