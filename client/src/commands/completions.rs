//! `credd completions <shell>`.

use std::process::ExitCode;

use crate::error::ClientError;

/// `cli` is the whole command line's definition, from `main`.
pub fn run(shell: clap_complete::Shell, mut cli: clap::Command) -> Result<ExitCode, ClientError> {
    clap_complete::generate(shell, &mut cli, "credd", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
