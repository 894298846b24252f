//! Finds the `credd`, `credd-daemon` and `sdk-client` binaries for the tests. `CARGO_BIN_EXE_*`
//! exists only for tests inside the binaries' own package, so this crate looks next to its own
//! test executable: `<target>/<profile>/deps/<test>-<hash>` runs beside `<target>/<profile>/credd`.

use std::path::{Path, PathBuf};

/// The daemon binary, `credd-daemon`.
pub fn daemon_bin() -> PathBuf {
    find_bin("credd-daemon")
}

/// The client binary, `credd`.
pub fn client_bin() -> PathBuf {
    find_bin("credd")
}

/// `sdk-client`, this crate's own AWS SDK for Rust client (built with the tests).
pub fn sdk_client_bin() -> PathBuf {
    find_bin("sdk-client")
}

/// How many directories above the test executable to look: `deps/` then the profile dir are the
/// usual places; a little more covers `--target <triple>` layouts without wandering the disk.
const MAX_LEVELS_UP: usize = 3;

fn find_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test executable");
    let file_name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    match search_up(&exe, &file_name) {
        Some(path) => path,
        None => panic!(
            "`{file_name}` not found in the {MAX_LEVELS_UP} directories above {}: build the \
             binaries first: `cargo test --workspace` builds them (or `cargo build --bins`)",
            exe.display()
        ),
    }
}

fn search_up(exe: &Path, file_name: &str) -> Option<PathBuf> {
    exe.ancestors()
        .skip(1)
        .take(MAX_LEVELS_UP)
        .map(|dir| dir.join(file_name))
        .find(|candidate| candidate.is_file())
}
