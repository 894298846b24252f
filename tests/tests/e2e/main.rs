//! credd's end-to-end tests, one binary: each module is one area, run against the real
//! `credd`/`credd-daemon` binaries in private temp worlds, with one moto per test process (see the
//! `credd_tests` library for the fixtures). One build, one link, one set of helpers.
//!
//! `cargo build && cargo test -p credd-tests --test e2e -- engine_cache::` runs one area (the
//! `cargo build`: testing one package does not rebuild the other packages' binaries).

/// `#[test]`s, in the module it is used in, running tests written in their area's module
/// (`area` a path from the crate's root): `run_here!(floods = attacks::floods: [name, ...]);`.
macro_rules! run_here {
    ($name:ident = $($area:ident)::+ : [$($test:ident),* $(,)?]) => {
        mod $name {
            use crate::$($area)::+ as area;
            $(
                #[test]
                fn $test() {
                    area::$test()
                }
            )*
        }
    };
}

/// Where a test sits in the run. libtest starts tests in the order of their names, as many at
/// once as it has threads; the run lasts at least until the last one started has ended. So:
///
/// 1. [`alone`]: the scenarios that need the process to themselves
///    ([`credd_tests::turns::alone`]: floods, the user's kernel keyring), first, while there is
///    nothing to wait for;
/// 2. [`as_time_passes`]: the scenarios that wait for the daemon's own clock (background
///    renewals, warnings that fall due, every few seconds), next, so that they wait while the
///    rest runs rather than after it;
/// 3. every area's own tests.
///
/// The tests of 1 and 2 are written in their area's module; the `-- AREA::` filter finds them
/// (`alone::attacks::floods::…`).
mod alone {
    mod attacks {
        run_here!(floods = attacks::floods: [
            a_flood_of_refused_imds_requests_is_cheap_and_quiet,
            a_stranger_flooding_the_http_port_never_refuses_or_stalls_the_owner,
        ]);
        run_here!(login = attacks::login: [
            a_flood_at_the_login_listener_takes_no_descriptor_and_every_connection_ends_with_the_login,
        ]);
    }
    run_here!(keychain = keychain: [
        without_a_session_bus_the_kernel_keyring_holds_the_key_or_the_error_says_why,
        another_user_sharing_the_session_keyring_cannot_read_the_key_in_the_kernel_keyring,
    ]);
}

/// See [`alone`]: the tests that wait for the daemon's clock, started second.
mod as_time_passes {
    run_here!(web_identity = web_identity: [
        the_refresh_token_renews_the_session_until_the_provider_refuses_it,
        a_restart_keeps_the_session_and_renews_it_with_the_saved_refresh_token,
    ]);
    run_here!(mfa_command = mfa_command: [
        the_daemon_renews_a_short_mfa_session_twice_without_a_prompt,
    ]);
    run_here!(identity_center = identity_center: [
        short_access_tokens_are_renewed_in_the_background_without_a_new_login,
    ]);
    run_here!(identity_center_interop = identity_center_interop: [
        after_credd_login_botocore_shares_the_token_and_credd_takes_up_the_one_it_rotated,
    ]);
    run_here!(sdk_pickup = sdk_pickup: [
        every_sdk_follows_a_switch_within_the_follow_window_on_both_routes,
    ]);
    run_here!(notifications = notifications: [
        notify_false_sends_nothing_and_turning_it_on_applies_live,
        without_a_desktop_nothing_is_shown_and_the_log_says_so_once,
    ]);
}

mod attacks;
mod audit;
mod client_cli;
mod client_env_exec;
mod config_live;
mod console;
mod control_socket;
mod docker;
mod docker_harness;
mod doctor;
mod engine_cache;
mod engine_login;
mod engine_profiles;
mod engine_scale;
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
mod import_aws_config;
mod key_rotation;
mod keychain;
mod login_on_demand;
mod mfa_command;
mod notifications;
mod oidc_provider_harness;
mod packaging;
mod refresh_stop;
mod saml;
mod saml_idp_harness;
mod sdk_clients;
mod sdk_pickup;
mod service_files;
mod service_manager;
mod shell;
mod web_identity;

/// The fewest test threads this binary runs with when neither `--test-threads` nor
/// `RUST_TEST_THREADS` says otherwise. These tests mostly wait on processes, sockets, moto and
/// the daemon's clock, so libtest's default of one thread per core leaves a 2-core machine idle:
/// the [`as_time_passes`] tests alone keep 7 threads waiting for half a minute. On a 2-core
/// machine 8 threads (and that order) take the run from about 100 s to under 60 s.
const MIN_TEST_THREADS: usize = 8;

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
