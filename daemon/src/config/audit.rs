//! `[audit]`: the log of every credential that leaves (`credd audit`), how large it may grow, and
//! which profiles raise a desktop notification the first time a program takes them.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Validator};

/// With lines of about 400 bytes and one line per program, profile and second at most, 8 MiB is
/// some 20,000 lines: weeks of a laptop's use, a few hours of a flood. Rotation keeps one old
/// file, so at most twice this is on disk.
pub const DEFAULT_MAX_SIZE: u64 = 8 * 1024 * 1024;
/// The smallest bound: a few lines.
pub const MIN_MAX_SIZE: u64 = 4 * 1024;
/// The largest bound: the log is for reading, not for archiving.
pub const MAX_MAX_SIZE: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Whether credentials that leave are recorded at all.
    pub enabled: bool,
    /// `audit.jsonl` is rotated once it passes this many bytes.
    pub max_size: u64,
    /// Profiles (globs, `prod*`) whose first take by a program is a desktop notification.
    pub notify_new: Vec<glob::Pattern>,
}

impl PartialEq for AuditConfig {
    fn eq(&self, other: &Self) -> bool {
        let patterns = |c: &AuditConfig| {
            c.notify_new
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        self.enabled == other.enabled
            && self.max_size == other.max_size
            && patterns(self) == patterns(other)
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            max_size: DEFAULT_MAX_SIZE,
            notify_new: Vec::new(),
        }
    }
}

impl AuditConfig {
    /// Whether `profile` is one whose first take by a program is told.
    pub fn notifies(&self, profile: &str) -> bool {
        self.notify_new.iter().any(|p| p.matches(profile))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    enabled: Option<bool>,
    max_size: Option<Spanned<toml::Value>>,
    notify_new: Option<Vec<Spanned<String>>>,
}

impl Validator<'_> {
    pub(super) fn audit(&self, raw: RawAudit) -> Result<AuditConfig, ConfigError> {
        let max_size = match raw.max_size {
            None => DEFAULT_MAX_SIZE,
            Some(v) => {
                let size = parse_size(v.get_ref()).ok_or_else(|| {
                    self.at(
                        &v,
                        format!(
                            "max_size: expected a size like \"8MiB\", \"512KiB\" or a number of \
                             bytes, found {}",
                            v.get_ref()
                        ),
                    )
                })?;
                if !(MIN_MAX_SIZE..=MAX_MAX_SIZE).contains(&size) {
                    return Err(self.at(
                        &v,
                        format!(
                            "max_size must be between 4KiB and 1GiB, found {size} bytes ({})",
                            v.get_ref()
                        ),
                    ));
                }
                size
            }
        };
        let notify_new = raw
            .notify_new
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let text = p.get_ref();
                if text.trim().is_empty() {
                    return Err(self.at(
                        p,
                        "notify_new: an empty pattern matches no profile; write a profile name \
                         or a glob like \"prod*\"",
                    ));
                }
                glob::Pattern::new(text).map_err(|e| {
                    self.at(
                        p,
                        format!(
                            "notify_new: {text:?} is not a valid pattern ({}); write a profile \
                             name or a glob like \"prod*\"",
                            e.msg
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuditConfig {
            enabled: raw.enabled.unwrap_or(true),
            max_size,
            notify_new,
        })
    }
}

/// `8MiB`, `512 KiB`, `1M`, `4096`: bytes; K, M and G are powers of 1024 whether written `KiB`,
/// `KB` or `K`.
fn parse_size(value: &toml::Value) -> Option<u64> {
    let text = match value {
        toml::Value::Integer(n) => return u64::try_from(*n).ok(),
        toml::Value::String(s) => s.trim(),
        _ => return None,
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim().to_ascii_lowercase();
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GOOD, err, ok};
    use super::*;

    fn with(lines: &str) -> String {
        format!("{GOOD}\n[audit]\n{lines}\n")
    }

    /// The line `[audit]`'s first key is on in [`with`].
    fn first_line() -> usize {
        GOOD.lines().count() + 3
    }

    #[test]
    fn the_audit_log_is_on_with_8_mib_and_no_notifications_by_default() {
        let c = ok(GOOD);
        assert_eq!(c.audit, AuditConfig::default());
        assert!(c.audit.enabled);
        assert_eq!(c.audit.max_size, 8 * 1024 * 1024);
        assert!(!c.audit.notifies("prod"));
    }

    #[test]
    fn sizes_read_with_or_without_units() {
        for (text, bytes) in [
            ("max_size = \"8MiB\"", 8 << 20),
            ("max_size = \"512 KiB\"", 512 << 10),
            ("max_size = \"1G\"", 1 << 30),
            ("max_size = \"64kb\"", 64 << 10),
            ("max_size = 65536", 65536),
        ] {
            assert_eq!(ok(&with(text)).audit.max_size, bytes, "{text}");
        }
        let e = err(&with("max_size = \"8 MiBs\""));
        assert_eq!((e.line, e.col), (Some(first_line()), Some(12)), "{e}");
        assert!(e.msg.contains("expected a size like \"8MiB\""), "{e}");
        let e = err(&with("max_size = \"1KiB\""));
        assert!(e.msg.contains("between 4KiB and 1GiB"), "{e}");
        let e = err(&with("max_size = -1"));
        assert!(e.msg.contains("expected a size"), "{e}");
    }

    #[test]
    fn notify_new_takes_globs_and_says_where_one_is_bad() {
        let c = ok(&with("notify_new = [\"prod*\", \"staging\"]"));
        assert!(c.audit.notifies("prod-audit"));
        assert!(c.audit.notifies("prod"));
        assert!(c.audit.notifies("staging"));
        assert!(!c.audit.notifies("staging-2"));
        assert!(!c.audit.notifies("dev"));
        let e = err(&with("notify_new = [\"prod*\", \"[prod\"]"));
        assert_eq!((e.line, e.col), (Some(first_line()), Some(24)), "{e}");
        assert!(e.msg.contains("\"[prod\" is not a valid pattern"), "{e}");
        let e = err(&with("notify_new = [\"\"]"));
        assert!(e.msg.contains("empty pattern"), "{e}");
        let e = err(&with("notify_new = \"prod*\""));
        assert_eq!(e.line, Some(first_line()), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_types_are_located() {
        let e = err(&with("enabled = true\nmax_sise = \"1MiB\""));
        assert_eq!(e.line, Some(first_line() + 1), "{e}");
        assert!(e.msg.contains("unknown field `max_sise`"), "{e}");
        let e = err(&with("enabled = \"no\""));
        assert_eq!(e.line, Some(first_line()), "{e}");
        assert!(!ok(&with("enabled = false")).audit.enabled);
    }
}
