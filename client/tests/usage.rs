//! The `credd` binary on its own: version, usage errors. (These also make `cargo test` build the
//! binary that the end-to-end suite in tests/ runs.)

use std::process::Command;

fn credd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_credd"))
        .args(args)
        .env("CREDD_NO_AUTOSTART", "1")
        .env("CREDD_RUNTIME_DIR", "/nonexistent/credd-usage-test")
        .output()
        .expect("run credd")
}

#[test]
fn version_names_the_binary() {
    let out = credd(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("credd {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_verb_is_a_usage_error_with_exit_code_2() {
    let out = credd(&["teleport"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("teleport"));
}
