//! The address plan a dump declares: pod CIDRs (nodes' podCIDRs, CiliumNode,
//! the CNI's config), service CIDRs (ServiceCIDR objects, else inferred
//! from the ClusterIPs and said so), node addresses exactly (a node
//! network's other hosts are neighbours, not nodes), and the networks that
//! see pod addresses by design.

use super::inventory::Inventory;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// One class's CIDRs and where they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub nets: Vec<IpNet>,
    pub from: String,
}

/// The CIDRs of each class the dump declares (empty: the dump is silent).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub pod: Declared,
    pub service: Declared,
    pub node: Declared,
    pub internal: Declared,
    pub warnings: Vec<String>,
}

/// A ClusterIP's service CIDR is guessed as the /16 (IPv6: /112) around it.
const INFERRED_V4: u8 = 16;
const INFERRED_V6: u8 = 112;

impl Plan {
    pub fn new(inventory: &Inventory) -> Plan {
        let mut plan = Plan::default();

        let mut pod: BTreeSet<IpNet> = BTreeSet::new();
        let mut from: BTreeSet<String> = BTreeSet::new();
        let with_cidrs = inventory
            .nodes
            .iter()
            .filter(|n| !n.pod_cidrs.is_empty())
            .count();
        for node in &inventory.nodes {
            pod.extend(&node.pod_cidrs);
        }
        if with_cidrs > 0 {
            from.insert(format!("{with_cidrs} nodes' podCIDRs"));
        }
        for declared in &inventory.pod_cidrs {
            pod.insert(declared.net);
            from.insert(match declared.node {
                Some(_) => "CiliumNode podCIDRs".into(),
                None => declared.from.clone(),
            });
        }
        plan.pod = Declared {
            nets: outermost(&pod),
            from: from.into_iter().collect::<Vec<_>>().join(", "),
        };

        let declared: BTreeSet<IpNet> = inventory.service_cidrs.iter().map(|(n, _)| *n).collect();
        let names: BTreeSet<&str> = inventory
            .service_cidrs
            .iter()
            .map(|(_, f)| f.as_str())
            .collect();
        let cluster_ips: BTreeSet<IpAddr> = (inventory.services.iter())
            .flat_map(|s| s.cluster_ips.iter().copied())
            .collect();
        plan.service = if !declared.is_empty() {
            Declared {
                nets: declared.into_iter().collect(),
                from: names.into_iter().collect::<Vec<_>>().join(", "),
            }
        } else if !cluster_ips.is_empty() {
            let around: BTreeSet<IpNet> = cluster_ips.iter().map(|a| inferred(*a)).collect();
            Declared {
                nets: around.into_iter().collect(),
                from: format!(
                    "inferred from {} ClusterIPs (no ServiceCIDR in the dump)",
                    cluster_ips.len()
                ),
            }
        } else {
            Declared::default()
        };

        let in_pod_cidr = |addr: &IpAddr| plan.pod.nets.iter().any(|n| n.contains(addr));
        let mut node: BTreeSet<IpNet> = BTreeSet::new();
        for n in &inventory.nodes {
            node.extend(
                n.internal
                    .iter()
                    .chain(&n.external)
                    .map(|a| IpNet::from(*a)),
            );
        }
        let from_nodes = !node.is_empty();
        for host in &inventory.hosts {
            for device in &host.devices {
                for net in &device.addresses {
                    let addr = net.addr();
                    if usable_node_address(addr) && !in_pod_cidr(&addr) {
                        node.insert(IpNet::from(addr));
                    }
                }
            }
        }
        let mut from = Vec::new();
        if from_nodes {
            from.push(format!("{} nodes' addresses", inventory.nodes.len()));
        }
        match inventory.hosts.len() {
            0 => {}
            1 => from.push("1 host's ip output".to_string()),
            n => from.push(format!("{n} hosts' ip output")),
        }
        plan.node = Declared {
            nets: node.into_iter().collect(),
            from: from.join(" and "),
        };

        let internal: BTreeSet<IpNet> = inventory.internal.iter().map(|(n, _)| *n).collect();
        let from: BTreeSet<&str> = inventory.internal.iter().map(|(_, f)| f.as_str()).collect();
        plan.internal = Declared {
            nets: internal.into_iter().collect(),
            from: from.into_iter().collect::<Vec<_>>().join(", "),
        };

        let mut claimed: std::collections::BTreeMap<IpAddr, &str> = Default::default();
        for n in &inventory.nodes {
            for addr in n.internal.iter().chain(&n.external) {
                match claimed.insert(*addr, &n.name) {
                    Some(other) if other != n.name => plan.warnings.push(format!(
                        "nodes {other} and {} both claim address {addr}",
                        n.name
                    )),
                    _ => {}
                }
            }
        }
        for (a, a_class) in [(&plan.pod, "pod"), (&plan.service, "service")] {
            for (b, b_class) in [(&plan.service, "service"), (&plan.internal, "internal")] {
                if a_class == b_class {
                    continue;
                }
                for x in &a.nets {
                    for y in b.nets.iter().filter(|y| x.contains(*y) || y.contains(x)) {
                        plan.warnings.push(format!(
                            "{a_class} CIDR {x} ({}) overlaps {b_class} CIDR {y} ({}): the more specific wins",
                            a.from, b.from
                        ));
                    }
                }
            }
        }
        if !plan.pod.nets.is_empty() {
            for p in inventory.pods.iter().filter(|p| !p.host_network) {
                for addr in p.ips.iter().filter(|a| !in_pod_cidr(a)) {
                    plan.warnings.push(format!(
                        "pod {}/{} has address {addr}, outside every pod CIDR ({})",
                        p.namespace,
                        p.name,
                        list(&plan.pod.nets)
                    ));
                }
            }
        }
        plan
    }
}

/// The networks not inside another of `nets` (a node's /24 inside the
/// cluster's /16 classifies nothing the /16 does not).
fn outermost(nets: &BTreeSet<IpNet>) -> Vec<IpNet> {
    (nets.iter())
        .filter(|n| !nets.iter().any(|o| o != *n && o.contains(*n)))
        .copied()
        .collect()
}

fn inferred(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() {
        INFERRED_V4
    } else {
        INFERRED_V6
    };
    IpNet::new(addr, prefix).expect("a valid prefix").trunc()
}

fn usable_node_address(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local() && !a.is_unspecified(),
        IpAddr::V6(a) => {
            !a.is_loopback() && !a.is_unspecified() && (a.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

fn list(nets: &[IpNet]) -> String {
    nets.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
