//! `credd`: the thin client of credd-daemon. Each verb sends one request over the control socket
//! and prints the answer; the daemon owns every decision. No AWS SDK is linked, so it starts fast.

mod commands;
mod connection;
mod error;
mod output;
mod service_manager;
mod shadow;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use credd_proto::paths::Paths;

use crate::error::ClientError;

/// Short-lived AWS credentials for every tool on this machine, from one login.
#[derive(Parser, Debug)]
#[command(name = "credd", version, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Config file the daemon uses (default: <config dir>/credd/config.toml; also CREDD_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the daemon, the access session and every profile's state.
    Status,
    /// List the configured profiles.
    Profiles,
    /// Make PROFILE the one the current route serves (remembered across restarts).
    Switch { profile: String },
    /// Log into the access account (asks for the MFA code when one is needed).
    Login {
        /// The MFA code; `-` reads it from stdin (keeps it off the command line).
        #[arg(long, value_name = "CODE")]
        mfa_code: Option<String>,
    },
    /// Forget every credential the daemon holds.
    Logout,
    /// Re-read the config file now.
    Reload,
    /// Replace the HTTP API token (the old one stops working at once; logout also replaces it).
    ResetToken,
    /// Print shell exports that point AWS SDKs at credd (no PROFILE: follow `credd switch`).
    Env {
        profile: Option<String>,
        /// Output syntax (default: from $SHELL).
        #[arg(long, value_enum)]
        shell: Option<commands::env::Shell>,
    },
    /// Run CMD with PROFILE's credentials (pinned), passing its exit code through.
    Exec {
        profile: String,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Print PROFILE's credentials as `credential_process` JSON.
    CredentialProcess { profile: String },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Install or remove credd as a systemd user service / launchd agent.
    Service {
        #[command(subcommand)]
        action: commands::service::Action,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("credd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One verb, one module under commands/.
fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let paths = Paths::resolve(cli.config.clone());
    let json = cli.json;
    match cli.command {
        Command::Status => commands::status::run(&paths, json),
        Command::Profiles => commands::profiles::run(&paths, json),
        Command::Switch { profile } => commands::switch::run(&paths, json, profile),
        Command::Reload => commands::reload::run(&paths, json),
        Command::ResetToken => commands::reset_token::run(&paths, json),
        Command::Logout => commands::logout::run(&paths, json),
        Command::Login { mfa_code } => commands::login::run(&paths, json, mfa_code),
        Command::Env { profile, shell } => commands::env::run(&paths, json, profile, shell),
        Command::Exec { profile, command } => commands::exec::run(&paths, profile, command),
        Command::CredentialProcess { profile } => {
            commands::credential_process::run(&paths, profile)
        }
        Command::Completions { shell } => commands::completions::run(shell, Cli::command()),
        Command::Service { action } => commands::service::run(&paths, json, action),
    }
}
