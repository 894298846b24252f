//! credd's end-to-end tests, one binary: each module is one area (the former test files), run
//! against the real `credd`/`credd-daemon` binaries in private temp worlds (see the `credd_tests`
//! library for the fixtures). One build, one link, one set of helpers.
//!
//! `cargo test -p credd-tests --test e2e -- engine_cache::` runs one area.

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
mod imds;
mod service_files;
