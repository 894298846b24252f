//! `credd`: the thin client of credd-daemon. Each verb sends one request over the control socket
//! and prints the answer; the daemon owns every decision. No AWS SDK is linked, so it starts fast.

mod browser;
mod commands;
mod output;
mod shadow;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use credd_proto::LoginMethod;
use credd_proto::paths::Paths;

use credd::{config_edit, connection, error, service_manager};

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
    /// Log into the access account (asks for the MFA code, or signs in to IAM Identity Center or
    /// your identity provider).
    ///
    /// With an MFA device, asks for the code on the terminal (or takes `--mfa-code`).
    ///
    /// With IAM Identity Center (`source = "sso"`) or an OpenID provider (`source =
    /// "web-identity"` with `oidc_issuer`), starts a sign-in that you approve in a browser and
    /// waits for it: `--browser` opens the sign-in page on this machine (authorization code with
    /// PKCE; the page redirects back to credd on 127.0.0.1), `--device-code` shows a URL and a
    /// code to confirm on any device (use it over SSH). Without either, the config's `sso_login`
    /// decides (`auto`: the browser when this session has a display). With SAML (`source =
    /// "saml"`), the daemon runs `assertion_command` and this waits for it. A second `credd login`
    /// meanwhile joins the same sign-in. Ctrl-C cancels it.
    ///
    /// Progress and the sign-in instructions go to stderr, the result to stdout. With `--json`
    /// stdout gets one JSON document, `{"access": {...}, "profiles_ready": N, "profiles": N}`, and
    /// the pending sign-in is one JSON line on stderr: `{"kind": "authorization_pending",
    /// "method": "browser"|"device"|"command", "url", "user_code", "provider", "region",
    /// "expires_at" (Unix seconds), "joined", "browser_opened"}`. Nothing secret is printed: the URL and code only let the
    /// signed-in user approve this sign-in.
    ///
    /// Exit codes: 0 logged in (or `--cancel` done), 1 failed (refused, expired, daemon error),
    /// 2 usage, 130 cancelled with Ctrl-C.
    #[command(verbatim_doc_comment)]
    Login {
        /// The MFA code; `-` reads it from stdin (keeps it off the command line).
        #[arg(long, value_name = "CODE")]
        mfa_code: Option<String>,
        /// Identity Center, OpenID provider: sign in with a device code, from any device.
        #[arg(long)]
        device_code: bool,
        /// Identity Center, OpenID provider: sign in with a browser on this machine.
        #[arg(long, conflicts_with = "device_code")]
        browser: bool,
        /// Identity Center: authorize this Region (a multi-Region replica) instead of the home
        /// Region, e.g. while the home Region is down.
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Never open a browser here; print the URL to open yourself.
        #[arg(long)]
        no_open: bool,
        /// Abandon a sign-in that is waiting for approval (yours or another `credd login`'s).
        #[arg(long, conflicts_with_all = ["mfa_code", "device_code", "browser", "region", "no_open"])]
        cancel: bool,
    },
    /// Forget every credential the daemon holds.
    Logout,
    /// Add a profile for every account role IAM Identity Center offers you (`--sso`).
    ///
    /// Asks the daemon (logged in with `source = "sso"`) for the accounts and roles you may use
    /// and adds a `[profiles.NAME]` table with `sso_account_id` and `sso_role_name` for each to
    /// the config file the daemon reads, after the existing profiles; comments and layout stay.
    /// NAME is the account name as a lowercase slug, '-', and the role name, e.g.
    /// `staging-AdministratorAccess`; accounts whose names give the same slug also get their
    /// account ID (`staging-222222222222-ReadOnly`). The same accounts always give the same
    /// names.
    ///
    /// Nothing is overwritten: an account role already configured (under any name) is skipped,
    /// and so is one whose name is already a profile. The file is replaced in one rename (same
    /// mode); the daemon reloads it by itself.
    ///
    /// `--dry-run` prints the edit as a unified diff on stdout (only `+` lines; it applies with
    /// `patch`) and a summary on stderr, and writes nothing. `--json` prints `{"config",
    /// "dry_run", "accounts", "added": [{"profile", "account_id", "account_name",
    /// "role_name"}], "skipped": [{..., "reason": "already_configured"|"name_taken"|
    /// "name_clash", "profile"}]}`.
    ///
    /// Importing from ~/.aws/config (without `--sso`) is not supported yet.
    #[command(verbatim_doc_comment)]
    Import {
        /// Import from IAM Identity Center.
        #[arg(long)]
        sso: bool,
        /// Show what would be added (a diff); write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-read the config file now.
    Reload,
    /// Replace the HTTP API token (the old one stops working at once; logout also replaces it).
    ResetToken,
    /// Print shell exports that point AWS SDKs at credd (no PROFILE: follow `credd switch`).
    ///
    /// When the access session is missing or over and only you can make it (an MFA code, a
    /// browser sign-in, SAML), logs in first on the controlling terminal, as `credd login`
    /// would; without a terminal it fails at once, saying to run `credd login`.
    Env {
        profile: Option<String>,
        /// Output syntax (default: from $SHELL).
        #[arg(long, value_enum)]
        shell: Option<commands::env::Shell>,
    },
    /// Run CMD with PROFILE's credentials (pinned), passing its exit code through.
    ///
    /// When the access session is missing or over and only you can make it (an MFA code, a
    /// browser sign-in, SAML), logs in first on the controlling terminal, as `credd login`
    /// would; without a terminal it fails at once, saying to run `credd login`.
    Exec {
        profile: String,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Print PROFILE's credentials as `credential_process` JSON.
    ///
    /// When the access session is missing or over and only you can make it (an MFA code, a
    /// browser sign-in, SAML), logs in first on the controlling terminal, as `credd login`
    /// would; without a terminal it fails at once, saying to run `credd login`.
    /// stdout carries the JSON alone: the prompts go to the terminal.
    CredentialProcess { profile: String },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Keep the IAM user's long-lived key in the OS keychain: add, import, rotate, remove.
    ///
    /// With `[access] source = "iam-user"`, the key is read from the OS keychain (`key =
    /// "keychain"`, the default without aws_profile) or from the shared credentials file
    /// (aws_profile, or `key = "file"`). The secret never appears in arguments, output or logs.
    #[command(verbatim_doc_comment)]
    Key {
        #[command(subcommand)]
        action: commands::key::Action,
    },
    /// Install or remove credd as a systemd user service / launchd agent.
    Service {
        #[command(subcommand)]
        action: commands::service::Action,
    },
}

fn main() -> ExitCode {
    output::restore_sigpipe();
    if let Some(code) = commands::dist_files::run_if_asked(Cli::command) {
        return code;
    }
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
        Command::Login { cancel: true, .. } => commands::login::cancel(&paths, json),
        Command::Login {
            mfa_code,
            device_code,
            browser,
            region,
            no_open,
            cancel: false,
        } => {
            let method = match (device_code, browser) {
                (true, _) => Some(LoginMethod::Device),
                (_, true) => Some(LoginMethod::Browser),
                _ => None,
            };
            let opts = commands::login::Options {
                mfa_code,
                method,
                region,
                no_open,
            };
            commands::login::run(&paths, json, opts)
        }
        Command::Import { sso: true, dry_run } => commands::import::run(&paths, json, dry_run),
        Command::Import { sso: false, .. } => {
            let mut cli = Cli::command();
            cli.build();
            let import = cli
                .find_subcommand_mut("import")
                .expect("the import subcommand is defined above");
            let usage = import.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "only `credd import --sso` (every account role IAM Identity Center offers) is \
                 supported yet; importing profiles from ~/.aws/config is not",
            );
            let _ = usage.print();
            Ok(ExitCode::from(2))
        }
        Command::Env { profile, shell } => commands::env::run(&paths, json, profile, shell),
        Command::Exec { profile, command } => commands::exec::run(&paths, profile, command),
        Command::CredentialProcess { profile } => {
            commands::credential_process::run(&paths, profile)
        }
        Command::Completions { shell } => commands::completions::run(shell, Cli::command()),
        Command::Service { action } => commands::service::run(&paths, json, action),
        Command::Key { action } => commands::key::run(&paths, json, action),
    }
}
