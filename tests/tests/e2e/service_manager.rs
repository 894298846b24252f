//! `credd service install` where there is no systemd user manager to talk to (WSL, containers, an
//! SSH login without a user session): every world is such a place, its XDG_RUNTIME_DIR an empty
//! private directory with no user bus in it. Nothing may be stopped or written, and the way out
//! must be named, also for a unit an older credd left behind.

use std::path::PathBuf;

use credd_tests::stack::OFFLINE_CONFIG;
use credd_tests::world::World;

fn unit_dir(world: &World) -> PathBuf {
    world.home.join(".config/systemd/user")
}

/// The world's own check that `systemctl --user` cannot reach a manager here (or is missing).
fn assert_no_user_manager(world: &World) {
    let probe = world.run("sh", &["-c", "systemctl --user show-environment"], None);
    assert!(
        !probe.success(),
        "this world reaches a systemd user manager, so it cannot stand for one without: {probe}"
    );
}

#[test]
fn without_a_user_bus_install_stops_nothing_writes_nothing_and_says_what_to_do_instead() {
    let world = World::new();
    world.write_config(OFFLINE_CONFIG);
    assert_no_user_manager(&world);
    let started = world.credd_autostart(&["--json", "status"]);
    let pid = started.assert_success().json()["pid"].as_u64();

    let out = world.credd(&["service", "install", "--manager", "systemd"]);
    out.assert_code(1);
    for said in [
        "cannot install credd as a systemd user service: this session has no systemd user manager",
        "Nothing was changed: a running credd-daemon keeps running.",
        "loginctl enable-linger",
        "`credd` starts credd-daemon by itself when a command needs it",
    ] {
        assert!(out.stderr.contains(said), "{said:?} missing from {out}");
    }
    assert!(
        out.stderr.contains("Failed to connect to bus") || out.stderr.contains("`systemctl`"),
        "systemctl's own words are passed on: {out}"
    );
    assert!(
        !unit_dir(&world).exists(),
        "no unit file was written: {out}"
    );
    // The daemon (and its session) is the same one.
    let after = world.credd(&["--json", "status"]);
    assert_eq!(after.assert_success().json()["pid"].as_u64(), pid);
}

#[test]
fn a_unit_left_behind_without_a_user_bus_names_the_way_out_and_uninstall_takes_it() {
    let world = World::new();
    world.write_config(OFFLINE_CONFIG);
    assert_no_user_manager(&world);
    // What an older credd left: the unit files, and no manager to start them.
    world
        .credd(&["service", "install", "--files-only", "--manager", "systemd"])
        .assert_success();

    let stuck = world.credd_autostart(&["status"]);
    stuck.assert_code(1);
    assert!(
        stuck
            .stderr
            .contains("credd is installed as a service, but starting it failed")
            && stuck.stderr.contains("run `credd service uninstall`"),
        "{stuck}"
    );

    let uninstall = world.credd(&["service", "uninstall"]);
    let said = &uninstall.assert_success().stdout;
    assert!(
        said.contains(&format!(
            "removed {}",
            unit_dir(&world).join("credd.service").display()
        )),
        "{uninstall}"
    );
    assert!(!unit_dir(&world).join("credd.service").exists());
    world
        .credd_autostart(&["--json", "status"])
        .assert_success();
}
