//! The audit log: every credential that leaves the daemon, recorded with the program that took it
//! (`credd audit` reads it). The vending hook only copies a few facts into a bounded queue; one
//! thread of its own (not a tokio worker) does the rest off the request path: it asks `/proc`
//! who the caller is at once, for a TCP connection as soon as it is accepted (a short-lived
//! client such as curl exits right after its answer),
//! groups what one program takes within a second into one line with a count, appends the lines
//! ([`log::LogFile`]) and raises `[audit] notify_new`'s notifications ([`notify::Known`]).
//!
//! When the queue is full (a flood faster than the thread), events are counted, not queued, and
//! the count is logged once per batch: the request path never waits for the audit.

pub mod log;
mod notify;
pub mod process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use credd_proto::audit::{AuditEntry, AuditVia};
use credd_proto::paths::Paths;
use tokio::sync::watch;

use crate::config::Config;
use crate::desktop::Notifier;
use crate::docker::Container;
use crate::lock;
use crate::vend::{Caller, Hook, Route, Vended};

use self::process::{Resolved, Resolver, WalkBudget};

/// Events waiting for the audit thread. At about 100 bytes each, 8192 is under a MiB, and at
/// the bench's 100k requests a second, a tenth of a second of slack for the thread.
pub const QUEUE: usize = 8192;
/// A batch is written at once when nothing was written for this long, else this long after the
/// last write: one line per program, profile and second at most, however many requests.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How long a new connection's first answer may wait for the audit thread to find its program.
/// A short-lived client (curl) exits a moment after its answer, and on a busy machine the audit
/// thread may not run before that: the wait closes the race. It is usually a fraction of a
/// millisecond (the lookup); it is bounded, and only the connections the lookup budget allows
/// ([`process::WALKS_PER_SECOND`] a second) wait at all: with 64 a second and 50 ms at most,
/// a keep-alive client waits once per connection, and a flood of fresh connections almost never.
pub const LOOKUP_WAIT: Duration = Duration::from_millis(50);

/// What a connection awaits before its first answer: the audit thread has looked for its
/// program, or [`LOOKUP_WAIT`] has passed.
pub type LookupDone = crate::listener::Pending;

/// The running audit: its thread and the way to stop it (flushing what is pending).
pub struct Audit {
    tx: SyncSender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    /// Shared with the audit thread's [`Resolver`].
    lookups: Arc<WalkBudget>,
}

/// What the request path and the audit thread share, besides the queue. The hook must not wake
/// the thread for every credential (a futex call per request, and a context switch on a busy
/// machine): while it has work the thread comes back every [`TICK`] by itself and takes all
/// that queued up meanwhile; only when it has gone to sleep for good (`idle`) does the next
/// event wake it. What cannot wait (a connection to look up, a `credential-process` answer)
/// wakes it at once.
struct Shared {
    /// `[audit] enabled`, as the config in force says: read on the request path without a lock.
    enabled: AtomicBool,
    /// The thread is asleep until woken.
    idle: AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Shared {
    fn wake(&self) {
        self.idle.store(false, Ordering::SeqCst);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// After an event was queued: wakes the thread only if it sleeps for good.
    fn nudge(&self) {
        // Pairs with the fence in `Writer::sleep`: either the thread sees the event, or this
        // sees `idle`.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.idle.load(Ordering::Relaxed) {
            self.wake();
        }
    }
}

/// While it has work, the audit thread takes what queued up this often: at 100,000 credentials
/// a second, 500 at a time, with 200 wake-ups a second instead of 100,000.
pub const TICK: Duration = Duration::from_millis(5);

enum Message {
    /// A TCP connection was accepted: its program is looked up before its request is served,
    /// and `done` told.
    Accepted {
        caller: Caller,
        at: Instant,
        done: tokio::sync::oneshot::Sender<()>,
    },
    Vended(Event),
    /// Everything sent before it was received (the programs looked up): tell `done`.
    CaughtUp(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// What the hook copies on the request path: small, owned, no secret.
struct Event {
    at: SystemTime,
    route: Route,
    /// Shared with the line's key and entry without a copy.
    profile: Arc<str>,
    current: bool,
    account: Arc<str>,
    expires: SystemTime,
    caller: Caller,
    /// The container a `credd docker` grant served.
    container: Option<Arc<Container>>,
}

impl Audit {
    /// Starts the audit thread; the returned hook records every credential that leaves (when
    /// `[audit] enabled`) and then calls `next`. Call inside the tokio runtime: notifications
    /// are sent on it.
    pub fn start(
        paths: &Paths,
        config: watch::Receiver<Arc<Config>>,
        notifier: Arc<dyn Notifier>,
        next: Hook,
    ) -> (Audit, Hook) {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lookups = Arc::new(WalkBudget::new());
        let shared = Arc::new(Shared {
            enabled: AtomicBool::new(config.borrow().audit.enabled),
            idle: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        });
        let writer = Writer {
            log: log::LogFile::new(paths.audit_log(), paths.audit_log_rotated()),
            known_path: paths.audit_known(),
            known: None,
            resolver: Resolver::new(lookups.clone()),
            config,
            notifier,
            dropped: dropped.clone(),
            pending: Pending::default(),
            last_write: None,
            shared: shared.clone(),
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("credd-audit".into())
            .spawn(move || {
                let _runtime = runtime.as_ref().map(|r| r.enter());
                writer.run(rx);
            })
            .map_err(|e| tracing::error!(error = %e, "audit: cannot start its thread; nothing is recorded"))
            .ok();
        if let Some(thread) = &thread {
            let _ = shared.thread.set(thread.thread().clone());
        }
        let hook_tx = tx.clone();
        let hook_shared = shared.clone();
        let hook: Hook = Arc::new(move |v: &Vended<'_>| {
            next(v);
            if !hook_shared.enabled.load(Ordering::Relaxed) {
                return;
            }
            let event = Event {
                at: SystemTime::now(),
                route: v.route,
                profile: Arc::from(v.profile),
                current: v.current,
                account: Arc::from(v.account_id),
                expires: v.expiration,
                caller: *v.caller,
                container: v.container.cloned(),
            };
            match hook_tx.try_send(Message::Vended(event)) {
                Ok(()) => hook_shared.nudge(),
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        (
            Audit {
                tx,
                thread: Mutex::new(thread),
                shared,
                lookups,
            },
            hook,
        )
    }

    /// A new config is in force: `[audit] enabled` applies from the next credential on.
    pub fn config_changed(&self, config: &Config) {
        self.shared
            .enabled
            .store(config.audit.enabled, Ordering::Relaxed);
    }

    /// A TCP connection was accepted (its caller as the listener knows it): the thread looks for
    /// its program now; the connection's first answer waits for that ([`LOOKUP_WAIT`] at most).
    /// `None` (nothing to wait for) beyond the lookup budget or when the queue is full: its
    /// program is then recorded as unknown.
    pub fn connection_accepted(&self, caller: Caller) -> Option<LookupDone> {
        caller.socket_inode?;
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return None;
        }
        if !self.lookups.take() {
            return None;
        }
        let (done, looked_up) = tokio::sync::oneshot::channel();
        let message = Message::Accepted {
            caller,
            at: Instant::now(),
            done,
        };
        self.tx.try_send(message).ok()?;
        self.shared.wake();
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(LOOKUP_WAIT, looked_up).await;
        }))
    }

    /// Resolves once the thread has received what was sent so far (and so looked up the program
    /// of every credential vended), or after [`LOOKUP_WAIT`]: `credd credential-process` answers
    /// after it, for it exits right after its answer, and its parent is learnt from it.
    pub fn caught_up(&self) -> Option<LookupDone> {
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let (done, caught_up) = tokio::sync::oneshot::channel();
        self.tx.try_send(Message::CaughtUp(done)).ok()?;
        self.shared.wake();
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(LOOKUP_WAIT, caught_up).await;
        }))
    }

    /// Writes what is pending and ends the thread (the daemon is stopping).
    pub fn stop(&self) {
        let Some(thread) = lock::lock(&self.thread).take() else {
            return;
        };
        if self.tx.send(Message::Stop).is_ok() {
            self.shared.wake();
            let _ = thread.join();
        }
    }
}

/// Events of one line: the same route, way in, profile, account and program (an unknown one:
/// its user's, whatever the connection, so that a flood of connections is one line a second).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    route: Route,
    via: Option<AuditVia>,
    profile: Arc<str>,
    current: bool,
    account: Arc<str>,
    uid: Option<u32>,
    pid: Option<u32>,
    client_pid: Option<u32>,
    /// A container served through a grant: one line per container.
    container: Option<String>,
}

/// The lines of the next batch, in the order of their first event.
#[derive(Default)]
struct Pending {
    index: HashMap<Key, usize>,
    entries: Vec<AuditEntry>,
}

impl Pending {
    fn add(&mut self, key: Key, event: &Event, resolved: &Resolved) {
        if let Some(&i) = self.index.get(&key) {
            let entry = &mut self.entries[i];
            entry.count += 1;
            entry.last = entry.last.max(event.at);
            entry.expires = event.expires;
            return;
        }
        self.index.insert(key, self.entries.len());
        self.entries.push(entry(event, resolved));
    }

    fn take(&mut self) -> Vec<AuditEntry> {
        self.index.clear();
        std::mem::take(&mut self.entries)
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The way in, user and pid a line names: the program's where it was found, else what the
/// connection said.
fn who(event: &Event, resolved: &Resolved) -> (Option<AuditVia>, Option<u32>, Option<u32>) {
    let program = resolved.program.as_deref();
    (
        program.and_then(|p| p.via),
        program.and_then(|p| p.uid).or(event.caller.uid),
        program.map(|p| p.pid).or(event.caller.pid),
    )
}

fn entry(event: &Event, resolved: &Resolved) -> AuditEntry {
    let program = resolved.program.as_deref();
    let (via, uid, pid) = who(event, resolved);
    AuditEntry {
        time: event.at,
        last: event.at,
        count: 1,
        route: event.route,
        via,
        profile: event.profile.to_string(),
        current: event.current,
        account: event.account.to_string(),
        expires: event.expires,
        uid,
        pid,
        exe: program
            .and_then(|p| p.exe.as_ref())
            .map(|e| e.display().to_string()),
        cmdline: program.and_then(|p| p.cmdline.clone()),
        client_pid: resolved.client_pid,
        cgroup: program.and_then(|p| p.cgroup.clone()),
        container: match &event.container {
            Some(c) => Some(c.id.clone()),
            None => program.and_then(|p| p.container.clone()),
        },
        container_name: event.container.as_ref().map(|c| c.name.clone()),
        image: event.container.as_ref().map(|c| c.image.clone()),
        grant: event.container.as_ref().map(|c| c.grant.clone()),
        netns: program.and_then(|p| p.netns.clone()),
    }
}

fn key(event: &Event, resolved: &Resolved) -> Key {
    let (via, uid, pid) = who(event, resolved);
    Key {
        route: event.route,
        via,
        profile: event.profile.clone(),
        current: event.current,
        account: event.account.clone(),
        uid,
        pid,
        client_pid: resolved.client_pid,
        container: event.container.as_ref().map(|c| c.id.clone()),
    }
}

/// The audit thread's state.
struct Writer {
    log: log::LogFile,
    known_path: PathBuf,
    /// Loaded when a notification is first considered.
    known: Option<notify::Known>,
    resolver: Resolver,
    config: watch::Receiver<Arc<Config>>,
    notifier: Arc<dyn Notifier>,
    dropped: Arc<AtomicU64>,
    pending: Pending,
    last_write: Option<Instant>,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Message>) {
        loop {
            // Everything queued (at most a queue's worth, so that a flood that keeps it full
            // still gets written).
            let mut received = 0;
            for _ in 0..QUEUE {
                match rx.try_recv() {
                    Ok(message) => {
                        received += 1;
                        if !self.handle(message) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            let due = self
                .last_write
                .is_none_or(|w| w.elapsed() >= BATCH_INTERVAL);
            if due && !self.pending.is_empty() {
                self.flush();
            }
            if received == 0 && self.pending.is_empty() {
                if !self.sleep(&rx) {
                    return;
                }
            } else {
                // Busy: what comes meanwhile waits in the queue without waking us.
                let until_due = self.last_write.map_or(Duration::ZERO, |w| {
                    (w + BATCH_INTERVAL).saturating_duration_since(Instant::now())
                });
                std::thread::park_timeout(if received == 0 {
                    until_due.min(TICK)
                } else {
                    TICK
                });
            }
        }
    }

    /// Sleeps until an event wakes it (nothing pending, nothing queued). False once the thread
    /// is to end.
    fn sleep(&mut self, rx: &Receiver<Message>) -> bool {
        self.shared.idle.store(true, Ordering::SeqCst);
        // Pairs with the fence in `Shared::nudge`: an event queued before `idle` was seen is
        // found here.
        std::sync::atomic::fence(Ordering::SeqCst);
        match rx.try_recv() {
            Ok(message) => {
                self.shared.idle.store(false, Ordering::SeqCst);
                return self.handle(message);
            }
            Err(TryRecvError::Disconnected) => {
                self.flush();
                return false;
            }
            Err(TryRecvError::Empty) => {}
        }
        while self.shared.idle.load(Ordering::SeqCst) {
            std::thread::park();
        }
        true
    }

    /// False once the thread is to end (what was pending written).
    fn handle(&mut self, message: Message) -> bool {
        match message {
            Message::Vended(event) => self.receive(event),
            Message::Accepted { caller, at, done } => self.accepted(caller, at, done),
            Message::CaughtUp(done) => {
                let _ = done.send(());
            }
            Message::Stop => {
                self.flush();
                return false;
            }
        }
        true
    }

    fn accepted(&mut self, caller: Caller, at: Instant, done: tokio::sync::oneshot::Sender<()>) {
        let queued = at.elapsed();
        if queued >= LOOKUP_WAIT {
            // The connection's first answer has stopped waiting: a short-lived client may have
            // had it and be gone, and looking for a socket that is gone walks every process's
            // descriptors in vain (tens of milliseconds on a busy machine), which would make
            // the next lookups late too. Not remembered: a credential served to the connection
            // later looks it up if the budget allows ([`Resolver::resolve`]).
            tracing::trace!(
                queued_us = queued.as_micros() as u64,
                "audit: a new connection's lookup came too late; skipped"
            );
            return;
        }
        let resolved = self.resolver.accepted(&caller);
        let _ = done.send(());
        tracing::trace!(
            queued_us = queued.as_micros() as u64,
            took_us = (at.elapsed() - queued).as_micros() as u64,
            found = resolved.program.is_some(),
            "audit: a new connection's program looked up"
        );
    }

    fn receive(&mut self, event: Event) {
        let resolved = self
            .resolver
            .resolve(&event.caller, event.route == Route::CredentialProcess);
        self.consider_notifying(&event, &resolved);
        self.pending.add(key(&event, &resolved), &event, &resolved);
    }

    fn consider_notifying(&mut self, event: &Event, resolved: &Resolved) {
        if !self.config.borrow().audit.notifies(&event.profile) {
            return;
        }
        let config = self.config.borrow().clone();
        let known = self
            .known
            .get_or_insert_with(|| notify::Known::load(self.known_path.clone()));
        let program = resolved.program.as_deref();
        let Some(notice) = known.first_take(
            program,
            program.and_then(|p| p.uid).or(event.caller.uid),
            &event.profile,
            event.route.name(),
        ) else {
            return;
        };
        tracing::info!(
            profile = %event.profile,
            route = event.route.name(),
            program = program.and_then(|p| p.exe.as_ref()).map_or("unknown".into(), |e| e.display().to_string()),
            "audit: a program took a profile for the first time"
        );
        if config.daemon.notify {
            self.notifier.show(notice.for_lock_screen());
        }
    }

    fn flush(&mut self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "audit: {dropped} events dropped under load (more credentials were asked for than the audit thread could record)"
            );
        }
        let entries = self.pending.take();
        if entries.is_empty() {
            return;
        }
        let mut lines = Vec::with_capacity(entries.len() * 400);
        for entry in &entries {
            if serde_json::to_writer(&mut lines, entry).is_ok() {
                lines.push(b'\n');
            }
        }
        let max_size = self.config.borrow().audit.max_size;
        self.log.append(&lines, max_size);
        self.last_write = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(profile: &str, caller: Caller, at: SystemTime) -> Event {
        Event {
            at,
            route: Route::Container,
            profile: profile.into(),
            current: true,
            account: "222222222222".into(),
            expires: at + Duration::from_secs(3600),
            caller,
            container: None,
        }
    }

    /// A config with `[audit]` lines, parsed as the daemon does.
    fn config(dir: &std::path::Path, audit: &str) -> Arc<Config> {
        let text = format!(
            "[audit]\n{audit}\n[access]\nsource = \"iam-user\"\naws_profile = \"access\"\n\
             [profiles.prod]\nrole_arn = \"arn:aws:iam::333333333333:role/Deploy\"\n"
        );
        Arc::new(crate::config::parse(&dir.join("config.toml"), &text).expect("a valid config"))
    }

    #[test]
    fn the_hook_s_events_become_one_line_per_program_and_stopping_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            config: dir.path().join("config.toml"),
            config_named: false,
            runtime_dir: dir.path().join("run"),
            state_dir: dir.path().to_path_buf(),
        };
        let (config_tx, config_rx) = watch::channel(config(dir.path(), ""));
        let clock = crate::clock::Clock::system();
        let recorder = crate::testing::notifier::Recorder::new(&clock);
        let heard = Arc::new(AtomicU64::new(0));
        let next_heard = heard.clone();
        let next: Hook = Arc::new(move |_: &Vended<'_>| {
            next_heard.fetch_add(1, Ordering::Relaxed);
        });
        let (audit, hook) = Audit::start(&paths, config_rx, Arc::new(recorder.clone()), next);
        // This test process, over the control socket.
        let me = Caller::unix(
            credd_proto::paths::current_uid(),
            Some(std::process::id() as i32),
        );
        let vended = |hook: &Hook| {
            hook(&Vended {
                route: Route::Container,
                profile: "prod",
                current: false,
                account_id: "333333333333",
                expiration: SystemTime::now() + Duration::from_secs(3600),
                caller: &me,
                container: None,
            })
        };
        for _ in 0..25 {
            vended(&hook);
        }
        // Turned off by a config edit: nothing recorded, the next hook still hears.
        let off = config(dir.path(), "enabled = false");
        config_tx.send_replace(off.clone());
        audit.config_changed(&off);
        vended(&hook);
        audit.stop();
        assert_eq!(heard.load(Ordering::Relaxed), 26);
        let text = std::fs::read_to_string(paths.audit_log()).unwrap();
        let lines: Vec<AuditEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let total: u64 = lines.iter().map(|l| l.count).sum();
        assert_eq!(total, 25, "{text}");
        assert!(lines.len() <= 2, "grouped: {text}");
        let exe = std::env::current_exe().unwrap().display().to_string();
        assert_eq!(lines[0].exe.as_deref(), Some(exe.as_str()));
        assert_eq!(lines[0].pid, Some(std::process::id()));
        // Without notify_new, no notice and nothing remembered (notify.rs tests it; hashing
        // this test binary would take seconds).
        assert!(recorder.shown().is_empty(), "{:?}", recorder.shown());
        assert!(!paths.audit_known().exists());
    }

    #[test]
    fn what_one_program_takes_is_one_line_with_a_count_and_its_first_and_last_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let program = |pid| Resolved {
            program: Some(Arc::new(process::Program {
                pid,
                uid: Some(1000),
                exe: Some("/usr/bin/curl".into()),
                ..process::Program::default()
            })),
            client_pid: None,
        };
        let unknown = Resolved::default();
        let conn = |inode| Caller {
            uid: Some(1000),
            pid: None,
            socket_inode: Some(inode),
        };
        let mut pending = Pending::default();
        for i in 0..5 {
            let e = event("staging", conn(7), t0 + Duration::from_millis(i * 100));
            pending.add(key(&e, &program(42)), &e, &program(42));
        }
        // The same program on another connection: the same line.
        let e = event("staging", conn(8), t0 + Duration::from_millis(600));
        pending.add(key(&e, &program(42)), &e, &program(42));
        // Another profile and another pid: lines of their own; unknown programs on three
        // connections: one line of their user's.
        for (e, r) in [
            (event("prod", conn(7), t0), program(42)),
            (event("staging", conn(9), t0), program(43)),
            (event("staging", conn(10), t0), unknown.clone()),
            (event("staging", conn(11), t0), unknown.clone()),
            (event("staging", conn(11), t0), unknown.clone()),
        ] {
            pending.add(key(&e, &r), &e, &r);
        }
        let lines = pending.take();
        let counts: Vec<(u64, &str, Option<u32>)> = lines
            .iter()
            .map(|l| (l.count, l.profile.as_str(), l.pid))
            .collect();
        assert_eq!(
            counts,
            [
                (6, "staging", Some(42)),
                (1, "prod", Some(42)),
                (1, "staging", Some(43)),
                (3, "staging", None),
            ]
        );
        assert_eq!(lines[0].time, t0);
        assert_eq!(lines[0].last, t0 + Duration::from_millis(600));
        assert_eq!(lines[0].exe.as_deref(), Some("/usr/bin/curl"));
        assert_eq!(lines[3].uid, Some(1000), "the connection's uid");
        assert!(pending.is_empty());
    }
}
