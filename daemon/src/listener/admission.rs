//! Connection slots, shared so that no one can take the owner's: the daemon's own user has a
//! quota of its own; every other user has a small one, and all of them together another, so a
//! flood from a stranger fills only the strangers' slots and is refused beyond them. When the
//! owner's quota is full, the oldest connection that has sat idle for a while gives its slot up;
//! one that is answering, or was just opened and has not spoken yet, never does.
//!
//! Used by the HTTP API (where peers are told apart by the client socket's owner) and by the
//! control socket (where only the owner is let in at all).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::lock;

/// Whose process is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The daemon's own user.
    Me,
    /// Another user (root included, when the daemon is not root's).
    Other(u32),
    /// The lookup failed (the client may already be gone): trusted with nothing.
    Unknown,
    /// This OS gives no way to tell (macOS): every connection is counted as one user's.
    Unverifiable,
}

impl Owner {
    pub fn of(uid: Option<u32>) -> Owner {
        match uid {
            Some(uid) if uid == own_uid() => Owner::Me,
            Some(uid) => Owner::Other(uid),
            None => Owner::Unknown,
        }
    }
}

/// The daemon's user, read once: no system call per connection or request.
pub fn own_uid() -> u32 {
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(credd_proto::paths::current_uid)
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections of the daemon's own user (or of everyone, where users cannot be told apart).
    pub mine: usize,
    /// Connections of any one other user.
    pub per_other: usize,
    /// Connections of all other users together (and of peers whose user is unknown).
    pub others: usize,
    /// How long one of the owner's connections must have been idle before it may be closed to
    /// make room: a client that has just connected and not yet sent its request is not idle.
    pub idle_grace: Duration,
}

pub struct Admission {
    limits: Limits,
    table: Mutex<Table>,
    /// Signalled whenever a slot is freed.
    freed: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// By id, which is by age: the first entries are the oldest.
    conns: BTreeMap<u64, (Bucket, Arc<Slot>)>,
    // Counts of `conns` by bucket, kept so that refusing a stranger's flood is O(1).
    mine: usize,
    per_other: HashMap<Option<u32>, usize>,
    others: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Mine,
    /// `None`: a peer whose user is unknown.
    Other(Option<u32>),
}

/// One connection's state, shared between its task and the table.
pub struct Slot {
    /// `Some(since)` while idle (since it connected or last answered), `None` while busy.
    idle_since: Mutex<Option<Instant>>,
    evicted: Notify,
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            idle_since: Mutex::new(Some(now)),
            evicted: Notify::new(),
        }
    }

    /// Busy while a request is being read or answered; idle before, between and after.
    pub fn set_busy(&self, busy: bool) {
        *lock::lock(&self.idle_since) = (!busy).then(Instant::now);
    }

    /// Idle for at least `grace` at `now`.
    fn evictable(&self, now: Instant, grace: Duration) -> bool {
        lock::lock(&self.idle_since)
            .is_some_and(|since| now.saturating_duration_since(since) >= grace)
    }

    /// Resolves when the table gave this connection's slot to another one: finish up and close.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

/// Held by a connection for its whole life; dropping it frees the slot.
pub struct Ticket {
    id: u64,
    admission: Arc<Admission>,
    pub slot: Arc<Slot>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = lock::lock(&self.admission.table);
        if let Some((bucket, _)) = table.conns.remove(&self.id) {
            table.release(bucket);
        }
        drop(table);
        self.admission.freed.notify_waiters();
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This user's own quota is full.
    UserFull,
    /// All other users' connections together are at their limit.
    OthersFull,
    /// The owner's quota is full of connections in use (the control socket waits for one).
    Busy,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            table: Mutex::new(Table::default()),
            freed: Notify::new(),
        })
    }

    /// A slot for a connection from `owner`, at once or never.
    pub fn admit(self: &Arc<Self>, owner: Owner) -> Result<Ticket, Refused> {
        self.admit_at(owner, Instant::now())
    }

    fn admit_at(self: &Arc<Self>, owner: Owner, now: Instant) -> Result<Ticket, Refused> {
        let bucket = match owner {
            Owner::Me | Owner::Unverifiable => Bucket::Mine,
            Owner::Other(uid) => Bucket::Other(Some(uid)),
            Owner::Unknown => Bucket::Other(None),
        };
        let mut table = lock::lock(&self.table);
        match bucket {
            Bucket::Mine if table.mine >= self.limits.mine => {
                let Some(id) = table.oldest_idle_mine(now, self.limits.idle_grace) else {
                    return Err(Refused::Busy);
                };
                if let Some((bucket, slot)) = table.conns.remove(&id) {
                    table.release(bucket);
                    // notify_one keeps the signal even if the task is not waiting yet.
                    slot.evicted.notify_one();
                }
            }
            Bucket::Mine => {}
            Bucket::Other(uid) => {
                if table.per_other.get(&uid).copied().unwrap_or(0) >= self.limits.per_other {
                    return Err(Refused::UserFull);
                }
                if table.others >= self.limits.others {
                    return Err(Refused::OthersFull);
                }
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let slot = Arc::new(Slot::new(now));
        table.conns.insert(id, (bucket, slot.clone()));
        match bucket {
            Bucket::Mine => table.mine += 1,
            Bucket::Other(uid) => {
                *table.per_other.entry(uid).or_default() += 1;
                table.others += 1;
            }
        }
        Ok(Ticket {
            id,
            admission: self.clone(),
            slot,
        })
    }

    /// A slot for one of the owner's connections, waiting while all of them are busy.
    pub async fn admit_mine_or_wait(self: &Arc<Self>) -> Ticket {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            // Registered before trying, so a slot freed in between is not missed.
            freed.as_mut().enable();
            match self.admit(Owner::Me) {
                Ok(ticket) => return ticket,
                Err(_) => freed.await,
            }
        }
    }
}

impl Table {
    fn release(&mut self, bucket: Bucket) {
        match bucket {
            Bucket::Mine => self.mine -= 1,
            Bucket::Other(uid) => {
                self.others -= 1;
                if let Some(n) = self.per_other.get_mut(&uid) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_other.remove(&uid);
                    }
                }
            }
        }
    }

    /// The oldest of the owner's connections that has been idle for `grace`.
    fn oldest_idle_mine(&self, now: Instant, grace: Duration) -> Option<u64> {
        self.conns
            .iter()
            .find(|(_, (bucket, slot))| *bucket == Bucket::Mine && slot.evictable(now, grace))
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(1);
    const LIMITS: Limits = Limits {
        mine: 3,
        per_other: 2,
        others: 3,
        idle_grace: GRACE,
    };

    #[test]
    fn strangers_fill_only_their_own_slots() {
        let admission = Admission::new(LIMITS);
        let a1 = admission.admit(Owner::Other(1000)).unwrap();
        let _a2 = admission.admit(Owner::Other(1000)).unwrap();
        assert_eq!(
            admission.admit(Owner::Other(1000)).err(),
            Some(Refused::UserFull)
        );
        let _b1 = admission.admit(Owner::Other(1001)).unwrap();
        assert_eq!(
            admission.admit(Owner::Unknown).err(),
            Some(Refused::OthersFull)
        );
        // The owner is untouched by all of that.
        let mine: Vec<Ticket> = (0..3)
            .map(|_| admission.admit(Owner::Me).unwrap())
            .collect();
        drop(a1);
        let _a3 = admission.admit(Owner::Other(1000)).unwrap();
        drop(mine);
    }

    #[test]
    fn a_full_owner_quota_evicts_the_oldest_connection_idle_for_a_while() {
        let admission = Admission::new(LIMITS);
        let start = Instant::now();
        let busy = admission.admit_at(Owner::Me, start).unwrap();
        busy.slot.set_busy(true);
        let idle = admission.admit_at(Owner::Me, start).unwrap();
        let fresh = admission.admit_at(Owner::Me, start + GRACE).unwrap();
        // Nobody has been idle long enough yet: just-opened connections are not idle.
        assert_eq!(
            admission.admit_at(Owner::Me, start + GRACE / 2).err(),
            Some(Refused::Busy)
        );
        let later = start + GRACE + GRACE / 2;
        let _next = admission.admit_at(Owner::Me, later).unwrap();
        assert!(
            idle.slot.evicted.notified().ready_now(),
            "the idle one goes"
        );
        assert!(!busy.slot.evicted.notified().ready_now());
        assert!(!fresh.slot.evicted.notified().ready_now());
    }

    #[tokio::test]
    async fn a_waiting_owner_gets_the_next_freed_slot() {
        let admission = Admission::new(LIMITS);
        let held: Vec<Ticket> = (0..3)
            .map(|_| admission.admit(Owner::Me).unwrap())
            .collect();
        for t in &held {
            t.slot.set_busy(true);
        }
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit_mine_or_wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("admitted once a slot is freed")
            .unwrap();
    }

    trait ReadyNow {
        fn ready_now(self) -> bool;
    }

    impl<F: std::future::Future> ReadyNow for F {
        fn ready_now(self) -> bool {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            std::pin::pin!(self).as_mut().poll(&mut cx).is_ready()
        }
    }
}
