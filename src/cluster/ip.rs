//! A node's `ip -j addr` (or `ip -j link`, `ip -j -d addr`): its devices
//! by index, name, link-layer address and addresses. Matched to its
//! node by an address; it names the devices of `-i any` captures and lists
//! the node's addresses and connected networks exactly.

use super::inventory::{HostDevice, HostLinks, Inventory};
use crate::interface::DeviceKey;
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

/// Whether `value` looks like `ip -j` output: a list of objects with an
/// `ifindex` and an `ifname`.
pub fn is_ip_output(value: &Value) -> bool {
    value.as_array().is_some_and(|links| {
        !links.is_empty()
            && links
                .iter()
                .all(|l| l.get("ifindex").is_some() && l.get("ifname").is_some())
    })
}

/// Reads the devices of one host's `ip -j` output.
pub fn read(value: &Value, file: &str, inventory: &mut Inventory) {
    let mut host = HostLinks {
        file: file.to_string(),
        node: None,
        devices: Vec::new(),
    };
    for (i, link) in value.as_array().into_iter().flatten().enumerate() {
        let at = format!("{file}: [{i}]");
        let index = link.get("ifindex").and_then(Value::as_u64);
        let name = link.get("ifname").and_then(Value::as_str);
        let (Some(index), Some(name)) = (index.filter(|i| *i <= u32::MAX as u64), name) else {
            inventory.warn(format!(
                "{at}: ifindex or ifname missing or not valid, skipped"
            ));
            continue;
        };
        let mut device = HostDevice {
            index: index as u32,
            name: name.to_string(),
            // Ethernet addresses only (a number would read as an index).
            link_address: (link.get("address").and_then(Value::as_str))
                .and_then(DeviceKey::parse)
                .filter(|key| matches!(key, DeviceKey::Address(_))),
            addresses: Vec::new(),
        };
        let infos = link.get("addr_info").and_then(Value::as_array);
        for (j, info) in infos.into_iter().flatten().enumerate() {
            let local = info.get("local").and_then(Value::as_str);
            let prefix = info.get("prefixlen").and_then(Value::as_u64);
            let parsed = local
                .and_then(|l| l.parse::<IpAddr>().ok())
                .zip(prefix.and_then(|p| u8::try_from(p).ok()))
                .and_then(|(addr, prefix)| IpNet::new(addr, prefix).ok());
            match parsed {
                Some(net) => device.addresses.push(net),
                None => inventory.warn(format!(
                    "{at} ({name}): addr_info[{j}]: local or prefixlen is not an address and prefix"
                )),
            }
        }
        host.devices.push(device);
    }
    inventory.hosts.push(host);
}
