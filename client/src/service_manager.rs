//! The user's service manager (systemd on Linux, launchd on macOS): where credd's unit lives, whether
//! it is installed, and the manager's own commands to start, enable and disable it. Both
//! `credd service` and the autostart in [`crate::connection`] ask it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{ClientError, ToolError};

const SYSTEMD_UNIT: &str = "credd.service";
const SYSTEMD_SOCKET: &str = "credd.socket";
const LAUNCHD_LABEL: &str = "com.credd.daemon";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    /// This platform's manager.
    pub fn host() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }

    /// Where this manager looks for credd's unit (systemd) or agent (launchd) file.
    pub fn unit_path(self) -> Result<PathBuf, ClientError> {
        let base = directories::BaseDirs::new().ok_or(ClientError::NoHomeDir)?;
        Ok(match self {
            Manager::Systemd => base.config_dir().join("systemd/user").join(SYSTEMD_UNIT),
            Manager::Launchd => base
                .home_dir()
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
        })
    }

    /// Where systemd's socket unit lives beside the service (launchd keeps the socket in the
    /// agent's own plist).
    pub fn socket_path(self) -> Result<Option<PathBuf>, ClientError> {
        Ok(match self {
            Manager::Systemd => Some(self.unit_path()?.with_file_name(SYSTEMD_SOCKET)),
            Manager::Launchd => None,
        })
    }

    /// Whether this session can talk to the manager at all, asked without changing anything: a
    /// systemd user manager needs a user bus, which WSL, containers and SSH logins without a
    /// user session lack (`systemctl --user` then says "Failed to connect to bus"). launchd is
    /// not asked: every macOS login has its agents domain.
    pub fn reachable(self) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => run_tool("systemctl", &["--user", "show-environment"]),
            Manager::Launchd => Ok(()),
        }
    }

    /// Starts the installed service (without waiting for it to be ready).
    pub fn start(self) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => run_tool("systemctl", &["--user", "start", SYSTEMD_UNIT]),
            Manager::Launchd => run_tool("launchctl", &["kickstart", &launchd_target()]),
        }
    }

    /// Has the manager pick up the unit file at `path` (and the socket unit beside it, with
    /// `socket`), then enables and starts it, the socket first: it holds the port from then on.
    pub fn enable(self, path: &Path, socket: bool) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => {
                run_tool("systemctl", &["--user", "daemon-reload"])?;
                if socket {
                    run_tool("systemctl", &["--user", "enable", "--now", SYSTEMD_SOCKET])?;
                }
                run_tool("systemctl", &["--user", "enable", "--now", SYSTEMD_UNIT])
            }
            Manager::Launchd => run_tool(
                "launchctl",
                &["bootstrap", &launchd_domain(), &path.display().to_string()],
            ),
        }
    }

    /// Stops and disables the service.
    pub fn disable(self) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => run_tool(
                "systemctl",
                &["--user", "disable", "--now", SYSTEMD_UNIT, SYSTEMD_SOCKET],
            ),
            Manager::Launchd => run_tool("launchctl", &["bootout", &launchd_target()]),
        }
    }

    /// Stops the running service (`credd stop`); it stays installed, and its socket (systemd's
    /// socket unit, launchd's own) starts it again at the next request.
    pub fn stop(self) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => run_tool("systemctl", &["--user", "stop", SYSTEMD_UNIT]),
            // A clean exit is not restarted (KeepAlive: SuccessfulExit false).
            Manager::Launchd => run_tool("launchctl", &["kill", "SIGTERM", &launchd_target()]),
        }
    }

    /// What [`Manager::stop`] runs, for a person to run it.
    pub fn stop_command(self) -> String {
        match self {
            Manager::Systemd => format!("systemctl --user stop {SYSTEMD_UNIT}"),
            Manager::Launchd => format!("launchctl kill SIGTERM {}", launchd_target()),
        }
    }

    /// Has the manager notice a removed unit file (systemd caches units; launchd does not).
    /// Whether the manager starts credd by itself (systemd: its socket or service is enabled;
    /// launchd: the agent is loaded), asked without changing anything.
    pub fn is_enabled(self) -> Result<(), ToolError> {
        match self {
            Manager::Systemd => run_tool(
                "systemctl",
                &["--user", "is-enabled", "--quiet", SYSTEMD_SOCKET],
            )
            .or_else(|_| {
                run_tool(
                    "systemctl",
                    &["--user", "is-enabled", "--quiet", SYSTEMD_UNIT],
                )
            }),
            Manager::Launchd => run_tool("launchctl", &["print", &launchd_target()]),
        }
    }

    pub fn forget_removed_unit(self) {
        if self == Manager::Systemd {
            let _ = run_tool("systemctl", &["--user", "daemon-reload"]);
        }
    }
}

/// The service manager that owns credd here, if credd is installed as a service.
pub fn installed_manager() -> Option<Manager> {
    let manager = Manager::host();
    manager
        .unit_path()
        .ok()
        .filter(|p| p.is_file())
        .map(|_| manager)
}

fn launchd_domain() -> String {
    format!("gui/{}", credd_proto::paths::current_uid())
}

fn launchd_target() -> String {
    format!("{}/{LAUNCHD_LABEL}", launchd_domain())
}

fn run_tool(tool: &'static str, args: &[&str]) -> Result<(), ToolError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|source| ToolError::Spawn { tool, source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ToolError::Failed {
            command: format!("{tool} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
