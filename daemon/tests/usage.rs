//! The `credd-daemon` binary on its own: version, and refusing to start without a config. (These
//! also make `cargo test` build the binary that the end-to-end suite in tests/ runs.)

use std::process::Command;

#[test]
fn version_names_the_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_credd-daemon"))
        .arg("--version")
        .output()
        .expect("run credd-daemon");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("credd-daemon {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn missing_config_refuses_to_start_naming_the_path() {
    let dir = std::env::temp_dir().join(format!("credd-usage-{}", std::process::id()));
    let config = dir.join("absent.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_credd-daemon"))
        .args(["--foreground", "--config"])
        .arg(&config)
        .env("CREDD_RUNTIME_DIR", dir.join("run"))
        .env("CREDD_STATE_DIR", dir.join("state"))
        .output()
        .expect("run credd-daemon");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(stderr.contains("no config file here"), "{stderr}");
    assert!(
        !dir.join("run").exists(),
        "nothing is created before the config is valid"
    );
}
