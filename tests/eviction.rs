//! `--max-flows` keeps the verdict: an entry it evicts is judged then, and
//! counts in its findings' counts and groups. Over captures with many more
//! flows than the limit, the verdict under the limit is the unbounded one
//! whenever the limit covers the entries active at once.

mod common;

use common::{json, kpcap, scratch, stderr};
use kpcap::analysis::{Analyzer, Outcome};
use kpcap::capture::{Bytes, Capture, Input};
use kpcap::detect::{Evidence, Settings};
use kpcap::pipeline::Reading;
use kpcap::synth::frame::{dns_message, ethernet, ip_packet, L4};
use kpcap::synth::{CaptureWriter, Container, Link, START};
use kpcap::time::Timestamp;
use kpcap::topology::{Preset, Topology};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

/// How one conversation ends.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Answered,
    Refused,
    /// SYN and two retransmissions (at +1 s, +3 s), nothing back.
    Unanswered,
    DnsAnswered,
    /// A query and its retransmission at +1 s, never answered.
    DnsTimedOut,
    /// Pod egress: SYNs from a pod address to an external one.
    PodEgress,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Answered),
        1 => Just(Kind::Refused),
        2 => Just(Kind::Unanswered),
        4 => Just(Kind::DnsAnswered),
        2 => Just(Kind::DnsTimedOut),
    ]
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn tcp(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: src.1,
        dst_port: dst.1,
        flags,
        seq: u32::from(src.1) * 7,
        ack: 0,
        payload: &[],
    };
    ethernet(&ip_packet(src.0, dst.0, &l4), &[])
}

fn dns(src: (IpAddr, u16), dst: (IpAddr, u16), id: u16, response: bool) -> Vec<u8> {
    let payload = dns_message(id, response, 0, "svc.example.com", 1, None);
    let l4 = L4::Udp {
        src_port: src.1,
        dst_port: dst.1,
        payload: &payload,
    };
    ethernet(&ip_packet(src.0, dst.0, &l4), &[])
}

/// The frames of conversation `i`, starting at `start_ms`: from a node
/// address to one of many external hosts, or from a pod.
fn conversation(i: u32, kind: Kind, start_ms: u64, out: &mut Vec<(u64, Vec<u8>)>) {
    let node = v4(10, 50, 10, 1 + (i % 200) as u8);
    let server = v4(93, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    let port = 10_000 + (i % 50_000) as u16;
    let (client, web) = ((node, port), (server, 443));
    let at = |ms: u64| start_ms + ms;
    match kind {
        Kind::Answered => {
            out.push((at(0), tcp(client, web, SYN)));
            out.push((at(20), tcp(web, client, SYN | ACK)));
            out.push((at(21), tcp(client, web, ACK)));
        }
        Kind::Refused => {
            out.push((at(0), tcp(client, web, SYN)));
            out.push((at(20), tcp(web, client, RST | ACK)));
        }
        Kind::Unanswered => {
            for ms in [0, 1000, 3000] {
                out.push((at(ms), tcp(client, web, SYN)));
            }
        }
        Kind::PodEgress => {
            let pod = (v4(10, 42, 1, 5), port);
            for ms in [0, 1000, 3000] {
                out.push((at(ms), tcp(pod, web, SYN)));
            }
        }
        Kind::DnsAnswered | Kind::DnsTimedOut => {
            let resolver = (v4(8, 8, (i % 4) as u8, 8), 53);
            let id = i as u16;
            out.push((at(0), dns(client, resolver, id, false)));
            if let Kind::DnsAnswered = kind {
                out.push((at(15), dns(resolver, client, id, true)));
            } else {
                out.push((at(1000), dns(client, resolver, id, false)));
            }
        }
    }
}

/// Conversations started `gap_ms` apart, interleaved in time, written as
/// one capture.
fn capture(kinds: &[Kind], gap_ms: u64) -> Vec<u8> {
    let mut frames = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        conversation(i as u32, *kind, i as u64 * gap_ms, &mut frames);
    }
    // A quiet last packet, so every conversation is old enough to judge.
    let end = kinds.len() as u64 * gap_ms + 10_000;
    frames.push((
        end,
        tcp((v4(10, 50, 10, 1), 1), (v4(10, 50, 10, 2), 2), ACK),
    ));
    frames.sort_by_key(|(ms, _)| *ms);
    let interfaces = [("ens19", Link::Ethernet)];
    let mut out = CaptureWriter::with_interfaces(Vec::new(), Container::Pcap, &interfaces).unwrap();
    for (ms, frame) in frames {
        out.write(Timestamp(START.0 + ms * 1_000_000), &frame)
            .unwrap();
    }
    out.into_inner()
}

fn analyze(bytes: &[u8], max_flows: Option<usize>) -> Outcome {
    let topology = Topology::preset(Preset::K3s, false);
    let settings = Settings {
        max_flows,
        ..Settings::default()
    };
    let reading = Reading {
        window_bytes: Some(16 << 10),
        ..Reading::default()
    };
    let analyzer = Analyzer {
        topology: &topology,
        settings: &settings,
        reading: &reading,
        chunk_bytes: 4096,
        evidence: Evidence::All,
        names: None,
    };
    let capture = Capture::from_bytes(Bytes::Owned(bytes.to_vec()), 4096).unwrap();
    let (mut observed, info) = analyzer.observe_input(Input::Mapped(capture)).unwrap();
    analyzer.outcome("eviction", &[], &mut observed, &info)
}

/// What a verdict claims: its status, and each cause's id, severity,
/// evidence counts and the symptoms it explains.
fn claims(outcome: &Outcome) -> serde_json::Value {
    let causes: Vec<serde_json::Value> = (outcome.verdict.causes.iter())
        .map(|c| {
            serde_json::json!({
                "id": c.id, "severity": c.severity, "evidence": c.evidence, "explains": c.explains,
            })
        })
        .collect();
    let f = &outcome.findings;
    let groups: Vec<(String, u64)> = (f.tcp_syns.groups.iter())
        .map(|g| {
            (
                format!("{} {} {:?}", g.source, g.destination, g.outcome),
                g.flows,
            )
        })
        .chain((f.dns.groups.iter()).map(|g| {
            (
                format!("{} {} {:?}", g.client, g.server, g.outcome),
                g.count,
            )
        }))
        .collect();
    serde_json::json!({
        "status": outcome.verdict.status,
        "causes": causes,
        "syn_counts": f.tcp_syns.counts,
        "dns_counts": f.dns.counts,
        "groups": groups,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn the_verdict_under_max_flows_is_the_unbounded_one(
        kinds in prop::collection::vec(kind(), 1500..3000),
        gap_ms in 15..40u64,
        pods in 0..20usize,
    ) {
        let mut kinds = kinds;
        let n = kinds.len();
        for i in 0..pods {
            kinds[i * 37 % n] = Kind::PodEgress;
        }
        let bytes = capture(&kinds, gap_ms);
        // Entries stay active (too young to judge) for up to 3 s after
        // their last SYN and 5 s after their last query: at most this
        // many at once, plus the pod flows kept for the egress check.
        let active = (8_000 / gap_ms) as usize + pods;
        let limit = active * 10 / 9 + 10;
        let unbounded = analyze(&bytes, None);
        let bounded = analyze(&bytes, Some(limit));
        let e = bounded.coverage.evicted;
        prop_assert!(e.flows > 0 && e.dns_keys > 0, "nothing was evicted: {:?}", e);
        prop_assert_eq!((e.too_young, e.unjudged), (0, 0));
        prop_assert!(bounded.coverage.not_judged.is_empty());
        prop_assert_eq!(claims(&bounded), claims(&unbounded));
    }
}

/// Storms of unanswered queries and SYNs to many destinations, scaled
/// down: the limit is a tenth of the entries, and every failure evicted
/// still counts.
#[test]
fn storms_keep_their_failures_under_a_limit() {
    let dir = scratch("storms");
    let kinds: Vec<Kind> = (0..6000)
        .map(|i| {
            if i % 2 == 0 {
                Kind::DnsTimedOut
            } else {
                Kind::Unanswered
            }
        })
        .collect();
    let path = dir.join("storm.pcap");
    std::fs::write(&path, capture(&kinds, 2)).unwrap();
    let path = path.to_str().unwrap();
    let run = |extra: &[&str]| {
        let args = [&["analyze", "--format", "json", path][..], extra].concat();
        kpcap(&args)
    };
    let unbounded = run(&[]);
    assert_eq!(unbounded.status.code(), Some(1));
    let bounded = run(&["--max-flows", "600", "--window-bytes", "65536"]);
    assert_eq!(bounded.status.code(), Some(1), "{}", stderr(&bounded));
    let (u, b) = (json(&unbounded), json(&bounded));
    let (u, b) = (&u["captures"][0], &b["captures"][0]);
    assert_eq!(u["verdict"]["status"], "failure");
    assert_eq!(b["verdict"]["status"], "failure");
    let ids = |c: &serde_json::Value| -> Vec<String> {
        let causes = c["verdict"]["causes"].as_array().unwrap();
        causes
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(b), ids(u));
    let evicted = &b["coverage"]["evicted"];
    assert!(
        evicted["judged_syn_flows"].as_u64().unwrap() > 2000,
        "{evicted}"
    );
    assert!(
        evicted["judged_dns_keys"].as_u64().unwrap() > 2000,
        "{evicted}"
    );
    assert_eq!(evicted["too_young"], 0, "{evicted}");
    let counts = |c: &serde_json::Value| {
        let f = &c["findings"];
        (f["tcp_syns"]["counts"].clone(), f["dns"]["counts"].clone())
    };
    assert_eq!(counts(b), counts(u));
    assert_eq!(counts(b).0["unanswered"], 3000);
    assert_eq!(counts(b).1["timed_out"], 3000);
    // Evicted flows count in their groups; their items are cut, and said.
    let groups = b["findings"]["tcp_syns"]["groups"].as_array().unwrap();
    let evicted_in_groups: u64 = groups.iter().map(|g| g["evicted"].as_u64().unwrap()).sum();
    assert_eq!(
        evicted_in_groups,
        evicted["judged_syn_flows"].as_u64().unwrap()
    );
}

/// Pod egress flows are kept for the egress check until nothing else is
/// left; evicted then, the verdict says they were not judged by it.
#[test]
fn evicted_pod_egress_is_said_not_judged() {
    let dir = scratch("pod-egress-evicted");
    let kinds = vec![Kind::PodEgress; 3000];
    let path = dir.join("pods.pcap");
    std::fs::write(&path, capture(&kinds, 5)).unwrap();
    let out = kpcap(&[
        "analyze",
        "--format",
        "json",
        "--max-flows",
        "200",
        "--window-bytes",
        "16384",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    let capture = &doc["captures"][0];
    assert!(capture["coverage"]["evicted"]["unjudged"].as_u64().unwrap() > 0);
    let causes = capture["verdict"]["causes"].as_array().unwrap();
    assert_eq!(causes.last().unwrap()["id"], "not_judged");
    let not_judged = capture["coverage"]["not_judged"].as_array().unwrap();
    assert!(
        not_judged
            .iter()
            .any(|n| n.as_str().unwrap().contains("egress and ClusterIP")),
        "{not_judged:?}"
    );
}

/// An ICMP unreachable for every SYN of a storm: `--max-flows` bounds the
/// unreachables too (those of flows already evicted and judged go), and
/// every flow is still judged unreachable, as without a limit.
#[test]
fn unreachables_are_bounded_and_still_judge_their_flows() {
    let dir = scratch("unreachables");
    let router = v4(198, 51, 100, 1);
    let mut frames = Vec::new();
    for i in 0..4000u32 {
        let src = (v4(10, 50, 10, 21), 20_000 + (i % 40_000) as u16);
        let dst = (v4(203, 0, 113, (i % 250) as u8 + 1), 443 + (i / 250) as u16);
        let syn = tcp(src, dst, SYN);
        let quoted = &syn[14..]; // the IP packet inside the Ethernet frame
        let icmp = ip_packet(router, src.0, &L4::Unreachable { code: 3, quoted });
        frames.push((u64::from(i) * 5, syn));
        frames.push((u64::from(i) * 5 + 1, ethernet(&icmp, &[])));
    }
    let l4 = L4::Udp {
        src_port: 1,
        dst_port: 2,
        payload: b"end",
    };
    let end = ip_packet(v4(10, 50, 10, 21), v4(10, 50, 10, 22), &l4);
    frames.push((60_000, ethernet(&end, &[])));
    let mut out = CaptureWriter::new(Vec::new(), Container::Pcap, "ens19").unwrap();
    for (ms, frame) in &frames {
        out.write(Timestamp(START.0 + ms * 1_000_000), frame)
            .unwrap();
    }
    let path = dir.join("unreachables.pcap");
    std::fs::write(&path, out.into_inner()).unwrap();
    let path = path.to_str().unwrap();
    let run = |extra: &[&str]| {
        let args = [&["analyze", "--format", "json", path][..], extra].concat();
        json(&kpcap(&args))
    };
    let (unbounded, bounded) = (
        run(&[]),
        run(&["--max-flows", "500", "--window-bytes", "65536"]),
    );
    let counts = |c: &serde_json::Value| c["captures"][0]["findings"]["tcp_syns"]["counts"].clone();
    assert_eq!(counts(&unbounded)["unreachable"], 4000);
    assert_eq!(counts(&bounded), counts(&unbounded));
    let evicted = &bounded["captures"][0]["coverage"]["evicted"];
    assert!(
        evicted["icmp_unreachables"].as_u64().unwrap() > 3000,
        "{evicted}"
    );
}
