//! `[daemon]`: where the HTTP API listens, IMDS, how much life served credentials keep, and
//! whether the daemon shows desktop notifications.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Validator, fmt_duration};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
/// SDKs refresh 10–15 minutes before expiry and botocore's IMDS path misbehaves under 25 minutes,
/// so by default nothing is served with less than 30 minutes left.
pub const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(30 * 60);
/// The least `min_remaining` and `follow_window` may be. The AWS SDK for Java v2 treats
/// credentials as stale a minute before they expire: served with a minute or less ahead, it logs
/// a WARN ("Retrieved value expiration is in the past") and fetches again on every call
/// (measured with 2.59.1, `credd-pickup-bench`); from 2 minutes on no SDK complains.
pub const LEAST_WINDOW: Duration = Duration::from_secs(2 * 60);
/// Why [`LEAST_WINDOW`], for the error that names it.
const LEAST_WINDOW_WHY: &str = "the AWS SDK for Java treats credentials with a minute or less \
                                left as expired and logs a warning on every call";
/// botocore extends IMDS credentials it gets with less than 15 min + (2..10 min) left.
pub const BOTOCORE_IMDS_FLOOR: Duration = Duration::from_secs(25 * 60);

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub imds: bool,
    /// IP TTL / hop limit of IMDS responses; 1 keeps them off other hosts and containers.
    pub imds_hop_limit: u8,
    pub min_remaining: Duration,
    /// The current route advertises an `Expiration` at most this far ahead, so SDKs come back
    /// (and follow `credd switch`) within it; never less than `min_remaining`.
    pub follow_window: Duration,
    /// Desktop notifications (the access session ends within the hour and ten minutes; a profile
    /// has failed to refresh for 5 minutes). The log and status say the same either way.
    pub notify: bool,
    /// Other local users (uids) whose programs may fetch credentials from the container routes,
    /// with the token: e.g. `[0]` for a root container on the host network. By default only
    /// the daemon's own user is served.
    pub allow_uids: Vec<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    listen: Option<Spanned<String>>,
    imds: Option<bool>,
    imds_hop_limit: Option<Spanned<i64>>,
    min_remaining: Option<Spanned<String>>,
    follow_window: Option<Spanned<String>>,
    notify: Option<bool>,
    allow_uids: Option<Spanned<Vec<i64>>>,
}

/// A valid `[daemon]`, plus where `min_remaining` was written: the profiles' lifetimes are checked
/// against it, and an error about that points there.
pub(super) struct ValidDaemon {
    pub(super) config: DaemonConfig,
    pub(super) min_remaining_span: Option<Range<usize>>,
}

impl ValidDaemon {
    /// Valid, but worth a warning (pushed after the profiles' own, as it always was).
    pub(super) fn warnings(&self, warnings: &mut Vec<String>) {
        let d = &self.config;
        if d.imds && d.follow_window < BOTOCORE_IMDS_FLOOR {
            warnings.push(format!(
                "imds = true with follow_window = {}: botocore treats IMDS credentials with less \
                 than about 25m left as an outage and keeps using them, so it follows `credd \
                 switch` late; use at least 25m",
                fmt_duration(d.follow_window)
            ));
        }
    }
}

impl Validator<'_> {
    pub(super) fn daemon(&self, raw: RawDaemon) -> Result<ValidDaemon, ConfigError> {
        let listen = match raw.listen {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address parses"),
            Some(l) => {
                let addr: SocketAddr = l.get_ref().trim().parse().map_err(|_| {
                    self.at(
                        &l,
                        format!(
                            "listen: expected an address and port like \"127.0.0.1:9911\", found {:?}",
                            l.get_ref()
                        ),
                    )
                })?;
                if !addr.ip().is_loopback() {
                    return Err(self.at(
                        &l,
                        format!(
                            "listen = {:?} is not a loopback address: credd serves credentials to \
                             this machine only (use 127.0.0.1 or [::1])",
                            l.get_ref()
                        ),
                    ));
                }
                addr
            }
        };
        let imds_hop_limit = match raw.imds_hop_limit {
            None => 1,
            Some(h) => u8::try_from(*h.get_ref())
                .ok()
                .filter(|h| *h >= 1)
                .ok_or_else(|| {
                    self.at(
                        &h,
                        format!("imds_hop_limit must be 1..=255, found {}", h.get_ref()),
                    )
                })?,
        };
        let (min_remaining, min_remaining_span) = match raw.min_remaining {
            None => (DEFAULT_MIN_REMAINING, None),
            Some(m) => {
                let d = self.duration(&m, "min_remaining")?;
                // SDKs start refreshing 5–15 minutes ahead: less than that left makes them
                // fetch before every call (cheap on loopback), less than LEAST_WINDOW warn too.
                if d < LEAST_WINDOW {
                    return Err(self.at(
                        &m,
                        format!(
                            "min_remaining must be at least {}, found {}: {LEAST_WINDOW_WHY}",
                            fmt_duration(LEAST_WINDOW),
                            fmt_duration(d)
                        ),
                    ));
                }
                (d, Some(m.span()))
            }
        };
        let follow_window = match raw.follow_window {
            None => min_remaining,
            Some(f) => {
                let d = self.duration(&f, "follow_window")?;
                if d < LEAST_WINDOW {
                    return Err(self.at(
                        &f,
                        format!(
                            "follow_window must be at least {}, found {}: {LEAST_WINDOW_WHY}",
                            fmt_duration(LEAST_WINDOW),
                            fmt_duration(d)
                        ),
                    ));
                }
                if d < min_remaining {
                    return Err(self.at(
                        &f,
                        format!(
                            "follow_window ({}) must be at least min_remaining ({}): SDKs must \
                             never be told credentials expire sooner than that",
                            fmt_duration(d),
                            fmt_duration(min_remaining)
                        ),
                    ));
                }
                d
            }
        };
        let allow_uids = match raw.allow_uids {
            None => Vec::new(),
            Some(uids) => uids
                .get_ref()
                .iter()
                .map(|uid| u32::try_from(*uid).ok().filter(|u| *u != u32::MAX))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    self.at(
                        &uids,
                        format!(
                            "allow_uids: expected user IDs (0..4294967294), found {:?}",
                            uids.get_ref()
                        ),
                    )
                })?,
        };
        Ok(ValidDaemon {
            config: DaemonConfig {
                listen,
                imds: raw.imds.unwrap_or(false),
                imds_hop_limit,
                min_remaining,
                follow_window,
                notify: raw.notify.unwrap_or(true),
                allow_uids,
            },
            min_remaining_span,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;
    use super::super::testing::{GOOD, err, ok};
    use super::LEAST_WINDOW;

    #[test]
    fn listen_must_be_loopback() {
        let e = err(&GOOD.replace("127.0.0.1:0", "0.0.0.0:9911"));
        assert!(e.msg.contains("not a loopback address"), "{e}");
        assert!(parse(Path::new("c"), &GOOD.replace("127.0.0.1:0", "[::1]:9911")).is_ok());
    }

    #[test]
    fn other_users_are_allowed_only_by_uid() {
        let with =
            |line: &str| GOOD.replace("min_remaining =", &format!("{line}\nmin_remaining ="));
        assert!(ok(GOOD).daemon.allow_uids.is_empty());
        assert_eq!(
            ok(&with("allow_uids = [0, 1001]")).daemon.allow_uids,
            [0, 1001]
        );
        for bad in ["allow_uids = [-1]", "allow_uids = [4294967295]"] {
            let e = err(&with(bad));
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.msg.contains("allow_uids: expected user IDs"), "{e}");
        }
        let e = err(&with("allow_uids = [\"root\"]"));
        assert_eq!((e.line, e.col), (Some(6), Some(15)), "{e}");
    }

    #[test]
    fn min_remaining_and_follow_window_are_at_least_2m_and_say_why() {
        let with = |line: &str| GOOD.replace("min_remaining = \"30m\"", line);
        let both = ok(&with("min_remaining = \"2m\"\nfollow_window = \"2m\""));
        assert_eq!(both.daemon.min_remaining, LEAST_WINDOW);
        assert_eq!(both.daemon.follow_window, LEAST_WINDOW);
        for (bad, key) in [
            ("min_remaining = \"1m\"", "min_remaining"),
            ("min_remaining = \"119s\"", "min_remaining"),
            (
                "min_remaining = \"2m\"\nfollow_window = \"1m\"",
                "follow_window",
            ),
        ] {
            let e = err(&with(bad));
            assert!(
                e.msg
                    .starts_with(&format!("{key} must be at least 2m, found ")),
                "{bad}: {e}"
            );
            assert!(e.msg.contains("AWS SDK for Java"), "{bad}: {e}");
        }
        // Above the floor, the window still cannot be shorter than min_remaining.
        let e = err(&with("min_remaining = \"5m\"\nfollow_window = \"3m\""));
        assert!(e.msg.contains("must be at least min_remaining (5m)"), "{e}");
    }

    #[test]
    fn notifications_are_on_unless_turned_off() {
        let with =
            |line: &str| GOOD.replace("min_remaining =", &format!("{line}\nmin_remaining ="));
        assert!(ok(GOOD).daemon.notify);
        assert!(ok(&with("notify = true")).daemon.notify);
        assert!(!ok(&with("notify = false")).daemon.notify);
        let e = err(&with("notify = \"no\""));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.msg.contains("expected a boolean"), "{e}");
    }
}
