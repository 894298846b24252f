//! The grant table: which grants are live (by the digest of their secret, never the secret),
//! and which running containers hold one. Pure bookkeeping, so every rule is a unit test: a
//! one-shot grant serves one container; a container is pinned to its grant's profile; a
//! container that stops takes its claim (and its one-shot grant) with it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Container;
use super::api::Found;

/// A grant's public name: the first 12 hex digits of its digest (nothing of the secret).
pub fn grant_id(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..6])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntry {
    #[serde(with = "hex::serde")]
    pub digest: [u8; 32],
    pub profile: String,
    /// The network it was made for (where its listener is).
    pub network: String,
    pub standing: bool,
    #[serde(with = "credd_proto::audit::rfc3339")]
    pub created: SystemTime,
}

/// A running container that holds a grant, as the engine described it when it connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub container: Arc<Container>,
    pub profile: String,
    /// Its address on the network it reaches credd through...
    pub address: Ipv4Addr,
    /// ... that network...
    pub network_id: String,
    /// ... and the listener there.
    pub listener: SocketAddr,
    #[serde(with = "credd_proto::audit::rfc3339")]
    pub since: SystemTime,
}

/// Why a container is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotGranted {
    #[error("container {0} holds no credd grant (CREDD_GRANT)")]
    NoGrant(String),
    #[error(
        "container {container} holds grant {grant}, which is not live (revoked, or used by a \
         container that has stopped)"
    )]
    Unknown { container: String, grant: String },
    #[error(
        "container {container} holds grant {grant}, which container {holder} took first (a \
         `credd docker run` grant serves one container)"
    )]
    Taken {
        container: String,
        grant: String,
        holder: String,
    },
}

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// By grant ID.
    grants: BTreeMap<String, GrantEntry>,
    /// By container ID.
    claims: BTreeMap<String, Arc<Claim>>,
}

impl Grants {
    /// Adds a grant; its ID.
    pub fn add(&mut self, entry: GrantEntry) -> String {
        let id = grant_id(&entry.digest);
        self.grants.insert(id.clone(), entry);
        id
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty() && self.claims.is_empty()
    }

    /// The networks grants were made for, and the listeners claims reach credd through.
    pub fn networks(&self) -> impl Iterator<Item = &str> {
        self.grants.values().map(|g| g.network.as_str())
    }

    pub fn grants(&self) -> impl Iterator<Item = (&String, &GrantEntry)> {
        self.grants.iter()
    }

    pub fn claims(&self) -> impl Iterator<Item = &Arc<Claim>> {
        self.claims.values()
    }

    /// The claim of the container at `address` that reaches credd through `listener`.
    pub fn at(&self, address: Ipv4Addr, listener: SocketAddr) -> Option<&Arc<Claim>> {
        self.claims
            .values()
            .find(|c| c.address == address && c.listener == listener)
    }

    /// `found`, at `address` on `network_id`, connected to `listener`: its claim (made now if it
    /// is the grant's first use by it), or why it is not served. A claim held by another
    /// container at the same address is gone (that container stopped).
    pub fn claim(
        &mut self,
        found: &Found,
        address: Ipv4Addr,
        network_id: &str,
        listener: SocketAddr,
        now: SystemTime,
    ) -> Result<Arc<Claim>, NotGranted> {
        let stale: Vec<String> = self
            .claims
            .values()
            .filter(|c| {
                c.address == address && c.listener == listener && c.container.id != found.id
            })
            .map(|c| c.container.id.clone())
            .collect();
        for id in stale {
            self.gone(&id);
        }
        if let Some(claim) = self.claims.get(&found.id)
            && claim.address == address
            && claim.listener == listener
        {
            return Ok(claim.clone());
        }
        let short = short_id(&found.id).to_owned();
        let Some(digest) = found.grant else {
            return Err(NotGranted::NoGrant(short));
        };
        let id = grant_id(&digest);
        let Some(grant) = self.grants.get(&id).filter(|g| g.digest == digest) else {
            return Err(NotGranted::Unknown {
                container: short,
                grant: id,
            });
        };
        if !grant.standing
            && let Some(holder) = self
                .claims
                .values()
                .find(|c| c.container.grant == id && c.container.id != found.id)
        {
            return Err(NotGranted::Taken {
                container: short,
                grant: id,
                holder: short_id(&holder.container.id).to_owned(),
            });
        }
        let claim = Arc::new(Claim {
            container: Arc::new(Container {
                id: found.id.clone(),
                name: found.name.clone(),
                image: found.image.clone(),
                grant: id,
            }),
            profile: grant.profile.clone(),
            address,
            network_id: network_id.to_owned(),
            listener,
            since: now,
        });
        self.claims.insert(found.id.clone(), claim.clone());
        Ok(claim)
    }

    /// The container stopped: its claim ends, and with it a one-shot grant.
    pub fn gone(&mut self, container_id: &str) -> Option<Arc<Claim>> {
        let claim = self.claims.remove(container_id)?;
        if self
            .grants
            .get(&claim.container.grant)
            .is_some_and(|g| !g.standing)
        {
            self.grants.remove(&claim.container.grant);
        }
        Some(claim)
    }

    /// Revokes grant `id` (`None`: every grant) and cuts off the containers holding it; with
    /// `unclaimed_only`, only a grant no container holds. The grants revoked and the number of
    /// containers cut off.
    pub fn revoke(&mut self, id: Option<&str>, unclaimed_only: bool) -> (Vec<String>, usize) {
        let ids: Vec<String> = self
            .grants
            .keys()
            .filter(|g| id.is_none_or(|id| g.as_str() == id))
            .filter(|g| !unclaimed_only || !self.claims.values().any(|c| &c.container.grant == *g))
            .cloned()
            .collect();
        let mut cut = 0;
        for g in &ids {
            self.grants.remove(g);
            let before = self.claims.len();
            self.claims.retain(|_, c| &c.container.grant != g);
            cut += before - self.claims.len();
        }
        (ids, cut)
    }

    /// Forgets grants that named a profile no longer configured, and their containers.
    pub fn retain_profiles(&mut self, configured: impl Fn(&str) -> bool) -> Vec<String> {
        let dropped: Vec<String> = self
            .grants
            .iter()
            .filter(|(_, g)| !configured(&g.profile))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dropped {
            self.revoke(Some(id), false);
        }
        dropped
    }

    /// Forgets one-shot grants no container took within `max_age` of `now` (the `credd docker
    /// run` that asked for it was killed before it could revoke it).
    pub fn expire_unclaimed(
        &mut self,
        now: SystemTime,
        max_age: std::time::Duration,
    ) -> Vec<String> {
        let expired: Vec<String> = self
            .grants
            .iter()
            .filter(|(id, g)| {
                !g.standing
                    && now.duration_since(g.created).is_ok_and(|age| age > max_age)
                    && !self.claims.values().any(|c| &c.container.grant == *id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.grants.remove(id);
        }
        expired
    }

    /// How many containers hold grant `id`.
    pub fn holders(&self, id: &str) -> usize {
        self.claims
            .values()
            .filter(|c| c.container.grant == id)
            .count()
    }
}

/// The 12-character form `docker ps` shows.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::docker::api::digest;

    const LISTENER: &str = "172.17.0.1:9912";
    const NET: &str = "net-bridge";

    fn grant(secret: &str, profile: &str, standing: bool) -> GrantEntry {
        GrantEntry {
            digest: digest(secret),
            profile: profile.into(),
            network: "bridge".into(),
            standing,
            created: SystemTime::UNIX_EPOCH,
        }
    }

    fn container(id: &str, secret: Option<&str>, ip: Ipv4Addr) -> Found {
        Found {
            id: id.repeat(64 / id.len()),
            name: format!("name-{id}"),
            image: "busybox".into(),
            grant: secret.map(digest),
            addresses: HashMap::from([(NET.to_owned(), ip)]),
        }
    }

    fn claim(g: &mut Grants, f: &Found, ip: Ipv4Addr) -> Result<Arc<Claim>, NotGranted> {
        g.claim(
            f,
            ip,
            NET,
            LISTENER.parse().unwrap(),
            SystemTime::UNIX_EPOCH,
        )
    }

    const A: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 3);

    #[test]
    fn a_one_shot_grant_serves_its_first_container_only_and_ends_with_it() {
        let mut g = Grants::default();
        let id = g.add(grant("s1", "staging", false));
        let first = claim(&mut g, &container("a", Some("s1"), A), A).unwrap();
        assert_eq!(first.profile, "staging");
        assert_eq!(first.container.grant, id);
        // Asked again (a new connection): the same claim.
        assert_eq!(
            claim(&mut g, &container("a", Some("s1"), A), A).unwrap(),
            first
        );
        let second = claim(&mut g, &container("b", Some("s1"), B), B).unwrap_err();
        assert!(matches!(second, NotGranted::Taken { .. }), "{second}");
        assert!(g.gone(&first.container.id).is_some());
        let after = claim(&mut g, &container("b", Some("s1"), B), B).unwrap_err();
        assert!(matches!(after, NotGranted::Unknown { .. }), "{after}");
        assert!(g.is_empty());
    }

    #[test]
    fn a_standing_grant_serves_many_until_revoked_which_cuts_them_off() {
        let mut g = Grants::default();
        let id = g.add(grant("s2", "prod", true));
        claim(&mut g, &container("a", Some("s2"), A), A).unwrap();
        claim(&mut g, &container("b", Some("s2"), B), B).unwrap();
        assert_eq!(g.holders(&id), 2);
        g.gone(&"a".repeat(64));
        assert_eq!(g.holders(&id), 1, "a standing grant outlives a container");
        assert_eq!(g.revoke(Some(&id), true), (vec![], 0), "it is held");
        assert_eq!(g.revoke(Some(&id), false), (vec![id.clone()], 1));
        assert!(g.at(B, LISTENER.parse().unwrap()).is_none());
    }

    #[test]
    fn no_grant_a_wrong_grant_and_an_address_taken_over_are_refused() {
        let mut g = Grants::default();
        g.add(grant("s3", "staging", false));
        let none = claim(&mut g, &container("a", None, A), A).unwrap_err();
        assert!(matches!(none, NotGranted::NoGrant(_)));
        let wrong = claim(&mut g, &container("a", Some("guess"), A), A).unwrap_err();
        assert!(matches!(wrong, NotGranted::Unknown { .. }));
        // A holds the grant; then another container shows up at A's address (A stopped and
        // its event is not in yet): A's claim ends and the newcomer is judged on its own.
        claim(&mut g, &container("a", Some("s3"), A), A).unwrap();
        let newcomer = claim(&mut g, &container("c", None, A), A).unwrap_err();
        assert!(matches!(newcomer, NotGranted::NoGrant(_)));
        assert!(g.at(A, LISTENER.parse().unwrap()).is_none());
        assert!(g.is_empty(), "A's one-shot grant ended with it");
    }

    #[test]
    fn a_one_shot_grant_no_container_took_expires_and_a_standing_one_does_not() {
        let mut g = Grants::default();
        let idle = g.add(grant("s9", "staging", false));
        let taken = g.add(grant("s10", "staging", false));
        g.add(grant("s11", "staging", true));
        claim(&mut g, &container("a", Some("s10"), A), A).unwrap();
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        assert_eq!(
            g.expire_unclaimed(day, Duration::from_secs(3600)),
            vec![idle]
        );
        assert_eq!(g.grants().count(), 2);
        assert_eq!(g.holders(&taken), 1);
    }

    #[test]
    fn unclaimed_only_revokes_just_the_grant_no_container_took() {
        let mut g = Grants::default();
        let taken = g.add(grant("s4", "staging", false));
        let idle = g.add(grant("s5", "staging", false));
        claim(&mut g, &container("a", Some("s4"), A), A).unwrap();
        assert_eq!(g.revoke(Some(&taken), true), (vec![], 0));
        assert_eq!(g.revoke(Some(&idle), true), (vec![idle], 0));
        assert_eq!(g.revoke(None, false), (vec![taken], 1));
    }

    #[test]
    fn the_table_survives_a_round_trip_through_its_file_without_the_secret() {
        let mut g = Grants::default();
        g.add(grant("s6-secret", "staging", true));
        claim(&mut g, &container("a", Some("s6-secret"), A), A).unwrap();
        let text = serde_json::to_string(&g).unwrap();
        assert!(!text.contains("s6-secret"), "{text}");
        assert_eq!(serde_json::from_str::<Grants>(&text).unwrap(), g);
        let _ = Duration::ZERO;
    }

    #[test]
    fn grants_for_a_profile_no_longer_configured_are_dropped() {
        let mut g = Grants::default();
        let gone = g.add(grant("s7", "old", true));
        g.add(grant("s8", "staging", true));
        claim(&mut g, &container("a", Some("s7"), A), A).unwrap();
        assert_eq!(g.retain_profiles(|p| p == "staging"), vec![gone]);
        assert_eq!(g.claims().count(), 0);
        assert_eq!(g.grants().count(), 1);
    }
}
