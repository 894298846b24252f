//! `mfa_command`: the daemon logs in with a code the command prints and renews the MFA session
//! itself before it ends, with no prompt; `credd login` runs the command too unless given a code;
//! a failing command says why. The command is a stand-in for `ykman oath accounts code -s aws`
//! written into the world: a new code each run, its runs counted. moto's auth is off, as for the
//! other MFA tests (with it on, moto rejects the keys of its own GetSessionToken).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use credd_tests::stack::{Access, READY_DEADLINE, Stack, Toml};
use credd_tests::wait_until;

const STAGING: &str = r#"
[profiles.staging]
role_arn = "arn:aws:iam::222222222222:role/Administrator"
"#;

/// Compressed time: each MFA session lasts this long (the proxy rewrites GetSessionToken's
/// `Expiration`), so it is renewed a third of it ahead: 12 s after it began, at the daemon's
/// next 5-second check.
const SHORT_SESSION: Duration = Duration::from_secs(18);

/// The stand-in for `ykman`, in the world's root.
struct Ykman {
    path: PathBuf,
    runs: PathBuf,
    unplugged: PathBuf,
}

impl Ykman {
    fn install(stack: &Stack) -> Ykman {
        use std::os::unix::fs::PermissionsExt;
        let root = &stack.world.root;
        let ykman = Ykman {
            path: root.join("ykman"),
            runs: root.join("ykman.runs"),
            unplugged: root.join("ykman.unplugged"),
        };
        std::fs::write(
            &ykman.path,
            format!(
                "#!/bin/sh\n\
                 # A new code each run (as the 30-second steps go by); the runs counted.\n\
                 n=$(( $(cat '{runs}' 2>/dev/null || echo 0) + 1 ))\n\
                 echo \"$n\" > '{runs}'\n\
                 if [ -e '{unplugged}' ]; then echo 'Error: no YubiKey detected' >&2; exit 1; fi\n\
                 printf 'aws:%06d\\n' $((100000 + n))\n",
                runs = ykman.runs.display(),
                unplugged = ykman.unplugged.display(),
            ),
        )
        .expect("write the ykman stand-in");
        std::fs::set_permissions(&ykman.path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        ykman
    }

    /// `mfa_command = [...]` for `[access]`.
    fn config_line(&self) -> String {
        format!(
            "mfa_command = [{:?}, \"oath\", \"accounts\", \"code\", \"-s\", \"aws\"]",
            self.path.display().to_string()
        )
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs)
            .map(|n| n.trim().parse().expect("a count"))
            .unwrap_or(0)
    }

    /// The code of the `n`-th run.
    fn code(n: usize) -> String {
        (100_000 + n).to_string()
    }
}

/// An MFA stack whose `[access]` has the ykman stand-in as `mfa_command` (plus `access`); the
/// daemon not started.
fn stack_with_ykman(access: &str) -> (Stack, Ykman) {
    let stack = Stack::builder().access(Access::Mfa).build();
    let ykman = Ykman::install(&stack);
    let lines = format!("{}\n{access}", ykman.config_line());
    stack.write_config(Toml {
        access: &lines,
        profiles: STAGING,
        ..Toml::default()
    });
    (stack, ykman)
}

/// A test, run from [`crate::as_time_passes`] (for its place in the run's order).
pub(crate) fn the_daemon_renews_a_short_mfa_session_twice_without_a_prompt() {
    let (mut stack, ykman) = stack_with_ykman("");
    stack.proxy().set_lifetime("GetSessionToken", SHORT_SESSION);
    stack.world.start_daemon();
    // Nobody runs `credd login`: the daemon logs in with the command's code...
    stack.wait_logged_in(READY_DEADLINE);
    stack.wait_all_fresh(READY_DEADLINE);
    let mut sessions = vec![Instant::now()];
    let mut served = 0;
    // ...and renews the session twice before it ends, serving staging all along.
    wait_until(3 * SHORT_SESSION, "two renewals of the MFA session", || {
        let reply = stack.get_authorized("/v1/credentials/staging");
        assert_eq!(reply.status, 200, "served throughout: {reply}");
        served += 1;
        let calls = stack.proxy().calls("GetSessionToken");
        if calls > sessions.len() {
            sessions.push(Instant::now());
        }
        calls >= 3
    });
    let status = stack.world.status();
    let access = &status["access"];
    assert_eq!(access["logged_in"], true, "{status:#}");
    assert_eq!(
        access["renews"],
        format!("with mfa_command {}", ykman.path.display()),
        "{status:#}"
    );
    assert_eq!(access["warning"], serde_json::Value::Null, "{status:#}");
    assert_eq!(access["last_error"], serde_json::Value::Null, "{status:#}");

    let calls = stack.proxy().params("GetSessionToken");
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (i, call) in calls.iter().enumerate() {
        assert_eq!(call["SerialNumber"], stack.mfa_serial());
        assert_eq!(call["TokenCode"], Ykman::code(i + 1), "each run's own code");
    }
    assert_eq!(ykman.runs(), 3, "one run per session");
    let gaps: Vec<Duration> = sessions.windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        // Renewed at two thirds of its life, at the next 5-second check: before its end.
        assert!(
            (SHORT_SESSION * 2 / 3 - Duration::from_secs(1)..SHORT_SESSION).contains(gap),
            "renewed {gap:?} after the one before ({gaps:?})"
        );
    }
    let text = stack.world.credd(&["status"]);
    assert!(
        text.assert_success().stdout.contains(&format!(
            "renewal:  renewed with mfa_command {}, in the background",
            ykman.path.display()
        )),
        "{text}"
    );
    // No code in the log.
    let log = stack.world.daemon_log();
    for n in 1..=3 {
        assert!(!log.contains(&Ykman::code(n)), "a code in the daemon log");
    }
    eprintln!(
        "{}-s MFA sessions: renewed by mfa_command {gaps:.1?} apart, no prompt, {served} \
         requests for staging served meanwhile",
        SHORT_SESSION.as_secs()
    );
}

#[test]
fn credd_login_runs_mfa_command_unless_given_a_code_and_a_failing_command_says_why() {
    let (mut stack, ykman) = stack_with_ykman("");
    stack.world.start_daemon();
    stack.wait_logged_in(READY_DEADLINE);
    assert_eq!(ykman.runs(), 1, "the daemon's own login");

    let login = stack.world.credd(&["login"]);
    assert!(
        login.assert_success().stdout.contains(&format!(
            "the session is renewed with mfa_command {} (this one ends in",
            ykman.path.display()
        )),
        "{login}"
    );
    assert!(!login.stdout.contains(&Ykman::code(2)), "{login}");
    assert_eq!(ykman.runs(), 2);
    let login = stack.world.credd(&["login", "--mfa-code", "654321"]);
    login.assert_success();
    assert_eq!(ykman.runs(), 2, "a given code wins");
    let codes: Vec<String> = stack
        .proxy()
        .params("GetSessionToken")
        .iter()
        .map(|p| p["TokenCode"].clone())
        .collect();
    assert_eq!(codes, [Ykman::code(1), Ykman::code(2), "654321".to_owned()]);

    std::fs::write(&ykman.unplugged, "").expect("unplug the YubiKey");
    let started = Instant::now();
    let login = stack.world.credd(&["login"]);
    login.assert_code(1);
    assert!(
        login.stderr.contains(&format!(
            "mfa_command `{}` failed (exit status: 1): Error: no YubiKey detected",
            ykman.path.display()
        )),
        "the command's last stderr line says why: {login}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ykman.runs(), 3);
    // The session made before stays.
    assert_eq!(stack.world.status()["access"]["logged_in"], true);
}
