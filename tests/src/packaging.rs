//! The Debian package, built the way `packaging/build-deb` builds it but from the binaries the
//! tests already built (`--no-build` on their own profile: seconds, not a release build), with
//! cargo-deb installed into `target/cargo-deb` the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::client_bin;
use crate::install::{install_once, run_install_step, target_dir};
use crate::workspace_dir;

/// The cargo-deb the tests install (its dev-profile warning says the profile may become an
/// error in a later version: pinned).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// `target/cargo-deb/bin`, holding `cargo-deb` (installed with `cargo install --locked` once).
pub fn cargo_deb_bin_dir() -> PathBuf {
    let root = target_dir("cargo-deb");
    let pinned = format!("cargo-deb {CARGO_DEB_VERSION}");
    install_once(&root, &pinned, "bin/cargo-deb", "cargo-deb", |root| {
        run_install_step(
            Command::new(cargo())
                .args(["install", "cargo-deb", "--locked", "--version"])
                .arg(CARGO_DEB_VERSION)
                .arg("--root")
                .arg(root),
            "cargo install cargo-deb",
        );
    });
    root.join("bin")
}

/// The cargo that runs the tests (cargo sets `CARGO` for them), else the one on PATH.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// The Cargo profile whose directory holds the binaries under test (`debug` is `dev`'s).
pub fn test_profile() -> String {
    let dir = client_bin()
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned())
        .expect("the binaries' profile directory");
    if dir == "debug" {
        "dev".to_owned()
    } else {
        dir
    }
}

/// Runs `packaging/build-deb --profile <the tests'> --no-build -- -o OUT --fast` and returns the
/// one `.deb` it wrote into `out`. Panics with its output when it fails.
pub fn build_deb(out: &Path) -> PathBuf {
    let bin_dir = cargo_deb_bin_dir();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bin_dir).chain(std::env::split_paths(&path));
    let path = std::env::join_paths(dirs).expect("PATH with target/cargo-deb/bin");
    let output = Command::new(workspace_dir().join("packaging/build-deb"))
        .args([
            "--profile",
            &test_profile(),
            "--no-build",
            "--",
            "--fast",
            "-o",
        ])
        .arg(out)
        .env("PATH", path)
        .current_dir(workspace_dir())
        .output()
        .expect("run packaging/build-deb");
    assert!(
        output.status.success(),
        "packaging/build-deb failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("list {}: {e}", out.display()))
        .map(|e| e.expect("a dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => deb.clone(),
        _ => panic!("expected one .deb in {}, found {debs:?}", out.display()),
    }
}
