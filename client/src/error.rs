//! Everything that can stop a `credd` command, one variant per situation, each carrying the facts
//! its message needs. `main` prints the message after `credd: ` (with `--json`, `{"code",
//! "message"}` on stderr) and exits with [`ClientError::exit_code`].

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use credd_proto::{ErrorReply, ProtoError, Response};

use crate::config_edit::EditError;
use crate::trust::Distrust;

#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum ClientError {
    // Reaching the daemon.
    #[error(
        "cannot reach credd-daemon at {} ({why}).\nStart it with `credd-daemon` (or `systemctl \
         --user start credd` when installed as a service).",
        .socket.display()
    )]
    NotRunning { socket: PathBuf, why: Absence },
    /// The runtime dir or the socket's listener is not this user's own: nothing was sent.
    #[error(
        "refusing to talk to credd-daemon through {}: {why}.\nAnother local user may be \
         listening in credd's place; nothing was sent. Remove it if it is a leftover, or set \
         CREDD_RUNTIME_DIR to a directory of your own (mode 0700).",
        .path.display()
    )]
    Untrusted { path: PathBuf, why: Distrust },
    /// The daemon accepted the connection, then closed it without an answer (it stopped, or
    /// refused this user) or said nothing in time.
    #[error(
        "credd-daemon did not answer: {why}.\nIts log may say why: {} (or the service manager's \
         journal, e.g. `journalctl --user -u credd`).",
        .log.display()
    )]
    NoAnswer { log: PathBuf, why: Silence },
    #[error(transparent)]
    Protocol(#[from] ProtoError),
    /// The daemon answered with an error of its own (unknown profile, login required...).
    #[error("{}", .0.message)]
    Daemon(ErrorReply),
    /// A well-formed answer, but not one `request` can have.
    #[error(
        "unexpected answer from the daemon to `{request}` ({answer:?}) — is the client/daemon up \
         to date?"
    )]
    UnexpectedAnswer {
        request: &'static str,
        answer: Box<Response>,
    },

    // Starting the daemon.
    #[error("could not start credd-daemon: {}: {source}", .exe.display())]
    DaemonSpawn { exe: PathBuf, source: io::Error },
    /// `credd-daemon` ran and refused to start; `message` is its own.
    #[error("could not start credd-daemon: {message}")]
    DaemonRefused { message: String },
    #[error(
        "could not start credd-daemon: credd is installed as a service, but starting it failed: \
         {0}\nWhere there is no service manager to start it (WSL, a container, an SSH login without \
         a user session), run `credd service uninstall`: credd then starts credd-daemon itself \
         when needed."
    )]
    ServiceStart(ToolError),
    /// Neither beside `credd` nor on PATH.
    #[error(
        "credd-daemon is not installed where credd looks for it: not beside credd ({}) nor in \
         any PATH directory ({}).\nInstall both binaries (the credd package has both, or `cargo \
         install --path daemon` from the credd source, next to `cargo install --path client`), \
         or put credd-daemon on PATH.",
        .beside.as_ref().map_or_else(|| "unknown".to_owned(), |d| d.display().to_string()),
        if .path.is_empty() { "PATH is empty".to_owned() } else {
            std::env::join_paths(.path).map_or_else(|_| format!("{:?}", .path), |p| p.to_string_lossy().into_owned())
        }
    )]
    DaemonMissing {
        /// credd's own directory.
        beside: Option<PathBuf>,
        /// The PATH directories searched.
        path: Vec<PathBuf>,
    },
    #[error(
        "could not start credd-daemon: the service started but its socket {} did not appear \
         within {}s; see its log",
        .socket.display(),
        .waited.as_secs()
    )]
    ServiceSocketMissing { socket: PathBuf, waited: Duration },

    // stop
    #[error("credd-daemon (pid {pid}) did not stop: {why}")]
    StopRefused { pid: u32, why: String },
    #[error(
        "credd-daemon (pid {pid}) is run by {manager}, which would start it again, and stopping \
         it there failed: {error}.\nRun `{command}` yourself."
    )]
    StopThroughManager {
        pid: u32,
        manager: String,
        command: String,
        error: ToolError,
    },
    #[error(
        "credd-daemon (pid {pid}) said it would stop but is still running after {}s; `kill \
         {pid}` ends it",
        .waited.as_secs()
    )]
    StopTimedOut { pid: u32, waited: Duration },

    // login
    #[error("reading the MFA code: {0}")]
    MfaCodeUnreadable(io::Error),
    #[error("no MFA code given")]
    MfaCodeEmpty,
    #[error(
        "an MFA code for {serial} is needed and there is no terminal to ask on; pass it with \
         `credd login --mfa-code -` on stdin"
    )]
    MfaNoTerminal { serial: String },
    #[error("cannot watch for Ctrl-C while the login waits: {0}")]
    Signals(io::Error),
    /// `exec`, `env`, `credential-process` need a login and there is no terminal to ask on:
    /// `reason` is the daemon's (`not logged in (...): run `credd login``).
    #[error("{reason}; there is no terminal here to log in on")]
    LoginNoTerminal { reason: String },
    #[error("cannot wait for the other login on demand ({}): {source}", .path.display())]
    LoginTurn { path: PathBuf, source: io::Error },

    // key
    /// `credd key add|import` with no config and no daemon: the key would have nowhere to go.
    #[error(
        "there is no credd config at {} yet, and a key goes with its [access]: write it first \
         (the README's \"Quickstart: an IAM user's key\", step 1), or make it from ~/.aws/config \
         with `credd import`; then run this again",
        .path.display()
    )]
    NoConfigYet { path: PathBuf },
    /// `credd key add`: the key could not be read from the terminal or stdin.
    #[error("{0}")]
    KeyInput(String),

    // import
    #[error("reading {}: {source}", .path.display())]
    ImportRead { path: PathBuf, source: io::Error },
    #[error("cannot import into {}: {why}", .path.display())]
    ImportEdit { path: PathBuf, why: EditError },
    #[error(
        "{} changed while importing (saved by an editor?); nothing was written: run `credd \
         import` again",
        .path.display()
    )]
    ImportConcurrentEdit { path: PathBuf },
    /// `credd import`: the AWS config file is not there.
    #[error(
        "no AWS config file at {} ({}): nothing to import",
        .path.display(),
        .why
    )]
    AwsConfigMissing { path: PathBuf, why: &'static str },
    /// `credd import`: the AWS SDKs would refuse the file too.
    #[error("{0} (the AWS SDKs refuse this file too; fix it, then import)")]
    AwsConfigParse(crate::aws_config::ParseError),
    /// `credd import`: neither the credd config nor the AWS files name an access source.
    #[error(
        "found no way into AWS that credd can hold in {}: no IAM user key, IAM Identity Center          sign-in or web identity role at the root of its profiles (see above)",
        .path.display()
    )]
    ImportNoAccess { path: PathBuf },

    // exec
    #[error("no command given after the profile")]
    NoCommand,
    #[error("cannot run {}: {}", .program.to_string_lossy(), exec_reason(.source))]
    Exec {
        program: OsString,
        source: io::Error,
    },
    /// `credd exec`: the daemon has nothing to serve for the profile, and says why.
    #[error("profile {profile} has no credentials to give: {reason}")]
    ProfileFailing { profile: String, reason: String },

    // docker
    /// `credd docker run` on a network that gives the container no address of its own behind
    /// a Docker gateway (`host`, `none`, another container's): nothing credd could serve it on.
    #[error("{}", refused_network(.network, .profile.as_deref()))]
    DockerNetwork {
        network: String,
        profile: Option<String>,
    },
    /// `--network` (or `--net`) with nothing after it.
    #[error("{flag} needs a value: the name of the Docker network the container joins")]
    DockerNetworkMissing { flag: String },
    /// `credd docker run`: docker started, but waiting for it failed.
    #[error("waiting for {}: {source}", .program.to_string_lossy())]
    Wait {
        program: OsString,
        source: io::Error,
    },

    // switch
    /// The picker of a bare `credd switch` was left without a choice (Esc, Ctrl-C).
    #[error("no profile chosen")]
    NoProfileChosen,
    #[error("no profiles configured: add a [profiles.NAME] table to {}", .config.display())]
    NoProfiles { config: PathBuf },
    #[error("the profile picker failed: {0}")]
    Picker(io::Error),

    // credential-process
    #[error("writing the credentials: {0}")]
    PrintCredentials(serde_json::Error),

    // service
    #[error("cannot find your home directory")]
    NoHomeDir,
    #[error("cannot run credd-daemon {}: {source}", .exe.display())]
    DaemonNotFound { exe: PathBuf, source: io::Error },
    #[error("cannot write the package files to {}: {why}", .path.display())]
    DistFiles { path: PathBuf, why: String },
    /// No user bus: nothing was stopped or written.
    #[error(
        "cannot install credd as a systemd user service: this session has no systemd user \
         manager to talk to ({source}). Nothing was changed: a running credd-daemon keeps \
         running.\nThis happens in WSL, containers and SSH logins without a user session. \
         Either:\n  - have systemd keep a user manager for you: `sudo loginctl enable-linger \
         $USER`, log in again and rerun `credd service install` (WSL: first turn systemd on, \
         `systemd=true` under [boot] in /etc/wsl.conf); or\n  - skip the service: `credd` \
         starts credd-daemon by itself when a command needs it (or run `credd-daemon` \
         yourself, e.g. from your shell profile)."
    )]
    NoServiceManager { source: ToolError },
    #[error("creating {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("writing {}: {source}", .path.display())]
    WriteFile { path: PathBuf, source: io::Error },
    #[error("removing {}: {source}", .path.display())]
    RemoveFile { path: PathBuf, source: io::Error },
    #[error("wrote {}, but enabling the service failed: {source}", .unit.display())]
    ServiceEnable { unit: PathBuf, source: ToolError },
    #[error(
        "the service needs the config's [daemon] listen, but the config cannot be used: {detail}"
    )]
    ServiceConfig { detail: String },
}

impl ClientError {
    /// 127 for a command `credd exec` (or `docker` for `credd docker run`) cannot find, 126 for
    /// one it cannot run (as a shell says), 130 for a picker left with Ctrl-C or Esc, 2 for
    /// `docker run` arguments credd refuses (a usage error, as clap's), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            ClientError::Exec { .. } => 126,
            ClientError::NoProfileChosen => 130,
            ClientError::DockerNetwork { .. } | ClientError::DockerNetworkMissing { .. } => 2,
            _ => 1,
        }
    }

    /// What `--json` puts in `code`: the daemon's own code for its errors (`LoginRequired`,
    /// `UnknownProfile`, as the HTTP errors have them), else this error's variant name.
    pub fn code(&self) -> String {
        match self {
            ClientError::Daemon(e) => serde_json::to_value(e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "Unknown".to_owned()),
            other => <&'static str>::from(other).to_owned(),
        }
    }

    /// `{"code": ..., "message": ...}`, as the HTTP API's errors.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code(), "message": self.to_string() })
    }
}

/// "command not found" as a shell says it; the OS's words otherwise.
fn exec_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "command not found".to_owned(),
        _ => e.to_string(),
    }
}

/// Why `credd docker run` will not run a container on `network`, and what to do instead;
/// `profile` is the one asked for (`None`: the current one).
fn refused_network(network: &str, profile: Option<&str>) -> String {
    match network {
        "host" => format!(
            "credd docker cannot serve `--network host`: the container shares this machine's \
             network, so there is no Docker gateway for credd to listen on and its requests look \
             like any local program's. Give it the host's own route instead:\n  credd exec {} -- \
             sh -c 'exec docker run --network host -e AWS_CONTAINER_CREDENTIALS_FULL_URI -e \
             AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE -v \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:\
             $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:ro\" IMAGE ...'",
            profile.unwrap_or("PROFILE")
        ),
        "none" => "credd docker cannot serve `--network none`: the container has no network, so \
                   it could reach neither credd nor AWS; leave `--network none` out, or name a \
                   Docker network"
            .to_owned(),
        shared => format!(
            "credd docker cannot serve `--network {shared}`: the container would use another's \
             network stack, and credd serves only a container it granted, by that container's \
             own address; run the other container with `credd docker run` instead"
        ),
    }
}

/// Why no daemon is there to talk to.
#[derive(Debug, thiserror::Error)]
pub enum Absence {
    /// The daemon creates the runtime dir when it starts: none has yet.
    #[error("no runtime dir yet")]
    NoRuntimeDir,
    #[error("not running; CREDD_NO_AUTOSTART is set")]
    AutostartOff,
    #[error("{0}")]
    Connect(io::Error),
}

/// How a connected daemon failed to answer.
#[derive(Debug, thiserror::Error)]
pub enum Silence {
    #[error("it closed the connection")]
    Closed,
    #[error("nothing came back within {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("it closed the connection ({0})")]
    Broken(io::Error),
}

/// A service manager's command (`systemctl`, `launchctl`) that did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot run `{tool}`: {source}")]
    Spawn {
        tool: &'static str,
        source: io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_facts() {
        let not_running = ClientError::NotRunning {
            socket: PathBuf::from("/run/credd/control.sock"),
            why: Absence::AutostartOff,
        };
        assert_eq!(
            not_running.to_string(),
            "cannot reach credd-daemon at /run/credd/control.sock (not running; \
             CREDD_NO_AUTOSTART is set).\nStart it with `credd-daemon` (or `systemctl --user \
             start credd` when installed as a service)."
        );
        let start = ClientError::ServiceStart(ToolError::Failed {
            command: "systemctl --user start credd.service".into(),
            stderr: "Unit credd.service not found.".into(),
        });
        assert_eq!(
            start.to_string(),
            "could not start credd-daemon: credd is installed as a service, but starting it \
             failed: `systemctl --user start credd.service` failed: Unit credd.service not found.\n\
             Where there is no service manager to start it (WSL, a container, an SSH login \
             without a user session), run `credd service uninstall`: credd then starts \
             credd-daemon itself when needed."
        );
        let missing = ClientError::DaemonMissing {
            beside: Some(PathBuf::from("/opt/credd/bin")),
            path: vec![PathBuf::from("/usr/bin"), PathBuf::from("/bin")],
        };
        assert_eq!(
            missing.to_string(),
            "credd-daemon is not installed where credd looks for it: not beside credd \
             (/opt/credd/bin) nor in any PATH directory (/usr/bin:/bin).\nInstall both binaries \
             (the credd package has both, or `cargo install --path daemon` from the credd source, \
             next to `cargo install --path client`), or put credd-daemon on PATH."
        );
        let managed = ClientError::StopThroughManager {
            pid: 42,
            manager: "systemd".into(),
            command: "systemctl --user stop credd.service".into(),
            error: ToolError::Failed {
                command: "systemctl --user stop credd.service".into(),
                stderr: "Failed to connect to bus".into(),
            },
        };
        assert_eq!(
            managed.to_string(),
            "credd-daemon (pid 42) is run by systemd, which would start it again, and stopping it \
             there failed: `systemctl --user stop credd.service` failed: Failed to connect to \
             bus.\nRun `systemctl --user stop credd.service` yourself."
        );
        let silent = ClientError::NoAnswer {
            log: PathBuf::from("/l"),
            why: Silence::TimedOut(Duration::from_secs(60)),
        };
        assert!(
            silent
                .to_string()
                .starts_with("credd-daemon did not answer: nothing came back within 60s.\n"),
            "{silent}"
        );
        let odd = ClientError::UnexpectedAnswer {
            request: "switch",
            answer: Box::new(Response::TokenReset),
        };
        assert_eq!(
            odd.to_string(),
            "unexpected answer from the daemon to `switch` (TokenReset) — is the client/daemon up \
             to date?"
        );
    }

    #[test]
    fn json_errors_carry_a_code_and_exec_failures_a_shells_exit_code() {
        let unknown = ClientError::Daemon(ErrorReply::new(
            credd_proto::ErrorCode::UnknownProfile,
            "unknown profile nope",
        ));
        assert_eq!(
            unknown.to_json(),
            serde_json::json!({"code": "UnknownProfile", "message": "unknown profile nope"})
        );
        assert_eq!(unknown.exit_code(), 1);
        let missing = ClientError::Exec {
            program: "nope".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(missing.to_string(), "cannot run nope: command not found");
        assert_eq!(missing.exit_code(), 127);
        assert_eq!(missing.code(), "Exec");
        let denied = ClientError::Exec {
            program: "./x".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(denied.exit_code(), 126);
        assert!(
            denied
                .to_string()
                .starts_with("cannot run ./x: Permission denied")
        );
    }
}
