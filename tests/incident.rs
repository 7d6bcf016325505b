//! The incident kpcap was born from (README.md), as generated testdata:
//! `analyze` must name the cause on the "before" capture and give a clean
//! bill of health on the "after" one. These are the README's first command.

mod common;
use common::*;
use serde_json::Value;

const TOPOLOGY: [&str; 4] = ["--preset", "k3s", "--node-cidr", "10.50.10.0/24"];

fn analyze(file: &str, format: &str) -> std::process::Output {
    let path = testdata(file);
    let mut args = vec!["analyze", path.as_str(), "--format", format];
    args.extend_from_slice(&TOPOLOGY);
    kpcap(&args)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// testdata/incident-*, overlay-* are `kpcap synth` output (the command
/// is in the table); regenerate them with it if the generator changes on
/// purpose.
#[test]
fn committed_synthetic_captures_are_reproducible() {
    for (file, args) in [
        (
            "incident-before.pcapng",
            "--scenario incident-before --container pcapng",
        ),
        (
            "incident-after.pcapng",
            "--scenario incident-after --container pcapng",
        ),
        (
            "incident-before-any.pcap",
            "--scenario incident-before --view any-sll2",
        ),
        (
            "incident-after-any.pcap",
            "--scenario incident-after --view any-sll2",
        ),
        (
            "incident-before-any-sll.pcap",
            "--scenario incident-before --view any-sll",
        ),
        (
            "incident-before-two-nics.pcapng",
            "--scenario incident-before --view two-nics",
        ),
        ("overlay-vxlan.pcap", "--scenario overlay-vxlan"),
        ("overlay-geneve.pcap", "--scenario overlay-geneve"),
        ("overlay-ipip.pcap", "--scenario overlay-ipip"),
    ] {
        let path = scratch("synth").join(file).display().to_string();
        let mut command: Vec<&str> = vec!["synth"];
        command.extend(args.split(' '));
        command.extend(["-o", &path]);
        let out = kpcap(&command);
        assert!(out.status.success(), "{}", stderr(&out));
        let committed = std::fs::read(testdata(file)).unwrap();
        assert!(
            std::fs::read(&path).unwrap() == committed,
            "regenerate testdata/{file}: kpcap synth {args} -o testdata/{file}"
        );
    }
}

#[test]
fn before_the_fix_the_verdict_is_pod_egress_not_masqueraded() {
    let out = analyze("incident-before.pcapng", "json");
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings exit 1: {}",
        stderr(&out)
    );
    let doc = json(&out);
    assert_eq!(doc["schema"], "kpcap.analyze/2");
    let report = &doc["captures"][0];
    assert_eq!(report["interfaces"][0]["name"], "ens19");
    assert_eq!(report["verdict"]["status"], "failure");

    let cause = &report["verdict"]["causes"][0];
    assert_eq!(cause["rank"], 1);
    assert_eq!(cause["id"], "pod_egress_not_masqueraded");
    assert_eq!(cause["evidence"]["replies"], 0);
    assert_eq!(cause["evidence"]["pod_sources"], 3);
    assert_eq!(cause["evidence"]["external_destinations"], 3);
    // Every unanswered SYN and every DNS timeout is explained by it.
    let explains = &cause["explains"];
    assert_eq!(explains["unanswered_syns"]["explained"], 15);
    assert_eq!(explains["unanswered_syns"]["total"], 15);
    assert_eq!(explains["dns_timeouts"]["explained"], 8);
    assert_eq!(explains["dns_timeouts"]["total"], 8);
    let summary = cause["summary"].as_str().unwrap();
    for needle in [
        "10.42.1.12",
        "10.42.1.17",
        "10.42.1.5",
        "1.1.1.1",
        "140.82.121.4",
        "140.82.112.33",
        "got 0 replies",
        "ens19",
    ] {
        assert!(
            summary.contains(needle),
            "summary lacks {needle}: {summary}"
        );
    }
    // The node's own traffic to the same destinations was answered.
    let answered = &report["findings"]["unmasqueraded_egress"]["contrast"]["answered_sources"];
    assert_eq!(answered[0]["source"], "10.50.10.21");
    assert_eq!(answered[0]["class"], "node");
    let hints: Vec<String> = cause["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cni"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hints, ["cilium", "calico", "flannel / ip-masq-agent"]);
    assert!(cause["remediation"][0]["hint"]
        .as_str()
        .unwrap()
        .contains("devices=ens19"));

    // The findings behind it.
    let egress = report["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    assert_eq!(egress.len(), 4);
    assert!(egress
        .iter()
        .all(|g| g["replies"] == 0 && g["severity"] == "failure"));
    let flux = egress.iter().find(|g| g["pod"] == "10.42.1.12").unwrap();
    assert_eq!(
        (flux["destination"].as_str(), flux["port"].as_u64()),
        (Some("1.1.1.1"), Some(443))
    );
    assert_eq!(flux["items"].as_array().unwrap().len(), 5);
    let syns = &report["findings"]["tcp_syns"];
    assert_eq!(syns["counts"]["unanswered"], 15);
    assert_eq!(syns["counts"]["inconclusive"], 0);
    for group in syns["groups"].as_array().unwrap() {
        assert_eq!(group["outcome"], "unanswered");
        assert_eq!(group["retransmits"], 15, "3 retransmissions per flow");
        assert!(group["source"].as_str().unwrap().starts_with("10.42.1."));
    }
    let dns = &report["findings"]["dns"];
    assert_eq!(dns["counts"]["timed_out"], 8);
    assert_eq!(dns["counts"]["answered"], 7, "the node's own lookups");
    let timeouts = &dns["groups"][0];
    assert_eq!(
        (timeouts["client"].as_str(), timeouts["server"].as_str()),
        (Some("10.42.1.5"), Some("1.1.1.1"))
    );
    assert_eq!(
        strings(&timeouts["names"]),
        ["api.github.com", "ghcr.io", "github.com"]
    );
    assert_eq!(timeouts["query_packets"], 16, "each query retried once");
    assert_eq!(
        report["findings"]["service_vips"]["groups"],
        serde_json::json!([])
    );
}

#[test]
fn before_the_fix_the_table_reads_like_the_incident_report() {
    let out = analyze("incident-before.pcapng", "table");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let verdict = text.find("VERDICT   FAILURE").expect("verdict line");
    let first = text
        .find("1. [failure] Pod egress is not masqueraded")
        .expect("ranked first");
    assert!(verdict < first);
    for needle in [
        "interfaces #0 ens19: Ethernet",
        "node 10.50.10.0/24",
        "they explain 15 of 15 unanswered SYNs and 8 of 8 DNS timeouts",
        "10.50.10.21 (node) reached the same destinations",
        "UNMASQUERADED POD EGRESS",
        "TCP SYNS (32 SYN flows: 17 answered, 15 unanswered",
        "DNS (23 queries, 15 keys: 7 answered, 8 timed out",
    ] {
        assert!(text.contains(needle), "table lacks {needle:?}:\n{text}");
    }
    assert!(
        stderr(&out).is_empty(),
        "nothing but the report: {}",
        stderr(&out)
    );
}

#[test]
fn after_the_fix_the_capture_is_clean() {
    let out = analyze("incident-after.pcapng", "json");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = &json(&out)["captures"][0];
    assert_eq!(report["verdict"]["status"], "clean");
    assert_eq!(report["verdict"]["causes"], serde_json::json!([]));
    let f = &report["findings"];
    assert_eq!(f["unmasqueraded_egress"]["groups"], serde_json::json!([]));
    assert_eq!(
        f["tcp_syns"]["counts"]["answered"],
        f["tcp_syns"]["counts"]["syn_flows"]
    );
    assert_eq!(f["dns"]["counts"]["answered"], 15);
    assert_eq!(f["dns"]["counts"]["timed_out"], 0);
    let text = stdout(&analyze("incident-after.pcapng", "table"));
    assert!(text.contains("VERDICT   CLEAN"), "{text}");
}

#[test]
fn ndjson_has_one_cause_or_finding_per_line() {
    let out = analyze("incident-before.pcapng", "ndjson");
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["type"], "capture");
    assert_eq!(lines[0]["status"], "failure");
    assert_eq!(lines[1]["type"], "cause");
    assert_eq!(lines[1]["id"], "pod_egress_not_masqueraded");
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "unmasqueraded_egress")
            .count(),
        4
    );
    assert_eq!(kinds.iter().filter(|k| **k == "tcp_syn").count(), 3);
    assert!(lines.iter().all(|l| l["file"]
        .as_str()
        .unwrap()
        .ends_with("incident-before.pcapng")));
}
