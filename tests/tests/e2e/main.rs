//! credd's end-to-end tests, one binary: each module is one area, run against the real
//! `credd`/`credd-daemon` binaries in private temp worlds, with one moto per test process (see the
//! `credd_tests` library for the fixtures). One build, one link, one set of helpers.
//!
//! `cargo build && cargo test -p credd-tests --test e2e -- engine_cache::` runs one area (the
//! `cargo build`: testing one package does not rebuild the other packages' binaries).

mod attacks;
mod client_cli;
mod client_env_exec;
mod config_live;
mod control_socket;
mod engine_cache;
mod engine_login;
mod engine_profiles;
mod engine_secrets;
mod engine_session;
mod harness;
mod http_defences;
mod http_sdk_clients;
mod http_support;
mod identity_center;
mod identity_center_fake;
mod identity_center_interop;
mod identity_center_rust_sdk;
mod imds;
mod key_rotation;
mod keychain;
mod login_on_demand;
mod mfa_command;
mod notifications;
mod oidc_provider_harness;
mod saml;
mod saml_idp_harness;
mod service_files;
mod web_identity;

/// The fewest test threads this binary runs with when neither `--test-threads` nor
/// `RUST_TEST_THREADS` says otherwise. These tests mostly wait on processes, sockets and moto, so
/// libtest's default of one thread per core leaves a 2-core machine idle: 4 threads there take
/// the run from about 52 s to about 30 s.
const MIN_TEST_THREADS: usize = 4;

/// Runs before `main` (libtest reads `RUST_TEST_THREADS` when it starts): sets it to
/// max(cores, [`MIN_TEST_THREADS`]) unless it is set already.
extern "C" fn default_test_threads() {
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = cores.max(MIN_TEST_THREADS).to_string();
        // SAFETY: runs before main, while the process has a single thread.
        unsafe { std::env::set_var("RUST_TEST_THREADS", threads) };
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static DEFAULT_TEST_THREADS: extern "C" fn() = default_test_threads;

#[cfg(target_os = "macos")]
#[used]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static DEFAULT_TEST_THREADS: extern "C" fn() = default_test_threads;
