//! `credd service install|uninstall`: the systemd user unit or launchd agent from packaging/,
//! filled in with this install's paths, written to the user's unit dir and (unless
//! `--files-only`) enabled and started. The service manager also holds the HTTP port (systemd's
//! `credd.socket`, launchd's `Sockets`) and hands it to the daemon at every start, so a restart
//! never frees it for another user to take.

use std::net::SocketAddr;
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
const SYSTEMD_SOCKET_TEMPLATE: &str = include_str!("../../../packaging/credd.socket");
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
    let socket_path = manager.socket_path()?;
    let mut done = Vec::new();
    if installing {
        // Before anything is stopped or written: without a reachable service manager the install
        // could only half happen (and a half-installed unit makes every later command try to
        // start the service).
        if !opts.files_only {
            manager
                .reachable()
                .map_err(|source| ClientError::NoServiceManager { source })?;
        }
        let exe = connection::daemon_exe()?;
        let daemon = std::fs::canonicalize(&exe)
            .map_err(|source| ClientError::DaemonNotFound { exe, source })?;
        let listen = listen_address(&daemon, paths)?;
        // Port 0 is chosen anew at each start: nothing for the service manager to hold.
        let held = (listen.port() != 0).then_some(listen);
        let files = render(
            manager,
            &Install {
                daemon: &daemon,
                log: &paths.log_file(),
                env: &carried_env(paths),
                listen: held,
            },
        );
        if let Some(dir) = path.parent() {
            create_dir(dir)?;
        }
        write(&path, &files.unit)?;
        done.push(format!("wrote {}", path.display()));
        match (&socket_path, &files.socket) {
            (Some(socket_path), Some(socket)) => {
                write(socket_path, socket)?;
                done.push(format!("wrote {}", socket_path.display()));
            }
            (Some(socket_path), None) => {
                remove(socket_path)?;
            }
            _ => {}
        }
        if held.is_none() {
            done.push(
                "note: [daemon] listen has port 0, so the service manager cannot hold the port \
                 while the daemon restarts; set a fixed port to have it do so"
                    .to_owned(),
            );
        }
        // launchd opens StandardErrorPath itself and creates no directory for it.
        if manager == Manager::Launchd
            && let Some(dir) = paths.log_file().parent()
        {
            create_dir(dir)?;
        }
        if !opts.files_only {
            stop_running_daemon(paths);
            manager
                .enable(&path, files.socket.is_some())
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
        if remove(&path)? {
            done.push(format!("removed {}", path.display()));
        } else {
            done.push(format!("{} was not installed", path.display()));
        }
        if let Some(socket_path) = &socket_path
            && remove(socket_path)?
        {
            done.push(format!("removed {}", socket_path.display()));
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

fn write(path: &Path, text: &str) -> Result<(), ClientError> {
    std::fs::write(path, text).map_err(|source| ClientError::WriteFile {
        path: path.to_owned(),
        source,
    })
}

/// Whether there was a file to remove.
fn remove(path: &Path) -> Result<bool, ClientError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ClientError::RemoveFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Where the HTTP API listens with this config, as the daemon itself reads the config.
pub(crate) fn listen_address(daemon: &Path, paths: &Paths) -> Result<SocketAddr, ClientError> {
    let out = std::process::Command::new(daemon)
        .arg("--listen-address")
        .env(credd_proto::paths::ENV_CONFIG, &paths.config)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ClientError::DaemonNotFound {
            exe: daemon.to_owned(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.trim().parse() {
        Ok(addr) if out.status.success() => Ok(addr),
        _ => Err(ClientError::ServiceConfig {
            detail: String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("credd-daemon: ")
                .to_owned(),
        }),
    }
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

/// What the templates are filled with.
pub struct Install<'a> {
    pub daemon: &'a Path,
    pub log: &'a Path,
    pub env: &'a [(String, String)],
    /// The HTTP port for the service manager to hold (`None`: the daemon binds it itself).
    pub listen: Option<SocketAddr>,
}

/// The filled templates: the unit or agent, and systemd's socket unit.
pub struct Files {
    pub unit: String,
    pub socket: Option<String>,
}

/// Fills the templates from packaging/.
pub fn render(manager: Manager, install: &Install) -> Files {
    match manager {
        Manager::Systemd => {
            let environment: String = install
                .env
                .iter()
                .map(|(k, v)| format!("Environment=\"{}\"\n", systemd_escape(&format!("{k}={v}"))))
                .collect();
            let unit = SYSTEMD_TEMPLATE
                .replace(
                    "@EXEC_START@",
                    &format!(
                        "\"{}\" --foreground",
                        systemd_escape(&install.daemon.display().to_string())
                    ),
                )
                .replace("@ENVIRONMENT@", &environment)
                .replace(
                    "@SOCKET@",
                    if install.listen.is_some() {
                        "Requires=credd.socket\nAfter=credd.socket\n"
                    } else {
                        ""
                    },
                );
            let socket = install.listen.map(|addr| {
                SYSTEMD_SOCKET_TEMPLATE
                    .replace("@LISTEN@", &addr.to_string())
                    .replace(
                        "@BIND_IPV6_ONLY@",
                        if addr.is_ipv6() {
                            "BindIPv6Only=ipv6-only\n"
                        } else {
                            ""
                        },
                    )
            });
            Files { unit, socket }
        }
        Manager::Launchd => {
            let environment = if install.env.is_empty() {
                String::new()
            } else {
                let pairs: String = install
                    .env
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
            let sockets = install.listen.map_or_else(String::new, |addr| {
                format!(
                    "    <key>Sockets</key>\n    <dict>\n        <key>Listeners</key>\n        \
                     <dict>\n            <key>SockNodeName</key>\n            <string>{}</string>\n            \
                     <key>SockServiceName</key>\n            <string>{}</string>\n            \
                     <key>SockType</key>\n            <string>stream</string>\n            \
                     <key>SockFamily</key>\n            <string>{}</string>\n        </dict>\n    \
                     </dict>\n",
                    addr.ip(),
                    addr.port(),
                    if addr.is_ipv6() { "IPv6" } else { "IPv4" }
                )
            });
            let unit = LAUNCHD_TEMPLATE
                .replace(
                    "@DAEMON@",
                    &xml_escape(&install.daemon.display().to_string()),
                )
                .replace("@LOG@", &xml_escape(&install.log.display().to_string()))
                .replace("@ENVIRONMENT@", &environment)
                .replace("@SOCKETS@", &sockets);
            Files { unit, socket: None }
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
        let files = render(
            Manager::Systemd,
            &Install {
                daemon: Path::new("/opt/credd/bin/credd-daemon"),
                log: Path::new("/l"),
                env: &env,
                listen: Some("127.0.0.1:9911".parse().unwrap()),
            },
        );
        let unit = files.unit;
        assert!(
            unit.contains("Requires=credd.socket\nAfter=credd.socket\n"),
            "{unit}"
        );
        let socket = files.socket.expect("a socket unit");
        assert!(
            socket.contains("\nListenStream=127.0.0.1:9911\n"),
            "{socket}"
        );
        assert!(
            !socket.contains('@') && !socket.contains("BindIPv6Only"),
            "{socket}"
        );
        let v6 = render(
            Manager::Systemd,
            &Install {
                listen: Some("[::1]:9911".parse().unwrap()),
                daemon: Path::new("/d"),
                log: Path::new("/l"),
                env: &[],
            },
        );
        let socket = v6.socket.expect("a socket unit");
        assert!(
            socket.contains("ListenStream=[::1]:9911\nBindIPv6Only=ipv6-only\n"),
            "{socket}"
        );
        let unheld = render(
            Manager::Systemd,
            &Install {
                listen: None,
                daemon: Path::new("/d"),
                log: Path::new("/l"),
                env: &[],
            },
        );
        assert!(unheld.socket.is_none());
        assert!(!unheld.unit.contains("credd.socket") && !unheld.unit.contains("@SOCKET@"));
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
            &Install {
                daemon: Path::new("/Apps/a&b/credd-daemon"),
                log: Path::new("/l.log"),
                env: &[],
                listen: Some("127.0.0.1:9911".parse().unwrap()),
            },
        )
        .unit;
        assert!(
            plist.contains("<key>SockServiceName</key>\n            <string>9911</string>"),
            "{plist}"
        );
        assert!(!plist.contains('@'), "{plist}");
        assert!(
            plist.contains("<string>/Apps/a&amp;b/credd-daemon</string>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/l.log</string>"), "{plist}");
        assert!(!plist.contains("@ENVIRONMENT@"), "{plist}");
    }
}
