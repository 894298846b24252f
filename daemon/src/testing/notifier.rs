//! A notifier that keeps what it was asked to show, for tests on the simulated clock.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::clock::Clock;
use crate::desktop::{Notice, Notifier};
use crate::lock;

/// Cheap to clone; clones share the list.
#[derive(Clone)]
pub struct Recorder {
    clock: Clock,
    shown: Arc<Mutex<Vec<(SystemTime, Notice)>>>,
}

impl Recorder {
    pub fn new(clock: &Clock) -> Recorder {
        Recorder {
            clock: clock.clone(),
            shown: Arc::default(),
        }
    }

    /// Every notice so far, with when it was shown (on the simulated clock).
    pub fn shown(&self) -> Vec<(SystemTime, Notice)> {
        lock::lock(&self.shown).clone()
    }
}

impl Notifier for Recorder {
    fn show(&self, notice: Notice) {
        lock::lock(&self.shown).push((self.clock.now(), notice));
    }
}
