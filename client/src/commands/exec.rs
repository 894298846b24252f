//! `credd exec <profile> [--] CMD`: runs CMD pinned to one profile, with `CREDD_PROFILE` naming
//! it (and `CREDD_VIA=exec`, by which `credd audit` tells what it runs). The process is replaced by CMD, so its exit code and signals are CMD's own; a CMD that is
//! not found exits 127, one that cannot run 126, as in a shell. Without an access session it logs
//! in first on the terminal, or fails at once where there is none; a profile the daemon cannot
//! get credentials for (its last refresh failed, nothing cached) fails with the daemon's reason:
//! never let CMD fail on a 503 later.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use credd_proto::audit::AuditVia;
use credd_proto::paths::Paths;
use credd_proto::{ProfileState, Request, Response};

use super::env::{CONFLICTING, endpoint, variables};
use super::{ask, login, unexpected};
use crate::error::ClientError;
use crate::shadow;

pub fn run(
    paths: &Paths,
    profile: String,
    command: Vec<OsString>,
) -> Result<ExitCode, ClientError> {
    let info = endpoint(paths, Some(profile.clone()))?;
    let Some((program, args)) = command.split_first() else {
        return Err(ClientError::NoCommand);
    };
    if info.needs_login
        && let Some(code) = login::on_demand(paths, "`credd exec`", None)?
    {
        return Ok(code);
    }
    refuse_failing(paths, &profile)?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    for name in CONFLICTING {
        cmd.env_remove(name);
    }
    cmd.envs(variables(paths, &info));
    cmd.env("CREDD_PROFILE", &profile);
    // What `credd audit` shows as the exec route.
    cmd.env(AuditVia::ENV, AuditVia::Exec.name());
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

/// Fails with the daemon's reason when `profile` has nothing to serve and the daemon knows why:
/// its last refresh failed (an AssumeRole refused, a role that does not exist), or it was never
/// fetched because the access session itself failed (a key STS refuses). CMD would only get a 503.
fn refuse_failing(paths: &Paths, profile: &str) -> Result<(), ClientError> {
    let request = Request::Status;
    let report = match ask(paths, &request)? {
        Response::Status(report) => report,
        other => return Err(unexpected(&request, other)),
    };
    let access = &report.access;
    let Some(p) = report.profiles.iter().find(|p| p.name == profile) else {
        return Ok(());
    };
    let reason = match (p.state, &p.last_error, &access.last_error) {
        (ProfileState::Failing, Some(e), _) => e.clone(),
        (ProfileState::Failing, None, _) => "its last refresh failed".to_owned(),
        (ProfileState::Cold, _, Some(e)) if !access.logged_in => {
            format!("the access session failed: {e}")
        }
        _ => return Ok(()),
    };
    Err(ClientError::ProfileFailing {
        profile: profile.to_owned(),
        reason,
    })
}
