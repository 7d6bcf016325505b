//! What `--cluster` files say, as read: nodes, pods, services, the CNI's
//! settings and each host's devices, with the warnings about what could
//! not be read.

use crate::interface::DeviceKey;
use crate::time::Timestamp;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    /// From the `node-role.kubernetes.io/ROLE` labels.
    pub roles: Vec<String>,
    pub internal: Vec<IpAddr>,
    pub external: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
}

#[derive(Debug, Clone, Default)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub ips: Vec<IpAddr>,
    /// `Running`, `Pending`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    /// Its addresses are the node's, not its own.
    pub host_network: bool,
    /// `Deployment flux-system/...`'s kind and name, from the owner.
    pub workload: Option<String>,
    pub created: Option<Timestamp>,
}

#[derive(Debug, Clone, Default)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    pub port: u16,
    pub protocol: String,
    pub name: Option<String>,
}

/// A pod CIDR and what declared it.
#[derive(Debug, Clone)]
pub struct PodCidr {
    pub net: IpNet,
    pub from: String,
    /// The node it was allocated to, for a per-node CIDR.
    pub node: Option<String>,
}

/// A CNI setting that decides how pod egress leaves (quoted as found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniSetting {
    /// `cilium-config`, `IPPool default-ipv4-ippool`, `ip-masq-agent`.
    pub source: String,
    pub key: String,
    /// As written, or `unset`.
    pub value: String,
}

/// One device of a host's `ip -j` output.
#[derive(Debug, Clone)]
pub struct HostDevice {
    pub index: u32,
    pub name: String,
    /// Its own link-layer address, as an `-i any` (SLL) capture names it.
    pub link_address: Option<DeviceKey>,
    /// Addresses with their prefix: the network each is connected to.
    pub addresses: Vec<IpNet>,
}

/// One host's `ip -j` output, and the node it belongs to.
#[derive(Debug, Clone)]
pub struct HostLinks {
    pub file: String,
    pub node: Option<String>,
    pub devices: Vec<HostDevice>,
}

impl HostLinks {
    /// The names an `-i any` capture's devices get: by index (SLL2) and by
    /// the device's own link-layer address (SLL, frames it sent).
    pub fn device_names(&self) -> std::collections::BTreeMap<DeviceKey, String> {
        let mut names = std::collections::BTreeMap::new();
        for device in &self.devices {
            names.insert(DeviceKey::Index(device.index), device.name.clone());
            if let Some(address) = &device.link_address {
                (names.entry(address.clone())).or_insert_with(|| device.name.clone());
            }
        }
        names
    }
}

/// Everything read from `--cluster` files, with what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    /// From ServiceCIDR objects, with their name.
    pub service_cidrs: Vec<(IpNet, String)>,
    pub pod_cidrs: Vec<PodCidr>,
    /// Networks that see pod addresses by design (ip-masq-agent's
    /// nonMasqueradeCIDRs, Cilium's native-routing CIDR).
    pub internal: Vec<(IpNet, String)>,
    pub hosts: Vec<HostLinks>,
    pub cni: Vec<CniSetting>,
    /// Located, one line each: `cluster.json: items[3] (Pod a/b): ...`.
    pub warnings: Vec<String>,
}

/// Warnings kept; the rest are counted.
const MAX_WARNINGS: usize = 200;

impl Inventory {
    pub(super) fn warn(&mut self, warning: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        } else if self.warnings.len() == MAX_WARNINGS {
            self.warnings
                .push("more warnings about the cluster files not shown".into());
        }
    }

    /// Assigns each host's `ip` output to the node one of whose addresses
    /// it carries (`load` does; a caller of `read_bytes` calls it last).
    pub fn match_hosts(&mut self) {
        let mut ambiguous = Vec::new();
        for host in &mut self.hosts {
            let carried = |node: &Node| {
                (node.internal.iter().chain(&node.external)).any(|addr| {
                    (host.devices.iter()).any(|d| d.addresses.iter().any(|a| a.addr() == *addr))
                })
            };
            let matching: Vec<&Node> = self.nodes.iter().filter(|n| carried(n)).collect();
            host.node = match matching.as_slice() {
                [one] => Some(one.name.clone()),
                _ => None,
            };
            if matching.len() > 1 {
                ambiguous.push(format!(
                    "{}: carries addresses of {} nodes; matched to none",
                    host.file,
                    matching.len()
                ));
            }
        }
        for warning in ambiguous {
            self.warn(warning);
        }
    }

    /// The node whose `ip` output names devices: `--node`, else the one
    /// host given.
    pub fn host(&self, node: Option<&str>) -> Option<&HostLinks> {
        match node {
            Some(name) => self.hosts.iter().find(|h| h.node.as_deref() == Some(name)),
            None => match self.hosts.as_slice() {
                [one] => Some(one),
                _ => None,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.pods.is_empty()
            && self.services.is_empty()
            && self.hosts.is_empty()
            && self.service_cidrs.is_empty()
            && self.pod_cidrs.is_empty()
    }
}
