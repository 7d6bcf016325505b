//! `--cluster`: the incident's cluster dump (testdata/incident-cluster,
//! written by `synth`) replaces the CIDR and `--ifname` flags, and names
//! pods, services and nodes in tables, the verdict and the JSON.

mod common;

use common::*;
use serde_json::Value;

const CLUSTER: &str = "incident-cluster";

fn capture(out: &std::process::Output) -> Value {
    json(out)["captures"][0].clone()
}

#[test]
fn the_committed_dump_is_what_synth_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster");
    let made = kpcap(&[
        "synth",
        "--scenario",
        "incident-cluster",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    for file in ["cluster.json", "ip-k3s-w1.json"] {
        let written = std::fs::read(out.join(file)).unwrap();
        let committed = std::fs::read(testdata(&format!("{CLUSTER}/{file}"))).unwrap();
        assert!(
            written == committed,
            "{file} differs from what synth writes"
        );
    }
}

#[test]
fn the_cluster_gives_the_flags_findings_with_names() {
    let incident = testdata("incident-before.pcapng");
    let cluster = testdata(CLUSTER);
    let flags = kpcap(&[
        "analyze",
        &incident,
        "--preset",
        "k3s",
        "--node-cidr",
        "10.50.10.0/24",
        "--format",
        "json",
    ]);
    let dumped = kpcap(&[
        "analyze",
        &incident,
        "--cluster",
        &cluster,
        "--format",
        "json",
    ]);
    assert_eq!(dumped.status.code(), Some(1), "{}", stderr(&dumped));
    assert_eq!(
        stderr(&dumped),
        "",
        "the shipped dump reads without warnings"
    );
    let (a, b) = (capture(&flags), capture(&dumped));
    assert_eq!(a["findings"], b["findings"]);
    let causes = |c: &Value| -> Vec<(Value, Value)> {
        (c["verdict"]["causes"].as_array().unwrap().iter())
            .map(|c| (c["id"].clone(), c["severity"].clone()))
            .collect()
    };
    assert_eq!(causes(&a), causes(&b));
    assert_eq!(a["verdict"]["status"], b["verdict"]["status"]);
    // JSON: one names map, items keep their shape.
    assert!(a.get("names").is_none());
    let names = &b["names"];
    assert_eq!(
        names["10.42.1.17"]["name"],
        "source-controller-6f8b9c7d4-lm5zt"
    );
    assert_eq!(names["10.42.1.17"]["namespace"], "flux-system");
    assert_eq!(names["10.42.1.17"]["node"], "k3s-w1");
    assert_eq!(
        names["10.42.1.17"]["workload"],
        "Deployment flux-system/source-controller"
    );
    assert_eq!(names["10.42.1.5"]["name"], "coredns-6799fbcd5-9kq2p");
    assert_eq!(names["10.50.10.21"]["kind"], "node");
    assert!(names.get("1.1.1.1").is_none());
    // The header says where each class came from.
    let sources = json(&dumped)["topology"]["source"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sources.contains("pod from 2 nodes' podCIDRs"), "{sources}");
    assert!(
        sources.contains("service from ServiceCIDR kubernetes"),
        "{sources}"
    );
    assert!(
        sources.contains("node from 2 nodes' addresses and 1 host's ip output"),
        "{sources}"
    );

    // Tables and the verdict name them too.
    let table = kpcap(&["analyze", &incident, "--cluster", &cluster]);
    let text = stdout(&table);
    assert!(
        text.contains("10.42.1.17 flux-system/source-controller-6f8b9c7d4-lm5zt"),
        "{text}"
    );
    assert!(text.contains("pod (name)"), "{text}");
    let verdict = text
        .split("UNMASQUERADED POD EGRESS")
        .next()
        .unwrap()
        .replace("\n     ", " ");
    assert!(
        verdict.contains("- Pods: kube-system/coredns-6799fbcd5-9kq2p (10.42.1.5 on k3s-w1),"),
        "{verdict}"
    );
}

#[test]
fn the_remediation_quotes_cilium_config() {
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        &testdata(CLUSTER),
        "--format",
        "json",
    ]);
    let cause = &capture(&out)["verdict"]["causes"][0];
    assert_eq!(cause["id"], "pod_egress_not_masqueraded");
    let first = cause["remediation"][0]["hint"].as_str().unwrap();
    assert!(
        first.starts_with(
            "cilium-config: enable-ipv4-masquerade=true, enable-bpf-masquerade=false, devices unset"
        ),
        "{first}"
    );
    assert!(
        first.contains("k3s-w1 has 2 NICs with addresses (ens18, ens19)"),
        "{first}"
    );
    assert!(
        first.contains("pod sources left on ens19: set bpf.masquerade=true and devices=ens19"),
        "{first}"
    );
    // The cluster runs Cilium: no Calico or flannel hints.
    let hints = cause["remediation"].as_array().unwrap();
    assert!(hints.iter().all(|h| h["cni"] == "cilium"), "{hints:?}");
}

#[test]
fn any_captures_need_no_ifname_with_the_nodes_ip_output() {
    for file in ["incident-before-any.pcap", "incident-before-any-sll.pcap"] {
        let out = kpcap(&[
            "analyze",
            &testdata(file),
            "--cluster",
            &testdata(CLUSTER),
            "--format",
            "json",
        ]);
        let capture = capture(&out);
        let left_on = &capture["findings"]["unmasqueraded_egress"]["groups"][0]["left_on"];
        assert!(
            left_on.as_array().unwrap().iter().any(|l| l == "ens19"),
            "{file}: {left_on}"
        );
        assert_eq!(capture["verdict"]["status"], "failure", "{file}");
    }
}

#[test]
fn a_dump_without_nodes_takes_cidrs_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let dump: Value = serde_json::from_slice(
        &std::fs::read(testdata(&format!("{CLUSTER}/cluster.json"))).unwrap(),
    )
    .unwrap();
    let pods: Vec<Value> = (dump["items"].as_array().unwrap().iter())
        .filter(|i| i["kind"] == "Pod")
        .cloned()
        .collect();
    let file = dir.path().join("pods.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": pods}))
            .unwrap(),
    )
    .unwrap();
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        file.to_str().unwrap(),
        "--pod-cidr",
        "10.42.0.0/16",
        "--service-cidr",
        "10.43.0.0/16",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(
        doc["topology"]["source"],
        "pod from flags; service from flags"
    );
    assert_eq!(
        doc["captures"][0]["names"]["10.42.1.12"]["name"],
        "netcheck-7d9c5b8f6-x2x8q"
    );
}

#[test]
fn bad_cluster_files_warn_and_the_analysis_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.bin"), [0xffu8, 0, 1, 2, 0x80]).unwrap();
    std::fs::write(dir.path().join("deep.json"), "[".repeat(200_000)).unwrap();
    std::fs::write(dir.path().join("other.json"), r#"{"not": "kubernetes"}"#).unwrap();
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        dir.path().to_str().unwrap(),
        "--node-cidr",
        "10.50.10.0/24",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for file in ["garbage.bin", "deep.json", "other.json"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("kpcap: warning: ") && l.contains(file)),
            "{file}: {err}"
        );
    }
    let missing = kpcap(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        "/nonexistent/dump",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
    let node = kpcap(&[
        "analyze",
        &testdata("incident-before-any.pcap"),
        "--cluster",
        &testdata(CLUSTER),
        "--node",
        "k3s-w9",
    ]);
    assert_eq!(node.status.code(), Some(2));
    assert!(
        stderr(&node).contains("--node: k3s-w9: no `ip -j addr` output"),
        "{}",
        stderr(&node)
    );
}

/// The wrong diagnosis of a node CIDR that covers a node's whole network:
/// two pods leave ens18 unmasqueraded, to the router's DNS and a LAN host,
/// which answer only the node. With the cluster (exact node addresses) and
/// with the flags (the contrast rule), it is pod egress on ens18.
#[test]
fn pods_leaving_the_second_nic_unmasqueraded_are_found_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lan-leak.pcapng");
    let path = file.to_str().unwrap();
    let made = kpcap(&[
        "synth",
        "--scenario",
        "incident-lan-leak",
        "--view",
        "two-nics",
        "-o",
        path,
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let cluster = testdata(CLUSTER);
    let with_cluster = ["analyze", path, "--cluster", &cluster, "--format", "json"];
    let with_flags = [
        "analyze",
        path,
        "--preset",
        "k3s",
        "--node-cidr",
        "10.50.10.0/24",
        "--node-cidr",
        "192.168.178.0/24",
        "--format",
        "json",
    ];
    for args in [&with_cluster[..], &with_flags[..]] {
        let out = kpcap(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let capture = capture(&out);
        let groups = capture["findings"]["unmasqueraded_egress"]["groups"]
            .as_array()
            .unwrap()
            .clone();
        let found: Vec<(String, String, String)> = (groups.iter())
            .map(|g| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&g["pod"]), s(&g["destination"]), s(&g["severity"]))
            })
            .collect();
        assert_eq!(
            found,
            [
                ("10.42.1.5".into(), "192.168.178.1".into(), "failure".into()),
                (
                    "10.42.1.12".into(),
                    "192.168.178.10".into(),
                    "failure".into()
                ),
            ],
            "{args:?}"
        );
        assert!(
            groups
                .iter()
                .all(|g| g["left_on"] == serde_json::json!(["ens18"])),
            "{args:?}"
        );
        let cause = &capture["verdict"]["causes"][0];
        assert_eq!(cause["id"], "pod_egress_not_masqueraded", "{args:?}");
        assert!(cause["summary"]
            .as_str()
            .unwrap()
            .contains("egress on ens18 carried pod source addresses"));
        if args.contains(&"--cluster") {
            let details = cause["details"].to_string();
            assert!(
                details.contains("192.168.178.1 (k3s-w1's ens18 network 192.168.178.0/24)"),
                "{details}"
            );
        }
        // The node's own lookups there are answered: no firewall story.
        assert_eq!(
            capture["verdict"]["causes"].as_array().unwrap().len(),
            1,
            "{args:?}"
        );
    }
    // The router answering a pod is no leak: the rule needs a pod never answered.
    let after = kpcap(&[
        "analyze",
        &testdata("incident-after.pcapng"),
        "--preset",
        "k3s",
        "--node-cidr",
        "10.50.10.0/24",
    ]);
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
}

/// 100 MB of objects with the wrong type in every field: read item by
/// item, each a located warning (the first 200 shown, then one line), and
/// the analysis goes on.
#[test]
fn a_hundred_megabytes_of_wrong_objects_is_warned_about_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.json");
    let mut text = String::from(r#"{"apiVersion": "v1", "kind": "List", "items": ["#);
    let bad = [
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5, "namespace": []}, "spec": "x", "status": {"podIPs": "10.42.1.5"}}"#,
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "ownerReferences": {"kind": 1}}, "spec": {"hostNetwork": "no", "nodeName": [1]}, "status": {"phase": 3, "podIPs": [{"ip": "::g"}, 7, null]}}"#,
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": 4}, "spec": {"podCIDRs": ["10.42.0.0/33", 8]}, "status": {"addresses": [{"type": "InternalIP", "address": "x"}, 9]}}"#,
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"clusterIPs": [1, "10.43.0.999"], "ports": [{"port": 70000}, {"port": "http"}]}}"#,
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config"}, "data": {"enable-ipv4-masquerade": false, "cluster-pool-ipv4-cidr": 17}}"#,
        r#"[1, 2, {"kind": null}]"#,
    ];
    let mut i = 0;
    while text.len() < 100 << 20 {
        if i > 0 {
            text.push(',');
        }
        text.push_str(bad[i % bad.len()]);
        i += 1;
    }
    text.push_str("]}");
    std::fs::write(&file, &text).unwrap();
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before.pcapng"),
        "--cluster",
        file.to_str().unwrap(),
        "--preset",
        "k3s",
        "--node-cidr",
        "10.50.10.0/24",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.lines().count() <= 210, "{} lines", err.lines().count());
    assert!(
        err.contains("more warnings about the cluster files not shown"),
        "{err}"
    );
    assert!(
        err.contains("hostile.json: items[1] (Pod n/p): status.podIPs[0].ip: not an address"),
        "{err}"
    );
    assert!(stdout(&out).contains("VERDICT   FAILURE"));
}

/// Two nodes' `ip -j addr` and no `--node`: the capture's node is the one
/// whose addresses its traffic carries, named in the header, and its
/// devices name the `-i any` capture's.
#[test]
fn the_capture_node_is_found_from_its_traffic() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["cluster.json", "ip-k3s-w1.json"] {
        std::fs::copy(
            testdata(&format!("{CLUSTER}/{file}")),
            dir.path().join(file),
        )
        .unwrap();
    }
    let cp = serde_json::json!([
        {"ifindex": 3, "ifname": "enp1s0", "address": "52:54:00:aa:00:11",
         "addr_info": [{"family": "inet", "local": "10.50.10.11", "prefixlen": 24}]},
    ]);
    std::fs::write(dir.path().join("ip-k3s-cp.json"), cp.to_string()).unwrap();
    let cluster = dir.path().to_str().unwrap();
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before-any.pcap"),
        "--cluster",
        cluster,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = capture(&out);
    assert_eq!(found["node"]["name"], "k3s-w1");
    let left_on = &found["findings"]["unmasqueraded_egress"]["groups"][0]["left_on"];
    assert_eq!(left_on, &serde_json::json!(["ens19"]));
    let table = stdout(&kpcap(&[
        "analyze",
        &testdata("incident-before-any.pcap"),
        "--cluster",
        cluster,
    ]));
    assert!(
        table.contains("node      k3s-w1 (its addresses are in"),
        "{table}"
    );
    // --node says otherwise: that node's devices name them.
    let out = kpcap(&[
        "analyze",
        &testdata("incident-before-any.pcap"),
        "--cluster",
        cluster,
        "--node",
        "k3s-cp",
        "--format",
        "json",
    ]);
    let given = capture(&out);
    assert_eq!(given["node"]["how"], "--node");
    // (Its ip output lacks the pods' lxc devices, which stay unnamed.)
    let left_on = &given["findings"]["unmasqueraded_egress"]["groups"][0]["left_on"];
    assert!(
        left_on.as_array().unwrap().iter().any(|l| l == "enp1s0"),
        "{left_on}"
    );
}
