//! Which interface a packet was captured on, and what kind of interface
//! that is. A packet's `Via` combines the capture's interface (pcapng
//! interface description, or the one interface of a classic pcap) with the
//! device a Linux `-i any` capture names in its cooked header: the
//! interface index (SLL2), or the direction and link-layer address (SLL,
//! which has no index).

use crate::capture::Interface;
use crate::decode::Cooked;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

/// An interface as evidence names it: the text reports show, shared by the
/// items that name it, and whether that text is a name the capture or
/// `--ifname` gave, rather than a stand-in such as `#0`. Serialized as its
/// text; ordered by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    text: Arc<str>,
    unnamed_capture_interface: bool,
    /// `text` is the interface's or device's name, not a stand-in for
    /// one (`#0`, `ifindex 3`, `in 0a:58:...`).
    named: bool,
}

impl Label {
    fn new(text: impl Into<Arc<str>>, unnamed_capture_interface: bool) -> Label {
        Label {
            text: text.into(),
            unnamed_capture_interface,
            named: false,
        }
    }

    /// The name of the node NIC this is, if it is a named NIC: what a
    /// remediation may tell to configure.
    pub fn nic_name(&self) -> Option<&str> {
        let nic = self.named && InterfaceKind::of(Some(&self.text)) == InterfaceKind::Nic;
        nic.then_some(&*self.text)
    }

    /// No interface (an item without crossings).
    pub fn none() -> Label {
        Label::new("", false)
    }

    /// The same interface, as seen inside `tunnel`: `ens19 (vxlan 42)`.
    pub fn inside(&self, tunnel: impl fmt::Display) -> Label {
        Label::new(
            format!("{} ({tunnel})", self.text),
            self.unnamed_capture_interface,
        )
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A capture interface without a name (`#0`): nothing an SRE can look
    /// up on the node. Devices of `-i any` captures are not: `ifindex 3`
    /// is found with `ip -o link`.
    pub fn is_unnamed_capture_interface(&self) -> bool {
        self.unnamed_capture_interface
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Where a packet was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Via {
    /// The capture's interface id (pcapng numbering; 0 for classic pcap).
    pub interface: u32,
    pub device: Device,
}

/// The device inside a capture interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// The capture interface is the device.
    Whole,
    /// SLL2: the kernel's interface index.
    Index(u32),
    /// SLL: no index; the direction and link-layer address stand in for
    /// the device (an outgoing frame carries the device's own address).
    Address {
        outgoing: bool,
        address: [u8; 8],
        len: u8,
    },
}

impl Via {
    pub fn new(interface: u32, cooked: Option<&Cooked>) -> Via {
        let device = match cooked {
            None => Device::Whole,
            Some(Cooked {
                ifindex: Some(index),
                ..
            }) => Device::Index(*index),
            Some(c) => Device::Address {
                outgoing: c.outgoing(),
                address: c.address,
                len: c.address_len,
            },
        };
        Via { interface, device }
    }
}

/// What an interface is for, told by its name's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterfaceKind {
    /// The host side of a pod's veth pair or a pod bridge (lxc*, veth*,
    /// cali*, cni0): packets here are still inside the cluster.
    PodSide,
    /// An overlay device (cilium_vxlan, flannel.1, vxlan.calico, tunl0):
    /// inner packets before encapsulation.
    Overlay,
    /// A node NIC (ens19, eth0, bond0, ...): the wire.
    Nic,
    /// The loopback device (lo, lo0).
    Loopback,
    /// No name to judge by (`any`, an unnamed index).
    Unknown,
}

const POD_SIDE_PREFIXES: [&str; 5] = ["lxc", "veth", "cali", "cni", "azv"];
const OVERLAY_PREFIXES: [&str; 9] = [
    "cilium_vxlan",
    "cilium_geneve",
    "flannel",
    "vxlan",
    "tunl",
    "genev_sys",
    "vxlan_sys",
    "weave",
    "kube-ipvs",
];

impl InterfaceKind {
    pub fn of(name: Option<&str>) -> InterfaceKind {
        let Some(name) = name else {
            return InterfaceKind::Unknown;
        };
        if POD_SIDE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            InterfaceKind::PodSide
        } else if OVERLAY_PREFIXES.iter().any(|p| name.starts_with(p)) {
            InterfaceKind::Overlay
        } else if name == "any" || name.is_empty() {
            InterfaceKind::Unknown
        } else if name == "lo"
            || name
                .strip_prefix("lo")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            InterfaceKind::Loopback
        } else {
            InterfaceKind::Nic
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            InterfaceKind::PodSide => "pod-side",
            InterfaceKind::Overlay => "overlay",
            InterfaceKind::Nic => "nic",
            InterfaceKind::Loopback => "loopback",
            InterfaceKind::Unknown => "unknown",
        }
    }

    /// Inside the cluster's own plumbing, where pod addresses and
    /// untranslated VIPs are expected.
    pub fn is_cluster_side(self) -> bool {
        matches!(self, InterfaceKind::PodSide | InterfaceKind::Overlay)
    }
}

/// Names for the interfaces of one capture: pcapng `if_name`s, plus names
/// the user gave devices of an `-i any` capture (`--ifname 3=ens19`).
#[derive(Debug, Clone, Default)]
pub struct InterfaceNames {
    capture: Vec<Option<String>>,
    devices: BTreeMap<DeviceKey, String>,
    /// Label and kind of the interfaces records came on (`learn`), worked
    /// out once: evidence names an interface per flow.
    known: FxHashMap<Via, (Label, InterfaceKind)>,
    /// Unnamed devices whose kind their traffic told (`take_as_pod_side`).
    by_traffic: FxHashSet<Via>,
}

/// How `--ifname` names a device: by index (SLL2) or address (SLL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKey {
    Index(u32),
    Address([u8; 8]),
}

impl DeviceKey {
    /// `3` or `52:54:00:12:34:56`.
    pub fn parse(text: &str) -> Option<DeviceKey> {
        if let Ok(index) = text.parse() {
            return Some(DeviceKey::Index(index));
        }
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()
            .ok()?;
        if bytes.is_empty() || bytes.len() > 8 {
            return None;
        }
        let mut address = [0u8; 8];
        address[..bytes.len()].copy_from_slice(&bytes);
        Some(DeviceKey::Address(address))
    }
}

fn format_address(address: &[u8; 8], len: u8) -> String {
    let mut out = String::new();
    for (i, b) in address[..len.min(8) as usize].iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl InterfaceNames {
    pub fn new(interfaces: &[Interface], devices: BTreeMap<DeviceKey, String>) -> InterfaceNames {
        InterfaceNames {
            capture: interfaces.iter().map(|i| i.name.clone()).collect(),
            devices,
            known: FxHashMap::default(),
            by_traffic: FxHashSet::default(),
        }
    }

    /// Works out the label and kind of each of `vias` once.
    pub fn learn(&mut self, vias: impl IntoIterator<Item = Via>) {
        for via in vias {
            let known = (self.new_label(&via), self.kind(&via));
            self.known.insert(via, known);
        }
    }

    /// Takes `vias`, devices without a name, for pod-side devices: their
    /// traffic says so (`analysis::pod_side`). A named one keeps the kind
    /// its name gives.
    pub fn take_as_pod_side(&mut self, vias: impl IntoIterator<Item = Via>) {
        for via in vias {
            if self.kind(&via) != InterfaceKind::Unknown {
                continue;
            }
            let label = self.shared_label(&via);
            self.known.insert(via, (label, InterfaceKind::PodSide));
            self.by_traffic.insert(via);
        }
    }

    /// Whether the interface's kind was told by its traffic, not its name.
    pub fn kind_by_traffic(&self, via: &Via) -> bool {
        self.by_traffic.contains(via)
    }

    /// `label`, shared: no allocation for a learnt interface.
    pub fn shared_label(&self, via: &Via) -> Label {
        match self.known.get(via) {
            Some((label, _)) => label.clone(),
            None => self.new_label(via),
        }
    }

    fn new_label(&self, via: &Via) -> Label {
        let named = self.name(via).is_some();
        let unnamed = via.device == Device::Whole && !named;
        Label {
            named,
            ..Label::new(self.label(via), unnamed)
        }
    }

    /// The name of a capture interface, if it has one.
    pub fn capture_name(&self, interface: u32) -> Option<&str> {
        self.capture.get(interface as usize)?.as_deref()
    }

    /// The device's own name, if known.
    pub fn name(&self, via: &Via) -> Option<&str> {
        match via.device {
            Device::Whole => self.capture_name(via.interface),
            Device::Index(index) => self
                .devices
                .get(&DeviceKey::Index(index))
                .map(String::as_str),
            Device::Address { address, .. } => self
                .devices
                .get(&DeviceKey::Address(address))
                .map(String::as_str),
        }
    }

    /// What reports call the interface: its name, else `ifindex 3`,
    /// `out 52:54:00:12:34:56` (SLL) or `#0`.
    pub fn label(&self, via: &Via) -> String {
        if let Some(name) = self.name(via) {
            return name.to_string();
        }
        match via.device {
            Device::Whole => format!("#{}", via.interface),
            Device::Index(index) => format!("ifindex {index}"),
            Device::Address {
                outgoing,
                address,
                len,
            } => {
                let way = if outgoing { "out" } else { "in" };
                if len == 0 {
                    way.to_string()
                } else {
                    format!("{way} {}", format_address(&address, len))
                }
            }
        }
    }

    pub fn kind(&self, via: &Via) -> InterfaceKind {
        if let Some((_, kind)) = self.known.get(via) {
            return *kind;
        }
        InterfaceKind::of(self.name(via))
    }

    /// Whether `wanted` (an `--interface` value) names this interface: its
    /// label, or its capture interface's name.
    pub fn matches(&self, via: &Via, wanted: &str) -> bool {
        self.label(via) == wanted
            || (via.device != Device::Whole && self.capture_name(via.interface) == Some(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(
            InterfaceKind::of(Some("lxc8a3f2c1d")),
            InterfaceKind::PodSide
        );
        assert_eq!(InterfaceKind::of(Some("cali12ab")), InterfaceKind::PodSide);
        assert_eq!(
            InterfaceKind::of(Some("cilium_vxlan")),
            InterfaceKind::Overlay
        );
        assert_eq!(InterfaceKind::of(Some("flannel.1")), InterfaceKind::Overlay);
        assert_eq!(InterfaceKind::of(Some("ens19")), InterfaceKind::Nic);
        assert_eq!(InterfaceKind::of(Some("lo0")), InterfaceKind::Loopback);
        assert_eq!(InterfaceKind::of(Some("lookout")), InterfaceKind::Nic);
        assert_eq!(InterfaceKind::of(Some("any")), InterfaceKind::Unknown);
        assert_eq!(InterfaceKind::of(None), InterfaceKind::Unknown);
    }

    #[test]
    fn labels_say_whether_the_interface_is_named() {
        let interfaces = [
            Interface {
                id: 0,
                name: Some("ens19".into()),
                link_type: 1,
                ts_units_per_sec: 1_000_000,
                ts_offset_secs: 0,
                ..Interface::default()
            },
            Interface {
                id: 1,
                name: None,
                link_type: 1,
                ts_units_per_sec: 1_000_000,
                ts_offset_secs: 0,
                ..Interface::default()
            },
        ];
        let names = InterfaceNames::new(&interfaces, BTreeMap::new());
        let named = names.shared_label(&Via::new(0, None));
        let unnamed = names.shared_label(&Via::new(1, None));
        let device = Via {
            interface: 1,
            device: Device::Index(3),
        };
        assert_eq!(
            (named.as_str(), named.is_unnamed_capture_interface()),
            ("ens19", false)
        );
        assert_eq!(
            (unnamed.as_str(), unnamed.is_unnamed_capture_interface()),
            ("#1", true)
        );
        let index = names.shared_label(&device);
        assert_eq!(
            (index.as_str(), index.is_unnamed_capture_interface()),
            ("ifindex 3", false)
        );
        let tunneled = unnamed.inside("vxlan");
        assert_eq!(tunneled.to_string(), "#1 (vxlan)");
        assert!(tunneled.is_unnamed_capture_interface());
        assert_eq!(serde_json::to_string(&named).unwrap(), "\"ens19\"");
    }

    #[test]
    fn device_keys_parse() {
        assert_eq!(DeviceKey::parse("3"), Some(DeviceKey::Index(3)));
        assert_eq!(
            DeviceKey::parse("52:54:00:12:34:56"),
            Some(DeviceKey::Address([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0]))
        );
        assert_eq!(DeviceKey::parse("ens19"), None);
    }
}
