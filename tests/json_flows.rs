//! The `kpcap.flows/2` JSON schema, parsed back and asserted field by field
//! (README "JSON output").

mod common;
use common::*;
use serde_json::{json, Value};

#[test]
fn five_tuple_rows_carry_endpoints_state_and_counts() {
    let out = kpcap(&[
        "flows",
        "--format",
        "json",
        "--by",
        "5tuple",
        &testdata("zeek_pop3.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(doc["schema"], "kpcap.flows/2");
    let c = &doc["captures"][0];
    assert_eq!(c["format"], "pcap");
    assert_eq!(c["flow_count"], 7);
    assert!(
        c.get("pairs").is_none(),
        "--by 5tuple lists flows, not pairs"
    );
    let flows = c["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 7);
    let first = &flows[0];
    assert_eq!(first["protocol"], "tcp");
    assert_eq!(
        first["initiator"],
        json!({"addr": "192.168.0.4", "port": 26242, "class": "external"})
    );
    assert_eq!(first["responder"]["port"], 110);
    assert_eq!(first["tcp_state"], "refused");
    assert_eq!(
        first["syn_packets"], 3,
        "retransmitted SYNs belong to one flow"
    );
    assert_eq!(first["tunnel"], serde_json::Value::Null);
    let states: Vec<&str> = flows
        .iter()
        .map(|f| f["tcp_state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "refused").count(), 2);
    assert_eq!(states.iter().filter(|s| **s == "established").count(), 5);
}

#[test]
fn pair_rows_are_classified_with_the_given_cidrs() {
    let out = kpcap(&[
        "flows",
        "--format",
        "json",
        "--pod-cidr",
        "10.42.0.0/16",
        "--node-cidr",
        "10.50.10.0/24",
        &testdata("synth-mixed.pcapng"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(
        doc["topology"]["source"],
        "preset k3s, assumed; pod, node from flags"
    );
    assert_eq!(doc["topology"]["node"], json!(["10.50.10.0/24"]));
    let c = &doc["captures"][0];
    assert_eq!(c["format"], "pcapng");
    assert_eq!(c["interfaces"][0]["name"], "ens19");
    let pairs = c["pairs"].as_array().unwrap();
    assert_eq!(
        pairs.len() as u64,
        c["distinct_src_dst_pairs"].as_u64().unwrap()
    );
    for pair in pairs {
        for side in ["src", "dst"] {
            let addr = pair[side].as_str().unwrap();
            let class = pair[format!("{side}_class")].as_str().unwrap();
            let expected = if addr.starts_with("10.42.") {
                "pod"
            } else if addr.starts_with("10.50.10.") {
                "node"
            } else {
                "external"
            };
            assert_eq!(class, expected, "{addr}");
        }
        // Pod-to-pod traffic is only seen inside the VXLAN overlay.
        if pair["src_class"] == "pod" {
            assert_eq!(pair["tunneled_packets"], pair["packets"]);
        }
    }
    // Rows are busiest first.
    let packets: Vec<u64> = pairs
        .iter()
        .map(|p| p["packets"].as_u64().unwrap())
        .collect();
    assert!(packets.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn table_output_names_the_assumed_preset() {
    let out = kpcap(&["flows", &testdata("zeek_vxlan.pcap")]);
    let text = stdout(&out);
    assert!(
        text.contains("preset k3s, assumed: no CIDR given"),
        "{text}"
    );
    assert!(
        text.contains("4 distinct source -> destination address pairs"),
        "{text}"
    );
    assert!(stderr(&out).is_empty());
}

#[test]
fn stdin_is_read_when_the_capture_is_a_dash() {
    let file = std::fs::File::open(testdata("zeek_pcapng-multi-interface.pcapng")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(["flows", "--format", "json", "-"])
        .stdin(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["captures"][0]["file"], "<stdin>");
    assert_eq!(doc["captures"][0]["packets"], 6);
    assert_eq!(doc["captures"][0]["distinct_src_dst_pairs"], 4);
}

#[test]
fn five_tuple_rows_list_every_interface_and_the_tunnel() {
    let names = format!("--ifname={}", kpcap::synth::IFNAMES);
    let path = testdata("incident-before-any.pcap");
    let out = kpcap(&["flows", "--by", "5tuple", "--format", "json", &names, &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = &json(&out)["captures"][0];
    assert_eq!(c["duplicates"], 153);
    let seen_on: Vec<(&str, &str)> = c["seen_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["interface"].as_str().unwrap(),
                i["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen_on[0], ("ens19", "nic"));
    assert!(seen_on.contains(&("lxc3be5a77c0f12", "pod_side")));
    let flows = c["flows"].as_array().unwrap();
    // Pod-to-pod in the VXLAN overlay: plain on lxc, tunnelled on ens19.
    let overlay = flows
        .iter()
        .find(|f| f["responder"]["addr"] == "10.42.0.8")
        .unwrap();
    assert_eq!(overlay["interface"], "lxc3be5a77c0f12");
    let crossings = overlay["interfaces"].as_array().unwrap();
    assert_eq!(crossings.len(), 2);
    assert_eq!(crossings[0]["tunnel"], Value::Null);
    assert_eq!(crossings[1]["interface"], "ens19");
    assert_eq!(
        crossings[1]["tunnel"],
        json!({ "kind": "vxlan", "vni": 2, "outer_src": "10.50.10.21", "outer_dst": "10.50.10.11" })
    );
    assert_eq!(overlay["tunnel"]["kind"], "vxlan");
    // Copies are counted per interface, once in the flow's totals.
    let sent: u64 = crossings
        .iter()
        .map(|x| x["packets_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 2 * overlay["packets_sent"].as_u64().unwrap());
    // The table names the path and the tunnel.
    let text = stdout(&kpcap(&[
        "flows", "--by", "5tuple", "--limit", "0", &names, &path,
    ]));
    assert!(text.contains("lxc3be5a77c0f12 > ens19"), "{text}");
    assert!(
        text.contains("vxlan vni 2 10.50.10.21 -> 10.50.10.11"),
        "{text}"
    );
}
