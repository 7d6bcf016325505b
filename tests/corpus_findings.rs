//! `kpcap analyze` against the independent ground truth in
//! `../shared/captures/oracle.json` (computed by tshark, see ORACLE.md):
//! SYN outcomes by 5-tuple (`tcp.five_tuple`) and DNS keys
//! (`dns.dns.tuple_*`). Where kpcap's definition differs on purpose from
//! tshark's own (grace windows, retransmissions, RST kept apart), the files
//! and reasons are listed below, and the lists are checked both ways.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// SYN outcomes: refused, unreachable, inconclusive, unanswered.
type Syns = [u64; 4];
/// DNS keys: timed out, inconclusive; unsolicited responses.
type Dns = [u64; 3];

/// Copied from oracle.json for the public captures in testdata/, so these
/// are checked in a fresh clone without `../shared`.
const TESTDATA_ORACLE: &[(&str, Syns, Dns)] = &[
    ("arkime_v6.pcap", [0, 0, 0, 0], [1, 0, 0]),
    ("ppp_dns_over_tcp.pcapng", [0, 0, 0, 0], [0, 0, 1]),
    ("ppp_many_interfaces-1.pcapng", [0, 0, 0, 0], [0, 0, 0]),
    ("ppp_raw_ip.pcap", [0, 0, 1, 1], [0, 0, 0]),
    ("ppp_sll.pcap", [0, 0, 0, 0], [0, 0, 0]),
    ("tcpdump_dns-badcookie-null.pcap", [0, 0, 0, 0], [0, 0, 0]),
    ("tcpdump_geneve.pcap", [0, 0, 0, 0], [0, 0, 0]),
    ("zeek_dns-edns-ecs.pcap", [0, 0, 0, 0], [4, 0, 50]),
    ("zeek_dns-tkey.pcap", [0, 0, 0, 0], [0, 0, 0]),
    ("zeek_dns-two-responses.pcap", [0, 0, 0, 0], [0, 0, 0]),
    (
        "zeek_geneve-vxlan-dns-truncated.pcap",
        [0, 0, 0, 0],
        [0, 0, 0],
    ),
    ("zeek_ipv6-fragmented-dns.pcap", [0, 0, 0, 0], [0, 0, 0]),
    ("zeek_nmap-vsn.pcap", [6, 0, 8, 0], [0, 0, 0]),
    (
        "zeek_pcapng-multi-interface.pcapng",
        [0, 0, 0, 0],
        [0, 0, 0],
    ),
    ("zeek_pop3.pcap", [2, 0, 0, 0], [0, 0, 0]),
    ("zeek_ticks-dns.pcap", [0, 0, 0, 0], [5, 5, 0]),
    ("zeek_wikipedia.pcap", [0, 0, 0, 0], [0, 0, 0]),
];

/// Files where kpcap's unanswered SYNs differ from tshark's "SYN-first
/// stream without SYN-ACK" (`tcp.tshark_stream.syn_first_no_synack`), with
/// why. In every case tshark's figure is exactly kpcap's unanswered +
/// refused + unreachable + inconclusive (asserted below): kpcap only sorts
/// the same flows into more precise outcomes.
const SYN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "esnet_masscan_tcp_0_1000.pcap",
        "297 SYNs younger than the 3 s grace at capture end are inconclusive",
    ),
    (
        "evilfingers_TCP_CONNECT_SCAN.pcap",
        "1983 flows answered by RST are refused, not unanswered",
    ),
    ("ppa_synscan.pcapng", "5 flows answered by RST are refused"),
    (
        "ppp_raw_ip.pcap",
        "1 SYN is younger than the grace window at capture end",
    ),
    (
        "stopddos_reflection.SYNACK.pcap",
        "its one SYN-initiated flow is inside the grace window",
    ),
    (
        "stopddos_synflood.spoofed.pcap",
        "249 SYNs in the last 3 s are inconclusive",
    ),
    (
        "zeek_nmap-vsn.pcap",
        "6 refused by RST, 8 inside the grace window",
    ),
    (
        "zeek_pop3.pcap",
        "both flows (each SYN sent 3 times, RST each time) are refused",
    ),
    (
        "zeek_ssh-client-side-half-duplex.pcap",
        "one-sided capture: 19 unanswered, the last flow is inside the grace window",
    ),
];

/// Files where kpcap's timed-out DNS keys differ from tshark's queries
/// without `dns.response_in` (`tshark_queries_without_response_in`):
/// (file, tshark's count, kpcap's timed-out keys, why).
const DNS_DIFFERENCES: &[(&str, u64, u64, &str)] = &[
    ("arkime_v6.pcap", 0, 1, "the response came 5.26 s after the query: later than --dns-timeout, so timed out (tshark has no time limit)"),
    ("ppa_nowebaccess1.pcapng", 7, 0, "7 query frames are 2 keys (retransmissions), both younger than 5 s at capture end: inconclusive"),
    ("ppp_DnsPackets.pcap", 4, 0, "4 retransmitted copies of queries whose key was answered once"),
    ("zeek_dns-edns-ecs.pcap", 5, 4, "one query was sent twice with the same id and port: one key"),
    ("zeek_geneve-vxlan-dns-truncated.pcap", 1, 0, "query in VXLAN, response in Geneve: tshark does not pair them across tunnels, kpcap keys on the inner header"),
    ("zeek_ipv6-fragmented-dns.pcap", 1, 0, "the first copy's response was lost, the retransmission was answered: the key is answered"),
    ("zeek_ticks-dns.pcap", 10, 5, "5 of the 10 queries are younger than 5 s at capture end: inconclusive"),
];

struct Analysis {
    syns: Syns,
    dns: Dns,
    counts: Value,
}

fn analyze(path: &str) -> Analysis {
    let out = kpcap(&["analyze", "--format", "json", "--fail-on", "never", path]);
    assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
    let doc = json(&out);
    let findings = &doc["captures"][0]["findings"];
    let syn = &findings["tcp_syns"]["counts"];
    let dns = &findings["dns"]["counts"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{path}: no {k}"));
    Analysis {
        syns: [
            n(syn, "refused"),
            n(syn, "unreachable"),
            n(syn, "inconclusive"),
            n(syn, "unanswered"),
        ],
        dns: [
            n(dns, "timed_out"),
            n(dns, "inconclusive"),
            n(dns, "unsolicited_responses"),
        ],
        counts: json!({ "tcp": syn.clone(), "dns": dns.clone() }),
    }
}

#[test]
fn testdata_findings_match_oracle() {
    for &(file, syns, dns) in TESTDATA_ORACLE {
        let a = analyze(&testdata(file));
        assert_eq!(
            a.syns, syns,
            "{file}: refused/unreachable/inconclusive/unanswered"
        );
        assert_eq!(a.dns, dns, "{file}: timed out/inconclusive/unsolicited");
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Every readable corpus capture: all SYN outcomes, all DNS key outcomes,
/// message counts and non-zero rcodes equal the oracle's.
#[test]
fn whole_corpus_findings_match_oracle() {
    let Some(dir) = shared_captures("whole_corpus_findings_match_oracle") else {
        return;
    };
    let oracle: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.join("oracle.json")).unwrap()).unwrap();
    let mut syn_differences = Vec::new();
    let mut dns_differences = Vec::new();
    let mut checked = 0;
    for (file, entry) in &oracle {
        let path = dir.join(file).display().to_string();
        if entry["tcp"].is_null()
            || kpcap(&["flows", "--format", "json", &path]).status.code() != Some(0)
        {
            continue; // unreadable: covered by corpus.rs
        }
        let a = analyze(&path);
        let t = &entry["tcp"]["five_tuple"];
        let expected = [
            u(&t["refused_rst"]),
            u(&t["unreachable_icmp"]),
            u(&t["inconclusive_syn_grace_3s"]),
            u(&t["unanswered"]),
        ];
        assert_eq!(
            a.syns, expected,
            "{file}: refused/unreachable/inconclusive/unanswered"
        );
        assert_eq!(
            u(&a.counts["tcp"]["syn_flows"]),
            u(&t["syn_initiated_flows"]),
            "{file}"
        );
        assert_eq!(
            u(&a.counts["tcp"]["answered"]),
            u(&t["answered_synack"]),
            "{file}"
        );
        assert_eq!(
            u(&a.counts["tcp"]["syn_packets"]),
            u(&t["initiator_syn_packets"]),
            "{file}"
        );

        let d = &entry["dns"]["dns"];
        let expected = [
            u(&d["tuple_timed_out_keys"]),
            u(&d["tuple_inconclusive_keys_5s"]),
            u(&d["tuple_unsolicited_responses"]),
        ];
        assert_eq!(
            a.dns, expected,
            "{file}: timed out/inconclusive/unsolicited"
        );
        let dns = &a.counts["dns"];
        assert_eq!(
            u(&dns["query_keys"]),
            u(&d["tuple_query_keys"]),
            "{file}: keys"
        );
        assert_eq!(
            u(&dns["answered"]),
            u(&d["tuple_answered_keys"]),
            "{file}: answered"
        );
        assert_eq!(
            u(&dns["answered_late"]),
            u(&d["tuple_keys_answered_only_after_5s"]),
            "{file}: late"
        );
        assert_eq!(
            u(&dns["queries"]),
            u(&d["queries"]),
            "{file}: query messages"
        );
        assert_eq!(
            u(&dns["responses"]),
            u(&d["responses"]),
            "{file}: response messages"
        );
        let errors: u64 = d["responses_rcode_nonzero"]
            .as_object()
            .map(|m| m.values().map(u).sum())
            .unwrap_or(0);
        let ours: u64 = dns["responses_by_rcode"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str() != "NOERROR")
            .map(|(_, v)| u(v))
            .sum();
        assert_eq!(ours, errors, "{file}: responses with a non-zero rcode");

        let tshark_syn = u(&entry["tcp"]["tshark_stream"]["syn_first_no_synack"]);
        assert_eq!(
            tshark_syn,
            a.syns.iter().sum::<u64>(),
            "{file}: tshark's no-SYN-ACK streams"
        );
        if tshark_syn != a.syns[3] {
            syn_differences.push(file.clone());
        }
        let tshark_dns = u(&d["tshark_queries_without_response_in"]);
        if tshark_dns != a.dns[0] {
            dns_differences.push((file.clone(), tshark_dns, a.dns[0]));
        }
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} captures checked");
    let documented: Vec<String> = SYN_DIFFERENCES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        syn_differences, documented,
        "SYN differences from tshark must be listed with a reason"
    );
    let documented: Vec<(String, u64, u64)> = DNS_DIFFERENCES
        .iter()
        .map(|(f, t, k, _)| (f.to_string(), *t, *k))
        .collect();
    assert_eq!(
        dns_differences, documented,
        "DNS differences from tshark must be listed with a reason"
    );
}
