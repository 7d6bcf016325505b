//! The causes only a comparison of nodes shows, ranked root causes first:
//! masquerading that works on some nodes and not on others (the
//! control plane's success hiding the workers' failure), paths between
//! two nodes that break, one node's pods failing against cluster DNS that
//! answers the others, and, last, what could not be compared.

use super::facts::{Masquerading, NodeSeen};
use super::paths::{Conclusion, PathGroup};
use super::rows::NodeRow;
use crate::analysis::cni_hint;
use crate::cluster::Directory;
use crate::decode::TunnelKind;
use crate::detect::verdict::Hint;
use crate::detect::Severity;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const MASQUERADING_DIFFERS: &str = "masquerading_differs_between_nodes";
pub const MASQUERADING_FAILS_EVERYWHERE: &str = "masquerading_fails_on_every_node";
pub const PATH_BREAKS: &str = "path_breaks_between_nodes";
pub const DNS_FAILS_ON_ONE_NODE: &str = "dns_fails_on_some_nodes";
pub const NOT_COMPARED: &str = "not_compared";

#[derive(Debug, Clone, Serialize)]
pub struct NodeCause {
    pub rank: usize,
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub summary: String,
    pub evidence: BTreeMap<&'static str, u64>,
    /// The nodes on each side (`failing`, `working`).
    pub nodes: BTreeMap<&'static str, Vec<String>>,
    pub details: Vec<String>,
    pub remediation: Vec<Hint>,
}

impl NodeCause {
    fn new(id: &'static str, severity: Severity, title: &'static str, summary: String) -> Self {
        NodeCause {
            rank: 0,
            id,
            severity,
            title,
            summary,
            evidence: BTreeMap::new(),
            nodes: BTreeMap::new(),
            details: Vec::new(),
            remediation: Vec::new(),
        }
    }
}

/// The causes from the nodes' rows and, where the captures were read
/// together, the paths between them; `directory` adds the CNI's settings
/// and names.
pub(super) fn causes(
    rows: &[NodeRow],
    paths: &[PathGroup],
    directory: Option<&Directory>,
) -> Vec<NodeCause> {
    let mut causes = Vec::new();
    causes.extend(masquerading(rows, directory));
    causes.extend(broken_paths(paths));
    causes.extend(dns_on_some_nodes(rows, paths, directory));
    causes
}

/// `k3s-cp (control-plane)`, `k3s-w1, k3s-w2 (workers)`.
fn with_roles(rows: &[&NodeRow]) -> String {
    let mut by_role: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in rows {
        by_role.entry(&row.role).or_default().push(&row.name);
    }
    (by_role.into_iter())
        .map(|(role, names)| {
            let role = match (role, names.len()) {
                ("worker", n) if n > 1 => "workers".to_string(),
                (role, _) => role.to_string(),
            };
            format!("{} ({role})", names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn names(rows: &[&NodeRow]) -> Vec<String> {
    rows.iter().map(|r| r.name.clone()).collect()
}

fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn masquerading(rows: &[NodeRow], directory: Option<&Directory>) -> Option<NodeCause> {
    let failing: Vec<&NodeRow> = (rows.iter())
        .filter(|r| r.masquerading() == Masquerading::No)
        .collect();
    if failing.is_empty() {
        return None;
    }
    // The external destinations the failing nodes' pods did not reach.
    let mut destinations: BTreeSet<IpAddr> = BTreeSet::new();
    let mut replies = 0;
    let mut pods = BTreeSet::new();
    for seen in failing.iter().filter_map(|r| r.seen.as_ref()) {
        destinations.extend(seen.unreached.keys().copied());
        replies += seen.unreached.values().sum::<u64>();
        pods.extend(seen.pods_unmasqueraded.iter().copied());
    }
    // Nodes seen masquerading, or answered by those same destinations.
    let mut working: Vec<(&NodeRow, u64)> = Vec::new();
    for row in rows.iter().filter(|r| r.masquerading().works()) {
        let Some(seen) = &row.seen else { continue };
        let answered: u64 = (destinations.iter())
            .filter_map(|d| seen.answered.get(d))
            .sum();
        if answered > 0 || seen.masquerading == Masquerading::Yes {
            working.push((row, answered));
        }
    }
    let failing_names = with_roles(&failing);
    let left_on: BTreeSet<String> = (failing.iter().filter_map(|r| r.seen.as_ref()))
        .flat_map(|s| s.pod_source_nics.iter().cloned())
        .collect();
    let failing_set: BTreeSet<&str> = failing.iter().map(|r| r.name.as_str()).collect();
    let mut cause = if working.is_empty() {
        let captured = rows.iter().filter(|r| r.seen.is_some()).count();
        if failing.len() < captured || captured < 2 {
            return None;
        }
        NodeCause::new(
            MASQUERADING_FAILS_EVERYWHERE,
            Severity::Failure,
            "Pod egress is unmasqueraded on every node captured",
            format!(
                "Pods on every node captured ({failing_names}) left with their own addresses to {} external destinations ({}) and got {replies} replies: a cluster-wide setting, not one node's.",
                destinations.len(),
                list(&destinations)
            ),
        )
    } else {
        let working_rows: Vec<&NodeRow> = working.iter().map(|(r, _)| *r).collect();
        let working_names = with_roles(&working_rows);
        let hides = if working_rows.iter().any(|r| r.role == "control-plane")
            && failing.iter().all(|r| r.role == "worker")
        {
            let workers = if failing.len() > 1 {
                "workers'"
            } else {
                "worker's"
            };
            format!("control-plane success hides the {workers} failure")
        } else {
            format!(
                "success on {} hides the failure on {}",
                list(names(&working_rows)),
                list(names(&failing))
            )
        };
        let answered: u64 = working.iter().map(|(_, a)| a).sum();
        let mut cause = NodeCause::new(
            MASQUERADING_DIFFERS,
            Severity::Failure,
            "Masquerading differs between nodes",
            format!(
                "{working_names} masquerade{}; {failing_names} do{} not: {hides}. Pods on {} left with their own addresses to {} external destinations ({}) and got {replies} replies, while {} reached the same destinations and {} answered.",
                if working_rows.len() == 1 { "s" } else { "" },
                if failing.len() == 1 { "es" } else { "" },
                list(names(&failing)),
                destinations.len(),
                list(&destinations),
                list(names(&working_rows)),
                match answered {
                    0 => "were".to_string(),
                    n => format!("{n} of their flows were"),
                }
            ),
        );
        cause
            .evidence
            .insert("working_nodes", working_rows.len() as u64);
        cause.evidence.insert("answered_flows_elsewhere", answered);
        cause.nodes.insert("working", names(&working_rows));
        for row in &working_rows {
            let Some(seen) = &row.seen else { continue };
            cause.details.push(match seen.masquerading {
                Masquerading::Yes => format!(
                    "{} ({}): {} {} left SNATed to {} on {}.",
                    row.name,
                    row.role,
                    pods_word(seen.pods_masqueraded.len()),
                    list(&seen.pods_masqueraded),
                    list(&seen.translated_to),
                    or_unknown(&seen.egress_nics)
                ),
                _ => format!(
                    "{} ({}): no pod source left it; its own addresses reached these destinations on {} and were answered (pods SNATed to the node look the same on a NIC).",
                    row.name,
                    row.role,
                    or_unknown(&seen.egress_nics)
                ),
            });
        }
        cause
    };
    cause.evidence.insert("failing_nodes", failing.len() as u64);
    cause
        .evidence
        .insert("pods_unmasqueraded", pods.len() as u64);
    cause
        .evidence
        .insert("destinations", destinations.len() as u64);
    cause.nodes.insert("failing", names(&failing));
    for row in &failing {
        let Some(seen) = &row.seen else { continue };
        cause.details.push(format!(
            "{} ({}): {} {} left {} with their own addresses.",
            row.name,
            row.role,
            pods_word(seen.pods_unmasqueraded.len()),
            list(&seen.pods_unmasqueraded),
            or_unknown(&seen.pod_source_nics)
        ));
    }
    let Some(directory) = directory else {
        return Some(cause);
    };
    let all: Vec<&NodeRow> = rows.iter().filter(|r| r.seen.is_some()).collect();
    if let Some(detail) = nic_difference(&all, directory) {
        cause.details.push(detail);
    }
    if let Some(hint) = cni_hint(directory, &failing_set, &left_on) {
        cause.remediation.push(hint);
    }
    let devices =
        (directory.cni.iter()).find(|s| s.source == "cilium-config" && s.key == "devices");
    if devices.is_some_and(|d| d.value == "unset") {
        cause.details.push(
            "cilium-config sets no devices: each node's agent picks its own egress device, which is how one node can masquerade on the right NIC and another not.".into(),
        );
    }
    Some(cause)
}

fn pods_word(n: usize) -> &'static str {
    if n == 1 {
        "pod"
    } else {
        "pods"
    }
}

fn or_unknown(items: &[String]) -> String {
    if items.is_empty() {
        "an unnamed interface".into()
    } else {
        list(items)
    }
}

/// What differs in the nodes' egress: the NIC each used, and its network.
fn nic_difference(rows: &[&NodeRow], directory: &Directory) -> Option<String> {
    let used: Vec<(&NodeRow, String)> = (rows.iter())
        .filter_map(|r| {
            let seen = r.seen.as_ref()?;
            let nics = if seen.pod_source_nics.is_empty() {
                &seen.egress_nics
            } else {
                &seen.pod_source_nics
            };
            Some((*r, list(nics)))
        })
        .filter(|(_, nics)| !nics.is_empty())
        .collect();
    if used.is_empty() {
        return None;
    }
    let parts: Vec<String> = (used.iter())
        .map(|(row, nics)| {
            let networks: Vec<String> = (directory.networks.iter())
                .filter(|n| n.node == row.name && nics.split(", ").any(|nic| nic == n.nic))
                .map(|n| format!("{}/{}", n.address, n.net.prefix_len()))
                .collect();
            let all = directory.nics.get(&row.name).map(|n| n.len()).unwrap_or(0);
            let of = if all > 1 {
                format!(", one of {all} NICs")
            } else {
                String::new()
            };
            match networks.is_empty() {
                true => format!("{} left on {nics}{of}", row.name),
                false => format!("{} left on {nics} ({}){of}", row.name, list(networks)),
            }
        })
        .collect();
    let same = used.iter().all(|(_, nics)| *nics == used[0].1);
    let lead = if same {
        "Every node's egress used the same NIC, so the difference is in the CNI's state on each node"
    } else {
        "The nodes' egress NICs differ"
    };
    Some(format!("{lead}: {}.", parts.join("; ")))
}

fn broken_paths(paths: &[PathGroup]) -> Vec<NodeCause> {
    let mut by_link: BTreeMap<(Conclusion, &str, &str), Vec<&PathGroup>> = BTreeMap::new();
    for group in paths.iter().filter(|g| g.conclusion.located()) {
        let (Some(from), Some(to)) = (&group.client_node, &group.server_node) else {
            continue;
        };
        by_link
            .entry((group.conclusion, from, to))
            .or_default()
            .push(group);
    }
    let mut causes = Vec::new();
    for ((conclusion, from, to), groups) in by_link {
        let connections: u64 = groups.iter().map(|g| g.connections).sum();
        let title = match conclusion {
            Conclusion::NeverArrived => "Traffic between two nodes is lost on the way",
            Conclusion::AnswerLost => "Answers between two nodes are lost on the way back",
            Conclusion::NotDelivered => "Traffic reaches a node but not its pod",
            _ => "Pods on another node do not answer",
        };
        let shown: Vec<String> = (groups.iter().take(4))
            .map(|g| {
                format!(
                    "{} -> {}:{} ({})",
                    g.client, g.server, g.port, g.connections
                )
            })
            .collect();
        let more = if groups.len() > 4 {
            format!(" and {} more", groups.len() - 4)
        } else {
            String::new()
        };
        let mut cause = NodeCause::new(
            PATH_BREAKS,
            Severity::Failure,
            title,
            format!(
                "{connections} connections from {from} to {to}, followed in both nodes' captures: {}. {}{more}.",
                groups[0].said,
                list(shown)
            ),
        );
        cause.evidence.insert("connections", connections);
        cause.evidence.insert("address_pairs", groups.len() as u64);
        cause.nodes.insert("from", vec![from.to_string()]);
        cause.nodes.insert("to", vec![to.to_string()]);
        for group in groups
            .iter()
            .skip(1)
            .filter(|g| g.said != groups[0].said)
            .take(3)
        {
            cause.details.push(format!(
                "{} -> {}:{}: {}.",
                group.client, group.server, group.port, group.said
            ));
        }
        let tunnel = (groups.iter())
            .flat_map(|g| g.examples.iter())
            .flat_map(|e| e.sightings.iter())
            .flat_map(|s| s.seen_on.iter())
            .find_map(|d| d.tunnel);
        let (a, b) = match conclusion {
            Conclusion::AnswerLost => (to, from),
            _ => (from, to),
        };
        let hint = match conclusion {
            Conclusion::NeverArrived | Conclusion::AnswerLost => {
                let carried = match tunnel.map(|t| t.kind) {
                    Some(TunnelKind::Vxlan) => "the VXLAN tunnel (UDP 8472 for Cilium, 4789 for Flannel and Calico)",
                    Some(TunnelKind::Geneve) => "the Geneve tunnel (UDP 6081)",
                    Some(TunnelKind::Ipip) => "IP-in-IP (IP protocol 4)",
                    None => "routed pod addresses (the routes to each node's pod CIDR)",
                };
                format!(
                    "Something between {a} and {b} drops {carried} from {a} to {b}: check security groups, host firewalls and the underlay between the two node addresses (both ways), `cilium-health status` on both, and `tcpdump -ni <nic>` on {b} for the tunnel's traffic from {a}."
                )
            }
            Conclusion::NotDelivered => format!(
                "{b} received it and did not hand it to the pod: a policy drop or a stale endpoint there (`cilium monitor --type drop`, `hubble observe --verdict DROPPED` on {b})."
            ),
            _ => format!(
                "The destination pod on {b} got it and did not answer: is it listening on that port, and does a NetworkPolicy drop the answer (`kubectl exec` into it, `hubble observe`)?"
            ),
        };
        cause.remediation.push(Hint { cni: "any", hint });
        causes.push(cause);
    }
    causes
}

/// Pods on some nodes time out against cluster DNS (a pod or a service
/// address) that answers pods on other nodes.
fn dns_on_some_nodes(
    rows: &[NodeRow],
    paths: &[PathGroup],
    directory: Option<&Directory>,
) -> Option<NodeCause> {
    let seen = || {
        rows.iter()
            .filter_map(|r| Some((r.name.as_str(), r.seen.as_ref()?)))
    };
    let failing: Vec<(&str, &NodeSeen)> = seen()
        .filter(|(_, s)| !s.cluster_dns_timeouts.is_empty())
        .collect();
    let working: Vec<(&str, &NodeSeen)> = seen()
        .filter(|(_, s)| s.cluster_dns_timeouts.is_empty() && !s.cluster_dns_answered.is_empty())
        .collect();
    if failing.is_empty() || working.is_empty() {
        return None;
    }
    let servers: BTreeSet<IpAddr> = (failing.iter())
        .flat_map(|(_, s)| s.cluster_dns_timeouts.keys().copied())
        .collect();
    let label = |addr: &IpAddr| match directory.and_then(|d| d.name(*addr, None)) {
        Some(name) => match &name.node {
            Some(node) => format!("{addr} {} on {node}", name.label()),
            None => format!("{addr} {}", name.label()),
        },
        None => addr.to_string(),
    };
    let timeouts: u64 = (failing.iter())
        .map(|(_, s)| s.cluster_dns_timeouts.values().sum::<u64>())
        .sum();
    let answered: u64 = (working.iter())
        .map(|(_, s)| s.cluster_dns_answered.values().sum::<u64>())
        .sum();
    let failing_nodes: Vec<String> = failing.iter().map(|f| f.0.to_string()).collect();
    let working_nodes: Vec<String> = working.iter().map(|w| w.0.to_string()).collect();
    let mut cause = NodeCause::new(
        DNS_FAILS_ON_ONE_NODE,
        Severity::Failure,
        "Cluster DNS fails from some nodes only",
        format!(
            "Pods on {} time out against cluster DNS ({timeouts} queries to {}) while pods on {} are answered ({answered} query flows): CoreDNS works, the way from {} to it (or back) does not.",
            list(&failing_nodes),
            list(servers.iter().map(label)),
            list(&working_nodes),
            list(&failing_nodes)
        ),
    );
    cause.evidence.insert("timed_out_queries", timeouts);
    cause.evidence.insert("answered_elsewhere", answered);
    cause.nodes.insert("failing", failing_nodes.clone());
    cause.nodes.insert("working", working_nodes);
    for group in paths
        .iter()
        .filter(|g| servers.contains(&g.server) && g.protocol == "udp")
    {
        if group
            .client_node
            .as_ref()
            .is_some_and(|n| failing_nodes.contains(n))
        {
            cause.details.push(format!(
                "Where: {} -> {}:{}: {} ({} queries).",
                group.client, group.server, group.port, group.said, group.connections
            ));
        }
    }
    cause.remediation.push(Hint {
        cni: "any",
        hint: format!(
            "From a pod on {} and one on the other nodes, `dig @<server> kubernetes.default.svc.cluster.local`; if only {} fails, follow the path section (the tunnel between the nodes), else CoreDNS's logs.",
            list(&failing_nodes),
            list(&failing_nodes)
        ),
    });
    Some(cause)
}

pub(super) fn not_compared(lines: &[String]) -> NodeCause {
    let mut cause = NodeCause::new(
        NOT_COMPARED,
        Severity::Info,
        "Not everything could be compared across nodes",
        format!(
            "{} things were left out of the comparison; each is listed below.",
            lines.len()
        ),
    );
    cause.evidence.insert("items", lines.len() as u64);
    cause.details = lines.to_vec();
    cause
}
