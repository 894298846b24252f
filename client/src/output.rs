//! Printing: JSON for scripts, compact text for people.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("credd: cannot print JSON: {e}"),
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `3h12m`, `52m`, `40s`: the two largest units.
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// `in 52m` / `5m ago` relative to now.
pub fn relative(t: u64) -> String {
    let now = now();
    if t == now {
        "just now".to_owned()
    } else if t > now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans() {
        assert_eq!(span(40), "40s");
        assert_eq!(span(120), "2m");
        assert_eq!(span(125), "2m5s");
        assert_eq!(span(3 * 3600 + 12 * 60 + 5), "3h12m");
        assert_eq!(span(2 * 86_400 + 3600), "2d1h");
    }
}
