//! Packet counts and distinct (source, destination) pairs against tshark's
//! figures (`../shared/captures/oracle.json`): always for the public
//! captures copied into testdata/, and for the whole corpus when present.

mod common;
use common::*;

/// (file in testdata/, packets, distinct innermost src/dst pairs), copied
/// from oracle.json (`packets`, `pairs.distinct_src_dst_pairs_innermost`).
const TESTDATA_ORACLE: &[(&str, u64, u64)] = &[
    ("arkime_v6.pcap", 161, 16),
    ("ppp_dns_over_tcp.pcapng", 4, 3),
    ("ppp_many_interfaces-1.pcapng", 64, 11),
    ("ppp_nanosecs_big_endian.pcap", 10, 1),
    ("ppp_raw_ip.pcap", 100, 9),
    ("ppp_sll.pcap", 518, 10),
    ("tcpdump_dns-badcookie-null.pcap", 4, 1),
    ("tcpdump_geneve.pcap", 39, 2),
    ("tcpdump_pptp-bigendian.pcap", 23, 2),
    ("tcpdump_tcp-handshake-nano.pcap", 3, 2),
    ("zeek_1000-requests-one-dropped-response.pcap.gz", 4102, 1),
    ("zeek_dns-edns-ecs.pcap", 89, 50),
    ("zeek_dns-tkey.pcap", 12, 2),
    ("zeek_dns-two-responses.pcap", 3, 2),
    ("zeek_geneve-vxlan-dns-truncated.pcap", 2, 2),
    ("zeek_ipv6-fragmented-dns.pcap", 8, 2),
    ("zeek_nmap-vsn.pcap", 547, 12),
    ("zeek_openjdk-zeek.org-sll2.pcap", 6, 2),
    ("zeek_pcapng-multi-interface.pcapng", 6, 4),
    ("zeek_pop3.pcap", 125, 6),
    ("zeek_q-in-q.pcap", 5, 2),
    ("zeek_ticks-dns.pcap", 10, 10),
    ("zeek_vlan-qinqinq.pcap", 14, 2),
    ("zeek_vxlan-encapsulated-http.pcap", 12, 2),
    ("zeek_vxlan.pcap", 10, 4),
    ("zeek_wikipedia.pcap", 136, 17),
];

fn counts(path: &str) -> (u64, u64) {
    let capture = flows_report(path);
    (
        capture["packets"].as_u64().unwrap(),
        capture["distinct_src_dst_pairs"].as_u64().unwrap(),
    )
}

fn flows_report(path: &str) -> serde_json::Value {
    let out = kpcap(&["flows", "--format", "json", path]);
    assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
    json(&out)["captures"][0].clone()
}

/// Tunnels (inner and underlay pairs) and cooked `-i any` captures (no
/// packet mistaken for a copy on another interface) against tshark:
/// (file, IP packets, innermost pairs, outermost pairs, TCP 5-tuples with
/// a SYN), from oracle.json's `pairs` and `tcp.five_tuple`.
const TUNNEL_AND_COOKED_ORACLE: &[(&str, u64, u64, u64, u64)] = &[
    ("zeek_vxlan.pcap", 10, 4, 2, 0),
    ("zeek_vxlan-encapsulated-http.pcap", 12, 2, 1, 1),
    ("zeek_geneve-vxlan-dns-truncated.pcap", 2, 2, 1, 0),
    ("tcpdump_geneve.pcap", 39, 2, 2, 1),
    ("ppp_sll.pcap", 511, 10, 10, 1),
    ("zeek_openjdk-zeek.org-sll2.pcap", 6, 2, 2, 1),
];

#[test]
fn tunnels_and_cooked_captures_match_tshark() {
    for &(file, ip_packets, inner, outer, syn_flows) in TUNNEL_AND_COOKED_ORACLE {
        let capture = flows_report(&testdata(file));
        assert_eq!(
            (
                capture["ip_packets"].as_u64(),
                capture["distinct_src_dst_pairs"].as_u64(),
                capture["distinct_outer_src_dst_pairs"].as_u64(),
                capture["duplicates"].as_u64(),
            ),
            (Some(ip_packets), Some(inner), Some(outer), Some(0)),
            "{file}: (IP packets, inner pairs, outer pairs, duplicates)"
        );
        let path = testdata(file);
        let out = kpcap(&["analyze", "--format", "json", "--fail-on", "never", &path]);
        let syns = &json(&out)["captures"][0]["findings"]["tcp_syns"]["counts"]["syn_flows"];
        assert_eq!(syns.as_u64(), Some(syn_flows), "{file}: SYN flows");
    }
}

#[test]
fn testdata_captures_match_tshark() {
    for &(file, packets, pairs) in TESTDATA_ORACLE {
        assert_eq!(
            counts(&testdata(file)),
            (packets, pairs),
            "{file}: (packets, pairs)"
        );
    }
}

/// Corpus files holding one packet on two interfaces. macOS loops its own
/// broadcasts back: frames 3 and 4 of ppp_many_interfaces-1 are frames 1
/// and 2 (same IP id, same bytes) again on lo0.
const CROSS_INTERFACE_COPIES: &[(&str, u64)] = &[("ppp_many_interfaces-1.pcapng", 2)];

/// LINKTYPEs kpcap decodes; files with others must be refused instead.
const SUPPORTED: &[u64] = &[0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

#[test]
fn whole_corpus_matches_tshark() {
    let Some(dir) = shared_captures("whole_corpus_matches_tshark") else {
        return;
    };
    let oracle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oracle.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (file, entry) in oracle.as_object().unwrap() {
        let path = dir.join(file).display().to_string();
        let link_types: Vec<u64> = entry["header"]["linktypes"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        let readable = entry["tshark_rc"] == 0 && entry["packets"].as_u64().unwrap_or(0) > 0;
        if readable && link_types.iter().any(|l| SUPPORTED.contains(l)) {
            let expected = (
                entry["packets"].as_u64().unwrap(),
                entry["pairs"]["distinct_src_dst_pairs_innermost"]
                    .as_u64()
                    .unwrap(),
            );
            assert_eq!(counts(&path), expected, "{file}: (packets, pairs)");
            // tshark counts every copy; kpcap counts a packet seen on two
            // interfaces once, and says how many copies it set aside.
            let capture = flows_report(&path);
            let pairs = &entry["pairs"];
            let copies = capture["duplicates"].as_u64().unwrap();
            let expected_copies = CROSS_INTERFACE_COPIES
                .iter()
                .find(|(f, _)| f == file)
                .map_or(0, |(_, n)| *n);
            assert_eq!(copies, expected_copies, "{file}: copies across interfaces");
            assert_eq!(
                (
                    capture["ip_packets"].as_u64().unwrap() + copies,
                    capture["distinct_outer_src_dst_pairs"].as_u64()
                ),
                (
                    pairs["ip_packets"].as_u64().unwrap(),
                    pairs["distinct_src_dst_pairs_outermost"].as_u64()
                ),
                "{file}: (IP packets, outermost pairs)"
            );
            checked += 1;
        } else {
            // tshark refuses it, or its link type is not ours: an input error.
            let out = kpcap(&["flows", &path]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{file} should be refused: {}",
                stderr(&out)
            );
        }
    }
    assert!(checked >= 35, "only {checked} captures checked");
}
