//! `credd import`: profiles for credd's config from elsewhere, added to the config file's text
//! with its comments and layout kept, never overwriting a table it has: `--sso` from every
//! account role IAM Identity Center offers ([`sso`]), without it from `~/.aws/config`
//! ([`aws_config`]).

pub mod aws_config;
pub mod sso;

use std::path::{Path, PathBuf};

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::commands::{ask, unexpected};
use crate::config_edit::{self, WriteError};
use crate::error::ClientError;

/// The config file the daemon reads, which is what the import must edit. A path from
/// `--config`/`CREDD_CONFIG` that names another file is reported, not followed.
fn daemon_config_path(paths: &Paths) -> Result<PathBuf, ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    let daemons = PathBuf::from(&report.config.path);
    if !same_file(&daemons, &paths.config) {
        eprintln!(
            "warning: credd-daemon reads {}, not {} (from --config, CREDD_CONFIG or the default); \
             importing into the daemon's",
            daemons.display(),
            paths.config.display()
        );
    }
    if let Some(e) = &report.config.error {
        eprintln!(
            "warning: the daemon rejected the last edit of this file (it keeps the previous \
             config until that is fixed): {e}"
        );
    }
    Ok(daemons)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Replaces the config file with `new` in one rename, unless someone saved it since it read `old`.
fn write(path: &Path, old: &str, new: &str) -> Result<(), ClientError> {
    config_edit::write_atomically(path, old, new).map_err(|e| match e {
        WriteError::Read { path, source } => ClientError::ImportRead { path, source },
        WriteError::Write { path, source } => ClientError::WriteFile { path, source },
        WriteError::ChangedMeanwhile { path } => ClientError::ImportConcurrentEdit { path },
    })
}
