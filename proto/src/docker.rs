//! Credentials for local containers (`credd docker run`, `credd docker env`): a grant is a random
//! capability the client hands a container as [`GRANT_ENV`]; the daemon serves a connection on a
//! Docker network's gateway only when the Docker engine says it comes from a running container
//! whose own environment holds a live grant. Each container that takes one is pinned to the
//! grant's profile until it stops.

use serde::{Deserialize, Serialize};

use crate::{Secret, UnixTime};

/// The variable a container holds its grant in (set by `credd docker run`, or by the env file
/// `credd docker env` prints). Only the engine's own record of the container's environment is
/// believed, never what a request says.
pub const GRANT_ENV: &str = "CREDD_GRANT";

/// The port credd listens on at each Docker network's gateway unless `[docker] port` says.
pub const DEFAULT_PORT: u16 = 9912;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// `None`: the current profile, pinned as it is now.
    pub profile: Option<String>,
    /// The Docker network the container joins (`--network`); `None`: the default bridge.
    pub network: Option<String>,
    /// `credd docker env`: any number of containers may take it until it is revoked; otherwise
    /// the first container to take it is the only one (`credd docker run`).
    pub standing: bool,
    /// The engine the client's `docker` talks to (`DOCKER_HOST`), so that the daemon asks the
    /// same one about the container.
    pub docker_host: Option<String>,
}

/// What a container needs to reach credd with the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The capability itself: put in the container's environment as [`GRANT_ENV`], never on a
    /// command line.
    pub secret: Secret,
    /// A short public name for it (`credd docker revoke ID`, status, the audit log).
    pub id: String,
    pub profile: String,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT` inside the container: `http://GATEWAY:PORT/`.
    pub endpoint: String,
    pub network: String,
    /// The profile's region, for `AWS_REGION`.
    pub region: Option<String>,
    pub standing: bool,
}

impl Grant {
    /// The environment a container gets besides [`GRANT_ENV`] (the secret, handed over apart
    /// from these), in order.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", self.endpoint.clone()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv4".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "false".to_owned()),
        ];
        if let Some(region) = &self.region {
            env.push(("AWS_REGION", region.clone()));
            env.push(("AWS_DEFAULT_REGION", region.clone()));
        }
        env
    }
}

/// `credd docker revoke`: a grant by ID (and every container that took it), or all of them.
/// `unclaimed_only`: only a grant no container has taken (what `credd docker run` sends when its
/// `docker run` ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub id: Option<String>,
    pub all: bool,
    pub unclaimed_only: bool,
}

/// What `credd status` shows of containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerStatus {
    /// The engine socket the daemon asks.
    pub engine: String,
    /// `http://172.17.0.1:9912/`: where credd listens for containers.
    pub endpoints: Vec<String>,
    pub grants: Vec<GrantStatus>,
    /// Containers that hold a grant now.
    pub containers: Vec<ContainerGrant>,
    /// Why containers cannot be served now (the engine is unreachable...).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantStatus {
    pub id: String,
    pub profile: String,
    pub standing: bool,
    pub created_at: UnixTime,
    /// How many running containers hold it.
    pub containers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerGrant {
    pub id: String,
    pub name: String,
    pub image: String,
    pub profile: String,
    pub grant: String,
    /// Its address on the network it reaches credd through.
    pub address: String,
    pub since: UnixTime,
}
