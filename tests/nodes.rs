//! Several nodes' captures analyzed together (`analyze --cluster DIR
//! a.pcap b.pcap ...`): the cluster section, in every format, on the
//! three-node incident of testdata/incident-nodes (written by `synth
//! --scenario incident-nodes`) and on its variants.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

const NODES: [&str; 3] = ["k3s-cp", "k3s-w1", "k3s-w2"];

fn captures_in(dir: &Path) -> Vec<String> {
    NODES
        .iter()
        .map(|n| dir.join(format!("{n}.pcap")).display().to_string())
        .collect()
}

fn committed() -> (Vec<String>, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/incident-nodes");
    (captures_in(&dir), dir.join("cluster").display().to_string())
}

/// `synth --scenario incident-nodes` with `extra` flags, into a new
/// directory: its captures and cluster directory.
fn generated(test: &str, extra: &[&str]) -> (Vec<String>, String) {
    let dir = scratch(test);
    let mut args = vec![
        "synth",
        "--scenario",
        "incident-nodes",
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    let made = kpcap(&args);
    assert!(made.status.success(), "{}", stderr(&made));
    (captures_in(&dir), dir.join("cluster").display().to_string())
}

fn analyze(captures: &[String], cluster: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["analyze", "--cluster", cluster];
    args.extend(captures.iter().map(String::as_str));
    args.extend(extra);
    kpcap(&args)
}

fn cluster_json(captures: &[String], cluster: &str) -> Value {
    let out = analyze(captures, cluster, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    json(&out)["cluster"].clone()
}

fn strings(value: &Value) -> Vec<&str> {
    match value.as_array() {
        Some(items) => items.iter().filter_map(Value::as_str).collect(),
        None => Vec::new(),
    }
}

#[test]
fn the_committed_captures_are_what_synth_writes() {
    let (written, written_cluster) = generated("committed", &[]);
    let (committed, committed_cluster) = committed();
    for (a, b) in written.iter().zip(&committed) {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{b} differs from what synth writes"
        );
    }
    for file in [
        "cluster.json",
        "ip-k3s-cp.json",
        "ip-k3s-w1.json",
        "ip-k3s-w2.json",
    ] {
        let a = std::fs::read(Path::new(&written_cluster).join(file)).unwrap();
        let b = std::fs::read(Path::new(&committed_cluster).join(file)).unwrap();
        assert!(a == b, "{file} differs from what synth writes");
    }
}

#[test]
fn the_workers_are_unmasqueraded_and_the_control_plane_hides_it() {
    let (captures, cluster) = committed();
    let table = analyze(&captures, &cluster, &[]);
    assert_eq!(table.status.code(), Some(1), "{}", stderr(&table));
    let text = stdout(&table);
    let section = &text[text.find("\nCLUSTER   FAILURE").expect("a cluster section")..];
    let row = |node: &str| {
        section
            .lines()
            .find(|l| l.starts_with(&format!("│ {node} ")))
            .unwrap_or_else(|| panic!("no row for {node}:\n{section}"))
            .to_string()
    };
    for (node, role, masqueraded, verdict) in [
        ("k3s-cp", "control-plane", "yes", "clean"),
        ("k3s-w1", "worker", "no", "failure"),
        ("k3s-w2", "worker", "no", "failure"),
    ] {
        let line = row(node);
        let cells: Vec<&str> = line.split(['│', '┆']).map(str::trim).collect();
        assert_eq!(cells[2], role, "{cells:?}");
        assert_eq!(cells[5], masqueraded, "{cells:?}");
        assert_eq!(cells[10], verdict, "{cells:?}");
    }
    let verdict = &section[section.find("VERDICT ACROSS NODES").unwrap()..];
    let first = verdict
        .lines()
        .find(|l| l.trim_start().starts_with("1. "))
        .unwrap();
    assert!(
        first.contains("[failure] Masquerading differs between nodes"),
        "{verdict}"
    );
    let prose = verdict.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        prose.contains("k3s-cp (control-plane) masquerades; k3s-w1, k3s-w2 (workers) do not: control-plane success hides the workers' failure"),
        "{verdict}"
    );

    let cluster = cluster_json(&captures, &cluster);
    assert_eq!(cluster["status"], "failure");
    let nodes = cluster["nodes"].as_array().unwrap();
    let by_name = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    assert_eq!(by_name("k3s-cp")["role"], "control-plane");
    assert_eq!(by_name("k3s-cp")["masquerading"], "yes");
    assert_eq!(by_name("k3s-cp")["status"], "clean");
    assert_eq!(
        strings(&by_name("k3s-cp")["translated_to"]),
        ["10.50.10.11"]
    );
    for worker in ["k3s-w1", "k3s-w2"] {
        let node = by_name(worker);
        assert_eq!(node["role"], "worker");
        assert_eq!(node["masquerading"], "no");
        assert_eq!(node["status"], "failure");
        assert_eq!(strings(&node["pod_source_nics"]), ["ens19"]);
        assert!(node["files"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("{worker}.pcap")));
    }
    let top = &cluster["causes"][0];
    assert_eq!(top["id"], "masquerading_differs_between_nodes");
    assert_eq!(top["rank"], 1);
    assert_eq!(strings(&top["nodes"]["working"]), ["k3s-cp"]);
    assert_eq!(strings(&top["nodes"]["failing"]), ["k3s-w1", "k3s-w2"]);
    assert_eq!(top["evidence"]["failing_nodes"], 2);
    assert!(top["summary"]
        .as_str()
        .unwrap()
        .contains("control-plane success hides"));
    let fix = top["remediation"][0]["hint"].as_str().unwrap();
    assert!(
        fix.contains("enable-bpf-masquerade=false") && fix.contains("devices=ens19"),
        "{fix}"
    );
}

/// The path groups as (conclusion, client, server, port, connections,
/// where).
fn paths(cluster: &Value) -> Vec<(String, String, String, u64, u64, String)> {
    cluster["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["conclusion"].as_str().unwrap().to_string(),
                p["client"].as_str().unwrap().to_string(),
                p["server"].as_str().unwrap().to_string(),
                p["port"].as_u64().unwrap(),
                p["connections"].as_u64().unwrap(),
                p["said"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn offset_of(cluster: &Value, node: &str) -> i64 {
    let clocks = cluster["clocks"].as_array().unwrap();
    let clock = clocks.iter().find(|c| c["node"] == node).unwrap();
    clock["offset_ns"].as_i64().expect("an estimated offset")
}

#[test]
fn the_flow_that_dies_between_the_workers_is_traced_whatever_the_skew() {
    let (captures, cluster) = committed();
    let plain = cluster_json(&captures, &cluster);
    let traced = paths(&plain);
    let dying = traced
        .iter()
        .find(|p| p.1 == "10.42.1.12" && p.2 == "10.42.2.23")
        .expect("the probe's connections to the web pod are traced");
    assert_eq!(dying.0, "never_arrived");
    assert_eq!(dying.3, 8080);
    assert_eq!(dying.4, 3);
    assert_eq!(
        dying.5,
        "the SYN left k3s-w1's ens19 in VXLAN VNI 2, never arrived at k3s-w2"
    );
    let example = &plain["paths"][0]["examples"][0];
    assert_eq!(
        example["sightings"].as_array().unwrap().len(),
        1,
        "seen on k3s-w1 only"
    );
    assert_eq!(example["sightings"][0]["node"], "k3s-w1");
    assert!(offset_of(&plain, "k3s-w2").abs() < 1_000_000);

    // k3s-w2's clock 2 s ahead: the same match and conclusions, the skew
    // reported.
    let (skewed, skewed_cluster) = generated("skew", &["--skew", "2s"]);
    let skewed = cluster_json(&skewed, &skewed_cluster);
    assert_eq!(paths(&skewed), traced);
    let offset = offset_of(&skewed, "k3s-w2");
    assert!((offset - 2_000_000_000).abs() < 1_000_000, "{offset}");
    assert!(offset_of(&skewed, "k3s-w1").abs() < 1_000_000);
    let (skewed_captures, skewed_dir) = generated("skew-table", &["--skew", "2s"]);
    let table = stdout(&analyze(&skewed_captures, &skewed_dir, &[]));
    assert!(table.contains("(k3s-w2) +2.000s"), "{table}");
}

#[test]
fn each_way_of_dying_is_told_apart() {
    for (fault, conclusion, client, said) in [
        (
            "destination-pod",
            "no_answer_at_destination",
            "10.42.1.12",
            "the SYN arrived at k3s-w2's lxc0217a3f2c1d9e (pod-side), no answer: the destination pod",
        ),
        (
            "return-path",
            "answer_lost",
            "10.42.1.12",
            "answered on k3s-w2 (left its ens19 in VXLAN VNI 2), the answer never reached k3s-w1",
        ),
        (
            "return-path",
            "never_arrived",
            "10.42.2.9",
            "the query left k3s-w2's ens19 in VXLAN VNI 2, never arrived at k3s-w1",
        ),
        (
            "underlay",
            "answer_lost",
            "10.42.2.9",
            "answered on k3s-w1 (left its ens19 in VXLAN VNI 2), the answer never reached k3s-w2",
        ),
    ] {
        let (captures, cluster) = generated(&format!("fault-{fault}-{conclusion}"), &["--fault", fault]);
        let found = paths(&cluster_json(&captures, &cluster));
        assert!(
            found.iter().any(|p| p.0 == conclusion && p.1 == client && p.5 == said),
            "{fault}: {found:#?}"
        );
    }
    // Where k3s-w2's queries die, its pods fail against CoreDNS, which
    // answers k3s-cp's.
    let (captures, cluster) = committed();
    let causes = cluster_json(&captures, &cluster)["causes"].clone();
    let dns = causes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "dns_fails_on_some_nodes")
        .expect("the DNS cause");
    assert_eq!(strings(&dns["nodes"]["failing"]), ["k3s-w2"]);
    assert_eq!(strings(&dns["nodes"]["working"]), ["k3s-cp"]);
}

#[test]
fn per_node_verdicts_are_the_single_capture_verdicts_in_any_order_and_threads() {
    let (captures, cluster) = committed();
    let together = json(&analyze(&captures, &cluster, &["--format", "json"]));
    for capture in &captures {
        let alone = json(&analyze(
            std::slice::from_ref(capture),
            &cluster,
            &["--format", "json"],
        ));
        assert!(
            alone.get("cluster").is_none(),
            "one capture has no cluster section"
        );
        let alone = &alone["captures"][0];
        let same = together["captures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["file"] == alone["file"])
            .unwrap();
        assert_eq!(same["verdict"], alone["verdict"], "{capture}");
        assert_eq!(same["findings"], alone["findings"], "{capture}");
        let node = together["cluster"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["files"][0] == alone["file"])
            .unwrap();
        assert_eq!(node["status"], alone["verdict"]["status"]);
    }
    let reversed: Vec<String> = captures.iter().rev().cloned().collect();
    for format in ["table", "json", "ndjson"] {
        let base = analyze(&captures, &cluster, &["--format", format, "--threads", "2"]);
        for (order, threads) in [(&reversed, "1"), (&captures, "1"), (&reversed, "2")] {
            let other = analyze(order, &cluster, &["--format", format, "--threads", threads]);
            assert!(
                base.stdout == other.stdout,
                "{format}, --threads {threads}: output differs"
            );
        }
    }
}

#[test]
fn what_cannot_be_compared_is_said_not_guessed() {
    let (captures, cluster) = committed();
    let dir = scratch("not-compared");
    // A capture of no node, and a second capture of k3s-w1.
    let again = dir.join("k3s-w1-again.pcap");
    std::fs::copy(&captures[1], &again).unwrap();
    let mut with_extra = captures.clone();
    with_extra.push(testdata("zeek_wikipedia.pcap"));
    with_extra.push(again.display().to_string());
    let cluster_section = cluster_json(&with_extra, &cluster);
    let lines = strings(&cluster_section["not_compared"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("zeek_wikipedia.pcap: belongs to no node")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("k3s-w1 has 2 captures") && l.contains("k3s-w1-again.pcap")),
        "{lines:#?}"
    );
    let last = cluster_section["causes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["id"], "not_compared");
    // The comparison itself is unchanged.
    assert_eq!(
        paths(&cluster_section),
        paths(&cluster_json(&captures, &cluster))
    );

    // Captures an hour apart (another day's k3s-w2: no connection in
    // common): no clock for it, no overlap, and nothing said to have
    // died.
    let (later, _) = generated("later", &["--skew", "3600s", "--seed", "7"]);
    let apart = vec![captures[0].clone(), captures[1].clone(), later[2].clone()];
    let section = cluster_json(&apart, &cluster);
    let lines = strings(&section["not_compared"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("k3s-w2) do not overlap in time")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("could not be compared")),
        "{lines:#?}"
    );
    let found = paths(&section);
    assert!(found.iter().all(|p| p.0 == "inconclusive"), "{found:#?}");
    assert!(!found.is_empty());

    // Only two nodes captured: k3s-w2 is said to have no capture.
    let two = analyze(&captures[..2], &cluster, &["--format", "json"]);
    let section = json(&two)["cluster"].clone();
    let found = paths(&section);
    assert!(
        found.iter().any(|p| p.0 == "not_captured"
            && p.5.starts_with("k3s-w2 (the server's node) has no capture")),
        "{found:#?}"
    );
    assert!(strings(&section["not_compared"]).contains(&"k3s-w2: no capture of this node"));
}

#[test]
fn node_name_equals_file_attributes_a_capture() {
    let (captures, cluster) = committed();
    let wiki = testdata("zeek_wikipedia.pcap");
    let out = analyze(
        &[captures[0].clone(), wiki.clone()],
        &cluster,
        &["--node", "k3s-w2=zeek_wikipedia.pcap", "--format", "json"],
    );
    let doc = json(&out);
    let node = &doc["captures"][1]["node"];
    assert_eq!(node["name"], "k3s-w2");
    assert_eq!(node["how"], "--node NAME=FILE");
    let rows = doc["cluster"]["nodes"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["name"] == "k3s-w2" && r["files"][0] == wiki.as_str()));
    let bad = analyze(&captures, &cluster, &["--node", "=x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected NAME or NAME=FILE"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn ndjson_has_the_cluster_lines_and_fail_on_reads_the_cluster_verdict() {
    let (captures, cluster) = committed();
    let out = analyze(&captures, &cluster, &["--format", "ndjson"]);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| lines.iter().filter(|l| l["type"] == kind).count();
    assert_eq!(of("cluster"), 1);
    assert_eq!(of("node"), 3);
    assert_eq!(of("clock"), 3);
    assert!(of("cluster_cause") >= 3);
    assert!(of("path") >= 2);
    // k3s-cp's capture is clean alone; named as k3s-cp's, the comparison
    // cannot judge the nodes without captures: inconclusive, exit 3.
    let cp_alone = analyze(&captures[..1], &cluster, &[]);
    assert_eq!(cp_alone.status.code(), Some(0), "{}", stdout(&cp_alone));
    let named = analyze(&captures[..1], &cluster, &["--node", "k3s-cp=k3s-cp.pcap"]);
    assert_eq!(named.status.code(), Some(3), "{}", stdout(&named));
    assert!(stdout(&named).contains("CLUSTER   INCONCLUSIVE"));
    let never = analyze(&captures, &cluster, &["--fail-on", "never"]);
    assert_eq!(never.status.code(), Some(0));
}

#[test]
fn scan_compares_the_nodes_of_its_files_and_a_merge_of_shards_agrees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/incident-nodes");
    let dir = dir.display().to_string();
    let cluster = format!("{dir}/cluster");
    let whole = kpcap(&["scan", &dir, "--cluster", &cluster, "--format", "json"]);
    assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
    let whole = json(&whole);
    let section = &whole["cluster"];
    let nodes: Vec<&str> = section["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["masquerading"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["yes", "no", "no"]);
    assert_eq!(
        section["causes"][0]["id"],
        "masquerading_differs_between_nodes"
    );
    assert_eq!(
        strings(&section["causes"][0]["nodes"]["working"]),
        ["k3s-cp"]
    );
    assert_eq!(section["paths_followed"], false);
    let scratch = scratch("scan-shards");
    let mut shards = Vec::new();
    for index in ["1/2", "2/2"] {
        let file = scratch.join(format!("shard-{}.json", &index[..1]));
        let out = kpcap(&[
            "scan",
            &dir,
            "--cluster",
            &cluster,
            "--shard",
            index,
            "--format",
            "json",
            "--output",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.code().unwrap() < 2, "{}", stderr(&out));
        shards.push(file.display().to_string());
    }
    let mut args = vec!["merge", "--format", "json", "--cluster", &cluster];
    args.extend(shards.iter().map(String::as_str));
    let merged = json(&kpcap(&args));
    assert_eq!(merged["cluster"], whole["cluster"]);
    assert_eq!(merged["files"], whole["files"]);
}
