//! `credd service install|uninstall --files-only`: the systemd user unit and the launchd agent
//! written into (and removed from) the world's HOME / XDG_CONFIG_HOME, checked as files. The
//! host's service managers are never called.

use std::fs;
use std::path::{Path, PathBuf};

use credd_tests::bins::{client_bin, daemon_bin};
use credd_tests::world::World;

fn systemd_unit(world: &World) -> PathBuf {
    world.home.join(".config/systemd/user/credd.service")
}

fn launchd_plist(world: &World) -> PathBuf {
    world
        .home
        .join("Library/LaunchAgents/com.credd.daemon.plist")
}

/// The daemon as the unit must name it: absolute, symlinks resolved.
fn daemon_path() -> String {
    fs::canonicalize(daemon_bin())
        .expect("canonical path of credd-daemon")
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn systemd_install_writes_a_notify_unit_running_the_daemon_in_the_foreground() {
    let world = World::new();
    let out = world.credd(&["service", "install", "--files-only", "--manager", "systemd"]);
    let unit_path = systemd_unit(&world);
    let socket_path = unit_path.with_file_name("credd.socket");
    assert_eq!(
        out.assert_success().stdout,
        format!(
            "wrote {}\nwrote {}\n",
            unit_path.display(),
            socket_path.display()
        )
    );
    // The port is the service manager's from login to logout: no one else can take it while
    // the daemon restarts.
    let socket = read(&socket_path);
    for line in [
        "[Socket]",
        "ListenStream=127.0.0.1:9911",
        "Accept=no",
        "WantedBy=sockets.target",
    ] {
        assert!(
            socket.lines().any(|l| l == line),
            "{line:?} missing from\n{socket}"
        );
    }
    let unit = read(&unit_path);
    let lines: Vec<&str> = unit.lines().collect();
    let has = |line: &str| lines.contains(&line);

    assert!(
        has(&format!("ExecStart=\"{}\" --foreground", daemon_path())),
        "{unit}"
    );
    for line in [
        "[Unit]",
        "[Service]",
        "Type=notify",
        "Restart=on-failure",
        "Requires=credd.socket",
        "After=credd.socket",
        "[Install]",
        "WantedBy=default.target",
        // Hardening: no core dumps, private files, no privilege gain.
        "LimitCORE=0",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "MemoryDenyWriteExecute=yes",
        // AF_NETLINK for sock_diag: whose is an HTTP connection.
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallFilter=@system-service",
    ] {
        assert!(has(line), "{line:?} missing from\n{unit}");
    }
    // The world's paths are carried over: the service manager does not see the shell's env.
    for (key, value) in [
        ("CREDD_CONFIG", world.config_path.display().to_string()),
        ("CREDD_RUNTIME_DIR", world.runtime_dir.display().to_string()),
        ("CREDD_STATE_DIR", world.state_dir.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            world.credentials_file().display().to_string(),
        ),
    ] {
        assert!(
            has(&format!("Environment=\"{key}={value}\"")),
            "{key} missing from\n{unit}"
        );
    }
    for placeholder in ["@EXEC_START@", "@ENVIRONMENT@"] {
        assert!(!unit.contains(placeholder), "{placeholder} left in\n{unit}");
    }
    assert!(
        world.world_pids().is_empty(),
        "--files-only started nothing"
    );
}

#[test]
fn systemd_uninstall_removes_the_unit_and_a_second_uninstall_says_it_was_not_installed() {
    let world = World::new();
    world
        .credd(&["service", "install", "--files-only", "--manager", "systemd"])
        .assert_success();
    let unit_path = systemd_unit(&world);
    assert!(unit_path.is_file());

    let out = world.credd(&[
        "service",
        "uninstall",
        "--files-only",
        "--manager",
        "systemd",
    ]);
    let socket_path = unit_path.with_file_name("credd.socket");
    assert_eq!(
        out.assert_success().stdout,
        format!(
            "removed {}\nremoved {}\n",
            unit_path.display(),
            socket_path.display()
        )
    );
    assert!(!unit_path.exists() && !socket_path.exists());

    let again = world.credd(&[
        "--json",
        "service",
        "uninstall",
        "--files-only",
        "--manager",
        "systemd",
    ]);
    let value = again.assert_success().json();
    assert_eq!(
        value["path"].as_str(),
        Some(unit_path.display().to_string().as_str())
    );
    assert_eq!(
        value["done"][0].as_str(),
        Some(format!("{} was not installed", unit_path.display()).as_str()),
        "{again}"
    );
}

/// Parses a plist with Python's plistlib (which any macOS tool would accept) into JSON.
fn parse_plist(world: &World, path: &Path) -> serde_json::Value {
    let script = "import json, plistlib, sys\n\
                  print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))";
    let out = world.run(
        "python3",
        &["-c", script, &path.display().to_string()],
        None,
    );
    out.assert_success().json()
}

#[test]
fn launchd_install_writes_an_agent_plist_running_the_daemon_in_the_foreground() {
    let world = World::new();
    let out = world.credd(&["service", "install", "--files-only", "--manager", "launchd"]);
    let plist_path = launchd_plist(&world);
    assert_eq!(
        out.assert_success().stdout,
        format!("wrote {}\n", plist_path.display())
    );
    let plist = parse_plist(&world, &plist_path);
    assert_eq!(plist["Label"], "com.credd.daemon", "{plist}");
    let log = world.state_dir.join("daemon.log").display().to_string();
    assert_eq!(
        plist["ProgramArguments"],
        serde_json::json!([daemon_path(), "--foreground", "--log-file", log]),
        "{plist}"
    );
    assert_eq!(plist["RunAtLoad"], true);
    assert_eq!(plist["KeepAlive"]["SuccessfulExit"], false);
    // launchd holds the port and hands it to the daemon at every start.
    assert_eq!(
        plist["Sockets"]["Listeners"],
        serde_json::json!({
            "SockNodeName": "127.0.0.1",
            "SockServiceName": "9911",
            "SockType": "stream",
            "SockFamily": "IPv4",
        }),
        "{plist}"
    );
    assert_eq!(plist["Umask"], 0o077);
    assert_eq!(plist["SoftResourceLimits"]["Core"], 0);
    assert_eq!(plist["HardResourceLimits"]["Core"], 0);
    assert_eq!(
        plist["StandardErrorPath"].as_str(),
        Some(
            world
                .state_dir
                .join("daemon.log")
                .display()
                .to_string()
                .as_str()
        )
    );
    assert!(
        world.state_dir.is_dir(),
        "launchd creates no directory for StandardErrorPath: install must"
    );
    let env = &plist["EnvironmentVariables"];
    assert_eq!(
        env["CREDD_CONFIG"].as_str(),
        Some(world.config_path.display().to_string().as_str()),
        "{plist}"
    );
    assert_eq!(
        env["CREDD_RUNTIME_DIR"].as_str(),
        Some(world.runtime_dir.display().to_string().as_str())
    );
}

#[test]
fn launchd_uninstall_removes_the_agent_plist() {
    let world = World::new();
    world
        .credd(&["service", "install", "--files-only", "--manager", "launchd"])
        .assert_success();
    let plist_path = launchd_plist(&world);
    assert!(plist_path.is_file());
    let out = world.credd(&[
        "service",
        "uninstall",
        "--files-only",
        "--manager",
        "launchd",
    ]);
    assert_eq!(
        out.assert_success().stdout,
        format!("removed {}\n", plist_path.display())
    );
    assert!(!plist_path.exists());
}

#[test]
fn install_with_a_config_flag_points_the_service_at_that_config() {
    let mut world = World::new();
    // Only the flag names the config: the service must not fall back to the default one.
    world.set_env("CREDD_CONFIG", "");
    let elsewhere = world.root.join("team config.toml");
    let arg = elsewhere.display().to_string();
    world
        .credd(&[
            "--config",
            &arg,
            "service",
            "install",
            "--files-only",
            "--manager",
            "systemd",
        ])
        .assert_success();
    let unit = read(&systemd_unit(&world));
    assert!(
        unit.lines()
            .any(|l| l == format!("Environment=\"CREDD_CONFIG={arg}\"")),
        "{unit}"
    );
}

#[test]
fn installing_twice_rewrites_the_same_unit() {
    let world = World::new();
    for _ in 0..2 {
        world
            .credd(&["service", "install", "--files-only", "--manager", "systemd"])
            .assert_success();
    }
    let dir = world.home.join(".config/systemd/user");
    let entries: Vec<std::ffi::OsString> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("a dir entry").file_name())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["credd.service", "credd.socket"]);
}

#[test]
fn install_finds_the_daemon_on_path_when_it_is_not_beside_the_client() {
    let mut world = World::new();
    // credd alone in a bin dir of its own; credd-daemon only on PATH.
    let bin = world.root.join("bin");
    fs::create_dir(&bin).expect("create a bin dir");
    let credd = bin.join("credd");
    // Copied by `cp`, not here: a write fd of ours could leak into a child another test thread
    // forks at that moment, and running the copy would then fail with ETXTBSY.
    let copy = world.run(
        "cp",
        &[
            &client_bin().display().to_string(),
            &credd.display().to_string(),
        ],
        None,
    );
    copy.assert_success();
    let daemon_dir = daemon_bin()
        .parent()
        .expect("the daemon's dir")
        .display()
        .to_string();
    let path = world
        .env()
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v)
        .unwrap_or_default();
    world.set_env("PATH", &format!("{daemon_dir}:{path}"));

    let out = world.run(
        &credd,
        &["service", "install", "--files-only", "--manager", "systemd"],
        None,
    );
    out.assert_success();
    let unit = read(&systemd_unit(&world));
    assert!(
        unit.lines()
            .any(|l| l == format!("ExecStart=\"{}\" --foreground", daemon_path())),
        "{unit}"
    );
}

#[test]
fn the_socket_unit_holds_the_configs_port_and_a_config_error_stops_the_install() {
    let world = World::new();
    let install = || world.credd(&["service", "install", "--files-only", "--manager", "systemd"]);
    let socket_path = systemd_unit(&world).with_file_name("credd.socket");
    let config = |listen: &str| {
        world.write_config(&credd_tests::stack::OFFLINE_CONFIG.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{listen}\""),
        ));
    };
    config("127.0.0.1:19911");
    install().assert_success();
    assert!(
        read(&socket_path)
            .lines()
            .any(|l| l == "ListenStream=127.0.0.1:19911"),
        "{}",
        read(&socket_path)
    );
    // Port 0 is picked anew at each start: nothing to hold, and the user is told.
    config("127.0.0.1:0");
    let out = install();
    assert!(
        out.assert_success()
            .stdout
            .contains("note: [daemon] listen has port 0"),
        "{out}"
    );
    assert!(!socket_path.exists(), "the old socket unit is gone");
    assert!(!read(&systemd_unit(&world)).contains("credd.socket"));
    // A config the daemon would refuse: said, with where, and nothing half written.
    config("0.0.0.0:9911");
    let out = install();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("the service needs the config's [daemon] listen")
            && out.stderr.contains("config.toml:4:")
            && out.stderr.contains("not a loopback address"),
        "{out}"
    );
}
