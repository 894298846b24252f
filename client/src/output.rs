//! Printing: JSON for scripts, compact text for people; and ending quietly when the reader has
//! gone (`credd status | head -1`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// `text` in `style`, for a writer from `anstream`: it strips the styles again for a pipe, a
/// file or `NO_COLOR` (and honours `CLICOLOR_FORCE`).
pub fn paint(style: anstyle::Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("credd: cannot print JSON: {e}"),
    }
}

/// Gives SIGPIPE its default action back, so that a write to a pipe whose reader has gone
/// (`credd profiles | head -1`, `credd status | true`) ends the process quietly, as it does every
/// Unix tool: Rust ignores SIGPIPE, and `println!` then panics on the broken pipe (exit 101).
/// Nothing else is touched: the control socket's writes never raise SIGPIPE (std sends with
/// MSG_NOSIGNAL, or SO_NOSIGPIPE on macOS; pinned by a test below), so a daemon that hangs up is
/// still reported; and `credd exec`'s command starts with the default action either way.
pub fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `3h 12m`, `52m`, `40s`: the two largest units, as every credd message says it
/// ([`credd_proto::human::duration`]).
pub fn span(secs: u64) -> String {
    credd_proto::human::duration(secs)
}

/// `in 52m` / `5m ago` relative to now.
pub fn relative(t: u64) -> String {
    relative_at(t, now())
}

/// `in 52m` / `5m ago` / `just now`, relative to `now` (both Unix seconds).
pub fn relative_at(t: u64, now: u64) -> String {
    if t == now {
        "just now".to_owned()
    } else if t > now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    }
}

/// A container ID as docker shows it: its first 12 characters.
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(at, _)| &id[..at])
}

/// `14:32 (in 9m 58s)` today, `2026-12-01 09:00 (in 19h 2m)` on another day: the local clock
/// time a person can plan by, and how far off it is.
pub fn when(t: u64) -> String {
    let tz = jiff::tz::TimeZone::system();
    format!("{} ({})", clock_time(t, now(), &tz), relative(t))
}

/// Unix seconds `secs` as a time in `tz`.
pub fn local_time(secs: u64, tz: &jiff::tz::TimeZone) -> Option<jiff::ZonedDateTime> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.to_zoned_datetime(tz.clone()))
}

fn clock_time(t: u64, now: u64, tz: &jiff::tz::TimeZone) -> String {
    let at = |secs: u64| local_time(secs, tz);
    match (at(t), at(now)) {
        (Some(t), Some(now)) if t.date() == now.date() => t.strftime("%H:%M").to_string(),
        (Some(t), _) => t.strftime("%Y-%m-%d %H:%M").to_string(),
        (None, _) => format!("@{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{clock_time, span};

    #[test]
    fn a_hung_up_control_socket_is_an_error_even_with_sigpipe_default() {
        use std::io::Write;
        // What main sets up; were a socket write to raise SIGPIPE now, this test process would
        // die of it instead of failing politely.
        super::restore_sigpipe();
        let (mut client, daemon) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(daemon);
        let written = client.write_all(b"request");
        // SAFETY: back to what the Rust runtime set for the other tests of this process.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let e = written.expect_err("the peer is gone");
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }

    #[test]
    fn clock_times_are_local_and_dated_when_not_today() {
        let paris = jiff::tz::TimeZone::get("Europe/Paris")
            .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(1)));
        // 2026-11-30 07:38:28 UTC is 08:38 in Paris (UTC+1 in winter).
        let now = 1_796_024_308;
        assert_eq!(clock_time(now + 600, now, &paris), "08:48");
        assert_eq!(clock_time(now + 86_400, now, &paris), "2026-12-01 08:38");
        assert_eq!(
            clock_time(now, now, &jiff::tz::TimeZone::UTC),
            "07:38",
            "the zone decides"
        );
        assert_eq!(clock_time(u64::MAX, now, &paris), format!("@{}", u64::MAX));
    }

    #[test]
    fn container_ids_are_cut_to_twelve() {
        assert_eq!(super::short_id("4f0d1c0e9b8a7f6e"), "4f0d1c0e9b8a");
        assert_eq!(super::short_id("4f0d"), "4f0d");
    }

    #[test]
    fn spans() {
        assert_eq!(span(40), "40s");
        assert_eq!(span(120), "2m");
        assert_eq!(span(125), "2m 5s");
        assert_eq!(span(3 * 3600 + 12 * 60 + 5), "3h 12m");
        assert_eq!(span(2 * 86_400 + 3600), "2d 1h");
    }
}
