//! The few questions credd asks the Docker engine (Docker's API socket, or Podman's
//! Docker-compatible one), through bollard: a network's gateway, which running container has an
//! address on it, what grant its own environment holds, and when containers stop.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

/// Seconds any one call may take: the engine answers these in milliseconds when it is well.
const TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot reach the Docker engine at {}: {reason}. Is it running, and may you use it \
         (`docker info` tells; on Linux your user must be in the docker group)? If it listens \
         elsewhere, set [docker] socket",
        socket.display()
    )]
    Unreachable { socket: PathBuf, reason: String },
    #[error("the Docker engine has no network {0:?} (`docker network ls` lists them)")]
    NoNetwork(String),
    #[error(
        "the Docker network {network:?} (driver {driver}) has no IPv4 gateway on this machine for \
         credd to listen on; use a bridge network (the default, or `docker network create NAME`)"
    )]
    NoGateway { network: String, driver: String },
    #[error("the Docker engine at {} answered: {reason}", socket.display())]
    Engine { socket: PathBuf, reason: String },
}

/// A network containers reach credd through: its gateway is this machine's address on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub gateway: Ipv4Addr,
}

/// A running container, as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// What it was started from, as given (`amazon/aws-cli`).
    pub image: String,
    /// The SHA-256 of the grant its environment holds (`CREDD_GRANT`), if any: the grant itself
    /// is not kept.
    pub grant: Option<[u8; 32]>,
    /// Its address on each network it joined, by network ID.
    pub addresses: HashMap<String, Ipv4Addr>,
}

/// What the events stream says that matters to grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The container stopped (or was removed, or left a network): its grant ends.
    Gone(String),
    /// A container started: an address refused a moment ago may be a new container's now, and
    /// it may hold a grant.
    Started(String),
}

pub struct Api {
    docker: Docker,
    pub socket: PathBuf,
}

/// The grant's digest, as [`Found::grant`] and the grant table keep it.
pub fn digest(grant: &str) -> [u8; 32] {
    Sha256::digest(grant.as_bytes()).into()
}

impl Api {
    /// Connects and agrees on an API version the engine speaks (Debian's 20.10 tops out at
    /// 1.41; current engines refuse anything older than 1.44).
    pub async fn connect(socket: &Path) -> Result<Api, ApiError> {
        let unreachable = |reason: String| ApiError::Unreachable {
            socket: socket.to_owned(),
            reason,
        };
        let path = socket
            .to_str()
            .ok_or_else(|| unreachable("the path is not UTF-8".into()))?;
        let docker = Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Api {
            docker,
            socket: socket.to_owned(),
        })
    }

    fn failed(&self, e: bollard::errors::Error) -> ApiError {
        use bollard::errors::Error;
        match e {
            Error::DockerResponseServerError { message, .. } => ApiError::Engine {
                socket: self.socket.clone(),
                reason: message,
            },
            other => ApiError::Unreachable {
                socket: self.socket.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// The network `name` (or ID) and its IPv4 gateway.
    pub async fn network(&self, name: &str) -> Result<Network, ApiError> {
        let net = match self.docker.inspect_network(name, None).await {
            Ok(net) => net,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Err(ApiError::NoNetwork(name.to_owned())),
            Err(e) => return Err(self.failed(e)),
        };
        let gateway = net
            .ipam
            .as_ref()
            .and_then(|ipam| ipam.config.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|c| c.gateway.as_deref())
            .find_map(|g| g.parse::<Ipv4Addr>().ok())
            // Docker 20.10 does not always name the default bridge's gateway: it is the
            // bridge interface's own address.
            .or_else(|| {
                let bridge = net
                    .options
                    .as_ref()?
                    .get("com.docker.network.bridge.name")?;
                interface_address(bridge)
            });
        match (net.id, gateway) {
            (Some(id), Some(gateway)) => Ok(Network {
                id,
                name: net.name.unwrap_or_else(|| name.to_owned()),
                gateway,
            }),
            _ => Err(ApiError::NoGateway {
                network: name.to_owned(),
                driver: net.driver.unwrap_or_else(|| "unknown".into()),
            }),
        }
    }

    /// The running container that has `address` on network `network_id`, if any.
    pub async fn container_at(
        &self,
        network_id: &str,
        address: Ipv4Addr,
    ) -> Result<Option<Found>, ApiError> {
        let list = self.list_running(Some(network_id)).await?;
        let wanted = address.to_string();
        let id = list.into_iter().find_map(|c| {
            let on_it = c
                .network_settings?
                .networks?
                .into_values()
                .any(|e| e.ip_address.as_deref() == Some(wanted.as_str()));
            on_it.then_some(c.id).flatten()
        });
        match id {
            Some(id) => self.running(&id).await,
            None => Ok(None),
        }
    }

    /// Every running container.
    pub async fn all_running(&self) -> Result<Vec<Found>, ApiError> {
        let list = self.list_running(None).await?;
        let mut found = Vec::with_capacity(list.len());
        for id in list.into_iter().filter_map(|c| c.id) {
            if let Some(f) = self.running(&id).await? {
                found.push(f);
            }
        }
        Ok(found)
    }

    /// The running containers (on `network_id`, when given), as the list describes them.
    async fn list_running(
        &self,
        network_id: Option<&str>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, ApiError> {
        let mut filters = HashMap::from([("status".to_owned(), vec!["running".to_owned()])]);
        if let Some(network) = network_id {
            filters.insert("network".to_owned(), vec![network.to_owned()]);
        }
        self.docker
            .list_containers(Some(ListContainersOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.failed(e))
    }

    /// The container `id` if it is running.
    pub async fn running(&self, id: &str) -> Result<Option<Found>, ApiError> {
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.failed(e)),
        };
        if !c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            return Ok(None);
        }
        let config = c.config.unwrap_or_default();
        // Only the grant's digest is kept; the rest of the container's environment (its owner's
        // business, secrets maybe) is dropped with the answer and never logged.
        let grant = config.env.unwrap_or_default().iter().find_map(|var| {
            let (name, value) = var.split_once('=')?;
            (name == credd_proto::docker::GRANT_ENV).then(|| digest(value))
        });
        let addresses = c
            .network_settings
            .and_then(|s| s.networks)
            .unwrap_or_default()
            .into_values()
            .filter_map(|e| Some((e.network_id?, e.ip_address?.parse().ok()?)))
            .collect();
        Ok(Some(Found {
            id: c.id.unwrap_or_else(|| id.to_owned()),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            image: config.image.unwrap_or_default(),
            grant,
            addresses,
        }))
    }

    /// Containers stopping, removed or leaving a network, and starting, as they happen.
    pub fn changes(&self) -> impl Stream<Item = Result<Change, ApiError>> + use<> {
        let filters = HashMap::from([
            (
                "type".to_owned(),
                vec!["container".to_owned(), "network".to_owned()],
            ),
            (
                "event".to_owned(),
                ["start", "die", "destroy", "disconnect"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        let socket = self.socket.clone();
        self.docker
            .events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(move |event| {
                let socket = socket.clone();
                async move {
                    let event = match event {
                        Ok(event) => event,
                        Err(e) => {
                            return Some(Err(ApiError::Unreachable {
                                socket,
                                reason: e.to_string(),
                            }));
                        }
                    };
                    let actor = event.actor?;
                    match event.action.as_deref()? {
                        "start" => actor.id.map(|id| Ok(Change::Started(id))),
                        "die" | "destroy" => actor.id.map(|id| Ok(Change::Gone(id))),
                        "disconnect" => actor
                            .attributes?
                            .remove("container")
                            .map(|id| Ok(Change::Gone(id))),
                        _ => None,
                    }
                }
            })
    }
}

/// The IPv4 address of the interface `name` on this machine.
fn interface_address(name: &str) -> Option<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .filter(|i| i.name == name)
        .find_map(|i| match i.ip() {
            std::net::IpAddr::V4(ip) => Some(ip),
            std::net::IpAddr::V6(_) => None,
        })
}
