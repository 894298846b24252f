//! The usual set-up of an engine scenario: moto seeded with alice (and the roles, when auth is on),
//! the fault-injecting proxy in front of it, and a world whose daemon reaches STS only through the
//! proxy (`AWS_ENDPOINT_URL_STS`), with alice's long-lived key in the shared credentials file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::moto::{Auth, Moto, SeedSpec, SeededUser};
use crate::proxy::StsProxy;
use crate::world::World;

/// The role most profiles assume, in another account than alice's.
pub const ADMIN: &str = "arn:aws:iam::222222222222:role/Administrator";
/// The role chained profiles assume through [`ADMIN`], in a third account.
pub const AUDITOR: &str = "arn:aws:iam::333333333333:role/Auditor";
/// The IAM user; also the default RoleSessionName.
pub const USER: &str = "alice";
/// A well-formed one-time code (moto, auth off, accepts any).
pub const MFA_CODE: &str = "123456";

/// One literal for both constants below.
macro_rules! staging_and_audit {
    () => {
        r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
region = "us-west-2"

[profiles.prod-audit]
role_arn = "arn:aws:iam::333333333333:role/Auditor"
via = "staging"
"#
    };
}

/// `staging` assumes [`ADMIN`]; `prod-audit` assumes [`AUDITOR`] through it.
pub const STAGING_AND_AUDIT: &str = staging_and_audit!();

/// A whole config for scenarios that need no STS: a free port, a key-only access source and
/// [`STAGING_AND_AUDIT`].
pub const OFFLINE_CONFIG: &str = concat!(
    r#"default_profile = "staging"

[daemon]
listen = "127.0.0.1:0"

[access]
source = "iam-user"
aws_profile = "access"
"#,
    staging_and_audit!()
);

/// The caller ARN of credentials for `role_arn` (a role without a path) under `session`.
pub fn assumed_role_arn(role_arn: &str, session: &str) -> String {
    let (account, role) = role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .unwrap_or_else(|| panic!("not a role ARN: {role_arn}"));
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

/// How alice reaches the access account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// alice has an MFA device and `mfa_serial` is configured: `credd login` trades her key and a
    /// code for a GetSessionToken session. moto's auth stays off: with it on, moto rejects the
    /// keys its own GetSessionToken hands out.
    Mfa,
    /// No `mfa_serial`: alice's key signs AssumeRole itself and the daemon logs in by itself.
    /// moto's auth is on, so every credential the daemon serves is really checked.
    Key,
}

/// The parts of the config a scenario chooses; the rest (loopback listener on a free port, the
/// `[access]` source for the stack) is filled in by [`Stack::write_config`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Toml<'a> {
    /// Extra lines of `[daemon]`, e.g. `min_remaining = "14m50s"`.
    pub daemon: &'a str,
    /// Extra lines of `[access]`, e.g. `regions = ["us-east-1", "us-west-2"]`.
    pub access: &'a str,
    /// `[profiles.*]` tables.
    pub profiles: &'a str,
}

/// Fields drop in order: the world (and its daemon) goes first, moto last.
pub struct Stack {
    pub world: World,
    pub proxy: StsProxy,
    pub moto: &'static Moto,
    pub user: SeededUser,
    pub access: Access,
}

impl Stack {
    /// moto seeded for `access`, the proxy, and a world pointed at them; no config, no daemon.
    pub fn new(access: Access) -> Stack {
        Stack::in_world(access, World::new())
    }

    /// [`Stack::new`] around `world` (e.g. [`World::on_disk`]).
    pub fn in_world(access: Access, mut world: World) -> Stack {
        // With auth off moto assumes any role ARN, so only the auth-on stack needs real roles.
        let (moto, spec) = match access {
            Access::Mfa => (Moto::shared(Auth::Off), SeedSpec::new().user_with_mfa(USER)),
            Access::Key => (
                Moto::shared(Auth::On),
                SeedSpec::new().user(USER).role(ADMIN).role(AUDITOR),
            ),
        };
        let seeded = moto.seed(&spec);
        let user = seeded.user(USER).clone();
        let proxy = StsProxy::start(&moto.endpoint());
        world.set_env("AWS_ENDPOINT_URL_STS", &proxy.endpoint());
        world.write_shared_credentials("access", &user.access_key_id, &user.secret_access_key);
        Stack {
            world,
            proxy,
            moto,
            user,
            access,
        }
    }

    /// [`Stack::new`], the config written, the daemon started.
    pub fn start(access: Access, toml: Toml<'_>) -> Stack {
        let mut stack = Stack::new(access);
        stack.write_config(toml);
        stack.world.start_daemon();
        stack
    }

    /// The MFA device's serial ([`Access::Mfa`] only).
    pub fn mfa_serial(&self) -> &str {
        self.user
            .mfa_serial
            .as_deref()
            .expect("this stack's user has no MFA device")
    }

    /// Writes the credd config: `toml`'s parts plus the `[access]` source of this stack.
    pub fn write_config(&self, toml: Toml<'_>) {
        let mfa = match self.access {
            Access::Mfa => format!("mfa_serial = \"{}\"\n", self.mfa_serial()),
            Access::Key => String::new(),
        };
        self.world.write_config(&format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\n{daemon}\n\n\
             [access]\nsource = \"iam-user\"\naws_profile = \"access\"\n{mfa}{access}\n{profiles}",
            daemon = toml.daemon,
            access = toml.access,
            profiles = toml.profiles,
        ));
    }

    /// Who moto (auth on) says the credentials credd serves for `profile` belong to: the real
    /// check that they work. The credentials come from `credd credential-process`.
    #[track_caller]
    pub fn served_identity(&self, profile: &str) -> Result<String, String> {
        let creds = self
            .world
            .credential_process(profile)
            .unwrap_or_else(|out| panic!("no credentials for {profile}: {out}"));
        self.moto.caller_arn(
            &creds.keys.access_key_id,
            &creds.keys.secret_access_key,
            creds.keys.session_token.as_deref(),
        )
    }

    /// `credd login --mfa-code 123456`, asserting it succeeds.
    #[track_caller]
    pub fn login_with_mfa(&self) {
        self.world
            .credd(&["login", "--mfa-code", MFA_CODE])
            .assert_success();
    }

    /// Waits until the daemon has logged in by itself ([`Access::Key`]) or after `credd login`.
    #[track_caller]
    pub fn wait_logged_in(&self, deadline: Duration) {
        crate::wait_until(deadline, "the access session", || {
            self.world.status()["access"]["logged_in"] == true
        });
    }
}

/// Every regular file under `dir` (recursively) whose bytes contain `needle`; unreadable files
/// and sockets are skipped. For "this secret is nowhere on disk" checks.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    assert!(
        !needle.is_empty(),
        "looking for an empty secret finds everything"
    );
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => {
                    let hit = fs::read(&path).is_ok_and(|bytes| {
                        bytes
                            .windows(needle.len())
                            .any(|window| window == needle.as_bytes())
                    });
                    if hit {
                        found.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Seconds since the Unix epoch, as status reports times.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
