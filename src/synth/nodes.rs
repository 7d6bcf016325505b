//! The incident on a whole cluster, as `tcpdump -i any` (SLL2) on each of
//! three nodes sees it, with the cluster files that describe it: the lesson
//! "the control plane works by chance".
//!
//! Cilium masquerades pod egress on the control-plane node (it picked the
//! right NIC there) and not on the workers: the control plane's pods reach
//! GitHub SNATed to the node address, the workers' pods leave with pod
//! addresses and are never answered, and CoreDNS (on k3s-w1) forwards
//! upstream unmasqueraded and times out. Besides, the VXLAN path from
//! k3s-w1 to k3s-w2 is dropped between the nodes (a firewall on UDP 8472
//! one way): the probe pod's SYNs to the web pod leave k3s-w1 and never
//! arrive, and k3s-w2's queries to CoreDNS arrive and are answered on
//! k3s-w1, but the answers never reach k3s-w2. The nodes' own traffic,
//! Cilium's health checks between them, and pod-to-pod traffic on the
//! other paths all work.
//!
//! Each packet is scripted once with its route through the cluster; each
//! node's capture is the copies that pass its devices, with `skew` added to
//! k3s-w2's clock.

use super::cluster::{
    addr, cilium_config, link, list, loopback, mac, node, pod_on, service, service_cidr, write_json,
};
use super::frame::{dns_message, ethernet, rewrite, sll2, udp_packet, vxlan};
use super::tcp::TcpScript;
use super::writer::{CaptureWriter, Container, Link};
use super::START;
use crate::decode::tcp_flags::{ACK, SYN};
use crate::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
const DURATION: u64 = 40 * SECOND;
/// From a pod's device to the NIC, and from one node's NIC to another's.
const FORWARDING_NS: u64 = 40_000;
const WIRE_NS: u64 = 250_000;
/// Cilium's VXLAN port and the VNI of the pods' identity.
const VXLAN_PORT: u16 = 8472;
const VNI: u32 = 2;
const CILIUM_HEALTH_PORT: u16 = 4240;

const CLOUDFLARE: [u8; 4] = [1, 1, 1, 1];
const GITHUB: [u8; 4] = [140, 82, 121, 4];
const GHCR: [u8; 4] = [140, 82, 112, 33];
const LOOKUPS: [(&str, u16, [u8; 4]); 3] = [
    ("ghcr.io", 1, GHCR),
    ("github.com", 1, GITHUB),
    ("api.github.com", 1, GITHUB),
];

struct PodSpec {
    namespace: &'static str,
    name: &'static str,
    /// The owner: (kind, name).
    owner: (&'static str, &'static str),
    /// Last octet of its address in the node's pod /24.
    host: u8,
    /// External HTTPS destinations it pulls from.
    egress: &'static [[u8; 4]],
}

struct NodeSpec {
    name: &'static str,
    role: Option<&'static str>,
    address: [u8; 4],
    /// Its address on ens18, the LAN.
    lan: [u8; 4],
    /// Third octet of its pod /24 (10.42.X.0/24).
    pod_net: u8,
    /// Whether Cilium masquerades its pods' egress (by chance).
    masquerades: bool,
    pods: &'static [PodSpec],
}

const CP: usize = 0;
const W1: usize = 1;
const W2: usize = 2;

const NODES: [NodeSpec; 3] = [
    NodeSpec {
        name: "k3s-cp",
        role: Some("control-plane"),
        address: [10, 50, 10, 11],
        lan: [192, 168, 178, 11],
        pod_net: 0,
        masquerades: true,
        pods: &[
            PodSpec {
                namespace: "default",
                name: "echo-5c6d8f7b9-q7w2e",
                owner: ("ReplicaSet", "echo-5c6d8f7b9"),
                host: 8,
                egress: &[],
            },
            PodSpec {
                namespace: "flux-system",
                name: "helm-controller-5f7c8d9b6-k2m4n",
                owner: ("ReplicaSet", "helm-controller-5f7c8d9b6"),
                host: 14,
                egress: &[GITHUB, GHCR],
            },
        ],
    },
    NodeSpec {
        name: "k3s-w1",
        role: None,
        address: [10, 50, 10, 21],
        lan: [192, 168, 178, 21],
        pod_net: 1,
        masquerades: false,
        pods: &[
            PodSpec {
                namespace: "kube-system",
                name: "coredns-6799fbcd5-9kq2p",
                owner: ("ReplicaSet", "coredns-6799fbcd5"),
                host: 5,
                egress: &[],
            },
            PodSpec {
                namespace: "default",
                name: "netcheck-7d9c5b8f6-x2x8q",
                owner: ("ReplicaSet", "netcheck-7d9c5b8f6"),
                host: 12,
                egress: &[CLOUDFLARE],
            },
            PodSpec {
                namespace: "flux-system",
                name: "source-controller-6f8b9c7d4-lm5zt",
                owner: ("ReplicaSet", "source-controller-6f8b9c7d4"),
                host: 17,
                egress: &[GITHUB, GHCR],
            },
        ],
    },
    NodeSpec {
        name: "k3s-w2",
        role: None,
        address: [10, 50, 10, 22],
        lan: [192, 168, 178, 22],
        pod_net: 2,
        masquerades: false,
        pods: &[
            PodSpec {
                namespace: "flux-system",
                name: "kustomize-controller-7b9d6c5f4-h8j3p",
                owner: ("ReplicaSet", "kustomize-controller-7b9d6c5f4"),
                host: 9,
                egress: &[GITHUB],
            },
            PodSpec {
                namespace: "default",
                name: "web-6d4b8c7f5-r4t6y",
                owner: ("ReplicaSet", "web-6d4b8c7f5"),
                host: 23,
                egress: &[],
            },
        ],
    },
];

/// The file each node's capture is written to.
pub fn capture_file(node: usize) -> String {
    format!("{}.pcap", NODES[node].name)
}

fn node_ip(node: usize) -> IpAddr {
    IpAddr::from(NODES[node].address)
}

fn pod_ip(node: usize, pod: usize) -> IpAddr {
    let n = &NODES[node];
    IpAddr::from([10, 42, n.pod_net, n.pods[pod].host])
}

/// Device indexes: as on the incident's worker.
const ENS18: u32 = 2;
const ENS19: u32 = 3;
fn lxc_index(pod: usize) -> u32 {
    11 + pod as u32
}

fn ens19_mac(node: usize) -> [u8; 6] {
    [0x52, 0x54, 0, 0x19, 0, NODES[node].address[3]]
}
const GATEWAY_MAC: [u8; 6] = [0x52, 0x54, 0, 0x19, 0, 0x01];
fn lxc_mac(node: usize, pod: usize) -> [u8; 6] {
    [
        0x6e,
        0x10 + node as u8,
        0x3f,
        0x2c,
        0x1d,
        NODES[node].pods[pod].host,
    ]
}
fn pod_mac(node: usize, pod: usize) -> [u8; 6] {
    [
        0x0a,
        0x58,
        0x0a,
        0x2a,
        NODES[node].pod_net,
        NODES[node].pods[pod].host,
    ]
}
fn lxc_name(node: usize, pod: usize) -> String {
    format!(
        "lxc{:02x}{:02x}a3f2c1d9e",
        NODES[node].pod_net, NODES[node].pods[pod].host
    )
}

/// How a scripted packet travels.
#[derive(Clone, Copy)]
enum Route {
    /// A node's own packet to or from the internet, on its ens19.
    Host(usize),
    /// A pod's packet to the internet: its lxc device, then ens19 (SNATed
    /// to the node's address and `port` when the node masquerades).
    PodOut { node: usize, pod: usize, port: u16 },
    /// The reply: ens19 (to the SNAT address), then the pod's device.
    PodIn { node: usize, pod: usize, port: u16 },
    /// Between pods of two nodes in the VXLAN tunnel: the sender's lxc and
    /// ens19, then, unless the path drops it, the receiver's.
    Overlay {
        from: (usize, usize),
        to: (usize, usize),
    },
    /// Between two nodes' own addresses, outside the tunnel.
    Underlay { from: usize, to: usize },
}

/// What breaks between the workers (besides masquerading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// VXLAN from k3s-w1 to k3s-w2 is dropped between the nodes.
    Underlay,
    /// The web pod on k3s-w2 does not answer.
    DestinationPod,
    /// VXLAN from k3s-w2 to k3s-w1 is dropped: the web pod's answers
    /// never return, k3s-w2's queries never reach CoreDNS.
    ReturnPath,
}

impl Fault {
    /// The path from node `from` to node `to` drops VXLAN.
    fn drops(self, from: usize, to: usize) -> bool {
        match self {
            Fault::Underlay => from == W1 && to == W2,
            Fault::ReturnPath => from == W2 && to == W1,
            Fault::DestinationPod => false,
        }
    }
}

/// One copy of a packet as a node's `-i any` capture records it.
struct Copy {
    node: usize,
    at: u64,
    ifindex: u32,
    outgoing: bool,
    /// The link-layer address SLL2 records: the device's own when
    /// outgoing, the sender's when received.
    address: [u8; 6],
    ip: Vec<u8>,
}

fn copies(at: u64, ip: &[u8], route: Route, fault: Fault) -> Vec<Copy> {
    let copy = |node, at, ifindex, outgoing, address, ip: Vec<u8>| Copy {
        node,
        at,
        ifindex,
        outgoing,
        address,
        ip,
    };
    let later = at + FORWARDING_NS;
    match route {
        Route::Host(node) => {
            let outgoing = ip[12..16] == NODES[node].address;
            let address = if outgoing {
                ens19_mac(node)
            } else {
                GATEWAY_MAC
            };
            vec![copy(node, at, ENS19, outgoing, address, ip.to_vec())]
        }
        Route::PodOut { node, pod, port } => {
            let on_wire = if NODES[node].masquerades {
                rewrite(ip, Some((node_ip(node), port)), None)
            } else {
                ip.to_vec()
            };
            vec![
                copy(
                    node,
                    at,
                    lxc_index(pod),
                    false,
                    pod_mac(node, pod),
                    ip.to_vec(),
                ),
                copy(node, later, ENS19, true, ens19_mac(node), on_wire),
            ]
        }
        Route::PodIn { node, pod, port } => {
            let on_wire = rewrite(ip, None, Some((node_ip(node), port)));
            vec![
                copy(node, at, ENS19, false, GATEWAY_MAC, on_wire),
                copy(
                    node,
                    later,
                    lxc_index(pod),
                    true,
                    lxc_mac(node, pod),
                    ip.to_vec(),
                ),
            ]
        }
        Route::Overlay { from, to } => {
            let tunnelled = vxlan(
                node_ip(from.0),
                node_ip(to.0),
                VXLAN_PORT,
                VNI,
                &ethernet(ip, &[]),
            );
            let mut out = vec![
                copy(
                    from.0,
                    at,
                    lxc_index(from.1),
                    false,
                    pod_mac(from.0, from.1),
                    ip.to_vec(),
                ),
                copy(
                    from.0,
                    later,
                    ENS19,
                    true,
                    ens19_mac(from.0),
                    tunnelled.clone(),
                ),
            ];
            if !fault.drops(from.0, to.0) {
                let arrives = later + WIRE_NS;
                out.push(copy(
                    to.0,
                    arrives,
                    ENS19,
                    false,
                    ens19_mac(from.0),
                    tunnelled,
                ));
                out.push(copy(
                    to.0,
                    arrives + FORWARDING_NS,
                    lxc_index(to.1),
                    true,
                    lxc_mac(to.0, to.1),
                    ip.to_vec(),
                ));
            }
            out
        }
        Route::Underlay { from, to } => vec![
            copy(from, at, ENS19, true, ens19_mac(from), ip.to_vec()),
            copy(to, at + WIRE_NS, ENS19, false, ens19_mac(from), ip.to_vec()),
        ],
    }
}

struct Script {
    rng: ChaCha8Rng,
    body: Vec<u8>,
    events: Vec<(u64, Vec<u8>, Route)>,
}

impl Script {
    fn port(&mut self) -> u16 {
        self.rng.gen_range(32768..61000)
    }

    /// A TCP session's packets `spacing` apart, each routed by `route`
    /// (given whether the client sent it).
    fn session(
        &mut self,
        at: u64,
        spacing: u64,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        route: impl Fn(bool) -> Route,
    ) {
        let script = TcpScript::new(client, server, &mut self.rng);
        let packets = script.full_session(1, &mut self.rng, &self.body);
        for (i, ip) in packets.into_iter().enumerate() {
            let from_client = ip[12..16] == octets(client.0);
            self.events
                .push((at + i as u64 * spacing, ip, route(from_client)));
        }
    }

    /// A SYN retransmitted after 1, 2 and 4 s, never answered.
    fn unanswered(&mut self, at: u64, client: (IpAddr, u16), server: (IpAddr, u16), route: Route) {
        let script = TcpScript::new(client, server, &mut self.rng);
        for (ip, delay) in script.unanswered_syn(3).into_iter().zip([0, 1, 3, 7]) {
            self.events.push((at + delay * SECOND, ip, route));
        }
    }
}

fn octets(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

fn script(seed: u64, fault: Fault) -> Script {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3_0de5);
    let body = (0..1448).map(|_| rng.gen()).collect();
    let mut s = Script {
        rng,
        body,
        events: Vec::new(),
    };
    let coredns = (W1, 0);
    let coredns_ip = pod_ip(W1, 0);

    for (node, spec) in NODES.iter().enumerate() {
        // The node's own HTTPS: answered everywhere.
        let offset = 300 + node as u64 * 700;
        for (i, at) in (offset..DURATION / MS - 1000).step_by(8000).enumerate() {
            let server = if i % 2 == 0 { CLOUDFLARE } else { GITHUB };
            let client = (node_ip(node), s.port());
            s.session(at * MS, 12 * MS, client, (server.into(), 443), |_| {
                Route::Host(node)
            });
        }
        // Cilium's health checks to every other node: answered.
        for other in (0..NODES.len()).filter(|o| *o != node) {
            let offset = 900 + (node * 3 + other) as u64 * 310;
            for at in (offset..DURATION / MS - 1000).step_by(10_000) {
                let client = (node_ip(node), s.port());
                let server = (node_ip(other), CILIUM_HEALTH_PORT);
                s.session(at * MS, MS, client, server, |from_client| {
                    if from_client {
                        Route::Underlay {
                            from: node,
                            to: other,
                        }
                    } else {
                        Route::Underlay {
                            from: other,
                            to: node,
                        }
                    }
                });
            }
        }
        // Pods pulling from GitHub every 5 s: SNATed and answered where the
        // node masquerades, unanswered SYNs where it does not.
        for (pod, pod_spec) in spec.pods.iter().enumerate() {
            for (d, server) in pod_spec.egress.iter().enumerate() {
                for (round, at) in (2000..24_000).step_by(5000).enumerate() {
                    let at = (at + (node * 400 + pod * 90 + d * 150) as u64) * MS;
                    let client = (pod_ip(node, pod), s.port());
                    let server = (IpAddr::from(*server), 443);
                    if spec.masquerades {
                        let port = 20_000 + (round * 8 + pod * 2 + d) as u16;
                        s.session(at, 12 * MS, client, server, |from_client| {
                            if from_client {
                                Route::PodOut { node, pod, port }
                            } else {
                                Route::PodIn { node, pod, port }
                            }
                        });
                    } else {
                        let route = Route::PodOut { node, pod, port: 0 };
                        s.unanswered(at, client, server, route);
                    }
                }
            }
        }
    }

    // CoreDNS forwards upstream every 3 s from its pod address (k3s-w1
    // does not masquerade): unanswered, retried after 2 s.
    for (i, at) in (1000..24_000).step_by(3000).enumerate() {
        let (name, qtype, _) = LOOKUPS[i % LOOKUPS.len()];
        let query = dns_message(s.rng.gen(), false, 0, name, qtype, None);
        let client = (coredns_ip, s.port());
        for retry in [0, 2000] {
            let ip = udp_packet(client, (CLOUDFLARE.into(), 53), &query);
            let route = Route::PodOut {
                node: W1,
                pod: 0,
                port: 0,
            };
            s.events.push(((at + retry) * MS, ip, route));
        }
    }

    // Pods on the other nodes ask CoreDNS (answered from its cache) every
    // 4 s: k3s-cp's queries are answered; k3s-w2's arrive and are
    // answered, and the answers are dropped on the way back.
    for (client_pod, offset) in [((CP, 1), 1100), ((W2, 0), 1300)] {
        for (i, at) in (offset..30_000).step_by(4000).enumerate() {
            let (name, qtype, answer) = LOOKUPS[i % LOOKUPS.len()];
            let id = s.rng.gen();
            let client = (pod_ip(client_pod.0, client_pod.1), s.port());
            let server = (coredns_ip, 53);
            let query = udp_packet(
                client,
                server,
                &dns_message(id, false, 0, name, qtype, None),
            );
            let response = dns_message(id, true, 0, name, qtype, Some(answer));
            let reply = udp_packet(server, client, &response);
            let out = Route::Overlay {
                from: client_pod,
                to: coredns,
            };
            let back = Route::Overlay {
                from: coredns,
                to: client_pod,
            };
            s.events.push((at * MS, query, out));
            // CoreDNS answers only what reached it.
            if !fault.drops(client_pod.0, coredns.0) {
                s.events.push((at * MS + MS, reply, back));
            }
        }
    }

    // The probe pod on k3s-w1 reaches the echo pod on k3s-cp (answered)
    // and the web pod on k3s-w2 (its SYNs never arrive).
    let probe = (W1, 1);
    let probe_ip = pod_ip(W1, 1);
    let echo = (CP, 0);
    let web = (W2, 1);
    for at in (1500..DURATION / MS - 2000).step_by(6000) {
        let client = (probe_ip, s.port());
        s.session(at * MS, MS, client, (pod_ip(CP, 0), 8080), |from_client| {
            if from_client {
                Route::Overlay {
                    from: probe,
                    to: echo,
                }
            } else {
                Route::Overlay {
                    from: echo,
                    to: probe,
                }
            }
        });
    }
    for at in (5000..26_000).step_by(10_000) {
        let client = (probe_ip, s.port());
        let server = (pod_ip(W2, 1), 8080);
        let to_web = Route::Overlay {
            from: probe,
            to: web,
        };
        match fault {
            Fault::Underlay | Fault::DestinationPod => {
                s.unanswered(at * MS, client, server, to_web)
            }
            Fault::ReturnPath => {
                // Each SYN is answered; the SYN-ACKs are lost on the way.
                let mut script = TcpScript::new(client, server, &mut s.rng);
                let back = Route::Overlay {
                    from: web,
                    to: probe,
                };
                for delay in [0, 1, 3, 7] {
                    script.send(true, SYN, &[]);
                    script.send(false, SYN | ACK, &[]);
                    script.client_seq = script.client_seq.wrapping_sub(1);
                    script.server_seq = script.server_seq.wrapping_sub(1);
                    let [syn, syn_ack] = [0, 1].map(|_| script.packets.remove(0));
                    s.events.push((at * MS + delay * SECOND, syn, to_web));
                    s.events
                        .push((at * MS + delay * SECOND + MS, syn_ack, back));
                }
            }
        }
    }
    s
}

/// Writes each node's capture into `dir` (`k3s-cp.pcap`, ...), k3s-w2's
/// clock `skew_ns` ahead of the others.
pub fn write_captures(dir: &Path, seed: u64, skew_ns: u64, fault: Fault) -> std::io::Result<()> {
    let script = script(seed, fault);
    let mut per_node: Vec<Vec<Copy>> = (0..NODES.len()).map(|_| Vec::new()).collect();
    for (at, ip, route) in &script.events {
        for copy in copies(*at, ip, *route, fault) {
            per_node[copy.node].push(copy);
        }
    }
    for (node, mut copies) in per_node.into_iter().enumerate() {
        // Stable: simultaneous copies keep the order they were scripted in.
        copies.sort_by_key(|c| c.at);
        let skew = if node == W2 { skew_ns } else { 0 };
        let file = std::fs::File::create(dir.join(capture_file(node)))?;
        let out = std::io::BufWriter::new(file);
        let mut writer =
            CaptureWriter::with_interfaces(out, Container::Pcap, &[("any", Link::Sll2)])?;
        for c in copies {
            let frame = sll2(&c.ip, c.ifindex, c.outgoing, c.address);
            writer.write(Timestamp(START.0 + c.at + skew), &frame)?;
        }
        writer
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())?;
    }
    Ok(())
}

/// The cluster as `kubectl get nodes,pods,services,servicecidrs -A -o
/// json` prints it, with the cilium-config of before the fix.
pub fn dump() -> Value {
    let mut items = Vec::new();
    for (n, spec) in NODES.iter().enumerate() {
        let pod_cidr = format!("10.42.{}.0/24", spec.pod_net);
        items.push(node(spec.name, spec.role, spec.address, &pod_cidr));
        for (p, pod) in spec.pods.iter().enumerate() {
            items.push(pod_on(
                (spec.name, spec.address),
                pod.namespace,
                pod.name,
                &pod_ip(n, p).to_string(),
                "Running",
                pod.owner,
            ));
        }
    }
    items.push(service(
        "default",
        "kubernetes",
        "10.43.0.1",
        &[(443, "TCP", "https")],
    ));
    items.push(service(
        "kube-system",
        "kube-dns",
        "10.43.0.10",
        &[(53, "UDP", "dns"), (53, "TCP", "dns-tcp")],
    ));
    items.push(service(
        "default",
        "web",
        "10.43.31.4",
        &[(8080, "TCP", "http")],
    ));
    items.push(service_cidr());
    items.push(cilium_config());
    list(items)
}

/// A node's `ip -j addr`: its NICs, Cilium's devices, its pods' devices.
pub fn ip_addr(node: usize) -> Value {
    let spec = &NODES[node];
    let last = spec.address[3];
    let mut links = vec![
        loopback(),
        link(
            ENS18,
            "ens18",
            "ether",
            &mac([0x52, 0x54, 0, 0x18, 0, last]),
            &[(addr(spec.lan), 24)],
        ),
        link(
            ENS19,
            "ens19",
            "ether",
            &mac(ens19_mac(node)),
            &[(addr(spec.address), 24)],
        ),
        link(
            4,
            "cilium_net",
            "ether",
            &mac([0x3a, 0x1e, 0x55, 0x0c, 0x9d, last]),
            &[],
        ),
        link(
            5,
            "cilium_host",
            "ether",
            &mac([0x9a, 0x6c, 0x02, 0x7e, 0x11, last]),
            &[(format!("10.42.{}.1", spec.pod_net), 32)],
        ),
        link(
            6,
            "cilium_vxlan",
            "ether",
            &mac([0xd6, 0x2b, 0x91, 0x44, 0x0a, last]),
            &[],
        ),
    ];
    for p in 0..spec.pods.len() {
        links.push(link(
            lxc_index(p),
            &lxc_name(node, p),
            "ether",
            &mac(lxc_mac(node, p)),
            &[],
        ));
    }
    Value::Array(links)
}

/// Writes the three captures into `dir` and the cluster files into
/// `dir/cluster`: `cluster.json` and each node's `ip-NODE.json`.
pub fn write(dir: &Path, seed: u64, skew_ns: u64, fault: Fault) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("cluster"))?;
    write_captures(dir, seed, skew_ns, fault)?;
    write_json(&dir.join("cluster").join("cluster.json"), &dump())?;
    for (n, spec) in NODES.iter().enumerate() {
        let file = dir.join("cluster").join(format!("ip-{}.json", spec.name));
        write_json(&file, &ip_addr(n))?;
    }
    Ok(())
}
