//! Pod-side devices of a `tcpdump -i any` capture that names none, told by
//! their traffic. The host side of a pod's veth (Cilium's lxc, Calico's
//! cali, a bridge port) receives only what its pod sends, from the pod's
//! own address; a NIC or an overlay device receives from many addresses,
//! or through tunnels. Without this, a pod's packet seen arriving on its
//! lxc device counts as leaving the node there, and every pod's device is
//! named among the interfaces unmasqueraded pod egress left on.
//!
//! Only a device that received packets, all from one pod address and none
//! through a tunnel, is taken for pod side; a dual-stack pod's device (two
//! addresses) stays unknown, as before.

use crate::flow::{Direction, Flow, FlowKey, FlowTable, Partition};
use crate::interface::{Device, InterfaceKind, InterfaceNames, Via};
use crate::topology::{AddrClass, Topology};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Where a device's received packets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Senders {
    OnePod(IpAddr),
    Others,
}

impl Senders {
    fn and(self, other: Senders) -> Senders {
        match (self, other) {
            (Senders::OnePod(a), Senders::OnePod(b)) if a == b => self,
            _ => Senders::Others,
        }
    }
}

type BySenders = FxHashMap<Via, Senders>;

fn add(into: &mut BySenders, via: Via, senders: Senders) {
    into.entry(via)
        .and_modify(|held| *held = held.and(senders))
        .or_insert(senders);
}

/// The unnamed devices of cooked captures that received packets from one
/// pod address only, in `Via` order.
pub fn pod_side_devices(
    flows: &FlowTable,
    topology: &Topology,
    names: &InterfaceNames,
) -> Vec<Via> {
    let unnamed_device =
        |via: &Via| via.device != Device::Whole && names.kind(via) == InterfaceKind::Unknown;
    if !flows.summary.per_interface.keys().any(unnamed_device) {
        return Vec::new();
    }
    let tally = |mut by: BySenders, partition: &Partition<FlowKey, Flow>| {
        for (key, flow) in partition {
            for crossing in flow.crossings.iter().filter(|c| unnamed_device(&c.via)) {
                for direction in [Direction::Lo, Direction::Hi] {
                    if !crossing.received[direction.index()] {
                        continue;
                    }
                    let sender = key.sender(direction).addr;
                    let senders = if crossing.tunnel.is_none()
                        && topology.classify(sender) == AddrClass::Pod
                    {
                        Senders::OnePod(sender)
                    } else {
                        Senders::Others
                    };
                    add(&mut by, crossing.via, senders);
                }
            }
        }
        by
    };
    let merge = |mut a: BySenders, b: BySenders| {
        for (via, senders) in b {
            add(&mut a, via, senders);
        }
        a
    };
    let by = (flows.flows.partitions().par_iter())
        .fold(BySenders::default, tally)
        .reduce(BySenders::default, merge);
    let mut pod_side: Vec<Via> = (by.into_iter())
        .filter(|(_, senders)| matches!(senders, Senders::OnePod(_)))
        .map(|(via, _)| via)
        .collect();
    pod_side.sort_unstable();
    pod_side
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Record;
    use crate::decode::{Cooked, IpHeader, Packet, Transport, Tunnel, TunnelKind, Udp, PROTO_UDP};
    use crate::interface::DeviceKey;
    use crate::observe::{Seen, Settle};
    use crate::time::Timestamp;
    use crate::topology::Preset;
    use std::collections::BTreeMap;

    /// A UDP packet `from` -> `to` on SLL2 device `ifindex`, arriving
    /// there (`received`) or leaving by it, in VXLAN if `tunneled`.
    fn packet(ifindex: u32, received: bool, from: &str, to: &str, tunneled: bool) -> Seen<'static> {
        let cooked = Cooked {
            ifindex: Some(ifindex),
            packet_type: if received { 0 } else { Cooked::OUTGOING },
            address: [0; 8],
            address_len: 6,
        };
        let tunnel = tunneled.then(|| Tunnel {
            kind: TunnelKind::Vxlan,
            vni: 2,
            outer_src: "10.50.10.22".parse().unwrap(),
            outer_dst: "10.50.10.21".parse().unwrap(),
        });
        Seen {
            record: Record {
                position: 0,
                ts: Timestamp(1),
                interface: 0,
                link_type: 276,
                orig_len: 60,
                data: &[],
            },
            packet: Packet {
                ip: Some(IpHeader {
                    src: from.parse().unwrap(),
                    dst: to.parse().unwrap(),
                    protocol: PROTO_UDP,
                    fragment: false,
                    ident: 0,
                }),
                transport: Transport::Udp(Udp {
                    src_port: 40000,
                    dst_port: 53,
                    payload: &[],
                }),
                tunnel,
                cooked: Some(cooked),
                ..Packet::default()
            },
            via: Via::new(0, Some(&cooked)),
            duplicate: false,
        }
    }

    fn pod_side(packets: &[Seen<'_>], names: &InterfaceNames) -> Vec<u32> {
        let mut table = FlowTable::default();
        for seen in packets {
            table.observe(seen);
        }
        table.settle_whole();
        let topology = Topology::preset(Preset::K3s, false);
        (pod_side_devices(&table, &topology, names).into_iter())
            .map(|via| match via.device {
                Device::Index(index) => index,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_device_that_receives_from_one_pod_only_is_pod_side() {
        let names = InterfaceNames::default();
        let packets = [
            // The pod's lxc (11): its packets arrive there, answers leave.
            packet(11, true, "10.42.1.5", "1.1.1.1", false),
            packet(11, true, "10.42.1.5", "8.8.8.8", false),
            packet(11, false, "1.1.1.1", "10.42.1.5", false),
            // The NIC (3): the same packet leaves, answers arrive.
            packet(3, false, "10.42.1.5", "1.1.1.1", false),
            packet(3, true, "1.1.1.1", "10.42.1.5", false),
            // A device two pods send on (a bridge): not one pod's.
            packet(4, true, "10.42.1.6", "1.1.1.1", false),
            packet(4, true, "10.42.1.7", "1.1.1.1", false),
            // Only leaving: nothing to tell it by.
            packet(5, false, "10.42.1.8", "1.1.1.1", false),
            // A NIC where one remote pod's VXLAN arrives: a tunnel ends
            // there, no pod's veth does.
            packet(6, true, "10.42.2.9", "10.42.1.5", true),
        ];
        assert_eq!(pod_side(&packets, &names), [11]);
    }

    #[test]
    fn a_named_device_keeps_its_name_s_kind() {
        let devices = BTreeMap::from([(DeviceKey::Index(11), "ens20".to_string())]);
        let names = InterfaceNames::new(&[], devices);
        let packets = [
            packet(11, true, "10.42.1.5", "1.1.1.1", false),
            packet(12, true, "10.42.1.6", "1.1.1.1", false),
        ];
        assert_eq!(pod_side(&packets, &names), [12]);
    }
}
