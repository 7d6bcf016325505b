//! The name of an address: the pod that holds it (Running pods first;
//! hostNetwork pods hold their node's address, not their own; a finished
//! pod's only when nothing running holds it, and said so), the service
//! whose ClusterIP it is (with its port names), or the node (name, roles).

use super::inventory::{CniSetting, Inventory, Pod};
use crate::interface::{DeviceKey, InterfaceKind};
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressName {
    /// `pod`, `service` or `node`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The node a pod runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `Deployment source-controller`, from the pod's owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// A node's roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// A service's ports: `53/UDP dns`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Why the name may be wrong (a finished pod, one created after the
    /// capture ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl AddressName {
    /// As tables and prose show it: `flux-system/source-controller-...`,
    /// `k3s-w1`.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Every named address of an inventory, and what the diagnosis quotes:
/// the CNI's settings and each node's NICs.
#[derive(Debug, Default)]
pub struct Directory {
    pub cni: Vec<CniSetting>,
    /// Each node's NICs that have addresses (from its `ip -j` output).
    pub nics: BTreeMap<String, Vec<String>>,
    /// Each node's addresses, and its devices' names (`ip -j` output).
    nodes: Vec<NodeAddresses>,
    /// `--node`: the node the captures were taken on.
    given_node: Option<String>,
    /// The networks the nodes' NICs are connected to.
    pub networks: Vec<NodeNetwork>,
    /// Pods holding each address, best owner first.
    pods: FxHashMap<IpAddr, Vec<usize>>,
    pod_list: Vec<Pod>,
    others: FxHashMap<IpAddr, AddressName>,
}

fn running(pod: &Pod) -> bool {
    pod.phase == "Running"
}

impl Directory {
    /// The directory of `inventory`, for captures taken on `node` (if
    /// known: else each capture's node is found from its traffic).
    pub fn new(inventory: &Inventory, node: Option<&str>) -> Directory {
        let mut directory = Directory {
            pod_list: inventory.pods.clone(),
            cni: inventory.cni.clone(),
            given_node: node.map(str::to_string),
            ..Directory::default()
        };
        for n in &inventory.nodes {
            let host = inventory
                .hosts
                .iter()
                .find(|h| h.node.as_deref() == Some(&n.name));
            let mut addresses: Vec<IpAddr> =
                n.internal.iter().chain(&n.external).copied().collect();
            addresses.extend(
                host.iter()
                    .flat_map(|h| h.devices.iter())
                    .flat_map(|d| d.addresses.iter().map(|a| a.addr())),
            );
            directory.nodes.push(NodeAddresses {
                name: n.name.clone(),
                roles: n.roles.clone(),
                pod_cidrs: n.pod_cidrs.clone(),
                addresses,
                devices: host.map(|h| h.device_names()).unwrap_or_default(),
            });
        }
        for host in &inventory.hosts {
            let Some(node) = &host.node else { continue };
            let nics: Vec<_> = (host.devices.iter())
                .filter(|d| InterfaceKind::of(Some(&d.name)) == InterfaceKind::Nic)
                .filter(|d| !d.name.starts_with("cilium_") && !d.addresses.is_empty())
                .collect();
            for nic in &nics {
                for net in nic
                    .addresses
                    .iter()
                    .filter(|n| n.prefix_len() < n.max_prefix_len())
                {
                    directory.networks.push(NodeNetwork {
                        node: node.clone(),
                        nic: nic.name.clone(),
                        net: net.trunc(),
                        address: net.addr(),
                    });
                }
            }
            let names = nics.iter().map(|d| d.name.clone());
            directory
                .nics
                .entry(node.clone())
                .or_default()
                .extend(names);
        }
        for (i, pod) in directory.pod_list.iter().enumerate() {
            if pod.host_network {
                continue;
            }
            for addr in &pod.ips {
                directory.pods.entry(*addr).or_default().push(i);
            }
        }
        let list = &directory.pod_list;
        for holders in directory.pods.values_mut() {
            // Running first, then the newest: the likeliest holder.
            holders.sort_by_key(|&i| (!running(&list[i]), std::cmp::Reverse(list[i].created)));
        }
        for service in &inventory.services {
            let ports = (service.ports.iter())
                .map(|p| match &p.name {
                    Some(name) if !name.is_empty() => format!("{}/{} {name}", p.port, p.protocol),
                    _ => format!("{}/{}", p.port, p.protocol),
                })
                .collect::<Vec<_>>();
            for addr in &service.cluster_ips {
                directory
                    .others
                    .entry(*addr)
                    .or_insert_with(|| AddressName {
                        kind: "service",
                        namespace: Some(service.namespace.clone()),
                        name: service.name.clone(),
                        node: None,
                        workload: None,
                        roles: Vec::new(),
                        ports: ports.clone(),
                        note: None,
                    });
            }
        }
        let node_name = |name: &str| {
            let roles = (inventory.nodes.iter())
                .find(|n| n.name == name)
                .map(|n| n.roles.clone())
                .unwrap_or_default();
            AddressName {
                kind: "node",
                namespace: None,
                name: name.to_string(),
                node: None,
                workload: None,
                roles,
                ports: Vec::new(),
                note: None,
            }
        };
        for node in &inventory.nodes {
            for addr in node.internal.iter().chain(&node.external) {
                directory
                    .others
                    .entry(*addr)
                    .or_insert_with(|| node_name(&node.name));
            }
        }
        for host in &inventory.hosts {
            let Some(name) = &host.node else { continue };
            for device in &host.devices {
                for net in &device.addresses {
                    if !directory.pods.contains_key(&net.addr()) {
                        directory
                            .others
                            .entry(net.addr())
                            .or_insert_with(|| node_name(name));
                    }
                }
            }
        }
        directory
    }

    /// The name of `addr` in a capture that ended at `capture_end`.
    pub fn name(&self, addr: IpAddr, capture_end: Option<Timestamp>) -> Option<AddressName> {
        if let Some(holders) = self.pods.get(&addr) {
            let pod = &self.pod_list[holders[0]];
            let mut note = None;
            if !running(pod) {
                note = Some(format!(
                    "pod {}; no running pod holds this address",
                    pod.phase
                ));
            }
            if let (Some(created), Some(end)) = (pod.created, capture_end) {
                if created > end {
                    note = Some(format!(
                        "created {created}, after the capture ended: may not have held this address then"
                    ));
                }
            }
            return Some(AddressName {
                kind: "pod",
                namespace: Some(pod.namespace.clone()),
                name: pod.name.clone(),
                node: pod.node.clone(),
                workload: pod.workload.clone(),
                roles: Vec::new(),
                ports: Vec::new(),
                note,
            });
        }
        self.others.get(&addr).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.others.is_empty()
    }

    /// The nodes of the dump, in its order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    /// A node's roles (`control-plane`), empty for a worker or an unknown
    /// node.
    pub fn roles(&self, node: &str) -> Vec<String> {
        (self.nodes.iter())
            .find(|n| n.name == node)
            .map(|n| n.roles.clone())
            .unwrap_or_default()
    }

    /// The node a pod address belongs to: its pod's node, else the node
    /// whose pod CIDR holds it.
    pub fn node_of_pod(&self, addr: IpAddr) -> Option<&str> {
        if let Some(holders) = self.pods.get(&addr) {
            if let Some(node) = &self.pod_list[holders[0]].node {
                return Some(node);
            }
        }
        (self.nodes.iter())
            .find(|n| n.pod_cidrs.iter().any(|net| net.contains(&addr)))
            .map(|n| n.name.as_str())
    }

    /// The node `addr` belongs to: a pod's (`node_of_pod`), else the node
    /// whose address it is.
    pub fn node_of(&self, addr: IpAddr) -> Option<&str> {
        self.node_of_pod(addr)
            .or_else(|| self.node_of_address(addr))
    }

    /// The node one of whose addresses `addr` is.
    pub fn node_of_address(&self, addr: IpAddr) -> Option<&str> {
        (self.nodes.iter())
            .find(|n| n.addresses.contains(&addr))
            .map(|n| n.name.as_str())
    }

    /// The node a capture was taken on: `--node`, else the node whose
    /// addresses send or receive the most of `packets_between` (packets
    /// per (source, destination)), if any does.
    pub fn capture_node(
        &self,
        packets_between: impl Iterator<Item = ((IpAddr, IpAddr), u64)>,
    ) -> Option<CaptureNode> {
        self.capture_node_given(None, packets_between)
    }

    /// `capture_node`, where `assigned` (`--node NAME=FILE`) wins over
    /// `--node` and the traffic.
    pub fn capture_node_given(
        &self,
        assigned: Option<&str>,
        packets_between: impl Iterator<Item = ((IpAddr, IpAddr), u64)>,
    ) -> Option<CaptureNode> {
        let given = match assigned {
            Some(name) => Some((name, "--node NAME=FILE")),
            None => self.given_node.as_deref().map(|name| (name, "--node")),
        };
        if let Some((name, how)) = given {
            return Some(CaptureNode {
                name: name.to_string(),
                how: how.into(),
                devices: (self.nodes.iter())
                    .find(|n| n.name == name)
                    .map(|n| n.devices.clone())
                    .unwrap_or_default(),
            });
        }
        let owner: FxHashMap<IpAddr, usize> = (self.nodes.iter().enumerate())
            .flat_map(|(i, n)| n.addresses.iter().map(move |a| (*a, i)))
            .collect();
        let mut packets = vec![0u64; self.nodes.len()];
        for ((from, to), count) in packets_between {
            for addr in [from, to] {
                if let Some(&i) = owner.get(&addr) {
                    packets[i] += count;
                }
            }
        }
        let (best, &count) = packets
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))?;
        let node = &self.nodes[best];
        (count > 0).then(|| CaptureNode {
            name: node.name.clone(),
            how: format!("its addresses are in {count} packets, the most of any node"),
            devices: node.devices.clone(),
        })
    }
}

/// A network a node's NIC is connected to (from its address and prefix).
#[derive(Debug, Clone)]
pub struct NodeNetwork {
    pub node: String,
    pub nic: String,
    pub net: ipnet::IpNet,
    /// The node's own address on it.
    pub address: IpAddr,
}

/// A node's addresses and device names.
#[derive(Debug, Clone)]
struct NodeAddresses {
    name: String,
    roles: Vec<String>,
    pod_cidrs: Vec<ipnet::IpNet>,
    addresses: Vec<IpAddr>,
    devices: BTreeMap<DeviceKey, String>,
}

/// The node a capture was taken on, and how that is known.
#[derive(Debug, Clone)]
pub struct CaptureNode {
    pub name: String,
    pub how: String,
    /// Its devices' names (from its `ip -j` output), for `-i any`.
    pub devices: BTreeMap<DeviceKey, String>,
}
