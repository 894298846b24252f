//! Credentials for local containers (`credd docker run`, `credd docker env`).
//!
//! A container cannot reach the host's loopback, and SDKs take the container-credentials route
//! over plain http only to loopback and the ECS/EKS link-local addresses; the IMDS endpoint may be
//! any http URL. So credd listens, as its user and without root, on each Docker network's gateway
//! address (the host's side of the bridge) with the IMDSv2 routes ([`crate::http::docker`]), and
//! serves a connection only when the engine says it comes from a running container whose own
//! environment holds a live grant ([`grants`]). Every new connection is checked with the engine
//! (which container is at this address now, and what grant does it hold?), not by its address
//! alone; the engine's events end a container's claim as it stops.
//!
//! A grant is a random secret the client puts in the container's environment (never on a command
//! line); the table and its file keep only its digest. Nothing runs until the first grant: no
//! engine connection, no listener.

pub mod api;
pub mod grants;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use credd_proto::docker::{ContainerGrant, DockerStatus, Grant, GrantRequest, GrantStatus};
use credd_proto::{Secret, audit::rfc3339};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, unix_socket};
use crate::listener::{BindError, Listener};
use crate::lock;
use api::{Api, ApiError, Change};
use grants::{Claim, GrantEntry, Grants, short_id};

/// A container served through a grant, as the audit log and status name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    /// The grant's ID.
    pub grant: String,
}

/// How long an address found to hold no grant is refused without asking the engine again (a
/// container opening connection after connection must not make the engine list containers for
/// each); a container starting anywhere clears it.
const REFUSED_FOR: Duration = Duration::from_secs(1);
/// A `credd docker run` grant that no container took within this long is forgotten: the client
/// that asked for it was killed before it could say (a `docker pull` takes minutes, not hours).
const UNCLAIMED_FOR: Duration = Duration::from_secs(3600);
/// Between attempts to reach the engine's events again.
const RECONNECT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "your docker talks to the engine at {theirs} (DOCKER_HOST) but credd asks the one at {}: \
         set [docker] socket = \"{theirs}\" in the config (then `credd reload`), or unset \
         DOCKER_HOST",
        ours.display()
    )]
    OtherEngine { theirs: String, ours: PathBuf },
    #[error(
        "DOCKER_HOST={0} names an engine that is not on this machine's Unix socket: credd serves \
         containers of a local engine only"
    )]
    Remote(String),
    #[error("cannot listen for containers: {0}")]
    Bind(#[from] BindError),
    #[error("could not make a grant: no randomness from the OS")]
    NoRandomness,
}

#[derive(Clone)]
pub struct Containers(Arc<Inner>);

struct Inner {
    config: watch::Receiver<Arc<Config>>,
    file: PathBuf,
    state: Mutex<State>,
    /// Connected at the first need; replaced when the configured socket changes.
    api: tokio::sync::Mutex<Option<Arc<Api>>>,
    /// One engine lookup at a time: a flood of connections is one lookup after another, and
    /// the second for an address finds the first's answer.
    lookups: tokio::sync::Mutex<()>,
    refused: Mutex<HashMap<(Ipv4Addr, SocketAddr), Instant>>,
    listeners_tx: mpsc::UnboundedSender<Listener>,
    listeners_rx: Mutex<Option<mpsc::UnboundedReceiver<Listener>>>,
    watching: AtomicBool,
}

#[derive(Default)]
struct State {
    grants: Grants,
    /// Where credd listens for containers, and the network each is on.
    listening: BTreeMap<SocketAddr, api::Network>,
    /// The engine asked, once it was.
    engine: Option<PathBuf>,
    /// Why containers cannot be served now.
    error: Option<String>,
}

/// What the file keeps (digests of the grants, never the grants).
#[derive(Serialize, Deserialize)]
struct Saved<G> {
    grants: G,
}

impl Containers {
    /// The grants remembered in `file` are loaded, not yet served: [`Containers::resume`].
    pub fn new(config: watch::Receiver<Arc<Config>>, file: PathBuf) -> Containers {
        let grants = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Saved<Grants>>(&bytes) {
                Ok(saved) => saved.grants,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "docker: the remembered grants cannot be read; starting with none");
                    Grants::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Grants::default(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "docker: the remembered grants cannot be read; starting with none");
                Grants::default()
            }
        };
        let (listeners_tx, listeners_rx) = mpsc::unbounded_channel();
        Containers(Arc::new(Inner {
            config,
            file,
            state: Mutex::new(State {
                grants,
                ..State::default()
            }),
            api: tokio::sync::Mutex::new(None),
            lookups: tokio::sync::Mutex::new(()),
            refused: Mutex::new(HashMap::new()),
            listeners_tx,
            listeners_rx: Mutex::new(Some(listeners_rx)),
            watching: AtomicBool::new(false),
        }))
    }

    /// The listeners to serve, as they are bound ([`crate::http::docker::serve_all`]); once.
    pub fn take_listeners(&self) -> Option<mpsc::UnboundedReceiver<Listener>> {
        lock::lock(&self.0.listeners_rx).take()
    }

    /// After a restart: the containers still running keep their grants, served again.
    pub fn resume(&self) {
        if lock::lock(&self.0.state).grants.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.serve_remembered().await {
                tracing::warn!(error = %e, "docker: cannot serve the remembered grants yet");
                lock::lock(&this.0.state).error = Some(e.to_string());
            }
        });
    }

    async fn serve_remembered(&self) -> Result<(), DockerError> {
        let api = self.api().await?;
        self.watch(&api);
        self.reconcile(&api).await;
        let networks: Vec<String> = {
            let state = lock::lock(&self.0.state);
            let mut n: Vec<String> = state.grants.networks().map(str::to_owned).collect();
            n.extend(state.grants.claims().map(|c| c.network_id.clone()));
            n.sort();
            n.dedup();
            n
        };
        for network in networks {
            if let Err(e) = self.listen_on(&api, &network).await {
                tracing::warn!(network, error = %e, "docker: cannot listen for the remembered grants");
            }
        }
        Ok(())
    }

    /// A grant of `profile` (already checked to be configured; `region` is its region) for the
    /// container(s) the client starts.
    pub async fn grant(
        &self,
        request: &GrantRequest,
        profile: String,
        region: Option<String>,
    ) -> Result<Grant, DockerError> {
        let ours = self.0.config.borrow().docker.socket.clone();
        if let Some(theirs) = request.docker_host.as_deref().filter(|h| !h.is_empty()) {
            match unix_socket(theirs) {
                Some(path) if path == ours => {}
                Some(_) => {
                    return Err(DockerError::OtherEngine {
                        theirs: theirs.to_owned(),
                        ours,
                    });
                }
                None => return Err(DockerError::Remote(theirs.to_owned())),
            }
        }
        let api = self.api().await?;
        self.watch(&api);
        let (listener, network) = match request.network.as_deref() {
            Some(network) => self.listen_on(&api, network).await?,
            // Docker's default network, else Podman's.
            None => match self.listen_on(&api, "bridge").await {
                Err(DockerError::Api(ApiError::NoNetwork(_))) => {
                    self.listen_on(&api, "podman").await?
                }
                other => other?,
            },
        };
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| DockerError::NoRandomness)?;
        let secret = Secret::new(hex::encode(raw));
        zeroize::Zeroize::zeroize(&mut raw);
        let entry = GrantEntry {
            digest: api::digest(secret.expose()),
            profile: profile.clone(),
            network: network.name.clone(),
            standing: request.standing,
            created: SystemTime::now(),
        };
        let id = {
            let mut state = lock::lock(&self.0.state);
            state
                .grants
                .expire_unclaimed(SystemTime::now(), UNCLAIMED_FOR);
            let id = state.grants.add(entry);
            self.save(&state);
            id
        };
        tracing::info!(
            grant = %id,
            profile,
            network = %network.name,
            standing = request.standing,
            "docker: grant made"
        );
        Ok(Grant {
            secret,
            id,
            profile,
            endpoint: format!("http://{listener}/"),
            network: network.name,
            region,
            standing: request.standing,
        })
    }

    /// `credd docker revoke`, and `credd docker run` dropping the grant no container took
    /// (`unclaimed_only`): a container it started in the background (`-d`) holds its grant
    /// even if it has not connected yet, so the running containers are looked at first.
    pub async fn revoke(
        &self,
        id: Option<&str>,
        unclaimed_only: bool,
    ) -> Result<(Vec<String>, usize), DockerError> {
        if unclaimed_only {
            let api = self.api().await?;
            for found in api.all_running().await? {
                self.adopt(&found);
            }
        }
        let mut state = lock::lock(&self.0.state);
        let (grants, containers) = state.grants.revoke(id, unclaimed_only);
        if !grants.is_empty() {
            self.save(&state);
            tracing::info!(grants = ?grants, containers, "docker: grants revoked");
        }
        Ok((grants, containers))
    }

    /// A running container that holds a live grant takes it now (it started, or `credd docker
    /// run` ended): through each network it joined where credd listens.
    fn adopt(&self, found: &api::Found) {
        if found.grant.is_none() {
            return;
        }
        let mut state = lock::lock(&self.0.state);
        let routes: Vec<(SocketAddr, String, Ipv4Addr)> = state
            .listening
            .iter()
            .filter_map(|(addr, net)| Some((*addr, net.id.clone(), *found.addresses.get(&net.id)?)))
            .collect();
        let mut changed = false;
        for (listener, network_id, address) in routes {
            let (table_changed, taken) = take(&mut state, found, address, &network_id, listener);
            changed |= table_changed;
            if let Err(why) = taken {
                tracing::debug!("docker: a started container is not served: {why}");
            }
        }
        if changed {
            self.save(&state);
        }
    }

    /// The config changed: grants of a profile no longer configured end.
    pub fn config_changed(&self, config: &Config) {
        let mut state = lock::lock(&self.0.state);
        let dropped = state
            .grants
            .retain_profiles(|p| config.profiles.contains_key(p));
        if !dropped.is_empty() {
            tracing::warn!(grants = ?dropped, "docker: grants of profiles no longer configured are revoked");
            self.save(&state);
        }
    }

    /// For `credd status`: `None` until the first grant.
    pub fn status(&self) -> Option<DockerStatus> {
        let state = lock::lock(&self.0.state);
        if state.grants.is_empty() && state.listening.is_empty() && state.error.is_none() {
            return None;
        }
        let engine = state
            .engine
            .clone()
            .unwrap_or_else(|| self.0.config.borrow().docker.socket.clone());
        Some(DockerStatus {
            engine: engine.display().to_string(),
            endpoints: state
                .listening
                .keys()
                .map(|a| format!("http://{a}/"))
                .collect(),
            grants: state
                .grants
                .grants()
                .map(|(id, g)| GrantStatus {
                    id: id.clone(),
                    profile: g.profile.clone(),
                    standing: g.standing,
                    created_at: rfc3339::unix(g.created),
                    containers: state.grants.holders(id),
                })
                .collect(),
            containers: state
                .grants
                .claims()
                .map(|c| ContainerGrant {
                    id: c.container.id.clone(),
                    name: c.container.name.clone(),
                    image: c.container.image.clone(),
                    profile: c.profile.clone(),
                    grant: c.container.grant.clone(),
                    address: c.address.to_string(),
                    since: rfc3339::unix(c.since),
                })
                .collect(),
            error: state.error.clone(),
        })
    }

    /// The claim of the container that connected from `remote` to `listener`, as the last
    /// check of a connection from there found it.
    pub fn claim_at(&self, remote: IpAddr, listener: SocketAddr) -> Option<Arc<Claim>> {
        let IpAddr::V4(remote) = remote else {
            return None;
        };
        lock::lock(&self.0.state)
            .grants
            .at(remote, listener)
            .cloned()
    }

    /// A new connection from `remote` to `listener`: asks the engine which container is there
    /// now and what it holds, so that [`Containers::claim_at`] answers for it. A container that
    /// stopped, and one that took its address, are told apart by their IDs.
    pub async fn check_connection(self, remote: IpAddr, listener: SocketAddr) {
        let IpAddr::V4(remote) = remote else {
            return;
        };
        let key = (remote, listener);
        if lock::lock(&self.0.refused)
            .get(&key)
            .is_some_and(|at| at.elapsed() < REFUSED_FOR)
        {
            return;
        }
        let _one_at_a_time = self.0.lookups.lock().await;
        let network_id = match lock::lock(&self.0.state).listening.get(&listener) {
            Some(network) => network.id.clone(),
            None => return,
        };
        // The host itself (any user's process) comes from the gateway address: never a
        // container.
        if Some(remote) == gateway_of(listener) {
            self.refuse(key, &format!("{remote} is this machine's own address"));
            return;
        }
        let api = match self.api().await {
            Ok(api) => api,
            Err(e) => {
                tracing::warn!(error = %e, "docker: cannot check a container's connection");
                return;
            }
        };
        let found = match api.container_at(&network_id, remote).await {
            Ok(found) => found,
            Err(e) => {
                // A container already vouched for stays served (no other can take its address
                // while the engine is down); a new one waits for the engine.
                tracing::warn!(error = %e, "docker: cannot check a container's connection");
                lock::lock(&self.0.refused).insert(key, Instant::now());
                return;
            }
        };
        let mut state = lock::lock(&self.0.state);
        let Some(found) = found else {
            let stale = state
                .grants
                .at(remote, listener)
                .map(|c| c.container.id.clone());
            if let Some(id) = stale {
                state.grants.gone(&id);
                self.save(&state);
            }
            drop(state);
            self.refuse(key, &format!("no running container has {remote}"));
            return;
        };
        let (changed, taken) = take(&mut state, &found, remote, &network_id, listener);
        if changed {
            self.save(&state);
        }
        drop(state);
        if let Err(why) = taken {
            self.refuse(key, &why.to_string());
        }
    }

    fn refuse(&self, key: (Ipv4Addr, SocketAddr), why: &str) {
        let mut refused = lock::lock(&self.0.refused);
        refused.retain(|_, at| at.elapsed() < REFUSED_FOR);
        // Logged once a second per address at most: the cache holds it meanwhile.
        if refused.insert(key, Instant::now()).is_none() {
            tracing::warn!(address = %key.0, "docker: refused a connection: {why}");
        }
    }

    async fn api(&self) -> Result<Arc<Api>, ApiError> {
        let socket = self.0.config.borrow().docker.socket.clone();
        let mut api = self.0.api.lock().await;
        if let Some(api) = api.as_ref().filter(|a| a.socket == socket) {
            return Ok(api.clone());
        }
        match Api::connect(&socket).await {
            Ok(connected) => {
                let connected = Arc::new(connected);
                *api = Some(connected.clone());
                let mut state = lock::lock(&self.0.state);
                state.engine = Some(socket);
                state.error = None;
                Ok(connected)
            }
            Err(e) => {
                lock::lock(&self.0.state).error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// A listener on `network`'s gateway (bound now unless it already is).
    async fn listen_on(
        &self,
        api: &Api,
        network: &str,
    ) -> Result<(SocketAddr, api::Network), DockerError> {
        let network = api.network(network).await?;
        let port = self.0.config.borrow().docker.port;
        let mut state = lock::lock(&self.0.state);
        if let Some((addr, _)) = state
            .listening
            .iter()
            .find(|(a, n)| n.id == network.id && gateway_of(**a) == Some(network.gateway))
        {
            return Ok((*addr, network));
        }
        let addr = SocketAddr::from((network.gateway, port));
        let listener = Listener::bind_gateway(addr)?;
        let addr = listener.addr;
        if self.0.listeners_tx.send(listener).is_err() {
            tracing::error!("docker: nothing serves the container listeners");
        }
        tracing::info!(%addr, network = %network.name, "docker: listening for containers");
        state.listening.insert(addr, network.clone());
        Ok((addr, network))
    }

    /// Follows the engine's events from now on (once), ending the claims of containers that
    /// stop; across an engine restart it reconnects and checks every claim again.
    fn watch(&self, api: &Arc<Api>) {
        if self.0.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let mut api = api.clone();
        tokio::spawn(async move {
            loop {
                let mut changes = std::pin::pin!(api.changes());
                while let Some(change) = changes.next().await {
                    match change {
                        Ok(Change::Gone(id)) => this.gone(&id),
                        Ok(Change::Started(id)) => {
                            lock::lock(&this.0.refused).clear();
                            match api.running(&id).await {
                                Ok(Some(found)) => this.adopt(&found),
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "docker: cannot look at a container that started")
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "docker: the engine's events stopped");
                            break;
                        }
                    }
                }
                // Whatever stopped meanwhile was not heard: ask about each claim.
                loop {
                    tokio::time::sleep(RECONNECT).await;
                    match this.api().await {
                        Ok(a) => {
                            api = a;
                            break;
                        }
                        Err(_) => continue,
                    }
                }
                this.reconcile(&api).await;
            }
        });
    }

    fn gone(&self, container_id: &str) {
        let mut state = lock::lock(&self.0.state);
        if let Some(claim) = state.grants.gone(container_id) {
            tracing::info!(
                container = short_id(container_id),
                name = %claim.container.name,
                grant = %claim.container.grant,
                profile = %claim.profile,
                "docker: the container stopped; its grant is over"
            );
            self.save(&state);
        }
    }

    /// Ends the claims of containers that are no longer running.
    async fn reconcile(&self, api: &Api) {
        let claimed: Vec<(String, Ipv4Addr, String)> = lock::lock(&self.0.state)
            .grants
            .claims()
            .map(|c| (c.container.id.clone(), c.address, c.network_id.clone()))
            .collect();
        for (id, address, network) in claimed {
            match api.running(&id).await {
                Ok(Some(found)) if found.addresses.get(&network) == Some(&address) => {}
                Ok(_) => self.gone(&id),
                Err(e) => {
                    tracing::warn!(error = %e, "docker: cannot check the remembered containers");
                    return;
                }
            }
        }
    }

    fn save(&self, state: &State) {
        let saved = serde_json::to_vec_pretty(&Saved {
            grants: &state.grants,
        })
        .expect("the grant table serializes");
        if let Err(e) = crate::runtime_dir::write_private_file(&self.0.file, &saved) {
            tracing::warn!(error = %e, "docker: cannot remember the grants across a restart");
        }
    }
}

/// `found`, at `address` on `network_id`, takes its grant through `listener`
/// ([`Grants::claim`]); said in the log the first time. Whether the table changed (a new claim,
/// or the claim of a container that left the address), and whether it is served.
fn take(
    state: &mut State,
    found: &api::Found,
    address: Ipv4Addr,
    network_id: &str,
    listener: SocketAddr,
) -> (bool, Result<(), grants::NotGranted>) {
    let known = state
        .grants
        .at(address, listener)
        .map(|c| c.container.id.clone());
    match state
        .grants
        .claim(found, address, network_id, listener, SystemTime::now())
    {
        Ok(claim) if known.as_deref() == Some(claim.container.id.as_str()) => (false, Ok(())),
        Ok(claim) => {
            tracing::info!(
                container = short_id(&claim.container.id),
                name = %claim.container.name,
                image = %claim.container.image,
                grant = %claim.container.grant,
                profile = %claim.profile,
                %address,
                "docker: a container took its grant"
            );
            (true, Ok(()))
        }
        Err(why) => (known.is_some(), Err(why)),
    }
}

/// The gateway address a listener is bound to.
fn gateway_of(addr: SocketAddr) -> Option<Ipv4Addr> {
    match addr.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}
