//! The `credd` client's library: the control connection to the daemon ([`connection`]), whom
//! it may talk to ([`trust`]), and their errors ([`error`]); the config file edits that only
//! add ([`config_edit`]). The `credd` binary is built on it,
//! and so are the tests that drive a daemon: in-process ones in `credd-daemon` and the
//! end-to-end suite, which thereby talk to the daemon exactly as the CLI does.

pub mod config_edit;
pub mod connection;
pub mod error;
pub mod service_manager;
pub mod trust;
