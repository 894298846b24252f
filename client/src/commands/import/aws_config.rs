//! `credd import` (without `--sso`): the profiles of `~/.aws/config` (`AWS_CONFIG_FILE`) as
//! credd profiles, and the `[access]` at the root of their chains, added to the credd config (the
//! running daemon's, else the one this client uses, created when there is none). The mapping is
//! [`crate::aws_config::plan`]; this reads the files, writes, and reports. `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`) is read only for which profiles hold a key: an IAM user key
//! there is not copied, the report gives the `credd key import` command that moves it into the
//! OS keychain (that verb checks it with STS first and deletes it from the file only once the
//! keychain gives it back).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};
use zeroize::Zeroizing;

use crate::aws_config::{self, AccessOutcome, AwsFiles, FileKind, Plan, ProfileFile};
use crate::commands::unexpected;
use crate::config_edit;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::output;

pub fn run(paths: &Paths, json: bool, dry_run: bool) -> Result<ExitCode, ClientError> {
    let (config_file, credentials_file) = aws_paths();
    let files = read_aws_files(&config_file, &credentials_file)?;

    // A running daemon's config is the one to edit (it reloads it by itself); without one, the
    // config this client would start it with. No daemon is started: a newcomer has no config yet.
    let running = match Connection::open_existing(paths) {
        Ok(_) => true,
        Err(ClientError::NotRunning { .. }) => false,
        // A runtime dir or socket that is not the user's own: said, never bypassed.
        Err(e) => return Err(e),
    };
    let path = if running {
        super::daemon_config_path(paths)?
    } else {
        paths.config.clone()
    };
    let (old, exists) = match std::fs::read_to_string(&path) {
        Ok(text) => (text, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
        Err(source) => return Err(ClientError::ImportRead { path, source }),
    };
    let plan = aws_config::plan(&files, &old).map_err(|why| ClientError::ImportEdit {
        path: path.clone(),
        why,
    })?;
    if plan.access == AccessOutcome::NotFound && plan.added.is_empty() {
        if !json {
            report(&path, &config_file, &plan, true, "");
        }
        return Err(ClientError::ImportNoAccess { path });
    }
    let diff = config_edit::diff(&old, &plan.text, &path);
    let write = !dry_run && plan.changes();
    if write {
        if exists {
            super::write(&path, &old, &plan.text)?;
        } else {
            config_edit::create_new(&path, &plan.text).map_err(|e| match e {
                config_edit::WriteError::ChangedMeanwhile { path } => {
                    ClientError::ImportConcurrentEdit { path }
                }
                config_edit::WriteError::Read { path, source }
                | config_edit::WriteError::Write { path, source } => {
                    ClientError::WriteFile { path, source }
                }
            })?;
        }
    }
    // The daemon notices the file by itself; asking it to reload now tells the user at once
    // whether it took the edit.
    let loaded = (write && running).then(|| reload(paths));
    if json {
        output::json(&serde_json::json!({
            "config": path,
            "aws_config": config_file,
            "dry_run": dry_run,
            "written": write,
            "created": write && !exists,
            "access": plan.access,
            "added": plan.added,
            "unchanged": plan.unchanged,
            "skipped": plan.skipped,
            "notes": plan.notes,
            "key": plan.key,
            "daemon_reload": loaded.as_ref().map(|r| match r {
                Ok(profiles) => serde_json::json!({"profiles": profiles}),
                Err(e) => serde_json::json!({"error": e}),
            }),
        }));
    } else {
        report(&path, &config_file, &plan, dry_run, &diff);
        match loaded {
            Some(Ok(profiles)) => {
                println!("credd-daemon loaded it: {profiles} profiles (`credd profiles`)")
            }
            Some(Err(e)) => eprintln!(
                "warning: credd-daemon did not take the new config (it keeps the previous one): \
                 {e}"
            ),
            None if write => println!(
                "{}: `credd login`; credd starts its daemon with this config by itself",
                if plan.key.is_some() { "then" } else { "next" }
            ),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The AWS config and credentials files, as the SDKs find them: `AWS_CONFIG_FILE` and
/// `AWS_SHARED_CREDENTIALS_FILE` (a leading `~/` is the home directory), else under `~/.aws/`.
fn aws_paths() -> (PathBuf, PathBuf) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .unwrap_or_default();
    let pick = |var: &str, default: &str| match std::env::var(var) {
        Ok(p) if !p.is_empty() => match p.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(p),
        },
        _ => home.join(".aws").join(default),
    };
    (
        pick("AWS_CONFIG_FILE", "config"),
        pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    )
}

fn read_aws_files(config: &Path, credentials: &Path) -> Result<AwsFiles, ClientError> {
    let config_text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClientError::AwsConfigMissing {
                path: config.to_owned(),
                why: if std::env::var_os("AWS_CONFIG_FILE").is_some() {
                    "AWS_CONFIG_FILE"
                } else {
                    "the default; set AWS_CONFIG_FILE to read another"
                },
            });
        }
        Err(source) => {
            return Err(ClientError::ImportRead {
                path: config.to_owned(),
                source,
            });
        }
    };
    // The config file may hold keys too: its text is wiped once read.
    let config_text = Zeroizing::new(config_text);
    let config_file = aws_config::parse::parse(
        &config_text,
        &config.display().to_string(),
        FileKind::Config,
    )
    .map_err(ClientError::AwsConfigParse)?;
    // Only which profiles hold a key (and its ID) is kept of the credentials file.
    let credentials_file = match std::fs::read_to_string(credentials) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            aws_config::parse::parse(
                &text,
                &credentials.display().to_string(),
                FileKind::Credentials,
            )
            .map_err(ClientError::AwsConfigParse)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProfileFile::default(),
        Err(source) => {
            return Err(ClientError::ImportRead {
                path: credentials.to_owned(),
                source,
            });
        }
    };
    Ok(AwsFiles {
        config: config_file,
        credentials: credentials_file,
    })
}

/// Asks the running daemon to load the file now: its profile count, or why it refused.
fn reload(paths: &Paths) -> Result<usize, String> {
    let request = Request::Reload;
    match super::ask(paths, &request) {
        Ok(Response::Reloaded { profiles, .. }) => Ok(profiles),
        Ok(other) => Err(unexpected(&request, other).to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn report(path: &Path, aws: &Path, plan: &Plan, dry_run: bool, diff: &str) {
    // A dry run prints the diff alone on stdout (it applies with `patch`), the rest on stderr.
    let say = |line: String| {
        if dry_run {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if dry_run {
        print!("{diff}");
    }
    let verb = if dry_run { "would add" } else { "added" };
    match &plan.access {
        AccessOutcome::Added { source, from } => {
            say(format!("{verb} [access] source = \"{source}\": {from}"))
        }
        AccessOutcome::Kept { source } => say(format!(
            "[access] (source = \"{source}\") is already in {}: left as it is",
            path.display()
        )),
        AccessOutcome::NotFound => {}
    }
    if !plan.added.is_empty() {
        say(format!(
            "{verb} {} profiles to {}:",
            plan.added.len(),
            path.display()
        ));
        let width = plan
            .added
            .iter()
            .map(|p| p.profile.len())
            .max()
            .unwrap_or(0);
        for p in &plan.added {
            let what = match (&p.role_arn, &p.sso_role) {
                (Some(arn), _) => arn.clone(),
                (None, Some(sso)) => format!("Identity Center {sso}"),
                (None, None) => String::new(),
            };
            let via = p
                .via
                .as_deref()
                .map(|v| format!(" via {v}"))
                .unwrap_or_default();
            say(format!("  {:width$}  {what}{via}", p.profile));
        }
    } else if !plan.changes() {
        let there = match plan.unchanged.len() {
            0 => String::new(),
            n => format!(
                ": the {n} profiles it can import from {} are there already",
                aws.display()
            ),
        };
        say(format!("nothing to add to {}{there}", path.display()));
    }
    if !plan.skipped.is_empty() {
        say(format!("not imported ({}):", plan.skipped.len()));
        for s in &plan.skipped {
            say(format!("  {} [{}]: {}", s.at, s.profile, s.reason));
        }
    }
    if !plan.notes.is_empty() {
        say("notes:".to_owned());
        for n in &plan.notes {
            say(format!("  {n}"));
        }
    }
    if dry_run {
        say("dry run: nothing was written".to_owned());
    }
    if let Some(key) = &plan.key {
        let id = key.access_key_id.as_deref().unwrap_or("its key");
        if key.importable {
            say(format!(
                "the IAM user key {id} is in plain text in {} ([{}]): move it into the OS \
                 keychain, where credd reads it, with\n  {}",
                key.at, key.aws_profile, key.command
            ));
        } else {
            say(format!(
                "the IAM user key {id} is in plain text in {} ([{}]), where `credd key import` \
                 does not look: store it in the OS keychain with `{}` (it asks for the key ID \
                 and the secret), then delete its lines from that file",
                key.at, key.aws_profile, key.command
            ));
        }
    }
}
