//! `credd exec <profile> -- CMD`: runs CMD pinned to one profile. The process is replaced by CMD,
//! so its exit code and signals are CMD's own. Without an access session it logs in first on the
//! terminal, or fails at once where there is none (rather than let CMD fail on a 503 later).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use credd_proto::paths::Paths;

use super::env::{CONFLICTING, endpoint, variables};
use super::login;
use crate::error::ClientError;
use crate::shadow;

pub fn run(
    paths: &Paths,
    profile: String,
    command: Vec<OsString>,
) -> Result<ExitCode, ClientError> {
    let info = endpoint(paths, Some(profile))?;
    let Some((program, args)) = command.split_first() else {
        return Err(ClientError::NoCommand);
    };
    if info.needs_login
        && let Some(code) = login::on_demand(paths, "`credd exec`", None)?
    {
        return Ok(code);
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    for name in CONFLICTING {
        cmd.env_remove(name);
    }
    cmd.envs(variables(paths, &info));
    for shadow in shadow::find() {
        shadow::warn(&shadow, shadow.is_credentials_file);
        if shadow.is_credentials_file {
            cmd.env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
    }
    let source = cmd.exec();
    Err(ClientError::Exec {
        program: program.clone(),
        source,
    })
}
