//! Tunnels and interfaces (issue 4): overlays judged on their inner
//! headers and attributed to their tunnel, `-i any` captures (SLL2, SLL)
//! de-duplicated across interfaces, a two-NIC pcapng where pod egress
//! leaks on one NIC only, and `--interface` / `--ifname`.

mod common;
use common::*;
use kpcap::synth::{CaptureWriter, Container, Link, IFNAMES};
use kpcap::time::Timestamp;
use serde_json::Value;

const CIDRS: [&str; 6] = [
    "--preset",
    "k3s",
    "--node-cidr",
    "10.50.10.0/24",
    "--node-cidr",
    "192.168.178.0/24",
];

fn analyze(file: &str, extra: &[&str]) -> Value {
    let path = testdata(file);
    let mut args = vec!["analyze", "--format", "json", "--fail-on", "never", &path];
    args.extend_from_slice(&CIDRS);
    args.extend_from_slice(extra);
    let out = kpcap(&args);
    assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
    json(&out)["captures"][0].clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// `--ifname` naming the incident node's devices in its SLL2 capture.
fn ifnames() -> String {
    format!("--ifname={IFNAMES}")
}

/// The counts that must not change when the same traffic is captured on
/// more interfaces: per egress group, the SYN and DNS totals.
fn finding_totals(report: &Value) -> Value {
    let f = &report["findings"];
    let egress: Vec<Value> = f["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            serde_json::json!([
                g["pod"],
                g["destination"],
                g["port"],
                g["flows"],
                g["packets"],
                g["replies"]
            ])
        })
        .collect();
    let syn_groups: Vec<Value> = f["tcp_syns"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            serde_json::json!([
                g["source"],
                g["destination"],
                g["outcome"],
                g["flows"],
                g["syn_packets"]
            ])
        })
        .collect();
    serde_json::json!({
        "egress": egress,
        "syn_groups": syn_groups,
        "unanswered": f["tcp_syns"]["counts"]["unanswered"],
        "dns_timed_out": f["dns"]["counts"]["timed_out"],
        "dns_groups": f["dns"]["groups"].as_array().unwrap().len(),
        "causes": report["verdict"]["causes"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
    })
}

#[test]
fn overlays_are_judged_inside_and_findings_name_their_tunnel() {
    for (file, kind, vni) in [
        ("overlay-vxlan.pcap", "vxlan", 2),
        ("overlay-geneve.pcap", "geneve", 2),
        ("overlay-ipip.pcap", "ipip", 0),
    ] {
        let report = analyze(file, &[]);
        let f = &report["findings"];
        // Pod-to-pod inside the tunnel: no SNAT finding, and the
        // node-to-node underlay is never one either.
        assert_eq!(
            f["unmasqueraded_egress"]["groups"],
            serde_json::json!([]),
            "{file}"
        );
        assert_eq!(f["service_vips"]["groups"], serde_json::json!([]), "{file}");
        assert_eq!(f["dns"]["counts"]["answered"], 10, "{file}");
        assert_eq!(f["dns"]["counts"]["timed_out"], 0, "{file}");
        // The one inner SYN nobody answers, attributed to its tunnel.
        let groups = f["tcp_syns"]["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{file}: {groups:?}");
        let group = &groups[0];
        assert_eq!(
            (group["source"].as_str(), group["destination"].as_str()),
            (Some("10.42.1.40"), Some("10.42.2.50")),
            "{file}"
        );
        assert_eq!(
            (group["outcome"].as_str(), group["syn_packets"].as_u64()),
            (Some("unanswered"), Some(4))
        );
        let tunnel = &group["items"][0]["tunnel"];
        assert_eq!(tunnel["kind"], kind, "{file}");
        assert_eq!(tunnel["vni"], vni, "{file}");
        assert_eq!(
            (tunnel["outer_src"].as_str(), tunnel["outer_dst"].as_str()),
            (Some("10.50.10.21"), Some("10.50.10.22")),
            "{file}"
        );
        assert_eq!(
            f["tcp_syns"]["counts"]["answered"], 15,
            "{file}: 7 pod sessions, 8 node ones"
        );
        assert!(report["tunneled_packets"].as_u64().unwrap() > 100, "{file}");
    }
}

#[test]
fn any_capture_counts_each_packet_once_and_shows_both_interfaces() {
    let nic = analyze("incident-before.pcapng", &[]);
    let any = analyze("incident-before-any.pcap", &[&ifnames()]);
    // Every pod packet is there twice (lxc, ens19), the node's once: the
    // findings are exactly those of the ens19-only capture.
    assert_eq!(finding_totals(&any), finding_totals(&nic));
    let seen_on = any["seen_on"].as_array().unwrap();
    let pod_side: u64 = seen_on
        .iter()
        .filter(|i| i["kind"] == "pod_side")
        .map(|i| i["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(pod_side, 153);
    assert_eq!(
        any["duplicates"], pod_side,
        "each lxc copy has its ens19 twin"
    );
    assert_eq!(
        any["packets"],
        nic["packets"].as_u64().unwrap() + 153 + 95,
        "plus ens18's own traffic"
    );

    // "left lxc3be5a77c0f12 as 10.42.1.12, left ens19 as 10.42.1.12".
    let groups = any["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    let group = groups.iter().find(|g| g["pod"] == "10.42.1.12").unwrap();
    assert_eq!(strings(&group["left_on"]), ["ens19"]);
    let crossings = group["items"][0]["interfaces"].as_array().unwrap();
    let path: Vec<(&str, &str, u64)> = crossings
        .iter()
        .map(|c| {
            (
                c["interface"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["packets_sent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        path,
        [("lxc3be5a77c0f12", "pod_side", 4), ("ens19", "nic", 4)]
    );
    assert_eq!(group["items"][0]["packets_sent"], 4, "4 SYNs, not 8");

    // Which NIC carried pod sources: ens19 only.
    let rows = any["findings"]["unmasqueraded_egress"]["interfaces"]
        .as_array()
        .unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["interface"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("ens19")["carries_pod_sources"], true);
    assert_eq!(
        strings(&row("ens19")["pod_sources"]),
        ["10.42.1.5", "10.42.1.12", "10.42.1.17"]
    );
    assert_eq!(row("ens18")["carries_pod_sources"], false);
    assert!(row("ens18")["packets_by_source"]["node"].as_u64().unwrap() > 0);
    assert_eq!(
        row("lxc3be5a77c0f12")["carries_pod_sources"],
        false,
        "pod sources belong there"
    );
    let summary = any["verdict"]["causes"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("egress on ens19 carried pod source addresses"),
        "{summary}"
    );
}

#[test]
fn any_capture_after_the_fix_shows_where_snat_happened() {
    let report = analyze("incident-after-any.pcap", &[&ifnames()]);
    assert_eq!(report["verdict"]["status"], "clean");
    // Each pod connection is there before NAT (lxc) and after (ens19): it
    // counts once, as in the ens19-only capture (plus ens18's 8 sessions).
    let nic = analyze("incident-after.pcapng", &[]);
    let (syns, nic_syns) = (
        &report["findings"]["tcp_syns"]["counts"],
        &nic["findings"]["tcp_syns"]["counts"],
    );
    assert_eq!(syns["post_nat_copies"], 15);
    assert_eq!(syns["answered"], nic_syns["answered"].as_u64().unwrap() + 8);
    let (dns, nic_dns) = (
        &report["findings"]["dns"]["counts"],
        &nic["findings"]["dns"]["counts"],
    );
    assert_eq!(dns["post_nat_copies"], 8);
    assert_eq!(
        (&dns["query_keys"], &dns["answered"]),
        (&nic_dns["query_keys"], &nic_dns["answered"])
    );
    let pods = report["findings"]["unmasqueraded_egress"]["contrast"]["masqueraded_pods"]
        .as_array()
        .unwrap();
    type PodPath = (String, Vec<String>, Vec<String>, Vec<String>);
    let summary: Vec<PodPath> = pods
        .iter()
        .map(|p| {
            (
                p["pod"].as_str().unwrap().to_string(),
                strings(&p["seen_on"]),
                strings(&p["translated_on"]),
                strings(&p["translated_to"]),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            (
                "10.42.1.5".into(),
                s(&["lxc8a3f2c1d9e01"]),
                s(&["ens19"]),
                s(&["10.50.10.21"])
            ),
            (
                "10.42.1.12".into(),
                s(&["lxc3be5a77c0f12"]),
                s(&["ens19"]),
                s(&["10.50.10.21"])
            ),
            (
                "10.42.1.17".into(),
                s(&["lxc90d2e6b4a1c3"]),
                s(&["ens19"]),
                s(&["10.50.10.21"])
            ),
        ]
    );
    let path = testdata("incident-after-any.pcap");
    let mut args = vec!["analyze", &path];
    args.extend_from_slice(&CIDRS);
    let names = ifnames();
    args.push(&names);
    let text = stdout(&kpcap(&args));
    assert!(text.contains("MASQUERADED POD EGRESS"), "{text}");
    assert!(text.contains("10.50.10.21"), "{text}");
}

/// `tcpdump -i any` without names: the pods' lxc devices are told by
/// their traffic (each received packets from its pod's address only), so
/// the pods' packets arriving there do not count as leaving the node, and
/// the verdict names the one device they left on.
#[test]
fn unnamed_any_capture_tells_pod_devices_by_their_traffic() {
    let named = analyze("incident-before-any.pcap", &[&ifnames()]);
    let unnamed = analyze("incident-before-any.pcap", &[]);
    assert_eq!(finding_totals(&unnamed), finding_totals(&named));
    let kinds: Vec<(String, String, bool)> = (unnamed["seen_on"].as_array().unwrap().iter())
        .map(|i| {
            (
                i["interface"].as_str().unwrap().to_string(),
                i["kind"].as_str().unwrap().to_string(),
                i["kind_by_traffic"] == true,
            )
        })
        .collect();
    let row =
        |name: &str, kind: &str, by_traffic: bool| (name.to_string(), kind.to_string(), by_traffic);
    assert_eq!(
        kinds,
        [
            row("ifindex 3", "unknown", false),
            row("ifindex 12", "pod_side", true),
            row("ifindex 2", "unknown", false),
            row("ifindex 13", "pod_side", true),
            row("ifindex 11", "pod_side", true),
        ]
    );
    let groups = unnamed["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    assert!(
        groups
            .iter()
            .all(|g| strings(&g["left_on"]) == ["ifindex 3"]),
        "{groups:?}"
    );
    let summary = unnamed["verdict"]["causes"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("egress on ifindex 3 carried pod source addresses"),
        "{summary}"
    );
    // A name given wins over the traffic's word.
    assert!(named["seen_on"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("kind_by_traffic").is_none()));
}

#[test]
fn sll_v1_any_capture_uses_direction_and_address() {
    let nic = analyze("incident-before.pcapng", &[]);
    let sll = analyze("incident-before-any-sll.pcap", &[]);
    assert_eq!(finding_totals(&sll), finding_totals(&nic));
    assert_eq!(sll["duplicates"], 153);
    // Without names the devices are told apart by direction and address:
    // outgoing frames carry ens19's own MAC.
    let labels: Vec<&str> = sll["seen_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["interface"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"out 52:54:00:19:00:21"), "{labels:?}");
    // Unnamed, frames received from one pod's MAC, all from that pod's
    // address, are its lxc device's: pod side by traffic, not the wire.
    let groups = sll["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    assert_eq!(strings(&groups[0]["left_on"]), ["out 52:54:00:19:00:21"]);
    let pod_macs: Vec<&str> = (sll["seen_on"].as_array().unwrap().iter())
        .filter(|i| i["kind_by_traffic"] == true)
        .map(|i| i["interface"].as_str().unwrap())
        .collect();
    assert_eq!(
        pod_macs,
        [
            "in 0a:58:0a:2a:01:0c",
            "in 0a:58:0a:2a:01:11",
            "in 0a:58:0a:2a:01:05"
        ]
    );
    // Naming ens19's MAC and the pods' MACs (frames received from them
    // arrive on their lxc device) gives the SLL2 picture.
    let names = "--ifname=52:54:00:19:00:21=ens19,0a:58:0a:2a:01:05=lxc8a3f2c1d9e01,\
                 0a:58:0a:2a:01:0c=lxc3be5a77c0f12,0a:58:0a:2a:01:11=lxc90d2e6b4a1c3";
    let named = analyze("incident-before-any-sll.pcap", &[names]);
    let groups = named["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    assert!(
        groups.iter().all(|g| strings(&g["left_on"]) == ["ens19"]),
        "{groups:?}"
    );
}

#[test]
fn two_nic_capture_says_pod_egress_leaks_on_ens19_only() {
    let report = analyze("incident-before-two-nics.pcapng", &[]);
    let rows = report["findings"]["unmasqueraded_egress"]["interfaces"]
        .as_array()
        .unwrap();
    let summary: Vec<(&str, bool, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["interface"].as_str().unwrap(),
                r["carries_pod_sources"].as_bool().unwrap(),
                r["packets_by_source"]["node"].as_u64().unwrap_or(0),
                r["packets_by_source"]["pod"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(summary, [("ens18", false, 48, 0), ("ens19", true, 87, 76)]);
    let groups = report["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap();
    assert_eq!(groups.len(), 4);
    assert!(groups.iter().all(|g| strings(&g["left_on"]) == ["ens19"]));
    assert_eq!(
        report["duplicates"], 0,
        "two NICs never see the same packet here"
    );
    let cilium = &report["verdict"]["causes"][0]["remediation"][0]["hint"];
    assert!(
        cilium.as_str().unwrap().contains("devices=ens19"),
        "{cilium}"
    );
}

#[test]
fn interface_filter_keeps_one_interface() {
    let path = testdata("incident-before-two-nics.pcapng");
    for (name, packets) in [("ens18", 95), ("ens19", 322)] {
        let out = kpcap(&["flows", "--format", "json", "--interface", name, &path]);
        assert!(out.status.success(), "{}", stderr(&out));
        let capture = &json(&out)["captures"][0];
        assert_eq!(capture["packets"], packets, "{name}");
        let seen_on = capture["seen_on"].as_array().unwrap();
        assert_eq!(seen_on.len(), 1);
        assert_eq!(seen_on[0]["interface"], name);
    }
    // On an -i any capture, by --ifname name.
    let path = testdata("incident-before-any.pcap");
    let names = ifnames();
    let out = kpcap(&[
        "flows",
        "--format",
        "json",
        "--interface",
        "lxc3be5a77c0f12",
        &names,
        &path,
    ]);
    assert_eq!(json(&out)["captures"][0]["packets"], 97);
    let out = kpcap(&["flows", "--ifname", "x=ens19", &path]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad --ifname is a usage error"
    );
}

/// Frames written on named interfaces of a pcapng, for dedup edge cases.
fn capture_on(interfaces: &[&str], frames: &[(u32, u64, Vec<u8>)]) -> String {
    let links: Vec<(&str, Link)> = interfaces.iter().map(|n| (*n, Link::Ethernet)).collect();
    let mut writer = CaptureWriter::with_interfaces(Vec::new(), Container::Pcapng, &links).unwrap();
    for (interface, at_us, frame) in frames {
        let ts = Timestamp(kpcap::synth::START.0 + at_us * 1000);
        writer.write_on(*interface, ts, frame).unwrap();
    }
    let path = scratch("dedup").join(format!("{}.pcapng", frames.len() * 7 + interfaces.len()));
    std::fs::write(&path, writer.into_inner()).unwrap();
    path.display().to_string()
}

fn syn_frame() -> Vec<u8> {
    use kpcap::synth::frame::{ethernet, ip_packet, L4};
    let ip = ip_packet(
        "10.42.1.12".parse().unwrap(),
        "1.1.1.1".parse().unwrap(),
        &L4::Tcp {
            src_port: 40000,
            dst_port: 443,
            flags: 0x02,
            seq: 9,
            ack: 0,
            payload: &[],
        },
    );
    ethernet(&ip, &[])
}

fn syn_count(path: &str) -> (u64, u64) {
    let out = kpcap(&["flows", "--by", "5tuple", "--format", "json", path]);
    let capture = &json(&out)["captures"][0];
    (
        capture["flows"][0]["syn_packets"].as_u64().unwrap(),
        capture["duplicates"].as_u64().unwrap(),
    )
}

#[test]
fn dedup_never_merges_two_real_packets() {
    let syn = syn_frame();
    // A retransmission with identical bytes on one interface: two SYNs.
    let one_interface = capture_on(
        &["lxc1", "ens19"],
        &[(0, 0, syn.clone()), (0, 1_000, syn.clone())],
    );
    assert_eq!(syn_count(&one_interface), (2, 0));
    // Both copies of both sends on two interfaces: still two SYNs, two
    // copies, whether the copies interleave or follow.
    let interleaved = capture_on(
        &["lxc1", "ens19"],
        &[
            (0, 0, syn.clone()),
            (1, 40, syn.clone()),
            (0, 1_000, syn.clone()),
            (1, 1_040, syn.clone()),
        ],
    );
    assert_eq!(syn_count(&interleaved), (2, 2));
    let grouped = capture_on(
        &["lxc1", "ens19"],
        &[
            (0, 0, syn.clone()),
            (0, 5, syn.clone()),
            (1, 40, syn.clone()),
            (1, 45, syn.clone()),
        ],
    );
    assert_eq!(syn_count(&grouped), (2, 2));
    // A copy far apart in time is a packet of its own.
    let late = capture_on(
        &["lxc1", "ens19"],
        &[(0, 0, syn.clone()), (1, 500_000, syn.clone())],
    );
    assert_eq!(syn_count(&late), (2, 0));
}

/// `tcpdump -i any` on a kube-proxy node, no names: a pod's packets to a
/// ClusterIP arrive on its veth before DNAT, then leave the NIC to the
/// backend pod. The ClusterIP never left the node: with its veth told by
/// its traffic, that is an info, not "ClusterIP on the wire".
#[test]
fn an_unnamed_pod_device_sees_clusterips_before_dnat() {
    use kpcap::synth::frame::{ip_packet, sll2, udp_packet, L4};
    let (pod, vip, backend) = ("10.42.1.5", "10.43.0.10", "10.42.2.7");
    let ip = |s: &str| s.parse().unwrap();
    let mut writer =
        CaptureWriter::with_interfaces(Vec::new(), Container::Pcap, &[("any", Link::Sll2)])
            .unwrap();
    let mut at = 0;
    let mut write = |frame: Vec<u8>| {
        at += 1000;
        let ts = Timestamp(kpcap::synth::START.0 + at * 1000);
        writer.write(ts, &frame).unwrap();
    };
    let (veth, nic) = ([2, 0, 0, 0, 1, 5], [2, 0, 0, 0, 0, 1]);
    for port in 40000..40004u16 {
        let query = udp_packet((ip(pod), port), (ip(vip), 53), b"query");
        let dnat = udp_packet((ip(pod), port), (ip(backend), 53), b"query");
        let answer = udp_packet((ip(backend), 53), (ip(pod), port), b"answer");
        let unnat = udp_packet((ip(vip), 53), (ip(pod), port), b"answer");
        write(sll2(&query, 11, false, veth));
        write(sll2(&dnat, 3, true, nic));
        write(sll2(&answer, 3, false, [2, 0, 0, 0, 0, 2]));
        write(sll2(&unnat, 11, true, veth));
    }
    // And a ping from the pod, so that its device is not only DNS.
    let echo = ip_packet(
        ip(pod),
        ip("1.1.1.1"),
        &L4::Echo {
            request: true,
            id: 7,
            seq: 1,
        },
    );
    write(sll2(&echo, 11, false, veth));
    let path = scratch("clusterip-any").join("kube-proxy.pcap");
    std::fs::write(&path, writer.into_inner()).unwrap();
    let path = path.display().to_string();
    let out = kpcap(&["analyze", "--format", "json", "--fail-on", "never", &path]);
    let report = &json(&out)["captures"][0];
    let groups = report["findings"]["service_vips"]["groups"]
        .as_array()
        .unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (&groups[0]["service"], &groups[0]["severity"]),
        (&serde_json::json!(vip), &serde_json::json!("info"))
    );
    assert_eq!(strings(&groups[0]["interfaces"]), ["ifindex 11"]);
    let status = report["verdict"]["status"].as_str().unwrap();
    assert_ne!(status, "failure", "{}", report["verdict"]);
}
