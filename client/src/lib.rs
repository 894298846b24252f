//! The `credd` client's library: the control connection to the daemon ([`connection`]), whom
//! it may talk to ([`trust`]), and their errors ([`error`]); the config file edits that only
//! add ([`config_edit`]); `~/.aws/config` read and mapped onto credd's config ([`aws_config`],
//! for `credd import`). The `credd` binary is built on it,
//! and so are the tests that drive a daemon: in-process ones in `credd-daemon` and the
//! end-to-end suite, which thereby talk to the daemon exactly as the CLI does.

pub mod aws_config;
pub mod config_edit;
pub mod connection;
pub mod error;
/// Fuzz entry points (`tests/fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod service_manager;
pub mod trust;
