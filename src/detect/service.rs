//! Service VIPs on the wire: packets addressed to a ClusterIP outside the
//! pod's network namespace mean kube-proxy (or its replacement) did not
//! translate them. Seen only on pod-side or overlay interfaces (lxc*,
//! veth*, cali*, cilium_vxlan, ...) of an `-i any` capture, the
//! untranslated VIP is expected before iptables-mode kube-proxy DNATs it,
//! so those are reported as info only.

use super::brief::{BriefBuilder, FindingKind, FindingSet};
use super::{Context, FlowItem, Severity};
use crate::flow::{Direction, FlowTable};
use crate::time::{Histogram, Timestamp};
use crate::topology::AddrClass;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize)]
pub struct ServiceGroup {
    pub source: IpAddr,
    pub service: IpAddr,
    pub severity: Severity,
    /// "tcp/443", "udp/53", ascending.
    pub ports: Vec<String>,
    pub flows: u64,
    pub packets: u64,
    /// Packets from the VIP back to the source (translation happening
    /// further on, or a hairpin).
    pub replies: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub interfaces: Vec<String>,
    pub items: Vec<FlowItem>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceFindings {
    pub groups: Vec<ServiceGroup>,
    /// Packets to service addresses by the second of their flow's first
    /// packet, for the timeline.
    #[serde(skip)]
    pub packet_starts: Histogram,
}

impl FindingSet for ServiceFindings {
    fn worst(&self) -> Option<Severity> {
        self.groups.iter().map(|g| g.severity).max()
    }

    /// Subject: `source -> service`; details: the ports.
    fn brief(&self, brief: &mut BriefBuilder) {
        for g in &self.groups {
            brief.counts.service_vip_flows += g.flows;
            let subject = format!("{} -> {}", g.source, g.service);
            let ports = g.ports.iter().cloned();
            brief.add(FindingKind::ServiceVip, subject, g.severity, g.flows, ports);
        }
    }
}

pub fn find(flows: &FlowTable, context: &Context<'_>) -> ServiceFindings {
    let mut groups: BTreeMap<(IpAddr, IpAddr), Vec<(FlowItem, u64)>> = BTreeMap::new();
    let mut packet_starts = Histogram::default();
    for (key, flow) in &flows.flows {
        for direction in [Direction::Lo, Direction::Hi] {
            let (from, to) = key.endpoints(direction);
            let sent = flow.sides[direction.index()].packets;
            if sent > 0 && context.topology.classify(to.addr) == AddrClass::Service {
                packet_starts.add(flow.first_ts, sent);
                groups
                    .entry((from.addr, to.addr))
                    .or_default()
                    .push((FlowItem::new(key, flow, context), sent));
            }
        }
    }
    let mut groups: Vec<ServiceGroup> = groups
        .into_iter()
        .map(|((source, service), mut members)| {
            members.sort_by_key(|(i, _)| (i.first, i.initiator, i.responder));
            let ports: BTreeSet<String> = members
                .iter()
                .map(|(i, _)| {
                    let vip = if i.responder.addr == service {
                        i.responder
                    } else {
                        i.initiator
                    };
                    format!("{}/{}", i.protocol, vip.port)
                })
                .collect();
            let crossings = || members.iter().flat_map(|(i, _)| &i.interfaces);
            let interfaces: BTreeSet<String> =
                crossings().map(|c| c.interface.to_string()).collect();
            let severity = if crossings().all(|c| c.kind.is_cluster_side()) {
                Severity::Info
            } else {
                Severity::Failure
            };
            let replies = flows.pairs.get(&(service, source)).map_or(0, |p| p.packets);
            ServiceGroup {
                source,
                service,
                severity,
                ports: ports.into_iter().collect(),
                flows: members.len() as u64,
                packets: members.iter().map(|(_, sent)| sent).sum(),
                replies,
                first: members
                    .iter()
                    .map(|(i, _)| i.first)
                    .min()
                    .unwrap_or_default(),
                last: members
                    .iter()
                    .map(|(i, _)| i.last)
                    .max()
                    .unwrap_or_default(),
                interfaces: interfaces.into_iter().collect(),
                items: members.into_iter().map(|(i, _)| i).collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        (b.severity, b.packets)
            .cmp(&(a.severity, a.packets))
            .then_with(|| (a.source, a.service).cmp(&(b.source, b.service)))
    });
    ServiceFindings {
        groups,
        packet_starts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::Traffic;

    #[test]
    fn packets_to_a_service_address_on_the_wire_fail() {
        let mut t = Traffic::default();
        t.udp(0, "10.42.1.5:40000", "10.43.0.10:53", b"q").udp(
            5,
            "10.42.1.5:40000",
            "10.43.0.10:53",
            b"q",
        );
        t.syn(0, "10.42.1.5:40001", "10.43.0.10:443");
        t.syn(0, "10.42.1.5:40002", "1.1.1.1:443");
        let vips = t.findings().service_vips;
        assert_eq!(vips.groups.len(), 1, "one (source, service)");
        let g = &vips.groups[0];
        assert_eq!(
            (g.source.to_string(), g.service.to_string()),
            ("10.42.1.5".into(), "10.43.0.10".into())
        );
        assert_eq!(g.ports, ["tcp/443", "udp/53"]);
        assert_eq!((g.flows, g.packets, g.replies), (2, 3, 0));
        assert_eq!(g.severity, Severity::Failure);
        assert_eq!(vips.worst(), Some(Severity::Failure));
    }

    #[test]
    fn no_service_traffic_no_finding() {
        let mut t = Traffic::default();
        t.syn(0, "10.42.1.5:40002", "1.1.1.1:443");
        assert!(t.findings().service_vips.groups.is_empty());
    }
}
