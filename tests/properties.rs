//! Property tests over arbitrary generated captures: every way of cutting
//! a capture into chunks, and every thread count, gives the report one
//! chunk gives; decoding the generator's packets gives back what was
//! encoded.

use kpcap::analysis::Outcome;
use kpcap::capture::{Bytes, Capture, Input};
use kpcap::decode::Decoder;
use kpcap::decode::Transport;
use kpcap::detect::Evidence;
use kpcap::report::analyze::render;
use kpcap::scan::Digest;
use kpcap::synth::frame::{dns_message, ethernet, ip_packet, udp_packet, L4};
use kpcap::synth::{CaptureWriter, Container, Link, START};
use kpcap::time::Timestamp;
use kpcap::topology::{Preset, Topology};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

/// Pods, the node, external hosts, a service VIP, a DNS server.
const HOSTS: [[u8; 4]; 7] = [
    [10, 42, 1, 5],
    [10, 42, 1, 12],
    [10, 50, 10, 21],
    [1, 1, 1, 1],
    [140, 82, 112, 33],
    [10, 43, 0, 10],
    [10, 42, 0, 2],
];

fn host(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(HOSTS[i as usize % HOSTS.len()]))
}

/// One packet of an arbitrary capture.
#[derive(Debug, Clone)]
enum Event {
    Tcp {
        src: u8,
        dst: u8,
        ports: (u16, u16),
        flags: u8,
        payload: u8,
    },
    Dns {
        client: u8,
        server: u8,
        port: u16,
        id: u16,
        response: bool,
        rcode: u8,
        name: u8,
    },
}

/// A packet, when it arrives after the previous one, and whether a copy
/// of it is also captured on a second interface (pcapng only).
type Timed = (Event, u32, bool);

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u8>(),
            (
                40000..40008u16,
                prop::sample::select(vec![53u16, 80, 443, 5432])
            ),
            prop::sample::select(vec![0x02u8, 0x12, 0x10, 0x04, 0x14, 0x18, 0x11]),
            0..40u8
        )
            .prop_map(|(src, dst, ports, flags, payload)| Event::Tcp {
                src,
                dst,
                ports,
                flags,
                payload
            }),
        (
            any::<u8>(),
            any::<u8>(),
            50000..50004u16,
            0..6u16,
            any::<bool>(),
            prop::sample::select(vec![0u8, 2, 3]),
            0..3u8
        )
            .prop_map(
                |(client, server, port, id, response, rcode, name)| Event::Dns {
                    client,
                    server,
                    port,
                    id,
                    response,
                    rcode,
                    name
                }
            ),
    ]
}

fn frame(event: &Event) -> Vec<u8> {
    let ip = match event {
        Event::Tcp {
            src,
            dst,
            ports,
            flags,
            payload,
        } => ip_packet(
            host(*src),
            host(*dst),
            &L4::Tcp {
                src_port: ports.0,
                dst_port: ports.1,
                flags: *flags,
                seq: 1000,
                ack: 0,
                payload: &vec![0x41; *payload as usize],
            },
        ),
        Event::Dns {
            client,
            server,
            port,
            id,
            response,
            rcode,
            name,
        } => {
            let name = [
                "github.com",
                "ghcr.io",
                "kubernetes.default.svc.cluster.local",
            ][*name as usize];
            let message = dns_message(
                *id,
                *response,
                *rcode,
                name,
                1,
                response.then_some([1, 2, 3, 4]),
            );
            let (src, dst) = if *response {
                ((host(*server), 53), (host(*client), *port))
            } else {
                ((host(*client), *port), (host(*server), 53))
            };
            udp_packet(src, dst, &message)
        }
    };
    ethernet(&ip, &[])
}

fn capture(events: &[Timed], container: Container) -> Vec<u8> {
    let interfaces: &[(&str, Link)] = match container {
        Container::Pcap => &[("ens19", Link::Ethernet)],
        Container::Pcapng => &[("lxc1", Link::Ethernet), ("ens19", Link::Ethernet)],
    };
    let mut out = CaptureWriter::with_interfaces(Vec::new(), container, interfaces).unwrap();
    let mut ts = START.0;
    for (event, gap_ms, copy) in events {
        ts += u64::from(*gap_ms) * 1_000_000;
        let frame = frame(event);
        out.write_on(0, Timestamp(ts), &frame).unwrap();
        if *copy && matches!(container, Container::Pcapng) {
            out.write_on(1, Timestamp(ts + 20_000), &frame).unwrap();
        }
    }
    out.into_inner()
}

/// The whole analyze report, for a chunk size, a thread count and the
/// evidence built.
fn analyze(bytes: &[u8], chunk_bytes: usize, threads: usize, evidence: Evidence) -> Outcome {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    kpcap::fuzzing::with_default_analyzer(chunk_bytes, evidence, |analyzer| {
        pool.install(|| {
            let capture = Capture::from_bytes(Bytes::Owned(bytes.to_vec()), chunk_bytes).unwrap();
            let input = Input::Mapped(capture);
            let (mut observed, info) = analyzer.observe_input(input).unwrap();
            analyzer.outcome("property", &[], &mut observed, &info)
        })
    })
}

/// The whole analyze report as JSON, for a chunk size and thread count.
fn report(bytes: &[u8], chunk_bytes: usize, threads: usize) -> String {
    let report = analyze(bytes, chunk_bytes, threads, Evidence::All);
    serde_json::to_string(&report).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_split_into_chunks_gives_the_one_chunk_report(
        events in prop::collection::vec((event(), 0..1500u32, any::<bool>()), 1..120),
        pcapng in any::<bool>(),
        chunk_bytes in prop::sample::select(vec![1usize, 97, 256, 1000, 4096]),
        threads in 1..4usize,
    ) {
        let container = if pcapng { Container::Pcapng } else { Container::Pcap };
        let bytes = capture(&events, container);
        let whole = report(&bytes, usize::MAX, 1);
        prop_assert_eq!(report(&bytes, chunk_bytes, threads), whole);
    }

    /// A table and a scan's digest are the same whether all the evidence
    /// was built or only what a table shows.
    #[test]
    fn brief_evidence_changes_no_table_and_no_digest(
        events in prop::collection::vec((event(), 0..1500u32, any::<bool>()), 1..120),
    ) {
        let bytes = capture(&events, Container::Pcap);
        let all = analyze(&bytes, 4096, 2, Evidence::All);
        let brief = analyze(&bytes, 4096, 2, Evidence::Brief);
        let topology = Topology::preset(Preset::K3s, true);
        for limit in [0, 1] {
            let layout = kpcap::report::Layout { limit, ..Default::default() };
            prop_assert_eq!(render(&brief, &topology, &layout), render(&all, &topology, &layout));
        }
        let digest = |report| serde_json::to_string(&Digest::of(report)).unwrap();
        prop_assert_eq!(digest(&brief), digest(&all));
    }

    #[test]
    fn decoding_the_generators_packets_gives_back_their_fields(event in event()) {
        let frame = frame(&event);
        let packet = Decoder::default().decode(1, &frame);
        let ip = packet.ip.expect("an IP header");
        prop_assert!(packet.problem.is_none());
        match (&event, packet.transport) {
            (Event::Tcp { src, dst, ports, flags, payload }, Transport::Tcp(tcp)) => {
                prop_assert_eq!((ip.src, ip.dst, ip.protocol), (host(*src), host(*dst), 6));
                prop_assert_eq!((tcp.src_port, tcp.dst_port, tcp.flags), (ports.0, ports.1, *flags));
                prop_assert_eq!(tcp.payload.len(), *payload as usize);
            }
            (Event::Dns { client, server, port, response, .. }, Transport::Udp(udp)) => {
                let (src, dst, sport, dport) = if *response {
                    (host(*server), host(*client), 53, *port)
                } else {
                    (host(*client), host(*server), *port, 53)
                };
                prop_assert_eq!((ip.src, ip.dst, ip.protocol), (src, dst, 17));
                prop_assert_eq!((udp.src_port, udp.dst_port), (sport, dport));
            }
            (event, transport) => prop_assert!(false, "{:?} decoded as {:?}", event, transport),
        }
    }
}
