//! A row per node: its role, the NICs its egress left on, its pods seen
//! leaving (masqueraded or not), its SYN and DNS failures and its verdict,
//! from its capture's outcome.

use super::capture::Attributed;
use crate::cluster::Directory;
use crate::detect::verdict::Status;
use crate::interface::InterfaceKind;
use crate::topology::AddrClass;
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Whether a node's pods leave masqueraded, as its capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub name: String,
    /// `control-plane`, `worker`, or the node's role labels.
    pub role: String,
    /// Its captures; the first is the one compared.
    pub files: Vec<String>,
    /// NICs that carried traffic to external destinations.
    pub egress_nics: Vec<String>,
    /// NICs that carried pod source addresses out.
    pub pod_source_nics: Vec<String>,
    /// Pods seen leaving with their own addresses.
    pub pods_unmasqueraded: Vec<IpAddr>,
    /// Pods seen leaving SNATed, and the addresses they were translated to.
    pub pods_masqueraded: Vec<IpAddr>,
    pub translated_to: Vec<IpAddr>,
    pub masquerading: Masquerading,
    /// Unanswered and unreachable SYN flows.
    pub failed_syns: u64,
    pub dns_timeouts: u64,
    /// The compared capture's verdict (absent when not captured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Its verdict's cause ids.
    pub causes: Vec<&'static str>,
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

pub(super) fn rows(
    attributed: &[Attributed<'_, '_>],
    known: &[&str],
    directory: &Directory,
) -> Vec<NodeRow> {
    let mut rows: Vec<NodeRow> = attributed.iter().map(|a| row(a, directory)).collect();
    for node in known {
        if !attributed.iter().any(|a| a.node == *node) {
            rows.push(NodeRow {
                name: node.to_string(),
                role: role(&directory.roles(node)),
                files: Vec::new(),
                egress_nics: Vec::new(),
                pod_source_nics: Vec::new(),
                pods_unmasqueraded: Vec::new(),
                pods_masqueraded: Vec::new(),
                translated_to: Vec::new(),
                masquerading: Masquerading::NotCaptured,
                failed_syns: 0,
                dns_timeouts: 0,
                status: None,
                causes: Vec::new(),
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn row(attributed: &Attributed<'_, '_>, directory: &Directory) -> NodeRow {
    let outcome = attributed.captures[0].outcome;
    let egress = &outcome.findings.unmasqueraded_egress;
    let nics = (egress.interfaces.iter())
        .filter(|i| i.kind == InterfaceKind::Nic || i.carries_pod_sources);
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
    let checked =
        (outcome.coverage.detectors.iter()).any(|d| d.detector == "unmasqueraded_egress" && d.ran);
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
    let syns = &outcome.findings.tcp_syns.counts;
    NodeRow {
        name: attributed.node.clone(),
        role: role(&directory.roles(&attributed.node)),
        files: attributed
            .captures
            .iter()
            .map(|c| c.file.to_string())
            .collect(),
        egress_nics,
        pod_source_nics,
        pods_unmasqueraded: unmasqueraded.into_iter().collect(),
        pods_masqueraded: masqueraded.into_iter().collect(),
        translated_to: translated.into_iter().collect(),
        masquerading,
        failed_syns: syns.unanswered + syns.unreachable,
        dns_timeouts: outcome.findings.dns.counts.timed_out,
        status: Some(outcome.verdict.status),
        causes: outcome.verdict.causes.iter().map(|c| c.id).collect(),
    }
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
