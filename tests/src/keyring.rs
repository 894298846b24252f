//! A real Secret Service for a test: GNOME Keyring (`gnome-keyring-daemon --components=secrets`)
//! on a private session bus ([`SessionBus`]), its keyrings under the world's HOME, its login
//! keyring created and unlocked with a password given on stdin. The world's processes (the daemon,
//! `credd`) find it through `DBUS_SESSION_BUS_ADDRESS`; `secret-tool` checks it from outside;
//! [`Keyring::lock`] locks the login collection as a screen lock would. The bus has no prompter,
//! so unlocking asks nobody: a locked keyring fails at once, as on a headless machine.
//! Dropping it stops the keyring and the bus.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::session_bus::{BUS_ENV, SessionBus, ensure_programs};
use crate::world::World;

/// The Secret Service's well-known name on the bus.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";
/// The login collection, where the default alias points once the keyring made it.
pub const LOGIN_COLLECTION: &str = "/org/freedesktop/secrets/collection/login";
/// The login keyring's password in tests.
pub const KEYRING_PASSWORD: &str = "credd-test-keyring";
/// How long gnome-keyring-daemon may take to own its name on the bus.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// What the harness needs, program and Debian package.
const PROGRAMS: &[(&str, &str)] = &[
    ("dbus-daemon", "dbus-daemon"),
    ("dbus-send", "dbus-bin"),
    ("gnome-keyring-daemon", "gnome-keyring"),
    ("secret-tool", "libsecret-tools"),
];

/// Fields drop in order after [`Drop::drop`] stopped the keyring: the bus goes last.
pub struct Keyring {
    child: Child,
    bus: SessionBus,
    /// The world's environment with the bus, for `secret-tool` and `dbus-send`.
    env: Vec<(String, String)>,
    home: std::path::PathBuf,
}

impl Keyring {
    /// Starts a private bus and GNOME Keyring on it for `world` (HOME, XDG dirs from the world;
    /// keyrings in `HOME/.local/share/keyrings`), and points the world's processes at the bus.
    /// Installs the Debian packages it needs when missing (as root), else fails saying which.
    pub fn start(world: &mut World) -> Keyring {
        ensure_programs("a GNOME Keyring Secret Service", PROGRAMS);
        let bus = SessionBus::start();
        world.set_env(BUS_ENV, bus.address());
        let mut child = world
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start gnome-keyring-daemon: {e}"));
        {
            // The password to create (or open) the login keyring with; EOF ends it.
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(KEYRING_PASSWORD.as_bytes())
                .expect("give gnome-keyring-daemon its password");
        }
        let keyring = Keyring {
            child,
            env: world.env(),
            bus,
            home: world.home.clone(),
        };
        keyring.bus.wait_for_name(SECRETS_NAME, START_DEADLINE);
        keyring
    }

    /// The bus the keyring serves on.
    pub fn bus(&self) -> &SessionBus {
        &self.bus
    }

    /// `program` with the world's environment and the bus.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.home)
            .stdin(Stdio::null());
        command
    }

    /// Locks the login collection over D-Bus (`org.freedesktop.Secret.Service.Lock`), as a screen
    /// lock does: reading its items then needs an unlock prompt, and there is no prompter.
    pub fn lock(&self) {
        let out = self
            .command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--reply-timeout=10000",
                &format!("--dest={SECRETS_NAME}"),
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                &format!("array:objpath:{LOGIN_COLLECTION}"),
            ])
            .output()
            .expect("run dbus-send");
        assert!(
            out.status.success(),
            "locking the login collection failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            self.is_locked(),
            "the login collection should be locked now"
        );
    }

    /// Whether the login collection is locked (its `Locked` property).
    pub fn is_locked(&self) -> bool {
        let out = self
            .command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                &format!("--dest={SECRETS_NAME}"),
                LOGIN_COLLECTION,
                "org.freedesktop.DBus.Properties.Get",
                "string:org.freedesktop.Secret.Collection",
                "string:Locked",
            ])
            .output()
            .expect("run dbus-send");
        assert!(
            out.status.success(),
            "reading the login collection's Locked property failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// `secret-tool lookup ATTR VALUE...`: the secret, or `None` when there is no such item (or
    /// it cannot be read).
    pub fn lookup(&self, attributes: &[(&str, &str)]) -> Option<String> {
        let mut command = self.command("secret-tool");
        command.arg("lookup");
        for (k, v) in attributes {
            command.args([k, v]);
        }
        let out = command.output().expect("run secret-tool");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `secret-tool store --label=LABEL ATTR VALUE...` with `secret` on stdin, e.g. an entry
    /// credd did not write.
    pub fn store(&self, label: &str, attributes: &[(&str, &str)], secret: &str) {
        let mut command = self.command("secret-tool");
        command.arg("store").arg(format!("--label={label}"));
        for (k, v) in attributes {
            command.args([k, v]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run secret-tool store");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(secret.as_bytes())
            .expect("give secret-tool the secret");
        let out = child.wait_with_output().expect("wait for secret-tool");
        assert!(
            out.status.success(),
            "secret-tool store failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // Err: it exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
