//! Pod-side devices of a `tcpdump -i any` capture that names none, told by
//! their traffic. The host side of a pod's veth (Cilium's lxc, Calico's
//! cali, a bridge port) receives only what its pod sends, from the pod's
//! own address; a NIC or an overlay device receives from many addresses,
//! or through tunnels. Without this, a pod's packet seen arriving on its
//! lxc device counts as leaving the node there, and every pod's device is
//! named among the interfaces unmasqueraded pod egress left on.
//!
//! Only a device that received packets, all from one pod (one address of
//! each family: a dual-stack pod has two) and none through a tunnel, is
//! taken for pod side. Link-local and unspecified senders say nothing
//! either way: a pod's kernel sends router solicitations from fe80::, and
//! a NIC hears the router's.

use crate::flow::{Direction, Flow, FlowKey, FlowTable, Partition};
use crate::interface::{Device, InterfaceKind, InterfaceNames, Via};
use crate::topology::{AddrClass, Topology};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Where a device's received packets came from: one pod (at most one
/// address of each family), or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Senders {
    OnePod {
        v4: Option<IpAddr>,
        v6: Option<IpAddr>,
    },
    Others,
}

impl Senders {
    fn pod(addr: IpAddr) -> Senders {
        match addr {
            IpAddr::V4(_) => Senders::OnePod {
                v4: Some(addr),
                v6: None,
            },
            IpAddr::V6(_) => Senders::OnePod {
                v4: None,
                v6: Some(addr),
            },
        }
    }

    fn and(self, other: Senders) -> Senders {
        // One family's address of both, if they do not differ.
        let one = |a: Option<IpAddr>, b: Option<IpAddr>| match (a, b) {
            (Some(a), Some(b)) if a != b => None,
            _ => Some(a.or(b)),
        };
        let (Senders::OnePod { v4, v6 }, Senders::OnePod { v4: w4, v6: w6 }) = (self, other) else {
            return Senders::Others;
        };
        match (one(v4, w4), one(v6, w6)) {
            (Some(v4), Some(v6)) => Senders::OnePod { v4, v6 },
            _ => Senders::Others,
        }
    }
}

/// Senders that tell nothing of the device they arrive on: link-local
/// (a pod's router solicitations, a router's advertisements on a NIC) and
/// unspecified (DHCP, duplicate address detection) addresses.
fn says_nothing(sender: IpAddr) -> bool {
    match sender {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified(),
    }
}

type BySenders = FxHashMap<Via, Senders>;

fn add(into: &mut BySenders, via: Via, senders: Senders) {
    into.entry(via)
        .and_modify(|held| *held = held.and(senders))
        .or_insert(senders);
}

/// The unnamed devices of cooked captures that received packets from one
/// pod only, in `Via` order.
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
                    let senders = if crossing.tunnel.is_some() {
                        Senders::Others
                    } else if says_nothing(sender) {
                        continue;
                    } else if topology.classify(sender) == AddrClass::Pod {
                        Senders::pod(sender)
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
        .filter(|(_, senders)| matches!(senders, Senders::OnePod { .. }))
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

    /// The pod-side devices among `packets`' under k3s's CIDRs and
    /// `v6_pods`.
    fn pod_side(packets: &[Seen<'_>], names: &InterfaceNames, v6_pods: &[&str]) -> Vec<u32> {
        let mut table = FlowTable::default();
        for seen in packets {
            table.observe(seen);
        }
        table.settle_whole();
        let k3s = Topology::preset(Preset::K3s, false);
        let mut pods = k3s.pod.clone();
        pods.extend(
            v6_pods
                .iter()
                .map(|cidr| cidr.parse::<ipnet::IpNet>().unwrap()),
        );
        let topology = Topology::new(pods, k3s.service, k3s.node, k3s.internal, "test".into());
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
            // A dual-stack pod's device, where its kernel also asks for
            // routers from its link-local address.
            packet(7, true, "10.42.1.9", "1.1.1.1", false),
            packet(7, true, "fd00:42::9", "2606:4700::1111", false),
            packet(7, true, "fe80::9", "ff02::2", false),
            // Two IPv6 pods: not one pod's.
            packet(8, true, "fd00:42::a", "2606:4700::1111", false),
            packet(8, true, "fd00:42::b", "2606:4700::1111", false),
            // Only link-local arrivals: nothing to tell it by.
            packet(9, true, "fe80::1", "ff02::1", false),
            // Only leaving: nothing to tell it by.
            packet(5, false, "10.42.1.8", "1.1.1.1", false),
            // A NIC where one remote pod's VXLAN arrives: a tunnel ends
            // there, no pod's veth does.
            packet(6, true, "10.42.2.9", "10.42.1.5", true),
        ];
        assert_eq!(pod_side(&packets, &names, &["fd00:42::/64"]), [7, 11]);
    }

    #[test]
    fn a_named_device_keeps_its_name_s_kind() {
        let devices = BTreeMap::from([(DeviceKey::Index(11), "ens20".to_string())]);
        let names = InterfaceNames::new(&[], devices);
        let packets = [
            packet(11, true, "10.42.1.5", "1.1.1.1", false),
            packet(12, true, "10.42.1.6", "1.1.1.1", false),
        ];
        assert_eq!(pod_side(&packets, &names, &[]), [12]);
    }
}
