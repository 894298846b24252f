//! A bounded number of calls in flight to one endpoint (a Region of STS, of the Identity Center
//! portal), the calls someone is waiting for first.
//!
//! 500 profiles warming up together would otherwise send 500 calls at once: behind a slow or
//! throttling STS the SDK's attempt timeout ends some of them, and its retry sends them again.
//! A call enters the gate before the SDK sends it, so its timeouts count from when it is sent,
//! never from when it queued. A call waits in the queue in order, except that a call someone is
//! waiting for (a request that found nothing servable, a chained profile waiting for the one it
//! goes `via`, a login) is let through before the others, also when that began while it queued.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::lock;

/// Calls in flight per endpoint: enough to keep a distant STS busy (500 profiles at 100 ms a
/// call warm in about 12 s), few enough that no service throttles them.
pub const IN_FLIGHT: usize = 4;

tokio::task_local! {
    static URGENCY: Urgency;
}

/// Whether someone waits for the calls of a task right now: asked again whenever a place in the
/// gate frees up, so a call that queued unwaited-for moves ahead once a request needs it.
#[derive(Clone)]
pub struct Urgency(Arc<dyn Fn() -> bool + Send + Sync>);

impl Urgency {
    pub fn new(waited_for: impl Fn() -> bool + Send + Sync + 'static) -> Urgency {
        Urgency(Arc::new(waited_for))
    }

    fn now(&self) -> bool {
        (self.0)()
    }
}

/// Runs `work`, whose calls queue by `urgency`. Calls made outside such a scope (a login, `credd
/// doctor`, a key rotation: the user waits for each) always count as waited for.
pub async fn with_urgency<F: Future>(urgency: Urgency, work: F) -> F::Output {
    URGENCY.scope(urgency, work).await
}

/// At most `limit` calls through at a time.
pub struct Gate {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    /// The most ever in flight at once.
    peak: usize,
    queue: VecDeque<Waiter>,
}

struct Waiter {
    /// `None`: waited for, always.
    urgency: Option<Urgency>,
    admit: oneshot::Sender<()>,
}

impl Waiter {
    fn waited_for(&self) -> bool {
        self.urgency.as_ref().is_none_or(Urgency::now)
    }
}

/// A place in the gate, given back when dropped.
pub struct Pass {
    gate: Arc<Gate>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A caller waiting in the queue; dropped (its call abandoned) after being admitted, it hands the
/// place on.
struct Queued {
    gate: Arc<Gate>,
    admitted: Option<oneshot::Receiver<()>>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(mut rx) = self.admitted.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

impl Gate {
    pub fn new(limit: usize) -> Arc<Gate> {
        Arc::new(Gate {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Waits for a place; the call goes out while the [`Pass`] lives.
    pub async fn enter(self: &Arc<Self>) -> Pass {
        let rx = {
            let mut s = lock::lock(&self.state);
            if s.in_flight < self.limit {
                s.in_flight += 1;
                s.peak = s.peak.max(s.in_flight);
                return Pass { gate: self.clone() };
            }
            let (admit, rx) = oneshot::channel();
            s.queue.push_back(Waiter {
                urgency: URGENCY.try_with(Urgency::clone).ok(),
                admit,
            });
            rx
        };
        let mut queued = Queued {
            gate: self.clone(),
            admitted: Some(rx),
        };
        if let Some(rx) = queued.admitted.as_mut() {
            // The sender lives in the queue until it admits this caller: an error cannot come.
            let _ = rx.await;
        }
        queued.admitted = None;
        Pass { gate: self.clone() }
    }

    /// Hands a place to the first waiter someone waits for, else to the first in line.
    fn release(&self) {
        let mut s = lock::lock(&self.state);
        loop {
            s.queue.retain(|w| !w.admit.is_closed());
            let next = s
                .queue
                .iter()
                .position(Waiter::waited_for)
                .or((!s.queue.is_empty()).then_some(0));
            let Some(i) = next else {
                s.in_flight = s.in_flight.saturating_sub(1);
                return;
            };
            let waiter = s.queue.remove(i).expect("an index into the queue");
            if waiter.admit.send(()).is_ok() {
                return;
            }
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        lock::lock(&self.state).in_flight
    }

    /// The most calls ever in flight at once.
    pub fn peak(&self) -> usize {
        lock::lock(&self.state).peak
    }

    /// Calls waiting for a place now.
    pub fn queued(&self) -> usize {
        lock::lock(&self.state).queue.len()
    }
}

/// One gate per Region (or endpoint), made on first use.
#[derive(Default)]
pub struct Gates {
    by_region: Mutex<std::collections::HashMap<String, Arc<Gate>>>,
}

impl Gates {
    /// `region`'s gate.
    pub fn get(&self, region: &str) -> Arc<Gate> {
        lock::lock(&self.by_region)
            .entry(region.to_owned())
            .or_insert_with(|| Gate::new(IN_FLIGHT))
            .clone()
    }

    /// The most calls ever in flight at once to any one Region.
    pub fn peak(&self) -> usize {
        lock::lock(&self.by_region)
            .values()
            .map(|g| g.peak())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    /// A call that holds its place for `hold` and then notes its name.
    fn call(
        gate: &Arc<Gate>,
        name: &'static str,
        urgent: Option<Arc<AtomicBool>>,
        hold: Duration,
        done: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (gate, done) = (gate.clone(), done.clone());
        tokio::spawn(async move {
            let work = async {
                let _pass = gate.enter().await;
                tokio::time::sleep(hold).await;
                lock::lock(&done).push(name);
            };
            match urgent {
                Some(flag) => {
                    with_urgency(Urgency::new(move || flag.load(Ordering::SeqCst)), work).await
                }
                None => work.await,
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_flight_and_the_rest_in_order() {
        let gate = Gate::new(2);
        let done = Arc::new(Mutex::new(Vec::new()));
        let background = || Some(Arc::new(AtomicBool::new(false)));
        let mut tasks = Vec::new();
        for name in ["a", "b", "c", "d", "e"] {
            tasks.push(call(
                &gate,
                name,
                background(),
                Duration::from_secs(1),
                &done,
            ));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(gate.in_flight(), 2);
        assert_eq!(gate.queued(), 3);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*lock::lock(&done), ["a", "b", "c", "d", "e"]);
        assert_eq!(gate.peak(), 2);
        assert_eq!(gate.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_someone_waits_for_goes_first_also_when_the_wait_began_while_it_queued() {
        let gate = Gate::new(1);
        let done = Arc::new(Mutex::new(Vec::new()));
        let late = Arc::new(AtomicBool::new(false));
        let hold = Duration::from_secs(1);
        let mut tasks = vec![call(&gate, "first", None, hold, &done)];
        tokio::time::sleep(Duration::from_millis(1)).await;
        for name in ["q1", "q2"] {
            tasks.push(call(
                &gate,
                name,
                Some(Arc::new(AtomicBool::new(false))),
                hold,
                &done,
            ));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tasks.push(call(&gate, "wanted-later", Some(late.clone()), hold, &done));
        tokio::time::sleep(Duration::from_millis(1)).await;
        // A login (no urgency scope) queues behind nobody.
        tasks.push(call(&gate, "login", None, hold, &done));
        tokio::time::sleep(Duration::from_millis(1)).await;
        // A request now waits for the profile that queued last.
        late.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *lock::lock(&done),
            ["first", "wanted-later", "login", "q1", "q2"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_call_gives_its_place_back() {
        let gate = Gate::new(1);
        let held = gate.enter().await;
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _pass = gate.enter().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        assert_eq!(gate.in_flight(), 0);
        // Admitted and dropped before it ran: the place comes back too.
        let held = gate.enter().await;
        let gate2 = gate.clone();
        let admitted_then_dropped = tokio::spawn(async move { gate2.enter().await });
        tokio::time::sleep(Duration::from_millis(1)).await;
        drop(held);
        drop(admitted_then_dropped.await.unwrap());
        assert_eq!(gate.in_flight(), 0);
        let _again = tokio::time::timeout(Duration::from_secs(1), gate.enter())
            .await
            .expect("a place is free");
    }
}
