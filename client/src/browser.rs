//! Opening a URL in the user's browser: whether this session can show one at all, and which
//! command to start (`$BROWSER` as the xdg convention has it, else `xdg-open` / `open`). The
//! browser is started detached and never waited for; the caller always has the URL to print.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Whether a browser started here would appear in front of the user: a graphical session on
/// Linux (and other Unixes); on macOS anything but an SSH login.
pub fn can_open_here() -> bool {
    has_display(cfg!(target_os = "macos"), |name| std::env::var_os(name))
}

fn has_display<V: AsRef<OsStr>>(macos: bool, var: impl Fn(&str) -> Option<V>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.as_ref().is_empty());
    if macos {
        !set("SSH_CONNECTION") && !set("SSH_TTY")
    } else {
        set("DISPLAY") || set("WAYLAND_DISPLAY")
    }
}

/// Starts the first browser command that runs; `false` when none did (then the user opens the
/// URL by hand). Only `http(s)` URLs are handed to a browser.
pub fn open(url: &str) -> bool {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return false;
    }
    let browser = std::env::var("BROWSER").ok();
    commands(browser.as_deref(), url, cfg!(target_os = "macos"))
        .iter()
        .any(|argv| start_detached(argv))
}

/// The commands to try, in order: each entry of `$BROWSER` (colon-separated command lines; `%s`
/// becomes the URL, `%%` a percent sign; without `%s` the URL is appended), then the system's
/// opener.
fn commands(browser: Option<&str>, url: &str, macos: bool) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = browser
        .unwrap_or_default()
        .split(':')
        .filter_map(|entry| {
            let mut substituted = false;
            let mut argv: Vec<String> = entry
                .split_whitespace()
                .map(|word| {
                    let (arg, had_url) = substitute(word, url);
                    substituted |= had_url;
                    arg
                })
                .collect();
            if argv.is_empty() {
                return None;
            }
            if !substituted {
                argv.push(url.to_owned());
            }
            Some(argv)
        })
        .collect();
    let opener = if macos { "open" } else { "xdg-open" };
    out.push(vec![opener.to_owned(), url.to_owned()]);
    out
}

/// `%s` → the URL and `%%` → `%` in one word of a `$BROWSER` command line.
fn substitute(word: &str, url: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut had_url = false;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => {
                out.push_str(url);
                had_url = true;
            }
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    (out, had_url)
}

/// Runs `argv` in its own process group (a Ctrl-C meant for `credd` does not reach it) with
/// null stdio, without waiting for it; a thread reaps it whenever it ends.
fn start_detached(argv: &[String]) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match child {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://device.sso.us-east-1.amazonaws.com/?user_code=ABCD-EFGH";

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn linux_needs_a_graphical_session() {
        assert!(!has_display(false, env(&[])));
        assert!(has_display(false, env(&[("DISPLAY", ":0")])));
        assert!(has_display(false, env(&[("WAYLAND_DISPLAY", "wayland-0")])));
        assert!(
            !has_display(false, env(&[("DISPLAY", "")])),
            "empty is unset"
        );
        // X forwarding over SSH shows the browser to the user: the display decides, not SSH.
        assert!(has_display(
            false,
            env(&[("DISPLAY", "localhost:10.0"), ("SSH_TTY", "/dev/pts/1")])
        ));
    }

    #[test]
    fn macos_has_a_display_unless_logged_in_over_ssh() {
        assert!(has_display(true, env(&[])));
        assert!(!has_display(
            true,
            env(&[("SSH_CONNECTION", "10.0.0.2 52000 10.0.0.1 22")])
        ));
        assert!(!has_display(true, env(&[("SSH_TTY", "/dev/ttys001")])));
    }

    #[test]
    fn browser_variable_follows_the_xdg_convention() {
        let cmds = commands(
            Some("firefox --new-window %s:chromium::my-browser --url=%s --pct=100%%"),
            URL,
            false,
        );
        assert_eq!(
            cmds,
            vec![
                vec!["firefox".to_owned(), "--new-window".into(), URL.into()],
                vec!["chromium".to_owned(), URL.into()],
                vec![
                    "my-browser".to_owned(),
                    format!("--url={URL}"),
                    "--pct=100%".into()
                ],
                vec!["xdg-open".to_owned(), URL.into()],
            ]
        );
    }

    #[test]
    fn without_browser_variable_the_system_opener() {
        assert_eq!(
            commands(None, URL, true),
            vec![vec!["open".to_owned(), URL.into()]]
        );
        assert_eq!(
            commands(Some(""), URL, false),
            vec![vec!["xdg-open".to_owned(), URL.into()]]
        );
    }

    #[test]
    fn only_web_urls_are_opened() {
        assert!(!open("file:///etc/passwd"));
        assert!(!open("-x https://example.com"));
    }
}
