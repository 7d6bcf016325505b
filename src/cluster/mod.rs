//! What the cluster says about itself, from files the SRE collects with
//! one command each (`kubectl get ... -o json`, `ip -j addr` on the node):
//! nodes, pods, services, the CNI's settings and each node's devices. From
//! it come the address plan (no CIDR flag needed), the names of addresses,
//! and the device names of `-i any` captures.
//!
//! Formats are told apart by content, never by file name; nothing in a
//! dump is trusted to be well formed (`kube`).

mod ip;
mod kube;
mod names;
mod plan;
mod slim;
pub mod yaml;

pub use kube::CILIUM_KEYS;
pub use names::{AddressName, CaptureNode, Directory};
pub use plan::{Declared, Plan};

use crate::interface::DeviceKey;
use crate::time::Timestamp;
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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
    /// `vxlan`, `veth`, ... (`ip -d` only).
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
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
            if let Some(mac) = device.mac {
                let mut address = [0u8; 8];
                address[..6].copy_from_slice(&mac);
                names
                    .entry(DeviceKey::Address(address))
                    .or_insert_with(|| device.name.clone());
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

/// Why `--cluster` could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Read(String, crate::error::CaptureError),
    #[error("{0}: larger than {MAX_FILE_BYTES} bytes, not a dump kpcap reads")]
    TooLarge(String),
}

/// Past any real dump (a 50 000-pod cluster's is a few hundred MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// A `List` (or any object with `items`), its items not parsed yet.
#[derive(Deserialize)]
struct Listing<'a> {
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

/// Warnings kept; the rest are counted.
const MAX_WARNINGS: usize = 200;

impl Inventory {
    fn warn(&mut self, warning: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        } else if self.warnings.len() == MAX_WARNINGS {
            self.warnings
                .push("more warnings about the cluster files not shown".into());
        }
    }

    /// Reads every file of `paths` (a directory: its files, in name order).
    pub fn load(paths: &[PathBuf]) -> Result<Inventory, ClusterError> {
        let mut inventory = Inventory::default();
        for path in paths {
            for file in files(path)? {
                inventory.read_file(&file)?;
            }
        }
        inventory.match_hosts();
        Ok(inventory)
    }

    fn read_file(&mut self, path: &Path) -> Result<(), ClusterError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ClusterError::Io(name.clone(), e))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(ClusterError::TooLarge(name));
        }
        // Mapped like a capture (and watched: a file truncated while it is
        // read is one line and exit 2), read once front to back.
        let bytes = crate::capture::load(path).map_err(|e| ClusterError::Read(name.clone(), e))?;
        self.read_bytes(&name, bytes.as_ref());
        Ok(())
    }

    /// Reads one file's bytes, telling the format by content.
    pub fn read_bytes(&mut self, file: &str, bytes: &[u8]) {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let documents = match first {
            None => {
                self.warn(format!("{file}: empty, skipped"));
                return;
            }
            Some(b'{' | b'[') => {
                if let Err(e) = self.read_json(file, bytes) {
                    self.warn(format!("{file}: not JSON kpcap can read ({e}), skipped"));
                }
                return;
            }
            Some(_) => {
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => {
                        let at = e.valid_up_to();
                        self.warn(format!("{file}: byte {at}: not UTF-8 text, skipped"));
                        return;
                    }
                };
                match yaml::documents(text) {
                    Ok(documents) => documents,
                    Err(e) => {
                        self.warn(format!("{file}: {e}: not YAML or JSON, skipped"));
                        return;
                    }
                }
            }
        };
        let mut understood = false;
        for (i, document) in documents.iter().enumerate() {
            let path = if documents.len() > 1 {
                format!("document {}", i + 1)
            } else {
                String::new()
            };
            if ip::is_ip_output(document) {
                ip::read(document, file, self);
                understood = true;
                continue;
            }
            let objects: Vec<&Value> = match document {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for object in objects {
                let place = kube::Place {
                    file,
                    path: path.clone(),
                };
                understood |= kube::read(object, &place, self);
            }
        }
        if !understood {
            self.warn(format!(
                "{file}: neither Kubernetes objects (kubectl get -o json|yaml) nor `ip -j addr` output, skipped"
            ));
        }
    }

    /// A JSON file, a list's items one at a time: each is parsed from its
    /// slice of the file and dropped once read, so a dump of 50 000 pods
    /// never becomes one tree in memory.
    fn read_json(&mut self, file: &str, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let is_array = bytes.trim_ascii_start().starts_with(b"[");
        let (items, path): (Vec<&RawValue>, &str) = if is_array {
            (serde_json::from_slice(bytes)?, "")
        } else {
            match serde_json::from_slice::<Listing<'_>>(bytes)?.items {
                Some(items) => (items, "items"),
                None => {
                    let object: Value = serde_json::from_slice(bytes)?;
                    let place = kube::Place {
                        file,
                        path: String::new(),
                    };
                    if !kube::read(&object, &place, self) {
                        self.warn(format!(
                            "{file}: neither Kubernetes objects (kubectl get -o json|yaml) nor `ip -j addr` output, skipped"
                        ));
                    }
                    return Ok(());
                }
            }
        };
        let mut links = Vec::new();
        for (i, raw) in items.iter().enumerate() {
            // A top-level array may be `ip -j` output: read whole.
            let item = if path.is_empty() {
                serde_json::from_str(raw.get())?
            } else {
                slim::parse(raw.get())?
            };
            if path.is_empty() && item.get("ifindex").is_some() {
                links.push(item);
                continue;
            }
            let place = kube::Place {
                file,
                path: format!("{path}[{i}]"),
            };
            if !kube::read(&item, &place, self) {
                let at = place.object(&item);
                self.warn(format!("{at}: not a Kubernetes object, skipped"));
            }
        }
        if !links.is_empty() {
            ip::read(&Value::Array(links), file, self);
        }
        Ok(())
    }

    /// Assigns each host's `ip` output to the node one of whose addresses
    /// it carries (`load` does; a caller of `read_bytes` calls it last).
    pub fn match_hosts(&mut self) {
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
                self.warnings.push(format!(
                    "{}: carries addresses of {} nodes; matched to none",
                    host.file,
                    matching.len()
                ));
            }
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

/// A path's files: itself, or a directory's regular files in name order
/// (not recursing: a dump directory is flat).
fn files(path: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let name = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ClusterError::Io(name(), e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| ClusterError::Io(name(), e))? {
        let entry = entry.map_err(|e| ClusterError::Io(name(), e))?;
        let file = entry.path();
        if file.is_file() && !is_hidden(&file) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests;
