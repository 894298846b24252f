//! The IAM user's key in the OS keychain: `credd key add|import|remove` against a real GNOME
//! Keyring on a private session bus (and the kernel keyring where there is no bus), the daemon
//! logging in with the stored key and serving SDKs, and every way it can go wrong (a refused key,
//! a locked keychain, a missing file or profile) answered at once with what to do. moto's auth is
//! on: a key is really checked.

use std::fs;
use std::time::{Duration, Instant};

use credd_tests::keyring::Keyring;
use credd_tests::stack::{
    Access, READY_DEADLINE, STAGING_AND_AUDIT, Stack, assumed_role_arn, files_containing,
};
use credd_tests::wait_until;
use credd_tests::world::{CmdOutput, World};

/// The keychain entry as `secret-tool` finds it.
const ENTRY: &[(&str, &str)] = &[("service", "credd"), ("username", "aws-access-key")];

/// A locked keychain must be reported well within the daemon's 20 s keychain timeout.
const LOCKED_ANSWER: Duration = Duration::from_secs(5);

/// A key moto has never heard of, well-formed.
const UNKNOWN_KEY_ID: &str = "AKIAUNKNOWNKEY000000";

/// `[access]` reading the key from the keychain (the default without aws_profile).
fn keychain_config() -> String {
    format!(
        "default_profile = \"staging\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\n\
         source = \"iam-user\"\n{STAGING_AND_AUDIT}"
    )
}

/// alice's key with moto (auth on) behind the world, no daemon yet; the shared credentials file
/// holds her key under [access] (what [`Access::Key`] stacks do).
fn stack() -> Stack {
    Stack::builder().access(Access::Key).direct().build()
}

/// `credd key add` without a terminal, the key on stdin; with how long it took.
fn key_add(world: &World, id: &str, secret: &str) -> (CmdOutput, Duration) {
    let start = Instant::now();
    let out = world.credd_without_terminal(&["key", "add"], Some(&format!("{id}\n{secret}\n")));
    (out, start.elapsed())
}

/// Every file of the world (home, state, runtime dir) holding `secret`.
fn secret_on_disk(world: &World, secret: &str) -> Vec<std::path::PathBuf> {
    let mut found = files_containing(&world.root, secret);
    found.extend(files_containing(&world.runtime_dir, secret));
    found
}

#[test]
fn a_key_added_from_stdin_is_checked_stored_in_the_secret_service_and_served() {
    let mut stack = stack();
    let keyring = Keyring::start(&mut stack.world);
    let alice = stack.user().clone();
    fs::remove_file(stack.world.credentials_file()).expect("no key in a file here");
    stack.world.write_config(&keychain_config());
    stack.world.start_daemon();

    // Nothing stored yet: the daemon's own login says what to do.
    let login = stack.world.credd(&["login"]);
    login.assert_code(1);
    assert!(
        login.stderr.contains(
            "no IAM user key in the keychain (Secret Service (default collection): \
             credd/aws-access-key): run `credd key add`"
        ),
        "{login}"
    );

    // A refused key is not stored, and the error says why and what to do.
    for (id, secret, code) in [
        (
            alice.access_key_id.as_str(),
            "wrong-secret-wrong-secret-wrong-secret00",
            "SignatureDoesNotMatch",
        ),
        (
            UNKNOWN_KEY_ID,
            alice.secret_access_key.as_str(),
            "InvalidClientTokenId",
        ),
    ] {
        let (out, _) = key_add(&stack.world, id, secret);
        out.assert_code(1);
        assert!(
            out.stderr.contains(&format!(
                "AWS refused the key {id} from `credd key add` ({code}: "
            )) && out.stderr.contains("nothing was stored"),
            "{out}"
        );
        assert!(
            !out.stderr.contains(secret),
            "the secret is never echoed: {out}"
        );
        assert_eq!(keyring.lookup(ENTRY), None, "nothing stored after {code}");
    }
    let (out, _) = key_add(&stack.world, "not a key", "x");
    out.assert_code(1);
    assert!(out.stderr.contains("is not an access key ID"), "{out}");

    // The right key: checked, stored, and used at once.
    let (out, took) = key_add(&stack.world, &alice.access_key_id, &alice.secret_access_key);
    out.assert_success();
    eprintln!("credd key add (STS check, store, read back, login) took {took:?}");
    assert!(took < READY_DEADLINE, "key add took {took:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "stored key {} of {} in Secret Service (default collection): credd/aws-access-key",
            alice.access_key_id, alice.arn
        )),
        "{out}"
    );
    let entry: serde_json::Value =
        serde_json::from_str(&keyring.lookup(ENTRY).expect("secret-tool finds the entry"))
            .expect("the entry is JSON");
    assert_eq!(
        entry,
        serde_json::json!({
            "AccessKeyId": alice.access_key_id,
            "SecretAccessKey": alice.secret_access_key,
        })
    );
    let status = stack.world.status();
    assert_eq!(status["access"]["logged_in"], true, "{status:#}");
    assert_eq!(status["access"]["identity"], alice.arn, "{status:#}");
    let (rust, boto3) = stack.sdk_callers("/v1/credentials/staging");
    let staging = assumed_role_arn(credd_tests::stack::ADMIN, "alice");
    assert_eq!(
        (rust.as_str(), boto3.as_str()),
        (staging.as_str(), staging.as_str())
    );

    // Adding it again reports the key the keychain held (the same); --json prints the report.
    let out = stack.world.credd_without_terminal(
        &["--json", "key", "add"],
        Some(&format!(
            "{}\n{}\n",
            alice.access_key_id, alice.secret_access_key
        )),
    );
    let report = out.assert_success().json();
    assert_eq!(report["access_key_id"], alice.access_key_id, "{report:#}");
    assert_eq!(report["identity"], alice.arn, "{report:#}");
    assert_eq!(report["previous"], alice.access_key_id, "{report:#}");
    assert_eq!(report["deleted_from_file"], false, "{report:#}");

    // The secret is nowhere in the world's files (GNOME Keyring keeps its keyring encrypted).
    assert_eq!(
        secret_on_disk(&stack.world, &alice.secret_access_key),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!stack.world.daemon_log().contains(&alice.secret_access_key));

    // Removed: gone from the keychain, and a second remove says there was none.
    let out = stack.world.credd(&["key", "remove"]);
    assert!(
        out.assert_success()
            .stdout
            .starts_with("removed the key from Secret Service (default collection)"),
        "{out}"
    );
    assert_eq!(keyring.lookup(ENTRY), None);
    let out = stack.world.credd(&["--json", "key", "remove"]);
    assert_eq!(out.assert_success().json()["removed"], false, "{out}");
}

#[test]
fn a_key_the_keychain_holds_but_aws_refuses_names_the_entry_and_the_fix() {
    let mut stack = stack();
    let keyring = Keyring::start(&mut stack.world);
    stack.world.write_config(&keychain_config());
    // Stored by hand, as a key deleted in IAM after `credd key add` would be.
    keyring.store(
        "credd",
        ENTRY,
        &format!("{{\"AccessKeyId\":\"{UNKNOWN_KEY_ID}\",\"SecretAccessKey\":\"gone-secret\"}}"),
    );
    stack.world.start_daemon();
    let login = stack.world.credd(&["login"]);
    login.assert_code(1);
    assert!(
        login.stderr.contains(&format!(
            "AWS refused the key {UNKNOWN_KEY_ID} from the keychain (Secret Service (default \
             collection): credd/aws-access-key) (InvalidClientTokenId: the key does not exist, \
             or was deleted or deactivated): run `credd key add` with a working key"
        )),
        "{login}"
    );
    // An entry that is not a credd key says so, without quoting it.
    keyring.store("credd", ENTRY, "hunter2-not-json");
    let login = stack.world.credd(&["login"]);
    login.assert_code(1);
    assert!(
        login
            .stderr
            .contains("does not hold a usable key (not credd's JSON"),
        "{login}"
    );
    assert!(!login.stderr.contains("hunter2"), "{login}");
}

#[test]
fn key_import_delete_moves_the_key_out_of_the_file_and_keeps_the_other_profiles() {
    let mut stack = stack();
    let keyring = Keyring::start(&mut stack.world);
    let alice = stack.user().clone();
    let file = stack.world.credentials_file();
    let other = "[other]\naws_access_key_id = AKIAOTHERPROFILE0000\naws_secret_access_key = \
                 other-secret\nregion = eu-west-1\n";
    let text = fs::read_to_string(&file).unwrap();
    // The file is a link into the user's dotfiles: rewritten where it points, still a link.
    let dotfiles = stack.world.home.join("dotfiles");
    fs::create_dir(&dotfiles).unwrap();
    let target = dotfiles.join("aws-credentials");
    fs::write(&target, format!("{text}\n{other}")).unwrap();
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    // The config still reads the file: the daemon logs in with it.
    stack.world.write_config(&keychain_config().replace(
        "source = \"iam-user\"\n",
        "source = \"iam-user\"\naws_profile = \"access\"\n",
    ));
    stack.world.start_daemon();
    stack.wait_logged_in(READY_DEADLINE);

    // A profile the file lacks: the error lists what it has.
    let out = stack
        .world
        .credd_without_terminal(&["key", "import", "--profile", "nope"], None);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "{} has no profile [nope] (it has [access], [other])",
            file.display()
        )),
        "{out}"
    );

    // Without a terminal and without --delete, the file is kept and the way to delete is shown.
    let out = stack.world.credd_without_terminal(&["key", "import"], None);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "from {} [access] (still there too)",
            file.display()
        )),
        "{out}"
    );
    assert!(out.stderr.contains("`credd key import --delete`"), "{out}");
    assert!(
        out.stderr.contains("the config still reads the key from"),
        "the hint to switch the config: {out}"
    );
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .contains(&alice.secret_access_key)
    );

    let out = stack
        .world
        .credd_without_terminal(&["--json", "key", "import", "--delete"], None);
    let report = out.assert_success().json();
    assert_eq!(report["deleted_from_file"], true, "{report:#}");
    assert_eq!(
        report["imported_from"],
        format!("{} [access]", file.display()),
        "{report:#}"
    );
    assert!(
        report["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("the next login fails until you do"),
        "{report:#}"
    );
    assert!(keyring.lookup(ENTRY).is_some());
    // The file keeps the other profile, byte for byte, and loses alice's section.
    assert!(
        fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let left = fs::read_to_string(&target).unwrap();
    assert!(left.contains(other), "{left}");
    assert!(!left.contains("[access]"), "{left}");
    assert!(!left.contains(&alice.access_key_id), "{left}");

    // The config now reads the keychain: the daemon follows the edit and serves from it.
    stack.world.write_config(&keychain_config());
    stack.world.credd(&["reload"]).assert_success();
    stack.wait_logged_in(READY_DEADLINE);
    assert_eq!(
        stack.served_identity("staging"),
        Ok(assumed_role_arn(credd_tests::stack::ADMIN, "alice"))
    );
    assert_eq!(
        secret_on_disk(&stack.world, &alice.secret_access_key),
        Vec::<std::path::PathBuf>::new(),
        "the secret is in no file of the world any more"
    );
}

#[test]
fn a_locked_keychain_is_a_clear_error_at_once_for_the_login_and_for_key_add() {
    let mut stack = stack();
    let keyring = Keyring::start(&mut stack.world);
    let alice = stack.user().clone();
    stack.world.write_config(&keychain_config());
    stack.world.start_daemon();
    key_add(&stack.world, &alice.access_key_id, &alice.secret_access_key)
        .0
        .assert_success();
    keyring.lock();

    let start = Instant::now();
    let login = stack.world.credd(&["login"]);
    let login_took = start.elapsed();
    login.assert_code(1);
    let (add, add_took) = key_add(&stack.world, &alice.access_key_id, &alice.secret_access_key);
    add.assert_code(1);
    eprintln!("locked keychain: login failed in {login_took:?}, key add in {add_took:?}");
    for (what, out, took) in [("login", &login, login_took), ("key add", &add, add_took)] {
        assert!(
            out.stderr.contains(
                "the keychain Secret Service (default collection): credd/aws-access-key is locked"
            ) && out.stderr.contains("unlock the \"login\" keyring"),
            "{what}: {out}"
        );
        assert!(took < LOCKED_ANSWER, "{what} took {took:?}: {out}");
    }
    // The status shows the same reason, and the daemon still answers.
    let status = stack.world.status();
    assert!(
        status["access"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("is locked"),
        "{status:#}"
    );
    let request = credd_proto::Request::KeyRemove;
    match stack.world.request(&request) {
        Ok(credd_proto::Response::Error(e)) => {
            assert_eq!(e.code, credd_proto::ErrorCode::Keychain, "{e:?}")
        }
        other => panic!("a locked keychain answers the Keychain error: {other:?}"),
    }
}

/// Whether this process may use the kernel keyring (container sandboxes often block keyctl).
fn kernel_keyring_works() -> bool {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: keyctl(GET_KEYRING_ID) reads an ID; no memory is passed.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as libc::c_long,
        )
    };
    id >= 0
}

/// A test, run from [`crate::alone`] (for its place in the run's order).
pub(crate) fn without_a_session_bus_the_kernel_keyring_holds_the_key_or_the_error_says_why() {
    // The kernel keyring is the user's, shared by every process of the run: beside the other
    // scenarios (some act as other users), keyctl was seen refusing root's own key (EACCES)
    // now and then. Alone, the scenario checks credd, not the neighbours.
    let _alone = credd_tests::turns::alone();
    let mut stack = stack();
    let alice = stack.user().clone();
    fs::remove_file(stack.world.credentials_file()).expect("no key in a file here");
    stack.world.write_config(&keychain_config());
    // No DBUS_SESSION_BUS_ADDRESS and no bus in the world's XDG_RUNTIME_DIR: no Secret Service.
    stack.world.start_daemon();
    // The kernel keyring is the user's, not the world's: start from a clean entry.
    stack.world.credd(&["key", "remove"]);
    let (out, took) = key_add(&stack.world, &alice.access_key_id, &alice.secret_access_key);
    if !kernel_keyring_works() {
        out.assert_code(1);
        assert!(
            out.stderr.contains("no OS keychain credd can use here")
                && out
                    .stderr
                    .contains("the kernel keyring is blocked for this process")
                && out.stderr.contains("key = \"file\""),
            "{out}"
        );
        return;
    }
    out.assert_success();
    eprintln!("credd key add into the kernel keyring took {took:?}");
    assert!(
        out.stdout
            .contains("in the kernel keyring (keyutils): credd/aws-access-key"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("forgets the key when the machine restarts"),
        "{out}"
    );
    stack.wait_logged_in(READY_DEADLINE);
    assert_eq!(
        stack.served_identity("staging"),
        Ok(assumed_role_arn(credd_tests::stack::ADMIN, "alice"))
    );
    // A restarted daemon finds it there again.
    stack.world.stop_daemon();
    stack.world.start_daemon();
    stack.wait_logged_in(READY_DEADLINE);
    let out = stack.world.credd(&["key", "remove"]);
    assert!(
        out.assert_success()
            .stdout
            .starts_with("removed the key from the kernel keyring")
    );
}

#[test]
fn a_key_file_problem_names_the_file_the_profile_and_the_fix() {
    let mut stack = stack();
    let alice = stack.user().clone();
    let file = stack.world.credentials_file();
    stack.world.write_config(&keychain_config().replace(
        "source = \"iam-user\"\n",
        "source = \"iam-user\"\naws_profile = \"access\"\n",
    ));
    fs::remove_file(&file).unwrap();
    stack.world.start_daemon();
    let login = |expected: &str| {
        let out = stack.world.credd(&["login"]);
        out.assert_code(1);
        assert!(
            out.stderr.contains(expected),
            "expected {expected:?}: {out}"
        );
        assert!(!out.stderr.contains(&alice.secret_access_key), "{out}");
    };
    let path = file.display().to_string();
    login(&format!(
        "{path} does not exist, so it holds no IAM user key for profile [access]: run `credd \
         key add`"
    ));
    stack
        .world
        .write_shared_credentials("other", &alice.access_key_id, &alice.secret_access_key);
    login(&format!("{path} has no profile [access] (it has [other])"));
    stack.world.write_shared_credentials(
        "access",
        &alice.access_key_id,
        "wrong-secret-000000000000000000000000000",
    );
    login(&format!(
        "AWS refused the key {} from {path} [access] (SignatureDoesNotMatch: ",
        alice.access_key_id
    ));
    login("put a working key in");
    stack
        .world
        .write_shared_credentials("access", UNKNOWN_KEY_ID, &alice.secret_access_key);
    login(&format!(
        "AWS refused the key {UNKNOWN_KEY_ID} from {path} [access] (InvalidClientTokenId: the \
         key does not exist"
    ));
    // Fixed: the next login reads the file afresh.
    stack
        .world
        .write_shared_credentials("access", &alice.access_key_id, &alice.secret_access_key);
    stack.world.credd(&["login"]).assert_success();
}

/// A process of another user that shares the owner's session keyring (`sudo -u other` from a
/// desktop login keeps it, and PAM links the user keyring into it) can reach every key there:
/// the key credd keeps in the kernel keyring grants such a "possessor" nothing, only the owner's
/// uid may read it.
/// A test, run from [`crate::alone`] (for its place in the run's order).
pub(crate) fn another_user_sharing_the_session_keyring_cannot_read_the_key_in_the_kernel_keyring() {
    credd_tests::require_root("acting as another user");
    if !kernel_keyring_works() {
        panic!("the kernel keyring is blocked for this process: this attack cannot be run here");
    }
    let _alone = credd_tests::turns::alone();
    let mut stack = stack();
    let alice = stack.user().clone();
    fs::remove_file(stack.world.credentials_file()).expect("no key in a file here");
    stack.world.write_config(&keychain_config());
    stack.world.let_others_through();
    let shared = stack.world.root.join("shared");
    fs::create_dir(&shared).expect("a dir for the other user's result");
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).expect("chown");
    let (trigger, result) = (shared.join("go"), shared.join("result"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/attacks/scripts/keyring_session.py");
    let mut command = stack.world.command(credd_tests::system_python());
    command
        .arg(script)
        .arg(&trigger)
        .arg(&result)
        .arg("keyring:aws-access-key@credd")
        .arg("--")
        .arg(credd_tests::bins::daemon_bin())
        .arg("--foreground");
    stack.world.spawn_daemon(command);
    stack
        .world
        .wait_daemon_ready()
        .unwrap_or_else(|failed| panic!("{failed}"));
    stack.world.credd(&["key", "remove"]);
    let (out, _) = key_add(&stack.world, &alice.access_key_id, &alice.secret_access_key);
    out.assert_success();
    assert!(out.stdout.contains("kernel keyring"), "{out}");
    stack.wait_logged_in(READY_DEADLINE);

    // Stored with rights for the owner's uid alone (view, read, write, search, link, setattr),
    // none for possessors, the group or others.
    let keys = fs::read_to_string("/proc/keys").expect("read /proc/keys");
    let line = keys
        .lines()
        .find(|l| l.contains("keyring:aws-access-key@credd"))
        .unwrap_or_else(|| panic!("the key is not in /proc/keys:\n{keys}"));
    let perms = line.split_whitespace().nth(4).expect("a perms column");
    assert_eq!(perms, "003f0000", "{line}");

    fs::write(&trigger, "").expect("start the other user");
    wait_until(Duration::from_secs(10), "the other user's attempt", || {
        result.exists()
    });
    let got: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&result).expect("read the result"))
            .expect("the result is JSON");
    assert_eq!(got["read"], serde_json::Value::Null, "{got}");
    assert_ne!(got["search_error"], serde_json::Value::Null, "{got}");
    let out = stack.world.credd(&["key", "remove"]);
    out.assert_success();
}
