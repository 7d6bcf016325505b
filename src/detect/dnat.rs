//! Pairing a connection to a Service address with its copy after
//! kube-proxy's DNAT. On a kube-proxy node, `tcpdump -i any` sees a pod's
//! packet to a ClusterIP arrive on the pod's device, then again, translated,
//! on its way to a backend. Same protocol, same client endpoint, same
//! first-packet fingerprint (TCP initial sequence number, UDP payload
//! hash), to a pod or node address, starting within the NAT pairing window:
//! the translated flow is a copy of the connection, and the SYN and DNS
//! detectors count the connection once, as the client addressed it (the
//! ClusterIP flow holds both ways: the answers are translated back).
//!
//! The destination must be a pod's or a node's: a resolver that sends one
//! query to every nameserver at once (musl) from one port is not a copy.

use super::{Context, NAT_PAIR_WINDOW_NS};
use crate::flow::{merge_maps, Endpoint, Flow, FlowKey, FlowTable};
use crate::time::Timestamp;
use crate::topology::AddrClass;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

/// (protocol, client endpoint, fingerprint) of a flow's first packet.
type PairingKey = (u8, Endpoint, u64);

/// The destination and the pairing key of `flow`'s first packet, if it
/// has a fingerprint.
fn first_packet(key: &FlowKey, flow: &Flow) -> Option<(Endpoint, PairingKey)> {
    if flow.fingerprint == 0 {
        return None;
    }
    let (from, to) = key.endpoints(flow.first_direction);
    Some((to, (key.protocol, from, flow.fingerprint)))
}

/// The flows that are another flow to a Service address after DNAT.
pub fn post_dnat_copies(flows: &FlowTable, context: &Context<'_>) -> FxHashSet<FlowKey> {
    let classify = |e: &Endpoint| context.topology.classify(e.addr);
    let partitions = flows.flows.partitions();
    // Flows to Service addresses are few (none where the CNI translates
    // at the socket): the index holds those, and the pass over every flow
    // that follows is a lookup each, skipped when there are none.
    let to_services: FxHashMap<PairingKey, Vec<Timestamp>> = (partitions.par_iter())
        .fold(FxHashMap::default, |mut index, partition| {
            for (key, flow) in partition {
                if let Some((to, pairing)) = first_packet(key, flow) {
                    if classify(&to) == AddrClass::Service {
                        index
                            .entry(pairing)
                            .or_insert_with(Vec::new)
                            .push(flow.first_ts);
                    }
                }
            }
            index
        })
        .reduce(FxHashMap::default, |mut a, b| {
            merge_maps(&mut a, b, Vec::extend);
            a
        });
    if to_services.is_empty() {
        return FxHashSet::default();
    }
    let is_copy = |key: &FlowKey, flow: &Flow| {
        let Some((to, pairing)) = first_packet(key, flow) else {
            return false;
        };
        matches!(classify(&to), AddrClass::Pod | AddrClass::Node)
            && to_services.get(&pairing).is_some_and(|starts| {
                (starts.iter()).any(|t| t.0.abs_diff(flow.first_ts.0) <= NAT_PAIR_WINDOW_NS)
            })
    };
    (partitions.par_iter())
        .flat_map_iter(|partition| {
            (partition.iter())
                .filter(|(key, flow)| is_copy(key, flow))
                .map(|(key, _)| *key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::detect::testing::Traffic;

    #[test]
    fn a_connection_to_a_clusterip_counts_once_with_its_translated_copy() {
        let mut t = Traffic::default();
        // The pod's SYN to the ClusterIP, and the same SYN (same ISN: same
        // time in these frames) translated to a backend pod, unanswered.
        t.syn(0, "10.42.1.5:40000", "10.43.0.20:443")
            .syn(0, "10.42.1.5:40000", "10.42.2.7:8443")
            .syn(1000, "10.42.1.5:40000", "10.43.0.20:443")
            .syn(1000, "10.42.1.5:40000", "10.42.2.7:8443");
        // Another connection to the backend itself: not a copy.
        t.syn(50, "10.42.1.5:40001", "10.42.2.7:8443");
        // The capture goes on past the SYNs' grace.
        t.udp(10_000, "10.50.10.21:5000", "10.50.10.22:5000", b"x");
        let syns = t.findings().tcp_syns;
        assert_eq!(syns.counts.post_nat_copies, 1);
        assert_eq!(syns.counts.unanswered, 2);
    }

    #[test]
    fn a_dns_query_to_the_cluster_dns_counts_once_after_dnat() {
        let mut t = Traffic::default();
        t.query(0, "10.42.1.5:40000", "10.43.0.10:53", 7, "ghcr.io")
            .query(0, "10.42.1.5:40000", "10.42.0.5:53", 7, "ghcr.io");
        // 200 ms apart: two queries, not one translated.
        t.query(0, "10.42.1.6:40000", "10.43.0.10:53", 8, "ghcr.io")
            .query(200, "10.42.1.6:40000", "10.42.0.5:53", 8, "ghcr.io");
        // The same query to an external nameserver at once (musl asks
        // every nameserver): not a copy either.
        t.query(0, "10.42.1.7:40000", "10.43.0.10:53", 9, "ghcr.io")
            .query(0, "10.42.1.7:40000", "1.1.1.1:53", 9, "ghcr.io");
        let dns = t.findings().dns;
        assert_eq!(dns.counts.post_nat_copies, 1);
        assert_eq!(dns.counts.query_keys, 5);
    }
}
