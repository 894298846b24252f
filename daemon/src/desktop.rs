//! Desktop notifications: freedesktop notifications over D-Bus on Linux (zbus), Notification
//! Center on macOS. Sending never blocks the caller (a task of its own, with a time limit); with
//! no desktop (no session bus, no notification server) nothing is shown, and that is logged once
//! at debug. A notice never holds a secret: what it says is also in the log and in status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one notification may take to be sent (a bus that would start a notification server
/// on demand can take long): past it, it is dropped.
pub const SEND_LIMIT: Duration = Duration::from_secs(10);

/// What the user is told: a one-line summary and a sentence or two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
}

impl Notice {
    /// Without what identifies accounts and roles to whoever looks at a locked screen: ARNs
    /// become `<ARN>` and 12-digit account IDs `<account>`.
    pub fn for_lock_screen(self) -> Notice {
        Notice {
            summary: redact(&self.summary),
            body: redact(&self.body),
        }
    }
}

fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // An ARN runs to the next space or closing punctuation.
        if rest.starts_with("arn:aws") {
            let end = rest
                .find(|c: char| c.is_whitespace() || "\"'),;".contains(c))
                .unwrap_or(rest.len());
            out.push_str("<ARN>");
            rest = &rest[end..];
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let after_letter = out
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric());
            if digits == 12 && !after_letter {
                out.push_str("<account>");
            } else {
                out.push_str(&rest[..digits]);
            }
            rest = &rest[digits..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Most of what a notification shows of an error: its first `SHORT` characters.
const SHORT: usize = 160;

/// `text` cut to [`SHORT`] characters (an error's start says what failed; status has the rest).
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHORT) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_owned(),
    }
}

/// Where notices go: the desktop, or (unit tests) a list.
pub trait Notifier: Send + Sync {
    /// Shows `notice` without waiting for it to be shown. Called inside the tokio runtime.
    fn show(&self, notice: Notice);
}

/// The user's desktop.
#[derive(Default)]
pub struct Desktop {
    /// Whether "no desktop to notify" was logged already.
    told_unavailable: Arc<AtomicBool>,
}

impl Notifier for Desktop {
    fn show(&self, notice: Notice) {
        let told = self.told_unavailable.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(SEND_LIMIT, send(&notice)).await {
                Ok(sent) => sent,
                Err(_) => Err(format!("no answer within {}s", SEND_LIMIT.as_secs())),
            };
            match result {
                Ok(()) => tracing::debug!(
                    summary = %notice.summary,
                    took_ms = started.elapsed().as_millis() as u64,
                    "desktop notification shown"
                ),
                Err(e) if !told.swap(true, Ordering::Relaxed) => tracing::debug!(
                    error = %e,
                    "no desktop notification (no desktop session, or nothing shows notifications); the log and status say the same"
                ),
                Err(e) => tracing::trace!(error = %e, "no desktop notification"),
            }
        });
    }
}

/// The freedesktop Notifications service on the session bus (`DBUS_SESSION_BUS_ADDRESS`, else
/// `$XDG_RUNTIME_DIR/bus`).
#[cfg(all(unix, not(target_os = "macos")))]
async fn send(notice: &Notice) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname("credd")
        .summary(&notice.summary)
        // Servers may read the body as markup.
        .body(&escape_markup(&notice.body))
        .icon("dialog-warning")
        .show_async()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(target_os = "macos")]
async fn send(notice: &Notice) -> Result<(), String> {
    let notice = notice.clone();
    // mac-notification-sys blocks until Notification Center has it.
    tokio::task::spawn_blocking(move || {
        notify_rust::Notification::new()
            .summary(&notice.summary)
            .body(&notice.body)
            .show()
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(not(unix))]
async fn send(_: &Notice) -> Result<(), String> {
    Err("no desktop notifications on this platform".to_owned())
}

#[cfg(all(unix, not(target_os = "macos")))]
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lock_screen_shows_no_account_or_role() {
        let notice = super::Notice {
            summary: "credd: profile prod is failing".to_owned(),
            body: "AccessDenied: User: arn:aws:sts::111111111111:assumed-role/Access/alice is not \
                   authorized to perform sts:AssumeRole on resource: \
                   arn:aws:iam::222222222222:role/Deployer (account 333333333333, request \
                   0123456789ab1234, code 1234567890123)"
                .to_owned(),
        }
        .for_lock_screen();
        assert_eq!(notice.summary, "credd: profile prod is failing");
        assert_eq!(
            notice.body,
            "AccessDenied: User: <ARN> is not authorized to perform sts:AssumeRole on resource: \
             <ARN> (account <account>, request 0123456789ab1234, code 1234567890123)"
        );
    }

    #[test]
    fn long_errors_are_cut_where_a_character_ends() {
        assert_eq!(super::shorten("AccessDenied"), "AccessDenied");
        let long = "é".repeat(200);
        assert_eq!(super::shorten(&long), format!("{}…", "é".repeat(160)));
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn the_body_is_escaped_for_servers_that_read_markup() {
        assert_eq!(
            super::escape_markup("a <b>test</b> & more"),
            "a &lt;b&gt;test&lt;/b&gt; &amp; more"
        );
    }
}
