//! A private D-Bus session bus for one test: its own `dbus-daemon` listening in a temp dir, so a
//! Secret Service or a notification server of the test never meets the developer's desktop. The
//! bus activates nothing by itself (no service files): a test starts what it wants on it.
//! Dropping it kills the bus.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::install::apt_install;

/// How long `dbus-daemon` may take to print its address.
const BUS_START_DEADLINE: Duration = Duration::from_secs(10);

/// The variable that points D-Bus clients (libsecret, zbus, notify-send) at a session bus.
pub const BUS_ENV: &str = "DBUS_SESSION_BUS_ADDRESS";

pub struct SessionBus {
    address: String,
    child: Child,
    // Last: removed after Drop::drop has killed the bus listening in it.
    dir: tempfile::TempDir,
}

impl SessionBus {
    /// Starts `dbus-daemon --nofork` with a config of its own (a `unix:path=` socket in a fresh
    /// temp dir, no activatable services) and waits until it printed its address. Installs the
    /// Debian package `dbus-daemon` when missing (see [`ensure_programs`]).
    pub fn start() -> SessionBus {
        ensure_programs(
            "a private D-Bus session bus",
            &[("dbus-daemon", "dbus-daemon")],
        );
        let dir = tempfile::Builder::new()
            .prefix("credd-bus-")
            .tempdir()
            .expect("create the session bus's temp dir");
        let config = dir.path().join("session.conf");
        fs::write(&config, bus_config(&dir.path().join("bus")))
            .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        // Its stderr goes to a log beside the socket: it complains about fd limits as root.
        let log_path = dir.path().join("dbus-daemon.log");
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .env_remove(BUS_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start dbus-daemon: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        // The read blocks until the bus prints its address or exits (closing the pipe); a thread
        // keeps a hung dbus-daemon from hanging the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let address = match rx.recv_timeout(BUS_START_DEADLINE) {
            Ok(Ok(line)) if !line.trim().is_empty() => line.trim().to_owned(),
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "dbus-daemon did not print its address within {BUS_START_DEADLINE:?} \
                     ({other:?}; exit: {status:?}); its config: {}; its log:\n{}",
                    config.display(),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        SessionBus {
            address,
            child,
            dir,
        }
    }

    /// The bus's address (`unix:path=…,guid=…`), the value for [`BUS_ENV`].
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `(DBUS_SESSION_BUS_ADDRESS, address)`, e.g. for `World::set_env`.
    pub fn env(&self) -> (&'static str, &str) {
        (BUS_ENV, &self.address)
    }

    /// The temp dir the bus's socket and config live in (removed when the bus is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `dbus-send` to this bus (`--session`, `--print-reply`, 10 s reply timeout), for
    /// checking or driving services from outside as a desktop tool would; add the destination,
    /// object path, method and arguments.
    pub fn dbus_send(&self) -> Command {
        let mut command = Command::new("dbus-send");
        command
            .env(BUS_ENV, &self.address)
            .args(["--session", "--print-reply", "--reply-timeout=10000"])
            .stdin(Stdio::null());
        command
    }

    /// Whether some connection owns the well-known `name` on this bus right now.
    pub fn has_owner(&self, name: &str) -> bool {
        let out = self
            .dbus_send()
            .args([
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
            ])
            .arg(format!("string:{name}"))
            .output()
            .unwrap_or_else(|e| panic!("run dbus-send: {e}"));
        assert!(
            out.status.success(),
            "dbus-send NameHasOwner({name}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// Waits until `name` is owned on this bus (a service finished starting); panics after
    /// `deadline`.
    #[track_caller]
    pub fn wait_for_name(&self, name: &str, deadline: Duration) {
        crate::wait_until(deadline, &format!("{name} on the session bus"), || {
            self.has_owner(name)
        });
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        // Err: it exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session bus config: one socket at `socket`, same-user EXTERNAL auth, everything allowed,
/// and no service directories (so nothing is activated behind the test's back: the system's
/// `org.freedesktop.secrets.service` would start a gnome-keyring outside the test's control).
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        xml_escape(&socket.display().to_string())
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Makes sure each `(program, Debian package)` of `needed` is on PATH, for `what` (a phrase for
/// the messages). When some are missing: as root, `apt-get install -y` their packages (see
/// [`apt_install`]; lock file `target/desktop-packages-install.lock`); as anyone else, panics with
/// the command to run.
pub fn ensure_programs(what: &str, needed: &[(&str, &str)]) {
    // Checked once per process and set of programs: cheap afterwards.
    static CHECKED: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let key = needed
        .iter()
        .map(|(program, _)| *program)
        .collect::<Vec<_>>()
        .join(",");
    let checked = CHECKED.get_or_init(Default::default);
    let mut checked = checked.lock().unwrap_or_else(|e| e.into_inner());
    if checked.contains(&key) {
        return;
    }
    let missing = || -> Vec<String> {
        needed
            .iter()
            .filter(|(program, _)| find_program(program).is_none())
            .map(|(_, package)| (*package).to_owned())
            .collect()
    };
    apt_install(what, "desktop-packages-install", missing).unwrap_or_else(|e| panic!("{e}"));
    checked.push(key);
}

/// `program` found on PATH (or the system dirs a bare `Command::new` would not search).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_bus_answers_and_owns_nothing_of_the_desktop() {
        let bus = SessionBus::start();
        assert!(bus.address().starts_with("unix:path="), "{}", bus.address());
        assert!(bus.has_owner("org.freedesktop.DBus"));
        // No activation: the system's gnome-keyring service file is not used.
        assert!(!bus.has_owner("org.freedesktop.secrets"));
        let out = bus
            .dbus_send()
            .args([
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.DBus.Peer.Ping",
            ])
            .output()
            .expect("run dbus-send");
        assert!(!out.status.success(), "nothing may be activated");
    }
}
