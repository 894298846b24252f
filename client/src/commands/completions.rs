//! `credd completions <shell>`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::Cli;
use crate::error::ClientError;

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode, ClientError> {
    clap_complete::generate(shell, &mut Cli::command(), "credd", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
