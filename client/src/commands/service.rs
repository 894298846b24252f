//! `credd service install|uninstall`: the systemd user unit or launchd agent from packaging/,
//! filled in with this install's paths, written to the user's unit dir and (unless
//! `--files-only`) enabled and started.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use credd_proto::paths::Paths;
use credd_proto::{Request, Response};

use crate::connection::{self, Connection};
use crate::error::ClientError;
use crate::output;
use crate::service_manager::Manager;

const SYSTEMD_TEMPLATE: &str = include_str!("../../../packaging/credd.service");
const LAUNCHD_TEMPLATE: &str = include_str!("../../../packaging/com.credd.daemon.plist");

/// The service manager's environment is not the shell's: these are carried into the unit when
/// set at install time.
const CARRIED_ENV: &[&str] = &[
    "CREDD_CONFIG",
    "CREDD_RUNTIME_DIR",
    "CREDD_STATE_DIR",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
];

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write the unit/agent file and enable it.
    Install {
        #[command(flatten)]
        opts: Opts,
    },
    /// Disable and remove it.
    Uninstall {
        #[command(flatten)]
        opts: Opts,
    },
}

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Which service manager (default: systemd on Linux, launchd on macOS).
    #[arg(long, value_enum)]
    manager: Option<Manager>,
    /// Only write/remove the file; do not talk to the service manager.
    #[arg(long)]
    files_only: bool,
}

pub fn run(paths: &Paths, json: bool, action: Action) -> Result<ExitCode, ClientError> {
    let (installing, opts) = match action {
        Action::Install { opts } => (true, opts),
        Action::Uninstall { opts } => (false, opts),
    };
    let manager = opts.manager.unwrap_or_else(Manager::host);
    let path = manager.unit_path()?;
    let mut done = Vec::new();
    if installing {
        let daemon =
            std::fs::canonicalize(connection::daemon_exe()).map_err(ClientError::DaemonNotFound)?;
        let text = render(manager, &daemon, &paths.log_file(), &carried_env(paths));
        if let Some(dir) = path.parent() {
            create_dir(dir)?;
        }
        std::fs::write(&path, text).map_err(|source| ClientError::WriteFile {
            path: path.clone(),
            source,
        })?;
        // launchd opens StandardErrorPath itself and creates no directory for it.
        if manager == Manager::Launchd
            && let Some(dir) = paths.log_file().parent()
        {
            create_dir(dir)?;
        }
        done.push(format!("wrote {}", path.display()));
        if !opts.files_only {
            stop_running_daemon(paths);
            manager
                .enable(&path)
                .map_err(|source| ClientError::ServiceEnable {
                    unit: path.clone(),
                    source,
                })?;
            done.push("enabled and started it".to_owned());
        }
    } else {
        if !opts.files_only
            && let Err(e) = manager.disable()
        {
            done.push(format!("note: {e}"));
        }
        match std::fs::remove_file(&path) {
            Ok(()) => done.push(format!("removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                done.push(format!("{} was not installed", path.display()))
            }
            Err(source) => return Err(ClientError::RemoveFile { path, source }),
        }
        if !opts.files_only {
            manager.forget_removed_unit();
        }
    }
    if json {
        output::json(&serde_json::json!({ "path": path, "done": done }));
    } else {
        for line in done {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_dir(dir: &Path) -> Result<(), ClientError> {
    std::fs::create_dir_all(dir).map_err(|source| ClientError::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

fn carried_env(paths: &Paths) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = CARRIED_ENV
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v))
        })
        .collect();
    // `--config` given to this command is meant for the service too.
    if !env.iter().any(|(k, _)| k == "CREDD_CONFIG") && paths.config != Paths::resolve(None).config
    {
        env.push(("CREDD_CONFIG".into(), paths.config.display().to_string()));
    }
    env
}

/// Fills the template from packaging/.
pub fn render(manager: Manager, daemon: &Path, log: &Path, env: &[(String, String)]) -> String {
    match manager {
        Manager::Systemd => {
            let environment: String = env
                .iter()
                .map(|(k, v)| format!("Environment=\"{}\"\n", systemd_escape(&format!("{k}={v}"))))
                .collect();
            SYSTEMD_TEMPLATE
                .replace(
                    "@EXEC_START@",
                    &format!(
                        "\"{}\" --foreground",
                        systemd_escape(&daemon.display().to_string())
                    ),
                )
                .replace("@ENVIRONMENT@", &environment)
        }
        Manager::Launchd => {
            let environment = if env.is_empty() {
                String::new()
            } else {
                let pairs: String = env
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "        <key>{}</key>\n        <string>{}</string>\n",
                            xml_escape(k),
                            xml_escape(v)
                        )
                    })
                    .collect();
                format!("    <key>EnvironmentVariables</key>\n    <dict>\n{pairs}    </dict>\n")
            };
            LAUNCHD_TEMPLATE
                .replace("@DAEMON@", &xml_escape(&daemon.display().to_string()))
                .replace("@LOG@", &xml_escape(&log.display().to_string()))
                .replace("@ENVIRONMENT@", &environment)
        }
    }
}

fn systemd_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A daemon started by hand holds the runtime dir; the service's own must replace it.
fn stop_running_daemon(paths: &Paths) {
    let Ok(mut conn) = Connection::open_existing(paths) else {
        return;
    };
    if let Ok(Response::Status(report)) = conn.request(&Request::Status)
        && let Ok(pid) = i32::try_from(report.pid)
    {
        {
            // SAFETY: kill only sends a signal to the daemon's pid, which it just told us.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let socket = paths.socket();
            for _ in 0..100 {
                if !socket.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_unit_is_filled_and_escaped() {
        let env = vec![("CREDD_CONFIG".to_owned(), "/h/a b/100%.toml".to_owned())];
        let unit = render(
            Manager::Systemd,
            Path::new("/opt/credd/bin/credd-daemon"),
            Path::new("/l"),
            &env,
        );
        assert!(
            unit.contains("ExecStart=\"/opt/credd/bin/credd-daemon\" --foreground\n"),
            "{unit}"
        );
        assert!(
            unit.contains("Environment=\"CREDD_CONFIG=/h/a b/100%%.toml\"\nRestart=on-failure"),
            "{unit}"
        );
        assert!(
            !unit.contains("@EXEC_START@") && !unit.contains("@ENVIRONMENT@"),
            "{unit}"
        );
    }

    #[test]
    fn launchd_plist_is_filled_and_escaped() {
        let plist = render(
            Manager::Launchd,
            Path::new("/Apps/a&b/credd-daemon"),
            Path::new("/l.log"),
            &[],
        );
        assert!(
            plist.contains("<string>/Apps/a&amp;b/credd-daemon</string>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/l.log</string>"), "{plist}");
        assert!(!plist.contains("@ENVIRONMENT@"), "{plist}");
    }
}
