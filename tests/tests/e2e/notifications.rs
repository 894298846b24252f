//! Desktop notifications end to end: the daemon on a private D-Bus session bus where a real
//! notification server (dunst, on a headless X server) shows what it is sent, and `dbus-monitor`
//! records every `org.freedesktop.Notifications.Notify` call. An MFA session that ends an hour
//! and ten minutes (plus a few seconds) after the login is told of a few seconds after it;
//! `notify = false` sends nothing, and turning it on applies live; with no desktop at all the
//! daemon says so once in its log and carries on. (A profile failing for 5 minutes is the same
//! path from another trigger; its timing is tested on the simulated clock.) moto's auth is off,
//! as for the other MFA tests.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use credd_tests::session_bus::{BUS_ENV, SessionBus, ensure_programs};
use credd_tests::stack::{Access, MFA_CODE, READY_DEADLINE, Stack, Toml};
use credd_tests::wait_until;

const STAGING: &str = r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
"#;

/// The daemon warns this long before a session that will not renew itself ends.
const WARNING: Duration = Duration::from_secs(70 * 60);
/// Sessions end this long after the warning's time (the proxy rewrites GetSessionToken's
/// `Expiration`): the warning is due a few seconds after the login.
const DUE_AFTER: Duration = Duration::from_secs(4);
/// From the login to the notification: the few seconds, the daemon's 5-second check, D-Bus.
const NOTIFY_DEADLINE: Duration = Duration::from_secs(20);

const NOTIFICATIONS: &str = "org.freedesktop.Notifications";

/// A desktop for one test: a private session bus, a headless X server, dunst showing
/// notifications on it, and dbus-monitor recording the Notify calls. Dropping it stops them all
/// (the bus last). The audit's notifications use it too (`crate::audit`).
pub(crate) struct Desktop {
    monitor: Child,
    monitor_log: PathBuf,
    dunst: Child,
    xvfb: Child,
    pub(crate) bus: SessionBus,
}

/// One Notify call as the bus carried it.
#[derive(Debug, Clone)]
pub(crate) struct NotifyCall {
    /// When it passed, seconds since the epoch.
    pub(crate) at: f64,
    pub(crate) app_name: String,
    pub(crate) summary: String,
    pub(crate) body: String,
}

impl Desktop {
    pub(crate) fn start() -> Desktop {
        ensure_programs(
            "a headless desktop that shows notifications",
            &[
                ("Xvfb", "xvfb"),
                ("dunst", "dunst"),
                ("dunstctl", "dunst"),
                ("dbus-monitor", "dbus-bin"),
            ],
        );
        let bus = SessionBus::start();
        let dir = bus.dir().to_path_buf();
        let log = |name: &str| {
            let path = dir.join(name);
            File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
        };
        // Xvfb picks a free display and prints its number on fd 1.
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log("xvfb.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start Xvfb: {e}"));
        let stdout = xvfb.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let display = match rx.recv_timeout(READY_DEADLINE) {
            Ok(Ok(n)) if !n.trim().is_empty() => format!(":{}", n.trim()),
            other => panic!("Xvfb printed no display number: {other:?}"),
        };
        let dunst = Command::new("dunst")
            // Its defaults, whatever the machine's dunstrc says.
            .args(["-config", "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .env("DISPLAY", &display)
            .env(BUS_ENV, bus.address())
            .stdin(Stdio::null())
            .stdout(log("dunst.log"))
            .stderr(log("dunst.err"))
            .spawn()
            .unwrap_or_else(|e| panic!("start dunst: {e}"));
        bus.wait_for_name(NOTIFICATIONS, READY_DEADLINE);
        let monitor_log = dir.join("notify-calls.log");
        let monitor = Command::new("dbus-monitor")
            .arg("--address")
            .arg(bus.address())
            .arg("type='method_call',interface='org.freedesktop.Notifications',member='Notify'")
            .stdin(Stdio::null())
            .stdout(log("notify-calls.log"))
            .stderr(log("dbus-monitor.err"))
            .spawn()
            .unwrap_or_else(|e| panic!("start dbus-monitor: {e}"));
        // It is listening once it has turned itself into a monitor (and so lost its name).
        wait_until(READY_DEADLINE, "dbus-monitor to listen", || {
            std::fs::read_to_string(&monitor_log).is_ok_and(|l| l.contains("member=NameLost"))
        });
        Desktop {
            monitor,
            monitor_log,
            dunst,
            xvfb,
            bus,
        }
    }

    /// Every Notify call so far.
    pub(crate) fn calls(&self) -> Vec<NotifyCall> {
        let log = std::fs::read_to_string(&self.monitor_log).unwrap_or_default();
        let mut calls = Vec::new();
        let mut lines = log.lines();
        while let Some(line) = lines.next() {
            if !(line.starts_with("method call ") && line.contains("member=Notify")) {
                continue;
            }
            let at = line
                .split("time=")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no time in {line:?}"));
            // app_name, replaces_id, app_icon, summary, body, ...
            let args: Vec<String> = lines.by_ref().take(5).map(|l| unquote(l.trim())).collect();
            if args.len() < 5 {
                break; // still being written
            }
            calls.push(NotifyCall {
                at,
                app_name: args[0].clone(),
                summary: args[3].clone(),
                body: args[4].clone(),
            });
        }
        calls
    }

    /// What dunst has shown, as `dunstctl history` lists it once everything shown is closed.
    pub(crate) fn shown(&self) -> String {
        let dunstctl = |args: &[&str]| {
            let out = Command::new("dunstctl")
                .args(args)
                .env(BUS_ENV, self.bus.address())
                .output()
                .unwrap_or_else(|e| panic!("run dunstctl: {e}"));
            assert!(out.status.success(), "dunstctl {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        dunstctl(&["close-all"]);
        dunstctl(&["history"])
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in [&mut self.monitor, &mut self.dunst, &mut self.xvfb] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `string "text"` → `text`; other values as printed.
fn unquote(arg: &str) -> String {
    arg.strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(arg)
        .to_owned()
}

/// An MFA stack with `daemon` lines in `[daemon]` whose sessions end [`WARNING`] +
/// [`DUE_AFTER`] after they begin, its processes on `bus` when given; the daemon started.
fn stack(daemon: &str, bus: Option<&SessionBus>) -> Stack {
    let mut stack = Stack::builder()
        .access(Access::Mfa)
        .toml(Toml {
            daemon,
            profiles: STAGING,
            ..Toml::default()
        })
        .build();
    if let Some(bus) = bus {
        stack.world.set_env(BUS_ENV, bus.address());
    }
    stack
        .proxy()
        .set_lifetime("GetSessionToken", WARNING + DUE_AFTER);
    stack.world.start_daemon();
    stack
}

/// The time at the start of the first line of the daemon's log holding `needle`.
fn logged_at(log: &str, needle: &str) -> Option<SystemTime> {
    let line = log.lines().find(|l| l.contains(needle))?;
    humantime::parse_rfc3339_weak(line.split_whitespace().next()?).ok()
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

const ENDS_SOON: &str = "the access session ends soon";

#[test]
fn the_end_of_an_mfa_session_reaches_the_desktop_an_hour_and_ten_minutes_ahead() {
    let desktop = Desktop::start();
    let stack = stack("", Some(&desktop.bus));
    stack
        .world
        .credd(&["login", "--mfa-code", MFA_CODE])
        .assert_success();
    let expires_at = stack.world.status()["access"]["expires_at"]
        .as_u64()
        .expect("the session's end");
    wait_until(NOTIFY_DEADLINE, "the Notify call", || {
        !desktop.calls().is_empty()
    });
    let call = desktop.calls()[0].clone();
    assert_eq!(call.app_name, "credd", "{call:?}");
    assert_eq!(
        call.summary, "credd: the AWS access session ends in 1h 10m",
        "{call:?}"
    );
    assert!(
        call.body.contains("Run `credd login` to renew it"),
        "{call:?}"
    );
    // dunst showed it.
    wait_until(READY_DEADLINE, "dunst to have shown it", || {
        desktop.shown().contains(&call.summary)
    });
    // The same fact in status and the log.
    let status = stack.world.status();
    let warning = status["access"]["warning"].as_str().unwrap_or_default();
    assert!(
        // Read a moment after the notice: the nearest minute is 1h 10m or, on a slow machine, 1h 9m.
        (warning.starts_with("the access session ends in 1h 10m")
            || warning.starts_with("the access session ends in 1h 9m"))
            && warning.contains("credd login"),
        "{status:#}"
    );
    let log = stack.world.daemon_log();
    let decided = logged_at(&log, ENDS_SOON).expect("the warning in the log");
    assert!(log.contains("desktop notification shown"), "{log}");
    // Measured: from when it was due (the session's end minus 70 minutes, to the second) to the
    // daemon's check, and from there to the call on the bus.
    let due = expires_at as f64 - WARNING.as_secs_f64();
    let check = seconds(decided) - due;
    let delivery = call.at - seconds(decided);
    assert!(
        (-1.0..=6.0).contains(&check),
        "checked {check:.2} s after it was due"
    );
    assert!(
        (0.0..=2.0).contains(&delivery),
        "on the bus {delivery:.3} s after the check"
    );
    assert_eq!(desktop.calls().len(), 1);
    eprintln!(
        "session warning: due at end - 70 min; the daemon's check came {check:.2} s after (its \
         5-second tick, the end known to the second); the Notify call was on the bus {:.1} ms \
         after the check; dunst showed it",
        delivery * 1000.0
    );
}

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn notify_false_sends_nothing_and_turning_it_on_applies_live() {
    let desktop = Desktop::start();
    let stack = stack("notify = false", Some(&desktop.bus));
    let world = &stack.world;
    world
        .credd(&["login", "--mfa-code", MFA_CODE])
        .assert_success();
    // Due, and told in status and the log only.
    wait_until(NOTIFY_DEADLINE, "the warning in the log", || {
        world.daemon_log().contains(ENDS_SOON)
    });
    assert!(
        world.status()["access"]["warning"].is_string(),
        "status warns all the same"
    );

    // Turned on by an edit: the next session's end reaches the desktop, and it is the only
    // Notify call ever made.
    stack.write_config(Toml {
        daemon: "notify = true",
        profiles: STAGING,
        ..Toml::default()
    });
    world.credd(&["reload"]).assert_success();
    world
        .credd(&["login", "--mfa-code", MFA_CODE])
        .assert_success();
    wait_until(NOTIFY_DEADLINE, "the Notify call", || {
        !desktop.calls().is_empty()
    });
    let log = world.daemon_log();
    assert_eq!(log.matches(ENDS_SOON).count(), 2, "{log}");
    let calls = desktop.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let first_warning = logged_at(&log, ENDS_SOON).expect("logged");
    assert!(
        calls[0].at > seconds(first_warning) + 1.0,
        "the call is the second session's: {calls:?}"
    );
}

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn without_a_desktop_nothing_is_shown_and_the_log_says_so_once() {
    let stack = {
        let mut builder_stack = Stack::builder()
            .access(Access::Mfa)
            .toml(Toml {
                profiles: STAGING,
                ..Toml::default()
            })
            .build();
        // Every later attempt is logged at trace level: the anchor that it happened.
        builder_stack.world.set_env("RUST_LOG", "credd=trace");
        builder_stack
            .proxy()
            .set_lifetime("GetSessionToken", WARNING + DUE_AFTER);
        builder_stack.world.start_daemon();
        builder_stack
    };
    let world = &stack.world;
    for _ in 0..2 {
        world
            .credd(&["login", "--mfa-code", MFA_CODE])
            .assert_success();
        let warned = world.daemon_log().matches(ENDS_SOON).count();
        wait_until(NOTIFY_DEADLINE, "the next warning", || {
            world.daemon_log().matches(ENDS_SOON).count() > warned
        });
    }
    let attempts = |level: &str| {
        world
            .daemon_log()
            .lines()
            .filter(|l| l.contains(level) && l.contains("no desktop notification"))
            .count()
    };
    wait_until(READY_DEADLINE, "the second attempt", || {
        attempts("TRACE") == 1
    });
    assert_eq!(attempts("DEBUG"), 1, "told once, at debug level");
    let log = world.daemon_log();
    assert!(!log.contains("desktop notification shown"), "{log}");
    // The daemon carries on.
    assert_eq!(world.status()["access"]["logged_in"], true);
    assert!(world.credential_process("staging").is_ok());
}
