//! One test per edge case of the findings (docs/findings.md), each on a small capture
//! built here frame by frame, analyzed by the binary (`--format json`).

mod common;
use common::*;
use kpcap::decode::tcp_flags::{ACK, FIN, RST, SYN};
use kpcap::synth::frame::{dns_message, ethernet, ip_packet, vxlan, L4};
use kpcap::synth::{CaptureWriter, Container, START};
use kpcap::time::Timestamp;
use serde_json::Value;
use std::net::IpAddr;

const POD: &str = "10.42.1.12";
const NODE: &str = "10.50.10.21";
const EXT: &str = "203.0.113.7";
const RESOLVER: &str = "198.51.100.53";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Milliseconds since the capture's start.
type Ms = u64;

struct Capture {
    frames: Vec<(Ms, Vec<u8>)>,
    /// pcapng with this interface name; plain pcap when None.
    interface: Option<&'static str>,
}

impl Capture {
    fn new() -> Self {
        Capture {
            frames: Vec::new(),
            interface: None,
        }
    }

    fn on_interface(name: &'static str) -> Self {
        Capture {
            frames: Vec::new(),
            interface: Some(name),
        }
    }

    fn ip(&mut self, at: Ms, packet: Vec<u8>) -> &mut Self {
        self.frames.push((at, ethernet(&packet, &[])));
        self
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        at: Ms,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        flags: u8,
        seq: u32,
        payload: &[u8],
    ) -> &mut Self {
        let l4 = L4::Tcp {
            src_port: sport,
            dst_port: dport,
            flags,
            seq,
            ack: if flags & ACK != 0 { 1 } else { 0 },
            payload,
        };
        self.ip(at, ip_packet(ip(src), ip(dst), &l4))
    }

    fn udp(
        &mut self,
        at: Ms,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        payload: &[u8],
    ) -> &mut Self {
        let l4 = L4::Udp {
            src_port: sport,
            dst_port: dport,
            payload,
        };
        self.ip(at, ip_packet(ip(src), ip(dst), &l4))
    }

    /// A packet unrelated to the findings that sets the capture's end.
    fn end_at(&mut self, at: Ms) -> &mut Self {
        self.udp(at, "192.0.2.1", 9, "192.0.2.2", 9, b"end")
    }

    fn write(&self, test: &str) -> String {
        let path = scratch(test).join("capture.pcap");
        let mut frames = self.frames.clone();
        frames.sort_by_key(|(at, _)| *at);
        let mut w = match self.interface {
            Some(name) => CaptureWriter::new(Vec::new(), Container::Pcapng, name),
            None => CaptureWriter::new(Vec::new(), Container::Pcap, "eth0"),
        }
        .unwrap();
        for (at, frame) in &frames {
            w.write(Timestamp(START.0 + at * 1_000_000), frame).unwrap();
        }
        std::fs::write(&path, w.into_inner()).unwrap();
        path.display().to_string()
    }

    fn analyze(&self, test: &str, extra: &[&str]) -> Value {
        let path = self.write(test);
        let mut args = vec!["analyze", "--format", "json", "--fail-on", "never", &path];
        args.extend_from_slice(extra);
        let out = kpcap(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out)["captures"][0].clone()
    }
}

fn syn_counts(report: &Value) -> Value {
    report["findings"]["tcp_syns"]["counts"].clone()
}

fn syn_items(report: &Value) -> Vec<Value> {
    report["findings"]["tcp_syns"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["items"].as_array().unwrap().clone())
        .collect()
}

fn dns_counts(report: &Value) -> Value {
    report["findings"]["dns"]["counts"].clone()
}

fn cause_ids(report: &Value) -> Vec<String> {
    report["verdict"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn retransmitted_syns_are_one_unanswered_flow() {
    let report = Capture::new()
        .tcp(0, NODE, 40000, EXT, 443, SYN, 100, &[])
        .tcp(1000, NODE, 40000, EXT, 443, SYN, 100, &[])
        .tcp(3000, NODE, 40000, EXT, 443, SYN, 100, &[])
        .end_at(10_000)
        .analyze("retransmitted", &[]);
    let c = syn_counts(&report);
    assert_eq!(
        (c["syn_flows"].as_u64(), c["unanswered"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(c["syn_packets"], 3);
    let items = syn_items(&report);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["syn_packets"], 3);
    assert_eq!(items[0]["retransmits"], 2);
    assert_eq!(items[0]["syn_outcome"], "unanswered");
    assert_eq!(items[0]["initiator"]["addr"], NODE);
    let group = &report["findings"]["tcp_syns"]["groups"][0];
    assert_eq!(
        (group["retransmits"].as_u64(), group["severity"].as_str()),
        (Some(2), Some("failure"))
    );
    assert_eq!(cause_ids(&report), ["syns_unanswered"]);
}

#[test]
fn rst_from_responder_is_refused_not_unanswered() {
    let report = Capture::new()
        .tcp(0, NODE, 40001, EXT, 8443, SYN, 7, &[])
        .tcp(5, EXT, 8443, NODE, 40001, RST | ACK, 0, &[])
        .end_at(10_000)
        .analyze("refused", &[]);
    let c = syn_counts(&report);
    assert_eq!(
        (c["refused"].as_u64(), c["unanswered"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        report["findings"]["tcp_syns"]["groups"][0]["severity"],
        "warning"
    );
    assert_eq!(cause_ids(&report), ["connections_refused"]);
}

#[test]
fn icmp_unreachable_quoting_the_syn_is_unreachable_with_its_code() {
    let syn = ip_packet(
        ip(NODE),
        ip(EXT),
        &L4::Tcp {
            src_port: 40002,
            dst_port: 443,
            flags: SYN,
            seq: 9,
            ack: 0,
            payload: &[],
        },
    );
    let icmp = ip_packet(
        ip("192.0.2.254"),
        ip(NODE),
        &L4::Unreachable {
            code: 13,
            quoted: &syn,
        },
    );
    // An unreachable quoting another flow's SYN must not touch this one.
    let other = ip_packet(
        ip(NODE),
        ip(EXT),
        &L4::Tcp {
            src_port: 40003,
            dst_port: 443,
            flags: SYN,
            seq: 9,
            ack: 0,
            payload: &[],
        },
    );
    let report = Capture::new()
        .ip(0, syn.clone())
        .ip(3, icmp)
        .ip(4, other)
        .end_at(10_000)
        .analyze("unreachable", &[]);
    let c = syn_counts(&report);
    assert_eq!(
        (c["unreachable"].as_u64(), c["unanswered"].as_u64()),
        (Some(1), Some(1))
    );
    let item = syn_items(&report)
        .into_iter()
        .find(|i| i["syn_outcome"] == "unreachable")
        .unwrap();
    assert_eq!(item["initiator"]["port"], 40002);
    assert_eq!(item["icmp"]["code"], 13);
    assert_eq!(item["icmp"]["meaning"], "administratively prohibited");
    assert_eq!(item["icmp"]["from"], "192.0.2.254");
    assert!(cause_ids(&report).contains(&"destinations_unreachable".to_string()));
}

#[test]
fn simultaneous_open_is_answered() {
    let report = Capture::new()
        .tcp(0, NODE, 5000, EXT, 6000, SYN, 1, &[])
        .tcp(1, EXT, 6000, NODE, 5000, SYN, 2, &[])
        .end_at(10_000)
        .analyze("simultaneous", &[]);
    let c = syn_counts(&report);
    assert_eq!(
        (c["syn_flows"].as_u64(), c["answered"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        report["findings"]["tcp_syns"]["groups"],
        serde_json::json!([])
    );
    assert_eq!(report["verdict"]["status"], "clean");
}

#[test]
fn syn_at_capture_end_is_inconclusive_within_the_grace_window() {
    // The last SYN copy exactly 3.000 s before the end is old enough.
    let exactly = Capture::new()
        .tcp(0, NODE, 40004, EXT, 443, SYN, 1, &[])
        .end_at(3000)
        .analyze("grace-exact", &[]);
    assert_eq!(syn_counts(&exactly)["unanswered"], 1);
    // 2.999 s: inconclusive, an info finding that does not fail the run.
    let young = Capture::new()
        .tcp(0, NODE, 40004, EXT, 443, SYN, 1, &[])
        .end_at(2999)
        .analyze("grace-young", &[]);
    let c = syn_counts(&young);
    assert_eq!(
        (c["inconclusive"].as_u64(), c["unanswered"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        young["findings"]["tcp_syns"]["groups"][0]["severity"],
        "info"
    );
    // A retransmission restarts the clock: judged by the last copy.
    let retransmitted = Capture::new()
        .tcp(0, NODE, 40004, EXT, 443, SYN, 1, &[])
        .tcp(8000, NODE, 40004, EXT, 443, SYN, 1, &[])
        .end_at(10_000)
        .analyze("grace-last-copy", &[]);
    assert_eq!(syn_counts(&retransmitted)["inconclusive"], 1);
    // --syn-grace moves the boundary.
    let short = Capture::new()
        .tcp(0, NODE, 40004, EXT, 443, SYN, 1, &[])
        .end_at(2999)
        .analyze("grace-flag", &["--syn-grace", "500ms"]);
    assert_eq!(syn_counts(&short)["unanswered"], 1);
}

#[test]
fn initiator_that_gave_up_is_still_unanswered() {
    let report = Capture::new()
        .tcp(0, NODE, 40005, EXT, 443, SYN, 1, &[])
        .tcp(1000, NODE, 40005, EXT, 443, SYN, 1, &[])
        .tcp(2000, NODE, 40005, EXT, 443, RST, 2, &[])
        .tcp(2000, NODE, 40006, EXT, 443, SYN, 1, &[])
        .tcp(2500, NODE, 40006, EXT, 443, FIN | ACK, 2, &[])
        .end_at(10_000)
        .analyze("gave-up", &[]);
    assert_eq!(syn_counts(&report)["unanswered"], 2);
    assert!(syn_items(&report)
        .iter()
        .all(|i| i["initiator_gave_up"] == true));
}

fn query(id: u16, name: &str) -> Vec<u8> {
    dns_message(id, false, 0, name, 1, None)
}

fn response(id: u16, rcode: u8, name: &str) -> Vec<u8> {
    dns_message(
        id,
        true,
        rcode,
        name,
        1,
        (rcode == 0).then_some([192, 0, 2, 80]),
    )
}

fn dns_items(report: &Value) -> Vec<Value> {
    let dns = &report["findings"]["dns"];
    let groups = dns["groups"].as_array().unwrap().iter();
    groups
        .chain(dns["rcodes"].as_array().unwrap().iter())
        .flat_map(|g| g["items"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn retransmitted_dns_query_answered_once_is_answered() {
    let report = Capture::new()
        .udp(0, NODE, 33000, RESOLVER, 53, &query(7, "ghcr.io"))
        .udp(1000, NODE, 33000, RESOLVER, 53, &query(7, "ghcr.io"))
        .udp(1100, RESOLVER, 53, NODE, 33000, &response(7, 0, "ghcr.io"))
        .end_at(20_000)
        .analyze("dns-retransmit", &[]);
    let c = dns_counts(&report);
    assert_eq!(c["queries"], 2);
    assert_eq!(c["query_keys"], 1);
    assert_eq!(c["answered"], 1);
    assert_eq!(c["timed_out"], 0);
    assert_eq!(c["retransmitted"], 1);
    let items = dns_items(&report);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["query_packets"], 2);
    assert_eq!(items[0]["rcode"], "NOERROR");
    // Response time from the latest copy before the answer: 100 ms.
    assert_eq!(items[0]["response_time_ms"], 100.0);
}

/// Names are compared as text, lowercased, however they were spelt on
/// the wire (0x20 mixed case, a compressed question) and however often
/// each spelling came (later copies of a spelling are recognised by their
/// bytes).
#[test]
fn a_name_is_one_name_in_any_case_and_encoding() {
    let mut compressed = query(9, "x");
    compressed.truncate(12);
    compressed.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1]);
    compressed.extend_from_slice(b"\x06GitHub\x03com\x00");
    let mut capture = Capture::new();
    let spellings = ["github.com", "GitHub.COM", "gItHuB.cOm"];
    for (n, name) in spellings.iter().cycle().take(9).enumerate() {
        let (id, port, at) = (n as u16, 40000 + n as u16, n as u64 * 10);
        capture.udp(at, NODE, port, RESOLVER, 53, &query(id, name));
        capture.udp(at + 5, RESOLVER, 53, NODE, port, &response(id, 0, name));
    }
    capture.udp(100, NODE, 40100, RESOLVER, 53, &compressed);
    let report = capture.end_at(20_000).analyze("dns-name-spellings", &[]);
    let c = dns_counts(&report);
    assert_eq!(
        (c["query_keys"].as_u64(), c["timed_out"].as_u64()),
        (Some(10), Some(1))
    );
    let rcodes = report["findings"]["dns"]["rcodes"].as_array().unwrap();
    assert_eq!(rcodes.len(), 1);
    assert_eq!(rcodes[0]["name"], "github.com");
    assert_eq!(rcodes[0]["responses"], 9);
    let timeout = &report["findings"]["dns"]["groups"][0];
    assert_eq!(timeout["names"], serde_json::json!(["github.com"]));
}

/// A table lists rcodes by name without the queries they answered, which
/// only JSON lists: it has the same rows, a name known only from the query
/// of a response without a question included.
#[test]
fn a_table_lists_the_rcodes_json_does_without_their_queries() {
    let mut bare = response(5, 2, "broken.example");
    bare.truncate(12);
    bare[4..6].copy_from_slice(&[0, 0]);
    let mut capture = Capture::new();
    capture
        .udp(0, NODE, 35000, RESOLVER, 53, &query(5, "broken.example"))
        .udp(10, RESOLVER, 53, NODE, 35000, &bare)
        .end_at(20_000);
    let report = capture.analyze("dns-rcode-rows", &[]);
    let rcodes = report["findings"]["dns"]["rcodes"].as_array().unwrap();
    let rows: Vec<(String, u64, usize)> = (rcodes.iter())
        .map(|r| {
            let name = r["name"].as_str().unwrap().to_string();
            let items = r["items"].as_array().unwrap().len();
            (name, r["responses"].as_u64().unwrap(), items)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("<no question>".to_string(), 1, 0),
            ("broken.example".to_string(), 0, 1)
        ]
    );
    let path = capture.write("dns-rcode-rows-table");
    let table = stdout(&kpcap(&["analyze", "--fail-on", "never", &path]));
    let cells = |line: &str| -> Vec<String> {
        let line = line.trim_matches(|c| c == '│' || c == ' ');
        line.split('┆')
            .map(|cell| cell.trim().to_string())
            .collect()
    };
    let table_rows: Vec<Vec<String>> = table.lines().map(cells).collect();
    for (name, responses, _) in rows {
        let row = [
            "warning".to_string(),
            name,
            "SERVFAIL".into(),
            responses.to_string(),
        ];
        assert!(
            table_rows.iter().any(|cells| cells.starts_with(&row)),
            "no row {row:?} in\n{table}"
        );
    }
}

fn framed(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

#[test]
fn dns_over_tcp_two_messages_in_one_segment_and_one_across_two() {
    let (c, s) = (NODE, RESOLVER);
    let queries = framed(&[&query(1, "a.example"), &query(2, "b.example")]);
    let answers = framed(&[&response(1, 0, "a.example"), &response(2, 3, "b.example")]);
    let split = 20; // the second response straddles two segments
    let first_len = answers.len() - split;
    let report = Capture::new()
        .tcp(0, c, 41000, s, 53, SYN, 1000, &[])
        .tcp(1, s, 53, c, 41000, SYN | ACK, 5000, &[])
        .tcp(2, c, 41000, s, 53, ACK, 1001, &[])
        .tcp(3, c, 41000, s, 53, ACK, 1001, &queries)
        .tcp(20, s, 53, c, 41000, ACK, 5001, &answers[..first_len])
        // A retransmission of the first part: deduplicated.
        .tcp(21, s, 53, c, 41000, ACK, 5001, &answers[..first_len])
        .tcp(
            30,
            s,
            53,
            c,
            41000,
            ACK,
            5001 + first_len as u32,
            &answers[first_len..],
        )
        .end_at(20_000)
        .analyze("dns-tcp", &[]);
    let counts = dns_counts(&report);
    assert_eq!(counts["queries"], 2);
    assert_eq!(counts["responses"], 2);
    assert_eq!(counts["answered"], 2);
    let items = dns_items(&report);
    assert!(items.iter().all(|i| i["transport"] == "tcp"));
    let b = items.iter().find(|i| i["id"] == 2).unwrap();
    assert_eq!(b["rcode"], "NXDOMAIN");
    // Stamped with the segment that completed it, 27 ms after the query.
    assert_eq!(b["response_time_ms"], 27.0);
}

#[test]
fn unsolicited_responses_are_counted_apart() {
    let report = Capture::new()
        .udp(
            0,
            RESOLVER,
            53,
            NODE,
            33001,
            &response(9, 0, "nobody.asked"),
        )
        // A response before its query (in time) is unsolicited too.
        .udp(
            100,
            RESOLVER,
            53,
            NODE,
            33002,
            &response(10, 0, "early.example"),
        )
        .udp(200, NODE, 33002, RESOLVER, 53, &query(10, "early.example"))
        .udp(
            250,
            RESOLVER,
            53,
            NODE,
            33002,
            &response(10, 0, "early.example"),
        )
        .end_at(20_000)
        .analyze("dns-unsolicited", &[]);
    let c = dns_counts(&report);
    assert_eq!(c["unsolicited_responses"], 2);
    assert_eq!(c["answered"], 1);
    let group = report["findings"]["dns"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["outcome"] == "unsolicited")
        .unwrap()
        .clone();
    assert_eq!(
        (group["count"].as_u64(), group["severity"].as_str()),
        (Some(2), Some("info"))
    );
}

#[test]
fn nxdomain_servfail_and_timeout_are_told_apart() {
    let report = Capture::new()
        .udp(0, NODE, 34000, RESOLVER, 53, &query(1, "missing.example"))
        .udp(
            10,
            RESOLVER,
            53,
            NODE,
            34000,
            &response(1, 3, "missing.example"),
        )
        .udp(20, NODE, 34001, RESOLVER, 53, &query(2, "broken.example"))
        .udp(
            30,
            RESOLVER,
            53,
            NODE,
            34001,
            &response(2, 2, "broken.example"),
        )
        .udp(40, NODE, 34002, RESOLVER, 53, &query(3, "silent.example"))
        .end_at(20_000)
        .analyze("dns-rcodes", &[]);
    let c = dns_counts(&report);
    assert_eq!(
        (c["answered"].as_u64(), c["timed_out"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(c["responses_by_rcode"]["NXDOMAIN"], 1);
    assert_eq!(c["responses_by_rcode"]["SERVFAIL"], 1);
    let rcodes = report["findings"]["dns"]["rcodes"].as_array().unwrap();
    let severity = |rcode: &str| {
        rcodes.iter().find(|r| r["rcode"] == rcode).unwrap()["severity"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(severity("SERVFAIL"), "warning");
    assert_eq!(severity("NXDOMAIN"), "info");
    let timeout = &report["findings"]["dns"]["groups"][0];
    assert_eq!(timeout["outcome"], "timed_out");
    assert_eq!(timeout["names"], serde_json::json!(["silent.example"]));
    assert_eq!(timeout["severity"], "failure");
    assert_eq!(cause_ids(&report), ["dns_timeouts", "dns_server_errors"]);
}

#[test]
fn dns_timeout_boundaries() {
    let report = Capture::new()
        // Answered exactly 5.000 s later: answered.
        .udp(0, NODE, 35000, RESOLVER, 53, &query(1, "exact.example"))
        .udp(
            5000,
            RESOLVER,
            53,
            NODE,
            35000,
            &response(1, 0, "exact.example"),
        )
        // Answered 5.001 s later: timed out, with a late response.
        .udp(0, NODE, 35001, RESOLVER, 53, &query(2, "late.example"))
        .udp(
            5001,
            RESOLVER,
            53,
            NODE,
            35001,
            &response(2, 0, "late.example"),
        )
        // Sent exactly 5.000 s before the end: timed out.
        .udp(15_000, NODE, 35002, RESOLVER, 53, &query(3, "old.example"))
        // Sent 4.999 s before the end: inconclusive.
        .udp(
            15_001,
            NODE,
            35003,
            RESOLVER,
            53,
            &query(4, "young.example"),
        )
        .end_at(20_000)
        .analyze("dns-boundaries", &[]);
    let c = dns_counts(&report);
    assert_eq!(c["answered"], 1);
    assert_eq!(c["timed_out"], 2);
    assert_eq!(c["answered_late"], 1);
    assert_eq!(c["inconclusive"], 1);
    let outcome = |name: &str| {
        dns_items(&report)
            .into_iter()
            .find(|i| i["name"] == name)
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome("exact.example"), "answered");
    assert_eq!(outcome("late.example"), "timed_out");
    assert_eq!(outcome("old.example"), "timed_out");
    assert_eq!(outcome("young.example"), "inconclusive");
    // --dns-timeout moves them.
    let c = dns_counts(
        &Capture::new()
            .udp(0, NODE, 35001, RESOLVER, 53, &query(2, "late.example"))
            .udp(
                5001,
                RESOLVER,
                53,
                NODE,
                35001,
                &response(2, 0, "late.example"),
            )
            .end_at(20_000)
            .analyze("dns-timeout-flag", &["--dns-timeout", "6s"]),
    );
    assert_eq!(c["answered"], 1);
}

#[test]
fn dns_port_flag_and_what_is_not_dns() {
    let build = || {
        let quoted = ip_packet(
            ip(NODE),
            ip(RESOLVER),
            &L4::Udp {
                src_port: 36000,
                dst_port: 53,
                payload: &query(5, "quoted.example"),
            },
        );
        let mut c = Capture::new();
        c.udp(0, NODE, 36001, RESOLVER, 8053, &query(6, "custom.example"))
            .udp(
                5,
                RESOLVER,
                8053,
                NODE,
                36001,
                &response(6, 0, "custom.example"),
            )
            // mDNS is not DNS on port 53.
            .udp(
                10,
                NODE,
                5353,
                "224.0.0.251",
                5353,
                &query(0, "printer.local"),
            )
            // DNS quoted inside an ICMP error is not a message.
            .ip(
                20,
                ip_packet(
                    ip(RESOLVER),
                    ip(NODE),
                    &L4::Unreachable {
                        code: 3,
                        quoted: &quoted,
                    },
                ),
            )
            .end_at(20_000);
        c
    };
    let default = build().analyze("dns-port-default", &[]);
    assert_eq!(dns_counts(&default)["queries"], 0);
    let custom = build().analyze("dns-port-8053", &["--dns-port", "8053"]);
    let c = dns_counts(&custom);
    assert_eq!(
        (c["queries"].as_u64(), c["answered"].as_u64()),
        (Some(1), Some(1))
    );
}

fn egress_groups(report: &Value) -> Vec<Value> {
    report["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn pod_egress_without_replies_fails_and_with_replies_warns() {
    let report = Capture::new()
        .tcp(0, POD, 40000, EXT, 443, SYN, 1, &[])
        .tcp(1000, POD, 40000, EXT, 443, SYN, 1, &[])
        .udp(0, "10.42.2.9", 5000, "198.51.100.9", 4000, b"hello")
        .udp(1, "198.51.100.9", 4000, "10.42.2.9", 5000, b"hi")
        .end_at(10_000)
        .analyze("egress", &[]);
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["pod"], POD);
    assert_eq!(groups[0]["destination"], EXT);
    assert_eq!(groups[0]["port"], 443);
    assert_eq!(groups[0]["replies"], 0);
    assert_eq!(groups[0]["packets"], 2);
    assert_eq!(groups[0]["severity"], "failure");
    assert_eq!(groups[1]["pod"], "10.42.2.9");
    assert_eq!(groups[1]["replies"], 1);
    assert_eq!(groups[1]["severity"], "warning");
    assert_eq!(
        cause_ids(&report),
        [
            "pod_egress_not_masqueraded",
            "pod_addresses_routed_without_snat"
        ]
    );
    let cause = &report["verdict"]["causes"][0];
    assert_eq!(cause["explains"]["unanswered_syns"]["explained"], 1);
    assert_eq!(cause["explains"]["unanswered_syns"]["total"], 1);
    // --internal-cidr declares a destination that may see pod addresses.
    let declared = Capture::new()
        .tcp(0, POD, 40000, EXT, 443, SYN, 1, &[])
        .end_at(10_000)
        .analyze(
            "egress-internal",
            &["--preset", "k3s", "--internal-cidr", "203.0.113.0/24"],
        );
    assert!(egress_groups(&declared).is_empty());
}

/// JSON lists every flow of a pod egress group; a table, which shows one,
/// has only that one built: the group's first in time, which is JSON's
/// first item.
#[test]
fn a_table_shows_the_first_flow_json_lists_for_an_egress_group() {
    // At one time, so endpoints order them, and not in that order in the
    // file (nor in the flow table, which keeps the order flows came in).
    let mut capture = Capture::new();
    capture
        .tcp(100, POD, 40003, EXT, 443, SYN, 1, &[])
        .tcp(100, POD, 40009, EXT, 443, SYN, 1, &[])
        .tcp(100, POD, 40001, EXT, 443, SYN, 1, &[])
        .end_at(10_000);
    let report = capture.analyze("egress-first-flow", &[]);
    let items = egress_groups(&report)[0]["items"]
        .as_array()
        .unwrap()
        .clone();
    let ports: Vec<u64> = (items.iter())
        .map(|i| i["initiator"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [40001, 40003, 40009]);
    let path = capture.write("egress-first-flow-table");
    let out = kpcap(&["analyze", "--fail-on", "never", &path]);
    let table = stdout(&out);
    let shown = format!("tcp {POD}:40001 -> {EXT}:443 (syn_only, 1/0 pkts)");
    assert!(table.contains(&shown), "{table}");
    assert!(!table.contains(&format!("{POD}:40003 ->")), "{table}");
}

#[test]
fn tunnelled_traffic_is_judged_on_its_inner_header() {
    let inner = |src: &str, dst: &str| {
        ip_packet(
            ip(src),
            ip(dst),
            &L4::Tcp {
                src_port: 41000,
                dst_port: 443,
                flags: SYN,
                seq: 1,
                ack: 0,
                payload: &[],
            },
        )
    };
    // Node-to-node underlay carrying pod-to-pod: never a finding, even
    // though the outer header goes from a node to an "external" address.
    let overlay = vxlan(
        ip(NODE),
        ip("198.51.100.1"),
        8472,
        2,
        &ethernet(&inner(POD, "10.42.0.8"), &[]),
    );
    // The same tunnel carrying pod -> external: judged on the inner header.
    let leak = vxlan(
        ip(NODE),
        ip("198.51.100.1"),
        4789,
        2,
        &ethernet(&inner(POD, EXT), &[]),
    );
    let report = Capture::new()
        .ip(0, overlay)
        .ip(1, leak)
        .end_at(10_000)
        .analyze("tunnel", &[]);
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0]["pod"].as_str(), groups[0]["destination"].as_str()),
        (Some(POD), Some(EXT))
    );
    assert_eq!(groups[0]["items"][0]["tunnel"]["kind"], "vxlan");
}

#[test]
fn pre_and_post_nat_copies_prove_masquerading() {
    // `tcpdump -i any`: the pod's SYN before NAT, the same SYN (same ISN)
    // after NAT from the node address, answered.
    let report = Capture::new()
        .tcp(0, POD, 40000, EXT, 443, SYN, 777, &[])
        .tcp(0, NODE, 61000, EXT, 443, SYN, 777, &[])
        .tcp(12, EXT, 443, NODE, 61000, SYN | ACK, 5, &[])
        .tcp(12, EXT, 443, POD, 40000, SYN | ACK, 5, &[])
        // An unpaired pod flow in the same capture is still a finding.
        .tcp(100, "10.42.3.4", 40001, EXT, 443, SYN, 999, &[])
        .end_at(10_000)
        .analyze("nat-pairs", &[]);
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["pod"], "10.42.3.4");
    let masqueraded = &report["findings"]["unmasqueraded_egress"]["contrast"]["masqueraded_pods"];
    assert_eq!(masqueraded[0]["pod"], POD);
    assert_eq!(masqueraded[0]["translated_to"], serde_json::json!([NODE]));
    let details = report["verdict"]["causes"][0]["details"].to_string();
    assert!(
        details.contains("SNAT does happen for other pods"),
        "{details}"
    );
}

#[test]
fn a_coincidence_of_fingerprints_is_not_a_nat_pair() {
    // One NIC: a pod's DNS query leaves unmasqueraded, and the node asks
    // the same resolver the same name with the same id 200 ms later (one
    // chance in 65 536 per pair of queries, but a busy node makes
    // thousands). Copies of one packet are microseconds apart, not that.
    let analyze = |apart_ms, test| {
        Capture::new()
            .udp(0, POD, 37000, "1.1.1.1", 53, &query(4242, "github.com"))
            .udp(
                apart_ms,
                NODE,
                41000,
                "1.1.1.1",
                53,
                &query(4242, "github.com"),
            )
            .end_at(10_000)
            .analyze(test, &[])
    };
    let report = analyze(200, "nat-coincidence");
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (&groups[0]["pod"], &groups[0]["port"]),
        (&serde_json::json!(POD), &serde_json::json!(53))
    );
    let masqueraded = &report["findings"]["unmasqueraded_egress"]["contrast"]["masqueraded_pods"];
    assert_eq!(masqueraded, &serde_json::json!([]));

    // A few milliseconds apart they are taken for the two copies of one
    // query (a queue on the way to the NIC).
    let report = analyze(5, "nat-copies-5ms");
    assert!(egress_groups(&report).is_empty());
    let masqueraded = &report["findings"]["unmasqueraded_egress"]["contrast"]["masqueraded_pods"];
    assert_eq!(masqueraded[0]["pod"], POD);
}

#[test]
fn replies_to_a_pods_translated_flows_are_not_replies_from_upstream() {
    // `tcpdump -i any`: the pod's SNATed connection, answered, whose
    // replies are seen again addressed to the pod once conntrack has
    // restored its address; and the same pod's SYNs to the same
    // destination that left untranslated and got nothing back.
    let report = Capture::new()
        .tcp(0, POD, 40000, EXT, 443, SYN, 777, &[])
        .tcp(0, NODE, 61000, EXT, 443, SYN, 777, &[])
        .tcp(12, EXT, 443, NODE, 61000, SYN | ACK, 5, &[])
        .tcp(12, EXT, 443, POD, 40000, SYN | ACK, 5, &[])
        .tcp(20, EXT, 443, NODE, 61000, ACK, 6, b"data")
        .tcp(20, EXT, 443, POD, 40000, ACK, 6, b"data")
        .tcp(100, POD, 40001, EXT, 443, SYN, 999, &[])
        .tcp(1100, POD, 40001, EXT, 443, SYN, 999, &[])
        .end_at(10_000)
        .analyze("nat-and-leak", &[]);
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (
            &groups[0]["pod"],
            &groups[0]["flows"],
            &groups[0]["replies"]
        ),
        (
            &serde_json::json!(POD),
            &serde_json::json!(1),
            &serde_json::json!(0)
        )
    );
    assert_eq!(groups[0]["severity"], "failure");
    assert_eq!(cause_ids(&report)[0], "pod_egress_not_masqueraded");
    assert!(!cause_ids(&report).contains(&"pod_addresses_routed_without_snat".to_string()));

    // A packet that did come back to the pod's address on its own is
    // still a reply from upstream.
    let report = Capture::new()
        .tcp(0, POD, 40000, EXT, 443, SYN, 777, &[])
        .tcp(0, NODE, 61000, EXT, 443, SYN, 777, &[])
        .tcp(12, EXT, 443, NODE, 61000, SYN | ACK, 5, &[])
        .tcp(12, EXT, 443, POD, 40000, SYN | ACK, 5, &[])
        .tcp(100, POD, 40001, EXT, 443, SYN, 999, &[])
        .tcp(112, EXT, 443, POD, 40001, SYN | ACK, 9, &[])
        .end_at(10_000)
        .analyze("nat-and-routed", &[]);
    let groups = egress_groups(&report);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (&groups[0]["replies"], &groups[0]["severity"]),
        (&serde_json::json!(1), &serde_json::json!("warning"))
    );
}

#[test]
fn service_vip_on_the_wire_is_a_failure() {
    let report = Capture::new()
        .udp(
            0,
            POD,
            37000,
            "10.43.0.10",
            53,
            &query(1, "kubernetes.default.svc.cluster.local"),
        )
        .end_at(10_000)
        .analyze("service-vip", &[]);
    let group = &report["findings"]["service_vips"]["groups"][0];
    assert_eq!(group["service"], "10.43.0.10");
    assert_eq!(group["source"], POD);
    assert_eq!(group["ports"], serde_json::json!(["udp/53"]));
    assert_eq!(group["severity"], "failure");
    assert_eq!(cause_ids(&report)[0], "clusterip_not_translated");
    // The DNS timeout it causes is explained by it.
    let cause = &report["verdict"]["causes"][0];
    assert_eq!(cause["explains"]["dns_timeouts"]["explained"], 1);
}

#[test]
fn service_vip_on_a_pod_side_interface_is_expected() {
    // `tcpdump -i lxc...`: before kube-proxy's DNAT, the VIP is normal.
    let report = Capture::on_interface("lxc8a1f2c3d")
        .udp(
            0,
            POD,
            37000,
            "10.43.0.10",
            53,
            &query(1, "kubernetes.default.svc.cluster.local"),
        )
        .end_at(10_000)
        .analyze("service-vip-lxc", &[]);
    let group = &report["findings"]["service_vips"]["groups"][0];
    assert_eq!(group["interfaces"], serde_json::json!(["lxc8a1f2c3d"]));
    assert_eq!(group["severity"], "info");
    assert!(!cause_ids(&report).contains(&"clusterip_not_translated".to_string()));
}

#[test]
fn fail_on_sets_the_exit_code() {
    let refused = Capture::new()
        .tcp(0, NODE, 40001, EXT, 8443, SYN, 7, &[])
        .tcp(5, EXT, 8443, NODE, 40001, RST | ACK, 0, &[])
        .write("fail-on-warning");
    assert_eq!(kpcap(&["analyze", &refused]).status.code(), Some(0));
    assert_eq!(
        kpcap(&["analyze", "--fail-on", "warning", &refused])
            .status
            .code(),
        Some(1)
    );
    let unanswered = Capture::new()
        .tcp(0, NODE, 40000, EXT, 443, SYN, 1, &[])
        .end_at(10_000)
        .write("fail-on-failure");
    assert_eq!(kpcap(&["analyze", &unanswered]).status.code(), Some(1));
    assert_eq!(
        kpcap(&["analyze", "--fail-on", "never", &unanswered])
            .status
            .code(),
        Some(0)
    );
    // An input error wins over findings.
    let out = kpcap(&["analyze", &unanswered, "/nonexistent.pcap"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--max-flows`: the tables stay at the limit, the evictions are said,
/// and the report still does not depend on threads (records are folded in
/// order when the limit is set).
#[test]
fn max_flows_evicts_idle_flows_with_a_warning_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many-flows.pcap");
    std::fs::write(
        &path,
        kpcap::synth::generate(
            kpcap::synth::Scenario::SmallPackets {
                bytes: 2 << 20,
                conversations: None,
            },
            kpcap::synth::Container::Pcap,
            1,
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let run = |threads: &str| {
        kpcap(&[
            "analyze",
            path,
            "--max-flows",
            "500",
            "--threads",
            threads,
            "--chunk-bytes",
            "65536",
            "--format",
            "json",
            "--fail-on",
            "never",
        ])
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(stdout(&one), stdout(&two));
    let err = stderr(&one);
    assert!(
        err.contains("--max-flows 500: the tables were full;"),
        "{err}"
    );
    let doc = json(&one);
    let capture = &doc["captures"][0];
    assert!(capture["warnings"][0].as_str().unwrap().contains("evicted"));
    // Every record is still counted.
    let unbounded = json(&kpcap(&[
        "analyze",
        path,
        "--format",
        "json",
        "--fail-on",
        "never",
    ]));
    assert_eq!(capture["packets"], unbounded["captures"][0]["packets"]);
    assert!(unbounded["captures"][0]["warnings"]
        .as_array()
        .unwrap()
        .is_empty());
}
