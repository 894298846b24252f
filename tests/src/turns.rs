//! Turns: the scenarios that flood the daemon (the floods of `attacks`: a stall of the owner's
//! request is what they look for) or need the user's kernel keyring to themselves run alone in
//! the test process, everything else side by side. Every [`World`](crate::world::World) holds a
//! shared turn while it lives; [`alone`] waits until no world is left and keeps new ones from
//! starting until it is dropped. A second world made on a thread that already has a turn joins
//! that turn (so a test never waits for itself).
//!
//! While a test waits for [`alone`], new worlds wait too: every other test stops where it makes
//! its next world until the process is drained. So the e2e binary runs the tests taking it first
//! (its `alone` module), before there is anything to drain.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

static TURNS: RwLock<()> = RwLock::new(());

/// The turn this thread holds, and how many [`Turn`]s share it.
enum Held {
    Nothing,
    Shared {
        _guard: RwLockReadGuard<'static, ()>,
        count: usize,
    },
    Alone {
        _guard: RwLockWriteGuard<'static, ()>,
        count: usize,
    },
}

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held::Nothing) };
}

/// A turn, given back when dropped. It must be dropped on the thread that took it (it is not
/// `Send`), which is where tests drop their worlds.
#[must_use = "the turn ends when this is dropped"]
pub struct Turn {
    // !Send (but Sync, so a world can still be shared with scoped threads).
    _thread_bound: PhantomData<MutexGuard<'static, ()>>,
}

/// A shared turn: waits only while a test runs [`alone`].
pub fn side_by_side() -> Turn {
    HELD.with_borrow_mut(|held| match held {
        Held::Shared { count, .. } | Held::Alone { count, .. } => *count += 1,
        Held::Nothing => {
            let guard = TURNS.read().unwrap_or_else(|p| p.into_inner());
            *held = Held::Shared {
                _guard: guard,
                count: 1,
            };
        }
    });
    Turn {
        _thread_bound: PhantomData,
    }
}

/// The whole process to this test: waits until every other test's worlds are gone. Take it
/// before making the test's own world.
pub fn alone() -> Turn {
    HELD.with_borrow_mut(|held| match held {
        Held::Nothing => {
            let guard = TURNS.write().unwrap_or_else(|p| p.into_inner());
            *held = Held::Alone {
                _guard: guard,
                count: 1,
            };
        }
        _ => panic!("turns::alone() must come before this test makes any world"),
    });
    Turn {
        _thread_bound: PhantomData,
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        HELD.with_borrow_mut(|held| {
            let last = match held {
                Held::Shared { count, .. } | Held::Alone { count, .. } => {
                    *count -= 1;
                    *count == 0
                }
                Held::Nothing => false,
            };
            if last {
                *held = Held::Nothing;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    // One test: the turns are process-wide, and unit tests run side by side.
    #[test]
    fn a_test_alone_waits_for_every_shared_turn_and_a_thread_joins_its_own() {
        let outer = side_by_side();
        // A second world on the same thread joins the turn instead of waiting for itself.
        let inner = side_by_side();
        drop(outer);

        let (took, alone_has_it) = mpsc::channel();
        let released = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _turn = alone();
                let _nested = side_by_side();
                took.send(released.load(Ordering::SeqCst))
                    .expect("the test thread waits");
            });
            assert!(
                alone_has_it
                    .recv_timeout(Duration::from_millis(200))
                    .is_err(),
                "alone() ran beside a shared turn"
            );
            released.store(true, Ordering::SeqCst);
            drop(inner);
            assert_eq!(
                alone_has_it.recv_timeout(Duration::from_secs(10)),
                Ok(true),
                "alone() got its turn once the shared one was given back"
            );
        });
        // And afterwards the shared turns are free again.
        drop(side_by_side());
    }
}
