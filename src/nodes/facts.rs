//! What the comparison of nodes needs of one capture besides its paths:
//! small, serializable, so that a scan keeps it in each file's digest and
//! a merge of shards compares nodes without the captures.

use super::capture::NodeCapture;
use crate::cluster::Directory;
use crate::detect::dns::DnsOutcome;
use crate::detect::verdict::Status;
use crate::detect::Settings;
use crate::interface::InterfaceKind;
use crate::topology::AddrClass;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// External destinations answered from a node kept in its facts: those
/// with the most answered flows.
pub const MAX_ANSWERED_DESTINATIONS: usize = 200;

/// Whether a node's pods leave masqueraded, as its capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Masquerading {
    /// Pod sources left a NIC for external destinations.
    No,
    /// Pod flows were seen before and after SNAT, and none left
    /// unmasqueraded.
    Yes,
    /// No pod was seen leaving; the node's own addresses reached external
    /// destinations (pods SNATed, where the capture shows only the NIC,
    /// look like this).
    NodeOnly,
    /// Nothing went to external destinations.
    NoEgress,
    /// The egress check was off (no pod CIDR).
    Unknown,
    /// No capture of this node.
    NotCaptured,
}

impl Masquerading {
    pub fn label(self) -> &'static str {
        match self {
            Masquerading::No => "no",
            Masquerading::Yes => "yes",
            Masquerading::NodeOnly => "no pod egress seen",
            Masquerading::NoEgress => "no egress seen",
            Masquerading::Unknown => "unknown (check off)",
            Masquerading::NotCaptured => "not captured",
        }
    }

    /// Seen to work: SNAT seen, or only node sources leaving.
    pub fn works(self) -> bool {
        matches!(self, Masquerading::Yes | Masquerading::NodeOnly)
    }
}

/// `control-plane` for a node labelled control-plane or master, `worker`
/// for one without roles.
pub fn role(roles: &[String]) -> String {
    if roles.iter().any(|r| r == "control-plane" || r == "master") {
        "control-plane".into()
    } else if roles.is_empty() {
        "worker".into()
    } else {
        roles.join(",")
    }
}

/// A capture's node, and what the capture showed of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub node: String,
    /// How the capture was attributed to it.
    pub how: String,
    /// `control-plane`, `worker`, or its role labels.
    pub role: String,
    #[serde(flatten)]
    pub seen: NodeSeen,
}

/// What a node's capture showed of its egress, failures and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSeen {
    /// NICs that carried traffic to external destinations.
    pub egress_nics: Vec<String>,
    /// NICs that carried pod source addresses out.
    pub pod_source_nics: Vec<String>,
    pub pods_unmasqueraded: Vec<IpAddr>,
    pub pods_masqueraded: Vec<IpAddr>,
    /// What SNAT translated its pods to.
    pub translated_to: Vec<IpAddr>,
    pub masquerading: Masquerading,
    /// Unanswered and unreachable SYN flows.
    pub failed_syns: u64,
    pub dns_timeouts: u64,
    /// The capture's verdict.
    pub status: Status,
    pub causes: Vec<String>,
    /// External destinations its pods left for unmasqueraded, with the
    /// replies they got.
    pub unreached: BTreeMap<IpAddr, u64>,
    /// External destinations that answered flows from it (its own
    /// addresses or its pods'), answered flows each.
    pub answered: BTreeMap<IpAddr, u64>,
    /// Its pods' queries to cluster DNS (pod or service addresses) that
    /// timed out, and query flows answered, by server.
    pub cluster_dns_timeouts: BTreeMap<IpAddr, u64>,
    pub cluster_dns_answered: BTreeMap<IpAddr, u64>,
}

impl NodeFacts {
    /// The facts of a capture attributed to a node (None otherwise).
    pub fn of(
        capture: &NodeCapture<'_>,
        directory: &Directory,
        settings: &Settings,
    ) -> Option<NodeFacts> {
        let node = capture.outcome.header.node.as_ref()?;
        let outcome = capture.outcome;
        let egress = &outcome.findings.unmasqueraded_egress;
        // NICs, and a capture's unnamed interface (a classic pcap of one).
        let nics = (egress.interfaces.iter()).filter(|i| {
            matches!(i.kind, InterfaceKind::Nic | InterfaceKind::Unknown) || i.carries_pod_sources
        });
        let egress_nics: Vec<String> = (nics.clone())
            .filter(|i| i.packets_by_source.values().any(|p| *p > 0))
            .map(|i| i.interface.clone())
            .collect();
        let pod_source_nics: Vec<String> = (nics.filter(|i| i.carries_pod_sources))
            .map(|i| i.interface.clone())
            .collect();
        let unmasqueraded: BTreeSet<IpAddr> = egress.groups.iter().map(|g| g.pod).collect();
        let masqueraded: BTreeSet<IpAddr> = (egress.contrast.masqueraded_pods.iter())
            .map(|m| m.pod)
            .collect();
        let translated: BTreeSet<IpAddr> = (egress.contrast.masqueraded_pods.iter())
            .flat_map(|m| m.translated_to.iter().copied())
            .collect();
        let checked = (outcome.coverage.detectors.iter())
            .any(|d| d.detector == "unmasqueraded_egress" && d.ran);
        let node_left = (egress.interfaces.iter()).any(|i| {
            i.packets_by_source
                .get(&AddrClass::Node)
                .copied()
                .unwrap_or(0)
                > 0
        });
        let masquerading = if !checked {
            Masquerading::Unknown
        } else if !unmasqueraded.is_empty() {
            Masquerading::No
        } else if !masqueraded.is_empty() {
            Masquerading::Yes
        } else if node_left {
            Masquerading::NodeOnly
        } else {
            Masquerading::NoEgress
        };
        let mut unreached = BTreeMap::new();
        for group in &egress.groups {
            *unreached.entry(group.destination).or_insert(0) += group.replies;
        }
        let mut answered: Vec<(IpAddr, u64)> = (capture.sightings.external.iter())
            .map(|(addr, reach)| (*addr, reach.node_answered + reach.pod_answered))
            .filter(|(_, n)| *n > 0)
            .collect();
        answered.sort_by_key(|(addr, n)| (std::cmp::Reverse(*n), *addr));
        answered.truncate(MAX_ANSWERED_DESTINATIONS);
        let (timeouts, answered_dns) = cluster_dns(capture, &node.name, directory, settings);
        let syns = &outcome.findings.tcp_syns.counts;
        let seen = NodeSeen {
            egress_nics,
            pod_source_nics,
            pods_unmasqueraded: unmasqueraded.into_iter().collect(),
            pods_masqueraded: masqueraded.into_iter().collect(),
            translated_to: translated.into_iter().collect(),
            masquerading,
            failed_syns: syns.unanswered + syns.unreachable,
            dns_timeouts: outcome.findings.dns.counts.timed_out,
            status: outcome.verdict.status,
            causes: outcome
                .verdict
                .causes
                .iter()
                .map(|c| c.id.to_string())
                .collect(),
            unreached,
            answered: answered.into_iter().collect(),
            cluster_dns_timeouts: timeouts,
            cluster_dns_answered: answered_dns,
        };
        Some(NodeFacts {
            node: node.name.clone(),
            how: node.how.clone(),
            role: role(&directory.roles(&node.name)),
            seen,
        })
    }
}

/// The node's pods' queries to cluster DNS: timed out (queries) and
/// answered (query flows), by server.
fn cluster_dns(
    capture: &NodeCapture<'_>,
    node: &str,
    directory: &Directory,
    settings: &Settings,
) -> (BTreeMap<IpAddr, u64>, BTreeMap<IpAddr, u64>) {
    let in_cluster = |addr: IpAddr| {
        directory
            .name(addr, None)
            .is_some_and(|n| n.kind == "pod" || n.kind == "service")
            || directory.node_of_pod(addr).is_some()
    };
    let its_pod = |addr: IpAddr| directory.node_of_pod(addr) == Some(node);
    let mut timeouts = BTreeMap::new();
    for group in &capture.outcome.findings.dns.groups {
        if group.outcome == DnsOutcome::TimedOut
            && its_pod(group.client)
            && in_cluster(group.server)
        {
            *timeouts.entry(group.server).or_insert(0) += group.count;
        }
    }
    let mut answered = BTreeMap::new();
    for flow in &capture.sightings.flows {
        if flow.protocol == 17
            && flow.answered
            && settings.dns_ports.contains(&flow.server.port)
            && its_pod(flow.client.addr)
            && in_cluster(flow.server.addr)
        {
            *answered.entry(flow.server.addr).or_insert(0) += 1;
        }
    }
    (timeouts, answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_an_sre_says_them() {
        let roles = |r: &[&str]| role(&r.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(roles(&["control-plane", "etcd", "master"]), "control-plane");
        assert_eq!(roles(&["master"]), "control-plane");
        assert_eq!(roles(&[]), "worker");
        assert_eq!(roles(&["ingress", "gpu"]), "ingress,gpu");
    }

    #[test]
    fn only_snat_seen_or_node_sources_count_as_working() {
        assert!(Masquerading::Yes.works());
        assert!(Masquerading::NodeOnly.works());
        for other in [
            Masquerading::No,
            Masquerading::NoEgress,
            Masquerading::Unknown,
            Masquerading::NotCaptured,
        ] {
            assert!(!other.works(), "{other:?}");
        }
    }
}
