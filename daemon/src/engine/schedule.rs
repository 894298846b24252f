//! When to refresh, and how long to back off: pure functions of times, unit-tested at the edges.
//!
//! Worked example: 1 h credentials with `min_remaining` = 30 min are servable for 30 min. The
//! refresh starts `lead` = min(30 min / 4, 5 min) = 5 min before that, minus a jitter drawn in a
//! window that grows with the number of profiles ([`jitter_window`]): for up to 60 profiles
//! min(30 min / 10, 1 min) = 1 min, so between 24 and 25 minutes after issue, about 2.45 STS
//! calls per profile per hour; for 500 profiles 500 × [`SPREAD_PER_PROFILE`] = 8 min 20 s, so
//! between 16 min 40 s and 25 min, about 2.9 calls per profile per hour, and the 500 refreshes of
//! profiles issued together come about one a second rather than all within a minute. The window
//! never exceeds half of the 25 minutes before the lead (12 min 30 s: at most 3.2 calls per
//! profile per hour however many profiles), and a failing refresh always has its 5 minutes of
//! retries before anything lapses. [`refresh_interval`] gives the bounds for any credentials.

use std::time::{Duration, SystemTime};

/// The longest head start a refresh takes before credentials stop being servable.
pub const MAX_LEAD: Duration = Duration::from_secs(5 * 60);
/// The most jitter for a few profiles (up to 60), so that profiles issued together spread their
/// refreshes; more profiles widen it by [`SPREAD_PER_PROFILE`] each.
pub const MAX_JITTER: Duration = Duration::from_secs(60);
/// How much wider the jitter window grows per profile: N profiles issued together refresh about
/// one a second, over N seconds, within what the servable window allows ([`jitter_window`]).
pub const SPREAD_PER_PROFILE: Duration = Duration::from_secs(1);
/// Backoff after the n-th consecutive failure: 1 s, 2 s, 4 s ... capped at 5 minutes.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// During an STS outage, cached credentials keep being served below `min_remaining` until this
/// little is left (SDKs then refresh on every call, which is still better than an error).
pub const OUTAGE_FLOOR: Duration = Duration::from_secs(5 * 60);
/// A session or token that renews itself (a self-renewing access session, an Identity Center
/// token) is renewed this long before it ends, or a third of its life when that is shorter: what
/// depends on it still has time to refresh from it. A 1-hour one is renewed every 40 minutes, a
/// 12-hour MFA session 20 minutes before its end, a 15-minute one after 10 minutes.
pub const RENEW_LEAD: Duration = Duration::from_secs(20 * 60);

/// How long credentials issued at `issued` and expiring at `expiration` may be served.
pub fn servable_window(
    issued: SystemTime,
    expiration: SystemTime,
    min_remaining: Duration,
) -> Duration {
    expiration
        .duration_since(issued)
        .unwrap_or_default()
        .saturating_sub(min_remaining)
}

/// How long before the servable window ends a refresh starts at the latest: a quarter of the
/// window, at most [`MAX_LEAD`] (the time a failing refresh has for its retries).
pub fn lead(window: Duration) -> Duration {
    (window / 4).min(MAX_LEAD)
}

/// The window the jitter is drawn in, for credentials servable for `window` when `profiles`
/// profiles are configured: a tenth of the window up to [`MAX_JITTER`], or
/// [`SPREAD_PER_PROFILE`] per profile when that is more, but never more than half of the time
/// before the [`lead`] (so a profile is refreshed at most twice as often as with no jitter).
pub fn jitter_window(window: Duration, profiles: usize) -> Duration {
    let few = (window / 10).min(MAX_JITTER);
    let many = SPREAD_PER_PROFILE.saturating_mul(u32::try_from(profiles).unwrap_or(u32::MAX));
    let most = window.saturating_sub(lead(window)) / 2;
    few.max(many.min(most))
}

/// The time to start refreshing one profile's credentials when it is the only one (or one of up
/// to 60); `jitter_unit` in [0, 1) picks the jitter.
pub fn refresh_at(
    issued: SystemTime,
    expiration: SystemTime,
    min_remaining: Duration,
    jitter_unit: f64,
) -> SystemTime {
    refresh_at_among(issued, expiration, min_remaining, jitter_unit, 1)
}

/// The time to start refreshing credentials of one of `profiles` configured profiles;
/// `jitter_unit` in [0, 1) picks the jitter in [`jitter_window`].
pub fn refresh_at_among(
    issued: SystemTime,
    expiration: SystemTime,
    min_remaining: Duration,
    jitter_unit: f64,
    profiles: usize,
) -> SystemTime {
    let window = servable_window(issued, expiration, min_remaining);
    let jitter = jitter_window(window, profiles).mul_f64(jitter_unit.clamp(0.0, 1.0));
    let offset = window.saturating_sub(lead(window)).saturating_sub(jitter);
    issued.checked_add(offset).unwrap_or(issued)
}

/// The shortest and the longest time from issue to the next refresh of credentials that last
/// `life`, with `profiles` profiles configured, when refreshes succeed: a profile makes at most
/// 1 h / shortest and on average 1 h / (the mean of the two) calls an hour (plus one per
/// failure's retry, per login, per `credd refresh`). With 1-hour credentials and a 30-minute
/// `min_remaining`: (24 min, 25 min) for one profile, (16 min 40 s, 25 min) for 500.
pub fn refresh_interval(
    life: Duration,
    min_remaining: Duration,
    profiles: usize,
) -> (Duration, Duration) {
    let window = life.saturating_sub(min_remaining);
    let latest = window.saturating_sub(lead(window));
    (
        latest.saturating_sub(jitter_window(window, profiles)),
        latest,
    )
}

/// Whether credentials may be served now under the normal rule.
pub fn servable(expiration: SystemTime, now: SystemTime, min_remaining: Duration) -> bool {
    expiration
        .duration_since(now)
        .is_ok_and(|left| left >= min_remaining)
}

/// When to renew a session or token that ends at `end` after a life of `life`.
pub fn renew_at(end: SystemTime, life: Duration) -> SystemTime {
    end.checked_sub(RENEW_LEAD.min(life / 3)).unwrap_or(end)
}

/// Exponential backoff with full jitter after `failures` (>= 1) consecutive failures.
pub fn backoff(failures: u32, jitter_unit: f64) -> Duration {
    let exp = BACKOFF_BASE
        .checked_mul(
            1u32.checked_shl(failures.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX),
        )
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX);
    // Half fixed, half random: never zero, never in lock-step with another daemon.
    exp / 2 + (exp / 2).mul_f64(jitter_unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn one_hour_credentials_refresh_after_24_to_25_minutes() {
        let (issued, exp) = (t(0), t(3600));
        let min = Duration::from_secs(1800);
        assert_eq!(refresh_at(issued, exp, min, 0.0), t(25 * 60));
        assert_eq!(refresh_at(issued, exp, min, 1.0), t(24 * 60));
    }

    #[test]
    fn short_windows_scale_lead_and_jitter() {
        // 15 min credentials with 14 min 50 s minimum: 10 s servable, refresh after 7.5 s.
        let exp = t(900);
        let min = Duration::from_secs(890);
        assert_eq!(
            refresh_at(t(0), exp, min, 0.0),
            t(0) + Duration::from_millis(7500)
        );
        assert_eq!(
            refresh_at(t(0), exp, min, 1.0),
            t(0) + Duration::from_millis(6500)
        );
    }

    #[test]
    fn the_jitter_window_grows_with_the_profiles_up_to_half_the_time_before_the_lead() {
        let (issued, exp) = (t(0), t(3600));
        let min = Duration::from_secs(1800);
        let window = Duration::from_secs(1800);
        assert_eq!(jitter_window(window, 1), MAX_JITTER);
        assert_eq!(jitter_window(window, 60), MAX_JITTER);
        assert_eq!(jitter_window(window, 500), Duration::from_secs(500));
        assert_eq!(jitter_window(window, 5000), Duration::from_secs(750));
        assert_eq!(jitter_window(window, usize::MAX), Duration::from_secs(750));
        assert_eq!(refresh_at_among(issued, exp, min, 0.0, 500), t(25 * 60));
        assert_eq!(refresh_at_among(issued, exp, min, 1.0, 500), t(1000));
        assert_eq!(
            refresh_at_among(issued, exp, min, 1.0, 1),
            refresh_at(issued, exp, min, 1.0)
        );
        // Short windows keep their tenth for few profiles and stay within half for many.
        let short = Duration::from_secs(10);
        assert_eq!(jitter_window(short, 1), Duration::from_secs(1));
        assert_eq!(jitter_window(short, 500), Duration::from_millis(3750));
        assert_eq!(jitter_window(Duration::ZERO, 500), Duration::ZERO);
    }

    #[test]
    fn the_refresh_interval_bounds_calls_per_hour() {
        let (hour, half) = (Duration::from_secs(3600), Duration::from_secs(1800));
        assert_eq!(
            refresh_interval(hour, half, 1),
            (Duration::from_secs(24 * 60), Duration::from_secs(25 * 60))
        );
        assert_eq!(
            refresh_interval(hour, half, 500),
            (Duration::from_secs(1000), Duration::from_secs(25 * 60))
        );
        // However many profiles, one refreshes at most every 12 min 30 s: under 5 calls an hour.
        let (shortest, _) = refresh_interval(hour, half, 100_000);
        assert_eq!(shortest, Duration::from_secs(750));
        // What refresh_at_among picks is always within the interval.
        for profiles in [1, 60, 61, 500, 1000] {
            let (lo, hi) = refresh_interval(hour, half, profiles);
            for unit in [0.0, 0.3, 0.999] {
                let at = refresh_at_among(t(0), t(3600), half, unit, profiles);
                let after = at.duration_since(t(0)).unwrap();
                assert!(lo <= after && after <= hi, "{profiles} {unit}: {after:?}");
            }
        }
    }

    #[test]
    fn already_unservable_credentials_refresh_at_once() {
        assert_eq!(refresh_at(t(0), t(30), MIN, 0.5), t(0));
        assert_eq!(
            refresh_at(t(100), t(50), MIN, 0.5),
            t(100),
            "expiry before issue"
        );
        assert_eq!(servable_window(t(100), t(50), MIN), Duration::ZERO);
    }

    #[test]
    fn servable_needs_min_remaining() {
        assert!(servable(t(120), t(60), MIN));
        assert!(!servable(t(119), t(60), MIN));
        assert!(!servable(t(0), t(60), MIN), "expired");
    }

    #[test]
    fn renewal_comes_20_minutes_ahead_or_a_third_of_the_life() {
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_at(t(43_200), 12 * hour), t(43_200 - 1200));
        assert_eq!(renew_at(t(3600), hour), t(2400));
        assert_eq!(renew_at(t(900), Duration::from_secs(900)), t(600));
        // Compressed time: a 30-second session, 10 seconds ahead.
        assert_eq!(renew_at(t(30), Duration::from_secs(30)), t(20));
        assert_eq!(renew_at(t(30), Duration::ZERO), t(30), "ended at once");
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 1.0), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX, 0.0), BACKOFF_MAX / 2);
        assert_eq!(backoff(0, 1.0), Duration::from_secs(1));
    }
}
