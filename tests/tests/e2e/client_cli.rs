//! The `credd` client as people and scripts use it against a real daemon: human output and
//! `--json`, `switch` remembered across restarts, autostart (and `CREDD_NO_AUTOSTART`), the
//! message and exit code 1 when no daemon can be reached, exit code 2 for usage errors, shell
//! completions, a daemon of another protocol version named plainly, a client pointed at another
//! config file than the daemon's refused, and output into a pipe closed early ending quietly.
//!
//! Most worlds hold no access key, so the daemon never calls STS; only the logged-in status
//! scenario uses moto.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use credd_proto::{PROTOCOL_VERSION, read_frame};
use credd_tests::bins::daemon_bin;
use credd_tests::stack::{Access, Stack};
use credd_tests::wait_until;
use credd_tests::world::{CmdOutput, World};

use credd_tests::stack::OFFLINE_CONFIG as CONFIG;

fn world_with_config() -> World {
    let world = World::new();
    world.write_config(CONFIG);
    world
}

fn running_world() -> World {
    let mut world = world_with_config();
    world.start_daemon();
    world
}

fn current_profile(world: &World) -> Option<String> {
    let out = world.credd(&["--json", "profiles"]);
    out.assert_success().json()["current"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn status_shows_daemon_access_current_profile_and_paths_for_people() {
    let world = running_world();
    let out = world.credd(&["status"]);
    let text = &out.assert_success().stdout;
    let pid = world.daemon_pid().expect("running");
    for expected in [
        format!("credd-daemon {} (pid {pid})", env!("CARGO_PKG_VERSION")),
        "access:   iam-user: not logged in".to_owned(),
        "run `credd login`".to_owned(),
        "current:  staging".to_owned(),
        "* staging".to_owned(),
        "prod-audit".to_owned(),
        "via staging".to_owned(),
        format!("config   {}", world.config_path.display()),
        format!("socket   {}", world.socket_path().display()),
        format!("token    {}", world.token_file().display()),
        format!("state    {}", world.state_dir.join("state.json").display()),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing from\n{out}");
    }
}

#[test]
fn json_status_parses_and_names_the_paths_in_use() {
    let world = running_world();
    let out = world.credd(&["--json", "status"]);
    let status = out.assert_success().json();
    let path = |p: &std::path::Path| serde_json::Value::from(p.display().to_string());
    assert_eq!(status["paths"]["config"], path(&world.config_path), "{out}");
    assert_eq!(status["paths"]["runtime_dir"], path(&world.runtime_dir));
    assert_eq!(status["paths"]["socket"], path(&world.socket_path()));
    assert_eq!(status["paths"]["token_file"], path(&world.token_file()));
    assert_eq!(
        status["paths"]["state_file"],
        path(&world.state_dir.join("state.json"))
    );
    assert_eq!(status["pid"], world.daemon_pid().expect("running"));
    assert_eq!(status["current_profile"], "staging");
    assert_eq!(status["access"]["logged_in"], false);
    assert_eq!(status["config"]["error"], serde_json::Value::Null);
    let states: Vec<(&str, &str)> = status["profiles"]
        .as_array()
        .expect("profiles is a list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name"),
                p["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(states, [("prod-audit", "cold"), ("staging", "cold")]);
}

#[test]
fn profiles_lists_every_profile_marking_the_current_one() {
    let world = running_world();
    let out = world.credd(&["profiles"]);
    let lines: Vec<&str> = out.assert_success().stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("  prod-audit")
            && lines[0].contains("arn:aws:iam::333333333333:role/Auditor")
            && lines[0].contains("via staging"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("* staging")
            && lines[1].contains("arn:aws:iam::222222222222:role/Administrator")
            && lines[1].contains("us-west-2"),
        "{out}"
    );

    let json = world.credd(&["--json", "profiles"]);
    let value = json.assert_success().json();
    assert_eq!(value["current"], "staging");
    assert_eq!(value["profiles"][0]["name"], "prod-audit");
    assert_eq!(value["profiles"][0]["via"], "staging");
    assert_eq!(value["profiles"][1]["region"], "us-west-2");
}

#[test]
fn switch_is_remembered_across_a_daemon_restart() {
    let mut world = running_world();
    let out = world.credd(&["switch", "prod-audit"]);
    assert_eq!(out.assert_success().stdout, "current profile: prod-audit\n");
    let json = world.credd(&["--json", "switch", "prod-audit"]);
    let value = json.assert_success().json();
    assert_eq!(value["previous"], "prod-audit");
    assert_eq!(value["current"], "prod-audit");

    let state_file = world.state_dir.join("state.json");
    let state: serde_json::Value = serde_json::from_slice(
        &fs::read(&state_file).unwrap_or_else(|e| panic!("read {}: {e}", state_file.display())),
    )
    .expect("the state file is JSON");
    assert_eq!(state["current_profile"], "prod-audit");

    assert_eq!(world.stop_daemon().code(), Some(0));
    world.start_daemon();
    assert_eq!(current_profile(&world).as_deref(), Some("prod-audit"));
}

#[test]
fn switch_to_an_unknown_profile_exits_1_listing_the_known_ones() {
    let world = running_world();
    let out = world.credd(&["switch", "nope"]);
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr
            .contains("unknown profile \"nope\"; known profiles: prod-audit, staging"),
        "{out}"
    );
    assert_eq!(current_profile(&world).as_deref(), Some("staging"));
}

#[test]
fn usage_errors_exit_2_without_reaching_for_a_daemon() {
    let world = world_with_config();
    for args in [
        &[][..],
        &["teleport"],
        &["switch"],
        &["status", "--frobnicate"],
        &["completions", "tcsh"],
        &["service", "install", "--manager", "upstart"],
        &["switch", "a", "b"],
    ] {
        let out = world.credd_autostart(args);
        out.assert_code(2);
        assert!(
            out.stderr.contains("error:") || out.stderr.contains("Usage:"),
            "credd {args:?}: {out}"
        );
    }
    assert!(
        !world.socket_path().exists(),
        "a usage error started a daemon"
    );
}

#[test]
fn help_and_version_exit_0() {
    let world = World::new();
    let help = world.credd(&["--help"]);
    for verb in [
        "status",
        "profiles",
        "switch",
        "reload",
        "completions",
        "service",
    ] {
        assert!(help.assert_success().stdout.contains(verb), "{help}");
    }
    let version = world.credd(&["--version"]);
    assert_eq!(
        version.assert_success().stdout.trim(),
        format!("credd {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The scripts call credd back for every completion (`CREDD_COMPLETE=SHELL credd -- WORDS`), by the
/// path it was run by; what they complete, in real shells, is in `shell::`.
#[test]
fn completions_print_a_script_for_bash_zsh_and_fish() {
    let world = World::new();
    let credd = credd_tests::bins::client_bin().display().to_string();
    let bash = world.credd(&["completions", "bash"]);
    let script = &bash.assert_success().stdout;
    assert!(
        script.contains("CREDD_COMPLETE=\"bash\"") && script.contains(&credd),
        "{bash}"
    );
    let file = world.root.join("credd.bash");
    fs::write(&file, script).expect("write the bash completion script");
    let file = file.display().to_string();
    world.run("bash", &["-n", &file], None).assert_success();
    // Sourcing it registers the completion for `credd`.
    let registered = world.run(
        "bash",
        &["-c", &format!("source {file} && complete -p credd")],
        None,
    );
    assert!(
        registered
            .assert_success()
            .stdout
            .contains("_clap_complete_credd"),
        "{registered}"
    );

    let zsh = world.credd(&["completions", "zsh"]);
    assert!(
        zsh.assert_success().stdout.starts_with("#compdef credd"),
        "{zsh}"
    );
    assert!(zsh.stdout.contains("CREDD_COMPLETE=\"zsh\""), "{zsh}");

    let fish = world.credd(&["completions", "fish"]);
    assert!(
        fish.assert_success()
            .stdout
            .contains("complete --keep-order --exclusive --command credd"),
        "{fish}"
    );
    assert!(fish.stdout.contains("CREDD_COMPLETE=fish"), "{fish}");
}

#[test]
fn without_a_daemon_and_autostart_off_the_client_exits_1_saying_how_to_start_it() {
    let world = world_with_config();
    let out = world.credd(&["status"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "cannot reach credd-daemon at {}",
            world.socket_path().display()
        )),
        "{out}"
    );
    assert!(out.stderr.contains("CREDD_NO_AUTOSTART"), "{out}");
    assert!(out.stderr.contains("Start it with `credd-daemon`"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(world.world_pids().is_empty(), "no daemon was started");
}

#[test]
fn first_command_starts_the_daemon_which_stays_up() {
    let world = world_with_config();
    let out = world.credd_autostart(&["--json", "status"]);
    let status = out.assert_success().json();
    assert_eq!(status["current_profile"], "staging", "{out}");
    let pid = status["pid"].as_u64().expect("a pid");

    // Later commands, even with autostart off, reach the same daemon.
    let again = world.credd(&["--json", "status"]);
    assert_eq!(again.assert_success().json()["pid"].as_u64(), Some(pid));
    world.credd(&["switch", "prod-audit"]).assert_success();
    assert!(
        world
            .world_pids()
            .contains(&i32::try_from(pid).expect("a pid fits i32")),
        "the daemon runs detached, in the world"
    );
    // It logs to its log file in the state dir.
    let log = world.daemon_log();
    assert!(log.contains("credd-daemon ready"), "{log}");
    assert!(log.contains("switched"), "{log}");
}

#[test]
fn a_lone_credd_says_where_it_looked_for_the_daemon_and_what_to_install() {
    let mut world = world_with_config();
    // credd alone in a bin dir of its own, and no credd-daemon on PATH either.
    let bin = world.root.join("bin");
    fs::create_dir(&bin).expect("create a bin dir");
    let credd = bin.join("credd");
    // Copied by `cp`, not here: a write fd of ours could leak into a child another test thread
    // forks at that moment, and running the copy would then fail with ETXTBSY.
    world
        .run(
            "cp",
            &[
                &credd_tests::bins::client_bin().display().to_string(),
                &credd.display().to_string(),
            ],
            None,
        )
        .assert_success();
    let empty = world.root.join("empty");
    fs::create_dir(&empty).expect("create an empty dir");
    world.set_env("PATH", &format!("{}:{}", bin.display(), empty.display()));

    for args in [
        &["status"][..],
        &["service", "install", "--files-only", "--manager", "systemd"],
    ] {
        let out = world.run(&credd, args, None);
        out.assert_code(1);
        let expected = format!(
            "credd: credd-daemon is not installed where credd looks for it: not beside credd \
             ({}) nor in any PATH directory ({}:{}).\nInstall both binaries (the credd package \
             has both, or `cargo install --path daemon` from the credd source, next to `cargo \
             install --path client`), or put credd-daemon on PATH.\n",
            bin.display(),
            bin.display(),
            empty.display()
        );
        assert_eq!(out.stderr, expected, "{out}");
    }
    assert!(world.world_pids().is_empty());
}

#[test]
fn autostart_with_an_invalid_config_says_where_the_error_is() {
    let world = World::new();
    world.write_config(&CONFIG.replace("127.0.0.1:0", "0.0.0.0:9911"));
    let out = world.credd_autostart(&["status"]);
    out.assert_code(1);
    assert!(out.stderr.contains("could not start credd-daemon"), "{out}");
    assert!(
        out.stderr
            .contains(&format!("{}:4:10:", world.config_path.display())),
        "{out}"
    );
    assert!(out.stderr.contains("not a loopback address"), "{out}");
    assert!(!world.socket_path().exists(), "{out}");
}

#[test]
fn autostart_replaces_the_stale_socket_of_a_killed_daemon() {
    let world = world_with_config();
    let first = world.credd_autostart(&["--json", "status"]);
    let pid = first.assert_success().json()["pid"]
        .as_i64()
        .expect("a pid");
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: kill(2) on the daemon the client started in this world, which just told us its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // Not its pid: /proc loses a dying process's environment before its sockets are closed.
    wait_until(
        Duration::from_secs(10),
        "the killed daemon's socket to refuse connections",
        || UnixStream::connect(world.socket_path()).is_err(),
    );
    assert!(world.socket_path().exists(), "a stale socket is left");

    let refused = world.credd(&["status"]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("cannot reach credd-daemon"),
        "{refused}"
    );

    let second = world.credd_autostart(&["--json", "status"]);
    let new_pid = second.assert_success().json()["pid"].as_i64();
    assert!(
        new_pid.is_some() && new_pid != Some(i64::from(pid)),
        "{second}"
    );
}

#[test]
fn clients_starting_at_once_share_one_daemon() {
    let world = world_with_config();
    let outputs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| world.credd_autostart(&["--json", "status"])))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a client thread"))
            .collect()
    });
    let pids: Vec<_> = outputs
        .iter()
        .map(|out| out.assert_success().json()["pid"].as_u64())
        .collect();
    assert!(
        pids.iter().all(|p| p.is_some() && *p == pids[0]),
        "{pids:?}"
    );
}

#[test]
fn foreground_daemon_traces_its_lifecycle_to_stderr() {
    let mut world = running_world();
    world.credd(&["switch", "prod-audit"]).assert_success();
    world.credd(&["reload"]).assert_success();
    assert_eq!(world.stop_daemon().code(), Some(0));
    let log = world.daemon_log();
    for line in [
        "credd-daemon ready",
        "switched",
        "from=\"staging\"",
        "to=\"prod-audit\"",
        "shutting down",
        "stopped",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
}

#[test]
fn daemon_of_another_protocol_version_is_named_plainly() {
    let world = world_with_config();
    // Stands in for a daemon from another release: it answers every request at version+1.
    let listener = UnixListener::bind(world.socket_path()).expect("bind the control socket path");
    let newer = PROTOCOL_VERSION + 1;
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the client connects");
        read_frame(&mut stream).expect("the client sends a request");
        let body = format!(
            r#"{{"version":{newer},"software":"credd-daemon 9.9.9","response":{{"kind":"logged_out","forgotten":0}}}}"#
        );
        let len = u32::try_from(body.len()).expect("small").to_be_bytes();
        stream.write_all(&len).expect("write the header");
        stream.write_all(body.as_bytes()).expect("write the body");
    });
    let out = world.credd(&["profiles"]);
    server.join().expect("the fake daemon thread");
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("credd-daemon 9.9.9 speaks protocol {newer}")),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "credd {} speaks protocol {PROTOCOL_VERSION}",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(
        !out.stderr.contains("line 1"),
        "a decode error leaked: {out}"
    );
}

#[test]
fn remembered_profile_removed_while_stopped_falls_back_to_the_default() {
    let mut world = running_world();
    world.credd(&["switch", "prod-audit"]).assert_success();
    assert_eq!(world.stop_daemon().code(), Some(0));
    world.write_config(&CONFIG.replace("[profiles.prod-audit]", "[profiles.prod]"));
    world.start_daemon();
    assert_eq!(current_profile(&world).as_deref(), Some("staging"));
    let log = world.daemon_log();
    assert!(log.contains("no longer configured"), "{log}");
}

#[test]
fn unreadable_state_file_is_ignored_with_a_warning() {
    let mut world = world_with_config();
    fs::create_dir_all(&world.state_dir).expect("create the state dir");
    let state = world.state_dir.join("state.json");
    fs::write(&state, "{ not json").expect("corrupt the state");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o600)).expect("chmod");
    world.start_daemon();
    assert_eq!(current_profile(&world).as_deref(), Some("staging"));
    world.credd(&["switch", "prod-audit"]).assert_success();
    assert!(
        world
            .daemon_log()
            .contains("ignoring unreadable state file"),
        "{}",
        world.daemon_log()
    );
}

#[test]
fn status_of_a_logged_in_daemon_shows_identity_and_fresh_profiles_for_people() {
    let stack = Stack::staging_and_audit(Access::Key);
    let world = &stack.world;
    let warm = Duration::from_secs(10);
    stack.wait_logged_in(warm);
    world.wait_profile_state("staging", "fresh", warm);
    world.wait_profile_state("prod-audit", "fresh", warm);
    world.credd(&["switch", "staging"]).assert_success();

    let out = world.credd(&["status"]);
    let text = &out.assert_success().stdout;
    assert!(
        text.contains(&format!("access:   iam-user {}", stack.user().arn)),
        "{out}"
    );
    assert!(!text.contains("not logged in"), "{out}");
    assert!(text.contains("current:  staging"), "{out}");
    assert!(text.contains("url:      http://127.0.0.1:"), "{out}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start_matches(['*', ' ']).starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{out}"))
    };
    let staging = line("staging ");
    assert!(staging.starts_with("  * staging"), "{out}");
    for part in ["fresh", "expires in", "refreshed"] {
        assert!(staging.contains(part), "{part:?} missing: {staging}");
    }
    let audit = line("prod-audit");
    assert!(
        audit.contains("fresh") && audit.contains("via staging"),
        "{audit}"
    );
}

#[test]
fn daemon_started_without_foreground_detaches_once_ready() {
    let world = world_with_config();
    let out = world.run(daemon_bin(), &[], None);
    let log = world.state_dir.join("daemon.log");
    assert!(
        out.assert_success()
            .stderr
            .contains(&format!("; log: {}", log.display())),
        "{out}"
    );
    let status = world.credd(&["--json", "status"]);
    let pid = status.assert_success().json()["pid"]
        .as_u64()
        .expect("a pid");
    assert!(
        out.stderr
            .contains(&format!("credd-daemon started (pid {pid})")),
        "{out}"
    );
    assert!(
        world.daemon_log().contains("credd-daemon ready"),
        "{}",
        world.daemon_log()
    );
}

/// `credd ARGS` with `CREDD_CONFIG=config` (instead of the world's own).
fn credd_with_config_env(world: &World, config: &str, args: &[&str]) -> CmdOutput {
    let mut argv = vec![format!("CREDD_CONFIG={config}"), credd_path()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    world.run("env", &argv, None)
}

fn credd_path() -> String {
    credd_tests::bins::client_bin().display().to_string()
}

#[test]
fn a_client_pointed_at_another_config_is_refused_naming_both_files() {
    let world = running_world();
    let other = world.root.join("other.toml");
    fs::write(
        &other,
        CONFIG.replace("[profiles.prod-audit]", "[profiles.other]"),
    )
    .expect("write the other config");
    let other = other.display().to_string();
    let ours = fs::canonicalize(&world.config_path).expect("the daemon's config");
    let pid = world.daemon_pid().expect("running");

    let refused = |out: &CmdOutput| {
        out.assert_code(1);
        assert!(
            out.stderr.contains(&format!(
                "credd-daemon (pid {pid}) uses the config {}, not {other}",
                ours.display()
            )),
            "both files are named: {out}"
        );
        for advice in [
            "leave --config and CREDD_CONFIG out",
            &format!("`kill {pid}`"),
            "CREDD_RUNTIME_DIR=DIR",
        ] {
            assert!(out.stderr.contains(advice), "{advice:?}: {out}");
        }
        assert_eq!(out.stdout, "", "{out}");
    };
    // Reading verbs too: a status or the profiles of the other file would mislead.
    refused(&world.credd(&["--config", &other, "status"]));
    refused(&credd_with_config_env(
        &world,
        &other,
        &["--json", "profiles"],
    ));
    // Nothing changes, and nothing runs with the other file's credentials.
    refused(&world.credd(&["--config", &other, "switch", "prod-audit"]));
    assert_eq!(current_profile(&world).as_deref(), Some("staging"));
    refused(&world.credd(&[
        "--config",
        &other,
        "exec",
        "staging",
        "--",
        "sh",
        "-c",
        "echo the command ran",
    ]));

    // The same file by another name is the same config.
    let link = world.root.join("dotfiles.toml");
    std::os::unix::fs::symlink(&world.config_path, &link).expect("symlink the config");
    let link = link.display().to_string();
    world.credd(&["--config", &link, "status"]).assert_success();
    // Naming no config at all means whichever daemon runs.
    let out = credd_with_config_env(&world, "", &["--json", "status"]);
    assert_eq!(
        out.assert_success().json()["paths"]["config"],
        world.config_path.display().to_string()
    );
}

#[test]
fn autostart_gives_the_daemon_the_config_the_client_was_given() {
    let world = world_with_config();
    let elsewhere = world.root.join("elsewhere.toml");
    fs::write(
        &elsewhere,
        CONFIG.replace("[profiles.prod-audit]", "[profiles.elsewhere]"),
    )
    .expect("write the other config");
    let elsewhere = elsewhere.display().to_string();
    let out = world.credd_autostart(&["--config", &elsewhere, "--json", "status"]);
    let status = out.assert_success().json();
    assert_eq!(status["paths"]["config"], elsewhere.as_str(), "{out}");
    let names: Vec<&str> = status["profiles"]
        .as_array()
        .map(|all| all.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["elsewhere", "staging"], "{out}");
    // The world's own config (CREDD_CONFIG) is another file: that daemon is not its.
    let out = world.credd(&["status"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("not {}", world.config_path.display())),
        "{out}"
    );
}

#[test]
fn output_into_a_pipe_whose_reader_left_ends_quietly_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let world = running_world();
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["profiles"],
        &["completions", "zsh"],
    ] {
        // `credd status | true`, with `true` surely gone before credd writes.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = world
            .command(credd_tests::bins::client_bin())
            .args(args)
            .env("CREDD_NO_AUTOSTART", "1")
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .output()
            .expect("run credd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Ended by SIGPIPE, as every Unix tool (the shell says 141); not a panic (exit 101).
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "credd {args:?}: {:?} {stderr}",
            out.status
        );
        assert_eq!(stderr, "", "credd {args:?}");
    }
}
