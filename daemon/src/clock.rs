//! Time as the engine sees it: one [`Clock`] for the wall clock (what credentials' expirations
//! are compared with) and for sleeping, passed to the engine, its slots, the session and the STS
//! client.
//!
//! Sleeping is always tokio's monotonic sleep. The system clock reads `SystemTime::now()`; the
//! simulated one, for unit tests under tokio's paused time (`#[tokio::test(start_paused = true)]`)
//! and not in the release binary, reads a start time plus tokio's elapsed time, so hours of
//! refresh cycles pass in milliseconds, and `Clock::suspend` moves only the wall clock, as a
//! laptop's sleep does: a monotonic timer does not count the time the machine slept, and
//! [`Clock::wall_jump`] is how the engine notices.

use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Cheap to clone; every clone reads the same time.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Kind>);

#[derive(Debug)]
enum Kind {
    System,
    #[cfg(test)]
    Simulated {
        start_wall: SystemTime,
        start: Instant,
        /// Wall time that passed without monotonic time: the machine slept this long in total.
        suspended: Mutex<Duration>,
    },
}

/// A pair of readings, to tell later whether the wall clock moved differently from monotonic
/// time.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    wall: SystemTime,
    mono: Instant,
}

/// Differences between the two clocks below this are scheduling noise, not a sleep or a clock
/// change.
const JUMP_TOLERANCE: Duration = Duration::from_secs(2);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(Kind::System))
    }

    /// Wall time starts at `start` and advances with tokio's (paused, in tests) time.
    #[cfg(test)]
    pub fn simulated(start: SystemTime) -> Clock {
        Clock(Arc::new(Kind::Simulated {
            start_wall: start,
            start: Instant::now(),
            suspended: Mutex::new(Duration::ZERO),
        }))
    }

    /// The wall clock.
    pub fn now(&self) -> SystemTime {
        match &*self.0 {
            Kind::System => SystemTime::now(),
            #[cfg(test)]
            Kind::Simulated {
                start_wall,
                start,
                suspended,
            } => *start_wall + start.elapsed() + *crate::lock::lock(suspended),
        }
    }

    /// Monotonic sleep (paused time in tests).
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Simulated clocks only: the machine sleeps for `d` (wall time moves, monotonic does not).
    #[cfg(test)]
    pub fn suspend(&self, d: Duration) {
        match &*self.0 {
            Kind::System => panic!("the system clock cannot be suspended"),
            Kind::Simulated { suspended, .. } => *crate::lock::lock(suspended) += d,
        }
    }

    pub fn reading(&self) -> Reading {
        Reading {
            wall: self.now(),
            mono: Instant::now(),
        }
    }

    /// How far the wall clock moved beyond monotonic time since `before` (the machine slept, or
    /// the clock was set forward), when that is more than noise. A clock set back counts too:
    /// either way timers computed from wall time are wrong now.
    pub fn wall_jump(&self, before: &Reading) -> Option<Duration> {
        let now = self.reading();
        let mono = now.mono.duration_since(before.mono);
        let jump = match now.wall.duration_since(before.wall) {
            Ok(wall) => wall.abs_diff(mono),
            Err(back) => back.duration() + mono,
        };
        (jump > JUMP_TOLERANCE).then_some(jump)
    }
}

impl aws_smithy_async::time::TimeSource for Clock {
    fn now(&self) -> SystemTime {
        Clock::now(self)
    }
}

/// Seconds since the Unix epoch, as the control protocol carries times (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[tokio::test(start_paused = true)]
    async fn simulated_wall_time_follows_paused_tokio_time() {
        let clock = Clock::simulated(t0());
        assert_eq!(clock.now(), t0());
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), t0() + Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_suspend_moves_only_the_wall_clock_and_is_noticed() {
        let clock = Clock::simulated(t0());
        let before = clock.reading();
        clock.sleep(Duration::from_secs(10)).await;
        assert_eq!(clock.wall_jump(&before), None, "no sleep, no jump");
        clock.suspend(Duration::from_secs(3600));
        assert_eq!(clock.now(), t0() + Duration::from_secs(3610));
        assert_eq!(clock.wall_jump(&before), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn the_system_clock_does_not_jump_between_two_readings() {
        let clock = Clock::system();
        let before = clock.reading();
        assert_eq!(clock.wall_jump(&before), None);
    }
}
