//! `credd completions <shell>`: a script to source that makes the shell ask credd itself what
//! to complete (clap_complete's `CompleteEnv`: the script runs `CREDD_COMPLETE=<shell> credd -- ARGS`),
//! so profile names come from the daemon as it is now, or from the config file when no daemon
//! answers. Every positional `profile` argument completes so ([`with_profile_names`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::connection::Connection;
use crate::error::ClientError;

/// The variable the scripts set when they call back into credd: credd's own, not clap's usual
/// `COMPLETE`, which a user's environment may hold for something else (credd would then only
/// complete).
pub const VAR: &str = "CREDD_COMPLETE";

/// A daemon that has not answered the profile names by then is not waited for: the config file
/// answers instead, and the Tab stays instant.
const DAEMON_WAIT: Duration = Duration::from_millis(500);

/// Prints the registration script; `argv0` is how this credd was run (the scripts call it back
/// by that path when it has one, else by name on PATH, as `CREDD_COMPLETE=bash credd` does).
pub fn run(shell: clap_complete::Shell, argv0: Option<OsString>) -> Result<ExitCode, ClientError> {
    let out =
        registration(shell, &completer_path(argv0)).map_err(|source| ClientError::WriteFile {
            path: PathBuf::from("<stdout>"),
            source,
        })?;
    std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(|source| {
        ClientError::WriteFile {
            path: PathBuf::from("<stdout>"),
            source,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The script that registers credd's completion in `shell`, calling `completer` (a path, or a
/// name looked up on PATH) back at each Tab; what `credd completions` prints and what the
/// packages install.
pub fn registration(shell: clap_complete::Shell, completer: &str) -> std::io::Result<Vec<u8>> {
    let env: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Zsh => &Zsh,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::PowerShell => &Powershell,
        _ => &Bash,
    };
    let mut out = Vec::new();
    env.write_registration(VAR, "credd", "credd", completer, &mut out)?;
    Ok(out)
}

fn completer_path(argv0: Option<OsString>) -> String {
    let argv0 = PathBuf::from(argv0.unwrap_or_else(|| "credd".into()));
    let path = if argv0.components().count() > 1 {
        std::path::absolute(&argv0).unwrap_or(argv0)
    } else {
        argv0
    };
    path.to_string_lossy().into_owned()
}

/// `cli` with the profile names as the candidates of every subcommand's `profile` argument,
/// nested ones included (`credd docker run --profile`).
pub fn with_profile_names(mut cli: clap::Command) -> clap::Command {
    let verbs: Vec<String> = cli
        .get_subcommands()
        .map(|verb| verb.get_name().to_owned())
        .collect();
    for verb in verbs {
        // `mut_args`, not `mut_arg`: that one moves the argument last, making a positional
        // `profile` come after the ones defined after it.
        cli = cli.mut_subcommand(verb, |verb| {
            with_profile_names(verb.mut_args(|arg| match arg.get_id() == "profile" {
                true => arg.add(ArgValueCandidates::new(candidates)),
                false => arg,
            }))
        });
    }
    cli
}

fn candidates() -> Vec<CompletionCandidate> {
    let paths = Paths::resolve(None);
    let (current, names) =
        from_daemon(&paths).unwrap_or_else(|| (None, from_config(&paths.config)));
    names
        .into_iter()
        .map(|name| {
            let help = (current.as_deref() == Some(name.as_str())).then(|| "current".into());
            CompletionCandidate::new(name).help(help)
        })
        .collect()
}

/// The running daemon's profiles (never starts one: a Tab must not).
fn from_daemon(paths: &Paths) -> Option<(Option<String>, Vec<String>)> {
    let mut conn = Connection::open_existing(paths).ok()?;
    match conn.request_briefly(&Request::Profiles, DAEMON_WAIT).ok()? {
        Response::Profiles { current, profiles } => {
            Some((current, profiles.into_iter().map(|p| p.name).collect()))
        }
        _ => None,
    }
}

/// The `[profiles.NAME]` tables of the config file, as written; none when it cannot be read.
pub fn from_config(config: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(config) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    doc.get("profiles")
        .and_then(|p| p.as_table_like())
        .map(|t| t.iter().map(|(name, _)| name.to_owned()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_daemon_the_names_come_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "default_profile = \"staging\"\n[access]\nsource = \"sso\"\n\n\
             [profiles.staging]\nrole_arn = \"a\"\n[profiles.\"prod.eu\"]\nrole_arn = \"b\"\n",
        )
        .unwrap();
        assert_eq!(from_config(&config), ["staging", "prod.eu"]);
        assert!(from_config(&dir.path().join("missing.toml")).is_empty());
        std::fs::write(&config, "not [ toml").unwrap();
        assert!(from_config(&config).is_empty());
    }

    #[test]
    fn every_verbs_profile_argument_completes_and_keeps_its_place() {
        // Verbs added later (`console`, `refresh`) complete so as long as the argument is
        // named `profile`.
        let cli = clap::Command::new("credd").subcommand(
            clap::Command::new("console")
                .arg(clap::Arg::new("profile"))
                .arg(clap::Arg::new("extra")),
        );
        let cli = with_profile_names(cli);
        let console = cli.find_subcommand("console").unwrap();
        let ids: Vec<&str> = console
            .get_positionals()
            .map(|a| a.get_id().as_str())
            .collect();
        assert_eq!(ids, ["profile", "extra"]);
        let profile = console.get_arguments().find(|a| a.get_id() == "profile");
        assert!(profile.unwrap().get::<ArgValueCandidates>().is_some());
        let extra = console.get_arguments().find(|a| a.get_id() == "extra");
        assert!(extra.unwrap().get::<ArgValueCandidates>().is_none());
        let cli = with_profile_names(clap::Command::new("credd").subcommand(
            clap::Command::new("docker").subcommand(
                clap::Command::new("run").arg(clap::Arg::new("profile").long("profile")),
            ),
        ));
        let run = cli
            .find_subcommand("docker")
            .and_then(|d| d.find_subcommand("run"))
            .unwrap();
        let profile = run.get_arguments().find(|a| a.get_id() == "profile");
        assert!(
            profile.unwrap().get::<ArgValueCandidates>().is_some(),
            "nested verbs too"
        );
    }

    #[test]
    fn the_scripts_call_credd_back_by_the_path_it_was_run_by() {
        assert_eq!(completer_path(Some("credd".into())), "credd");
        assert_eq!(
            completer_path(Some("/usr/bin/credd".into())),
            "/usr/bin/credd"
        );
        assert!(completer_path(Some("./target/credd".into())).starts_with('/'));
    }
}
