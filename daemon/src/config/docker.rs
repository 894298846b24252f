//! `[docker]`: where credd listens for containers granted by `credd docker` (the port on each
//! Docker network's gateway), and which engine it asks about them.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Validator};

/// Where the engine's API socket is unless `[docker] socket` or `DOCKER_HOST` says.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The port credd listens on at each Docker network's gateway address.
    pub port: u16,
    /// The engine's API socket (Docker's, or Podman's Docker-compatible one).
    pub socket: PathBuf,
    /// Whether `socket` was set in the config (else it came from `DOCKER_HOST` or the default).
    pub socket_configured: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        let (socket, _) = default_socket();
        DockerConfig {
            port: credd_proto::docker::DEFAULT_PORT,
            socket,
            socket_configured: false,
        }
    }
}

/// `DOCKER_HOST` when it names a Unix socket (`unix:///run/user/1000/docker.sock`), else
/// [`DEFAULT_SOCKET`]; and whether it came from `DOCKER_HOST`.
pub fn default_socket() -> (PathBuf, bool) {
    match std::env::var("DOCKER_HOST")
        .ok()
        .as_deref()
        .and_then(unix_socket)
    {
        Some(path) => (path, true),
        None => (PathBuf::from(DEFAULT_SOCKET), false),
    }
}

/// The socket path a `DOCKER_HOST` value names, when it is `unix://PATH`.
pub fn unix_socket(docker_host: &str) -> Option<PathBuf> {
    docker_host
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocker {
    port: Option<Spanned<i64>>,
    socket: Option<Spanned<String>>,
}

impl Validator<'_> {
    pub(super) fn docker(&self, raw: RawDocker) -> Result<DockerConfig, ConfigError> {
        let mut config = DockerConfig::default();
        if let Some(port) = raw.port {
            config.port = u16::try_from(*port.get_ref())
                .ok()
                .filter(|p| *p >= 1024)
                .ok_or_else(|| {
                    self.at(
                        &port,
                        format!(
                            "port must be 1024 to 65535 (credd binds it as your user, on each \
                             Docker network's gateway), found {}",
                            port.get_ref()
                        ),
                    )
                })?;
        }
        if let Some(socket) = raw.socket {
            let text = socket.get_ref();
            let path = unix_socket(text).unwrap_or_else(|| PathBuf::from(text));
            if !path.is_absolute() {
                return Err(self.at(
                    &socket,
                    format!(
                        "socket must be the absolute path of the engine's API socket (or \
                         unix:///PATH), e.g. \"{DEFAULT_SOCKET}\"; found {text:?}"
                    ),
                ));
            }
            config.socket = path;
            config.socket_configured = true;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{err as parse_err, ok as parse_ok};

    const BASE: &str = "[access]\nsource = \"iam-user\"\naws_profile = \"access\"\n";

    #[test]
    fn defaults_and_a_configured_port_and_socket() {
        let c = parse_ok(BASE);
        assert_eq!(c.docker.port, 9912);
        let c = parse_ok(&format!(
            "{BASE}[docker]\nport = 19912\nsocket = \"unix:///run/user/1000/docker.sock\"\n"
        ));
        assert_eq!(c.docker.port, 19912);
        assert_eq!(
            c.docker.socket,
            std::path::Path::new("/run/user/1000/docker.sock")
        );
        assert!(c.docker.socket_configured);
    }

    #[test]
    fn a_privileged_port_or_a_relative_socket_is_refused_with_the_reason() {
        let e = parse_err(&format!("{BASE}[docker]\nport = 80\n"));
        assert!(e.msg.contains("port must be 1024 to 65535"), "{e}");
        assert_eq!(e.line, Some(5));
        let e = parse_err(&format!("{BASE}[docker]\nsocket = \"docker.sock\"\n"));
        assert!(e.msg.contains("absolute path"), "{e}");
        let e = parse_err(&format!("{BASE}[docker]\nlisten = 1\n"));
        assert!(e.msg.contains("unknown field"), "{e}");
    }
}
