//! What the cluster says about itself, from files the SRE collects with
//! one command each (`kubectl get ... -o json`, `ip -j addr` on the node):
//! nodes, pods, services, the CNI's settings and each node's devices. From
//! it come the address plan (no CIDR flag needed), the names of addresses,
//! and the device names of `-i any` captures.
//!
//! Formats are told apart by content, never by file name; nothing in a
//! dump is trusted to be well formed (`kube`).

mod inventory;
mod ip;
mod kube;
mod names;
mod plan;
mod read;
mod slim;
pub mod yaml;

pub use inventory::{
    CniSetting, HostDevice, HostLinks, Inventory, Node, Pod, PodCidr, Service, ServicePort,
};
pub use kube::CILIUM_KEYS;
pub use names::{AddressName, CaptureNode, Directory};
pub use plan::{Declared, Plan};
pub use read::{ClusterError, MAX_FILE_BYTES};

#[cfg(test)]
mod tests;
