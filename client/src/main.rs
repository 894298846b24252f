//! `credd`: the thin client of credd-daemon. Each verb sends one request over the control socket
//! and prints the answer; the daemon owns every decision. No AWS SDK is linked, so it starts fast.

mod browser;
mod commands;
mod examples;
mod output;
mod shadow;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use credd_proto::LoginMethod;
use credd_proto::paths::Paths;

use credd::{aws_config, config_edit, connection, error, service_manager};

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
    ///
    /// Each profile: fresh, expiring, cold or failing (coloured on a terminal; never with
    /// `--json` or into a pipe, nor with NO_COLOR set), its own region, when its credentials
    /// expire, the last refresh, the next retry of a failing refresh, and the STS Region that
    /// answered (`[STS us-east-1]`). Past a screenful of profiles (more than 20), counts per
    /// state and only the profiles that need attention (failing, expiring, cold) and the current
    /// one; `--all` lists every one.
    Status {
        /// List every profile, however many.
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// List the configured profiles.
    Profiles,
    /// Make PROFILE the one the current route serves (remembered across restarts).
    ///
    /// Without PROFILE on a terminal, picks one from a list: type to filter (fuzzy), arrows to
    /// move, Enter to switch, Esc to leave (exit 130).
    Switch {
        /// The profile to serve (on a terminal, leave it out to pick one).
        #[arg(required = true)]
        profile: Option<String>,
    },
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
    /// Add the profiles of ~/.aws/config, or every account role IAM Identity Center offers you
    /// (`--sso`).
    ///
    /// Without `--sso`: reads ~/.aws/config (AWS_CONFIG_FILE) as the AWS SDKs do and adds a
    /// `[profiles.NAME]` for each profile credd can serve: `role_arn` profiles (with
    /// `source_profile` chains as `via`, external_id, duration_seconds, role_session_name,
    /// region) and Identity Center profiles (sso_account_id + sso_role_name); plus `[access]`
    /// from the root of the chains: an IAM user's key (with mfa_serial), an Identity Center
    /// sign-in ([sso-session] or the legacy sso_* keys) or a web identity token file. What it
    /// cannot map (credential_process, credential_source, a second key, roots that disagree,
    /// loops, unknown keys) is listed with the reason and file:line. ~/.aws/credentials
    /// (AWS_SHARED_CREDENTIALS_FILE) is read only for which profiles hold a key: an IAM user key
    /// there is never copied; the report gives the `credd key import` command that moves it
    /// into the OS keychain. Creates the config when there is none; edits the running
    /// daemon's otherwise (it reloads it). `--json` prints `{"config", "aws_config", "dry_run",
    /// "written", "created", "access", "added", "unchanged", "skipped", "notes", "key"}`.
    ///
    /// With `--sso`:
    /// Asks the daemon (logged in with `source = "sso"`) for the accounts and roles you may use
    /// and adds a `[profiles.NAME]` table with `sso_account_id`, `sso_role_name` and `region` (the
    /// Identity Center Region, which `credd exec`/`env` export) for each to
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
    #[command(verbatim_doc_comment)]
    Import {
        /// Import from IAM Identity Center (else from ~/.aws/config).
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
    /// They include CREDD_VIA=env, by which `credd audit` shows what the shell runs as the env
    /// route.
    ///
    /// Never logs in (it runs from shell rc files): without an access session it says "not
    /// logged in: run `credd login`" on stderr and prints the exports all the same (exit 0).
    ///
    /// `--hook SHELL` also prints a hook that runs before each prompt and keeps AWS_REGION on
    /// the current profile's region after `credd switch` (SDKs read the region from the
    /// environment, not from credd).
    Env {
        profile: Option<String>,
        /// Output syntax (default: from $SHELL).
        #[arg(long, value_enum)]
        shell: Option<commands::env::Shell>,
        /// Also print the prompt hook that makes AWS_REGION follow `credd switch`.
        #[arg(long, value_enum, value_name = "SHELL", conflicts_with_all = ["profile", "shell"])]
        hook: Option<commands::env::HookShell>,
    },
    /// Run CMD with PROFILE's credentials (pinned), passing its exit code through.
    ///
    /// Everything after PROFILE is the command and its arguments (`--` before it is optional);
    /// CMD gets CREDD_PROFILE=PROFILE and CREDD_VIA=exec (`credd audit` shows its route as exec).
    /// A CMD that is not found exits 127, one that cannot run 126. When the daemon cannot get PROFILE's credentials (its last refresh failed), fails
    /// with the reason before running CMD.
    ///
    /// When the access session is missing or over and only you can make it (an MFA code, a
    /// browser sign-in, SAML), logs in first on the controlling terminal, as `credd login`
    /// would; without a terminal it fails at once, saying to run `credd login`.
    #[command(disable_version_flag = true)]
    Exec {
        profile: String,
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// Open the AWS console signed in as PROFILE (default: the current profile).
    ///
    /// The daemon trades the profile's role credentials (or, with `--access`, the access
    /// session's: an IAM user's through GetFederationToken with its long-lived key, a session
    /// that is not MFA-authenticated) for a sign-in token at the AWS federation endpoint of the
    /// Region's partition (aws, aws-cn, aws-us-gov), and the browser opens the sign-in URL.
    ///
    /// The URL signs in whoever opens it within 15 minutes: the browser ($BROWSER, xdg-open,
    /// open) is started with the daemon's one-shot loopback page that redirects it there once,
    /// never with the URL on its command line. `--print` writes the URL alone on stdout and the
    /// rest on stderr; `--json` prints `{"profile", "identity", "partition", "region",
    /// "destination", "expires_at", "mfa_authenticated", "notes", "browser_opened"}` and `"url"`
    /// when it was not opened.
    #[command(verbatim_doc_comment)]
    Console {
        profile: Option<String>,
        /// Sign in as the access session itself instead of a profile.
        #[arg(long, conflicts_with = "profile")]
        access: bool,
        /// Print the sign-in URL instead of opening a browser.
        #[arg(long)]
        print: bool,
        /// The console Region (default: the profile's `region`, else us-east-1 / cn-north-1 /
        /// us-gov-west-1 for the partition).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// The page to land on: a service path (`s3`, `ec2/home#Instances:`) or a full console
        /// URL (https://console.aws.amazon.com/...).
        #[arg(long, value_name = "PAGE")]
        destination: Option<String>,
        /// The console session's length, 15m to 12h (`2h`, `3600`): only for `--access` as an IAM
        /// user (1h by default); a role's console session lasts as long as its credentials.
        #[arg(long, value_name = "DURATION", value_parser = commands::console::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Print PROFILE's credentials as `credential_process` JSON.
    ///
    /// When the access session is missing or over and only you can make it (an MFA code, a
    /// browser sign-in, SAML), logs in first on the controlling terminal, as `credd login`
    /// would; without a terminal it fails at once, saying to run `credd login`.
    /// stdout carries the JSON alone: the prompts go to the terminal.
    CredentialProcess { profile: String },
    /// Show which programs took credentials: when, which profile, on which route.
    ///
    /// Reads the audit log the daemon keeps (<state dir>/credd/audit.jsonl and audit.jsonl.1,
    /// its last rotation) directly: it works with the daemon stopped. The table groups what was
    /// taken by program (its executable; `unknown (uid N)` where the system did not say; the
    /// container or network namespace when it is not this machine's own) and profile, the most
    /// recently used first: ROUTE is container, imds, credential-process (the program named is
    /// the one that ran `credd credential-process`: the AWS CLI, boto3...), console, or env and
    /// exec for a program on the container route that `credd env` or `credd exec` set up
    /// (CREDD_VIA), or docker for a container `credd docker` granted, grouped by container ID
    /// and named `name (image, id12)`; COUNT sums the credentials, FIRST and LAST say when.
    ///
    /// `--json` prints the matching lines as a JSON array: {"time", "last", "count", "route",
    /// "via", "profile", "current", "account", "expires", "uid", "pid", "exe", "cmdline",
    /// "client_pid", "cgroup", "container", "container_name", "image", "grant", "netns"} (what
    /// the system did not tell is left out).
    /// `--follow` prints the latest lines and then each new one as it is recorded (with
    /// `--json`, one JSON object per line), until Ctrl-C. A line that cannot be read is skipped
    /// and counted on stderr. Never a secret: the log holds no credentials, and command lines are
    /// kept without what looks like a token or password.
    #[command(verbatim_doc_comment)]
    Audit {
        /// Only what was taken this recently (`1h`, `30m`, `2d`).
        #[arg(long, value_name = "DURATION", value_parser = commands::audit::parse_since)]
        since: Option<std::time::Duration>,
        /// Only these profiles: a name or a glob (`prod*`).
        #[arg(long, value_name = "GLOB", value_parser = commands::audit::parse_glob)]
        profile: Option<glob::Pattern>,
        /// Only this route, as the table shows it (env and exec apart from container; docker
        /// for `credd docker`'s containers).
        #[arg(long, value_enum)]
        route: Option<commands::audit::RouteFilter>,
        /// Keep printing what is taken, as it is (Ctrl-C ends it).
        #[arg(long)]
        follow: bool,
    },
    /// Print a shell completion script to source; it asks credd for the profile names.
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
    /// Refresh PROFILE's credentials now (default: the current profile; `--all`: every profile).
    ///
    /// One STS call per profile however many ask at once; prints each new expiry, or why it
    /// failed. Never asks for a login: one that is needed is named (`credd login`). Exit codes:
    /// 0 all refreshed, 1 any failed.
    Refresh {
        /// The profile to refresh (default: the current one, `credd switch`).
        profile: Option<String>,
        /// Every configured profile.
        #[arg(long, conflicts_with = "profile")]
        all: bool,
    },
    /// Stop credd-daemon cleanly (through systemd/launchd when it runs it as a service).
    ///
    /// Waits until the daemon is gone. A service stopped this way stays installed and starts
    /// again at the next request (its socket). Exit codes: 0 stopped, or no daemon was running
    /// (said on stderr); 1 it could not be stopped (the command to run is printed).
    Stop,
    /// Print the current profile, for a shell prompt: nothing when there is none, never an
    /// error (exit 0).
    ///
    /// Reads the state file the daemon keeps, without asking the daemon: fast enough to run
    /// before every prompt. `--region` prints the current profile's region instead (exit 1,
    /// silently, when there is no state file to read).
    Prompt {
        /// Print the current profile's region instead.
        #[arg(long)]
        region: bool,
    },
    /// Check the setup live: the access account, MFA, keys, roles, the clock, local files.
    ///
    /// Asks the daemon (starting it when none runs; it never logs in) for its live checks: is the
    /// access identity in the organization's management account (DescribeOrganization), is
    /// there MFA, how old is the long-lived key (ListAccessKeys) and is it kept in plain text, can
    /// every profile's role be assumed now (one STS call each), how far is this clock from STS's,
    /// does the session end soon, one STS Region or Identity Center without replicas. Then checks
    /// this machine: the runtime dir's modes, AWS_* variables in this shell that win over credd,
    /// plain-text keys and a [default] key in ~/.aws, the service, the two versions.
    ///
    /// Problems first, the worst first, each with what was found, why it matters and how to fix
    /// it; then the passed checks, one line each. `--json` prints `{"findings": [{"check",
    /// "severity": "ok"|"info"|"warning"|"critical", "found", "why", "fix"}], "worst"}`.
    ///
    /// Exit codes: 0 nothing above info, 3 a warning, 4 a critical finding, 1 doctor could not
    /// run (the daemon could not be reached: the local findings are printed all the same),
    /// 2 usage.
    #[command(verbatim_doc_comment)]
    Doctor,
    /// Give local containers a profile's credentials, each container pinned and audited.
    ///
    /// `run` starts one container with a one-shot grant, `env` prints an env file with a
    /// standing grant (compose, devcontainers), `revoke` cuts grants off, `setup` checks the
    /// Docker engine and says where containers reach credd. A grant lets a container take
    /// credentials from credd's IMDS endpoint on its Docker network's gateway; the daemon
    /// serves only containers whose own environment (as the engine reports it) holds a live
    /// grant, pins each to the grant's profile, and drops a container's claim when it stops.
    /// `credd status` lists them, `credd audit` names each container that took credentials.
    #[command(verbatim_doc_comment)]
    Docker {
        #[command(subcommand)]
        action: commands::docker::Action,
    },
    /// Install or remove credd as a systemd user service / launchd agent.
    Service {
        #[command(subcommand)]
        action: commands::service::Action,
    },
}

fn main() -> ExitCode {
    output::restore_sigpipe();
    // The man pages carry the help's examples.
    if let Some(code) = commands::dist_files::run_if_asked(|| examples::add(Cli::command())) {
        return code;
    }
    // `CREDD_COMPLETE=bash credd -- ARGS`: the completion scripts calling back (prints, then exits).
    clap_complete::CompleteEnv::with_factory(command)
        .var(commands::completions::VAR)
        .complete();
    let cli = parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                eprintln!("{}", e.to_json());
            } else {
                eprintln!("credd: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The command line's definition: [`Cli`], every `profile` completing to the profile names,
/// and, on a terminal, `credd switch` without a profile allowed (it offers a picker; elsewhere
/// it is the usage error it always was).
fn command() -> clap::Command {
    let mut cli = examples::add(commands::completions::with_profile_names(Cli::command()));
    if std::io::stdin().is_terminal() && terminal::Terminal::controlling().is_some() {
        cli = cli.mut_subcommand("switch", |switch| {
            switch.mut_args(|arg| match arg.get_id() == "profile" {
                true => arg.required(false),
                false => arg,
            })
        });
    }
    cli
}

/// `credd exec PROFILE CMD...` with `--` after PROFILE when it has none: then every word of
/// CMD is CMD's own, also one that credd has a global flag for (`--json`, `--config`,
/// `--version`), as `aws-vault exec` does. Anything else is left as it is.
fn exec_command_verbatim(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut verb = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            return args;
        } else if arg == "--config" {
            i += 1;
        } else if !arg.starts_with('-') {
            match verb {
                None if arg == "exec" => verb = Some(i),
                None => return args,
                Some(_) => {
                    if args.get(i + 1).is_some_and(|next| next != "--") {
                        args.insert(i + 1, "--".into());
                    }
                    return args;
                }
            }
        }
        i += 1;
    }
    args
}

/// [`Cli::parse`] on [`command`]; with `--json`, a usage error is `{"code": "Usage",
/// "message"}` on stderr (exit 2 still).
fn parse() -> Cli {
    let parsed = command()
        .try_get_matches_from(exec_command_verbatim(std::env::args_os().collect()))
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            // The error without the usage and help lines, on one line.
            let text = e.to_string();
            let head = text.split("\n\n").next().unwrap_or_default();
            let head = head.strip_prefix("error: ").unwrap_or(head);
            let message = head.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!(
                "{}",
                serde_json::json!({ "code": "Usage", "message": message })
            );
            std::process::exit(e.exit_code())
        }
        Err(e) => e.exit(),
    }
}

/// One verb, one module under commands/.
fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let paths = Paths::resolve(cli.config.clone());
    let json = cli.json;
    match cli.command {
        Command::Status { all } => commands::status::run(&paths, json, all),
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
        Command::Import { sso: true, dry_run } => commands::import::sso::run(&paths, json, dry_run),
        Command::Import {
            sso: false,
            dry_run,
        } => commands::import::aws_config::run(&paths, json, dry_run),
        Command::Env {
            profile,
            shell,
            hook,
        } => commands::env::run(&paths, json, profile, shell, hook),
        Command::Exec { profile, command } => commands::exec::run(&paths, profile, command),
        Command::CredentialProcess { profile } => {
            commands::credential_process::run(&paths, profile)
        }
        Command::Console {
            profile,
            access,
            print,
            region,
            destination,
            duration,
        } => {
            let opts = commands::console::Options {
                profile,
                access,
                print,
                region,
                destination,
                duration,
            };
            commands::console::run(&paths, json, opts)
        }
        Command::Audit {
            since,
            profile,
            route,
            follow,
        } => {
            let opts = commands::audit::Options {
                since,
                profile,
                route,
                follow,
            };
            commands::audit::run(&paths, json, opts)
        }
        Command::Completions { shell } => {
            commands::completions::run(shell, std::env::args_os().next())
        }
        Command::Prompt { region } => Ok(commands::prompt::run(&paths, json, region)),
        Command::Service { action } => commands::service::run(&paths, json, action),
        Command::Refresh { profile, all } => commands::refresh::run(&paths, json, profile, all),
        Command::Stop => commands::stop::run(&paths, json),
        Command::Doctor => commands::doctor::run(&paths, json),
        Command::Key { action } => commands::key::run(&paths, json, action),
        Command::Docker { action } => commands::docker::run(&paths, json, action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_of(args: &[&str]) -> (String, Vec<String>) {
        let argv = args.iter().map(Into::into).collect();
        let matches = command()
            .try_get_matches_from(exec_command_verbatim(argv))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Exec { profile, command } => (
                profile,
                command
                    .into_iter()
                    .map(|a| a.into_string().unwrap())
                    .collect(),
            ),
            other => panic!("{other:?}"),
        }
    }

    fn docker_run_of(args: &[&str]) -> (Option<String>, Vec<String>) {
        let matches = command()
            .try_get_matches_from(exec_command_verbatim(args.iter().map(Into::into).collect()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Docker {
                action: commands::docker::Action::Run { profile, args },
            } => (
                profile,
                args.into_iter().map(|a| a.into_string().unwrap()).collect(),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn docker_run_takes_dockers_arguments_with_or_without_dashes() {
        assert_eq!(
            docker_run_of(&[
                "credd",
                "docker",
                "run",
                "--profile",
                "prod",
                "--",
                "img",
                "ls"
            ]),
            (
                Some("prod".to_owned()),
                vec!["img".to_owned(), "ls".to_owned()]
            )
        );
        assert_eq!(
            docker_run_of(&[
                "credd",
                "docker",
                "run",
                "-it",
                "--rm",
                "--network",
                "dev",
                "img"
            ])
            .1,
            ["-it", "--rm", "--network", "dev", "img"]
        );
        assert_eq!(
            docker_run_of(&[
                "credd",
                "docker",
                "run",
                "--profile=p",
                "img",
                "--profile",
                "x"
            ]),
            (
                Some("p".to_owned()),
                vec!["img".to_owned(), "--profile".to_owned(), "x".to_owned()]
            ),
            "after docker's first argument, everything is docker's"
        );
        assert_eq!(
            docker_run_of(&[
                "credd",
                "docker",
                "run",
                "-e",
                "A",
                "img",
                "--json",
                "--version"
            ])
            .1,
            ["-e", "A", "img", "--json", "--version"]
        );
        assert_eq!(
            docker_run_of(&["credd", "docker", "run", "--", "--", "img"]).1,
            ["--", "img"],
            "docker's own `--` is kept"
        );
        for missing in [
            &["credd", "docker", "run"][..],
            &["credd", "docker", "run", "--"],
        ] {
            assert!(
                command().try_get_matches_from(missing).is_err(),
                "{missing:?}: docker's arguments are required"
            );
        }
        let revoke = |args: &[&str]| command().try_get_matches_from(args);
        assert!(
            revoke(&["credd", "docker", "revoke"]).is_err(),
            "an ID or --all"
        );
        assert!(revoke(&["credd", "docker", "revoke", "ab12", "--all"]).is_err());
        assert!(revoke(&["credd", "docker", "revoke", "--all"]).is_ok());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_with_or_without_dashes_and_its_flags_are_its_own() {
        let env = ("prod".to_owned(), vec!["env".to_owned()]);
        assert_eq!(exec_of(&["credd", "exec", "prod", "env"]), env);
        assert_eq!(exec_of(&["credd", "exec", "prod", "--", "env"]), env);
        assert_eq!(
            exec_of(&["credd", "exec", "prod", "ls", "-la", "--json", "--", "x"]).1,
            ["ls", "-la", "--json", "--", "x"]
        );
        assert_eq!(
            exec_of(&["credd", "exec", "prod", "--version"]).1,
            ["--version"],
            "a flag after the profile is the command"
        );
        assert_eq!(
            exec_of(&["credd", "--json", "exec", "prod", "--", "-x"]).1,
            ["-x"]
        );
        assert_eq!(exec_of(&["credd", "exec", "prod", "--json"]).1, ["--json"]);
        assert_eq!(
            exec_of(&["credd", "exec", "prod", "--config", "x"]).1,
            ["--config", "x"]
        );
        assert_eq!(
            exec_of(&["credd", "--config", "exec", "exec", "prod", "x"]),
            ("prod".to_owned(), vec!["x".to_owned()]),
            "a config file named exec"
        );
        assert_eq!(
            exec_of(&["credd", "exec", "--json", "prod", "x", "--"]).1,
            ["x", "--"]
        );
        assert!(
            command()
                .try_get_matches_from(["credd", "exec", "prod"])
                .is_err(),
            "a command is required"
        );
    }
}
