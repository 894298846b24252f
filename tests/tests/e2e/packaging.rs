//! The Debian package (`packaging/build-deb`): built from the binaries under test, installed with
//! `dpkg -i` on this machine (root), and the installed `credd` run as a user would, then removed.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use credd_tests::install::lock_install;
use credd_tests::packaging::build_deb;
use credd_tests::require_root;
use credd_tests::world::World;

/// Where the package puts each file (Debian's places for units, completions and man pages).
const PACKAGED: &[&str] = &[
    "./usr/bin/credd",
    "./usr/bin/credd-daemon",
    "./usr/lib/systemd/user/credd.service",
    "./usr/lib/systemd/user/credd.socket",
    "./usr/share/bash-completion/completions/credd",
    "./usr/share/zsh/vendor-completions/_credd",
    "./usr/share/fish/vendor_completions.d/credd.fish",
    "./usr/share/man/man1/credd.1.gz",
    "./usr/share/man/man1/credd-daemon.1.gz",
    "./usr/share/man/man1/credd-service-install.1.gz",
    "./usr/share/man/man1/credd-key-add.1.gz",
];

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How long `dpkg` may wait for the package database: another test process may be installing
/// the suite's Debian packages with apt-get meanwhile (minutes on a fresh machine).
const DPKG_LOCK_DEADLINE: Duration = Duration::from_secs(600);

/// `dpkg ARGS`, waiting while another dpkg or apt-get holds its lock; panics when it fails
/// otherwise.
fn dpkg(args: &[&str]) {
    let started = Instant::now();
    loop {
        let out = Command::new("dpkg")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run dpkg: {e}"));
        if out.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.contains("lock") || started.elapsed() > DPKG_LOCK_DEADLINE {
            panic!(
                "`dpkg {}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Removes the package when the test ends, passed or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("dpkg").args(["-r", "credd"]).output();
        }
    }
}

#[test]
fn the_debian_package_installs_both_binaries_the_user_units_completions_and_man_pages() {
    require_root("installing the Debian package with dpkg -i");
    let out = tempfile::tempdir().expect("a temp dir for the .deb");
    let deb = build_deb(out.path());
    let deb_arg = deb.display().to_string();

    let contents =
        String::from_utf8_lossy(&run("dpkg-deb", &["--contents", &deb_arg]).stdout).into_owned();
    let listed: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for path in PACKAGED {
        assert!(listed.contains(path), "{path} missing from\n{contents}");
    }
    let fields =
        String::from_utf8_lossy(&run("dpkg-deb", &["--field", &deb_arg]).stdout).into_owned();
    assert!(fields.contains("Package: credd\n"), "{fields}");

    // One package install on this machine at a time (another test process may run this too).
    let _lock = lock_install("dpkg-credd");
    let _installed = Installed;
    dpkg(&["-i", &deb_arg]);

    let version = run("/usr/bin/credd", &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("credd {}\n", env!("CARGO_PKG_VERSION"))
    );
    let daemon_version = run("/usr/bin/credd-daemon", &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&daemon_version.stdout),
        format!("credd-daemon {}\n", env!("CARGO_PKG_VERSION"))
    );
    let bash = run("/usr/bin/credd", &["completions", "bash"]);
    let bash = String::from_utf8_lossy(&bash.stdout);
    // The script that asks credd for the profile names at each Tab (shell:: runs it in bash).
    assert!(bash.contains("-F _clap_complete_credd credd"), "{bash}");
    assert!(
        bash.contains("CREDD_COMPLETE=\"bash\" \\\n        \"/usr/bin/credd\" --"),
        "{bash}"
    );
    // The packaged one is the same script, calling the credd on PATH.
    let packaged = read(Path::new("/usr/share/bash-completion/completions/credd"));
    assert!(
        packaged.contains("-F _clap_complete_credd credd")
            && packaged.contains("CREDD_COMPLETE=\"bash\" \\\n        \"credd\" --"),
        "{packaged}"
    );
    let packaged_unit = read(Path::new("/usr/lib/systemd/user/credd.service"));
    assert!(
        packaged_unit
            .lines()
            .any(|l| l == "ExecStart=\"/usr/bin/credd-daemon\" --foreground"),
        "{packaged_unit}"
    );
    let packaged_socket = read(Path::new("/usr/lib/systemd/user/credd.socket"));
    assert!(
        packaged_socket
            .lines()
            .any(|l| l == "ListenStream=127.0.0.1:9911"),
        "{packaged_socket}"
    );

    // The installed client, in a user's temp HOME, writes a unit that runs the installed daemon.
    let world = World::new();
    world
        .run(
            "/usr/bin/credd",
            &["service", "install", "--files-only", "--manager", "systemd"],
            None,
        )
        .assert_success();
    let unit = read(&world.home.join(".config/systemd/user/credd.service"));
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=\"/usr/bin/credd-daemon\" --foreground"),
        "{unit}"
    );

    // Moving in with the installed package alone: `credd import` takes over ~/.aws/config (no
    // credd config yet, no daemon), and the packaged bash completion, calling the installed credd
    // back, completes the imported profile names (from the config file, with no daemon to ask).
    fs::create_dir_all(world.aws_config_file().parent().expect("~/.aws")).expect("mkdir ~/.aws");
    fs::write(
        world.aws_config_file(),
        "[sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\n\
         sso_region = us-east-1\n\n[profile staging]\nsso_session = acme\n\
         sso_account_id = 222222222222\nsso_role_name = Admin\nregion = eu-west-1\n\n\
         [profile stage-ops]\nsso_session = acme\nsso_account_id = 222222222222\n\
         sso_role_name = Operator\nregion = eu-west-1\n",
    )
    .expect("write ~/.aws/config");
    let script = r#"
        export PATH=/usr/bin:/bin CREDD_NO_AUTOSTART=1
        credd import >/dev/null || exit 1
        source /usr/share/bash-completion/completions/credd
        COMP_WORDS=(credd switch st) COMP_CWORD=2 COMP_LINE="credd switch st" COMP_POINT=15
        COMP_TYPE=9 _clap_complete_credd credd st switch
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let completed = world.run("/bin/bash", &["-c", script], None);
    completed.assert_success();
    let mut names: Vec<&str> = completed.stdout.split_whitespace().collect();
    names.sort_unstable();
    assert_eq!(names, ["stage-ops", "staging"], "{completed}");

    dpkg(&["-r", "credd"]);
    assert!(!Path::new("/usr/bin/credd").exists());
    assert!(!Path::new("/usr/lib/systemd/user/credd.service").exists());
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
