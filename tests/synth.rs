//! The generator is deterministic, and what it writes reads back cleanly.

mod common;
use common::*;

/// testdata/synth-mixed.pcapng is this command's output; if the generator
/// changes on purpose, regenerate it with the same command.
#[test]
fn committed_synthetic_capture_is_reproducible() {
    let path = scratch("synth").join("mixed.pcapng");
    let path = path.display().to_string();
    let out = kpcap(&[
        "synth",
        "--size",
        "256K",
        "--container",
        "pcapng",
        "--seed",
        "7",
        "-o",
        &path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = std::fs::read(&path).unwrap();
    let committed = std::fs::read(testdata("synth-mixed.pcapng")).unwrap();
    assert!(
        fresh == committed,
        "generator output changed; regenerate testdata/synth-mixed.pcapng"
    );
}

#[test]
fn generated_captures_decode_without_problems_in_both_containers() {
    let dir = scratch("synth-both");
    for (container, seed) in [("pcap", "11"), ("pcapng", "11")] {
        let path = dir.join(format!("m.{container}")).display().to_string();
        let out = kpcap(&[
            "synth",
            "--size",
            "1M",
            "--container",
            container,
            "--seed",
            seed,
            "-o",
            &path,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(
            (1 << 20..(1 << 20) + 70_000).contains(&size),
            "{container}: {size} bytes"
        );
        let out = kpcap(&["flows", "--format", "json", &path]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc = json(&out);
        let c = &doc["captures"][0];
        assert_eq!(c["decode_problems"], serde_json::json!({}), "{container}");
        assert_eq!(
            c["packets"], c["ip_packets"],
            "{container}: every frame is IP"
        );
        assert!(
            c["tunneled_packets"].as_u64().unwrap() > 100,
            "{container}: VXLAN share"
        );
        assert!(c["interfaces"][0]["link_type"] == 1);
    }
}

/// With `--conversations`, a bigger capture repeats the same flows: the
/// flow count follows the conversations, not the size (mixed: memory per
/// flow; small: the cost per packet apart from the cost per flow).
#[test]
fn conversations_bound_the_flows_whatever_the_size() {
    let dir = scratch("synth-conversations");
    let flows = |scenario: &str, size: &str, conversations: Option<&str>| {
        let path = dir
            .join(format!("{scenario}-{size}.pcap"))
            .display()
            .to_string();
        let mut args = vec!["synth", "--scenario", scenario, "--size", size, "-o", &path];
        if let Some(n) = conversations {
            args.extend(["--conversations", n]);
        }
        let out = kpcap(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = kpcap(&["flows", "--format", "json", &path]);
        json(&out)["captures"][0]["flow_count"].as_u64().unwrap()
    };
    for scenario in ["mixed", "small"] {
        let (one, two) = (
            flows(scenario, "1M", Some("50")),
            flows(scenario, "2M", Some("50")),
        );
        assert_eq!(one, two, "{scenario}: the same flows, repeated");
        assert!(
            one <= 4 * 50,
            "{scenario}: {one} flows from 50 conversations"
        );
        assert!(
            flows(scenario, "1M", None) > 2 * one,
            "{scenario}: without the flag, new flows throughout"
        );
    }
}

/// A busy node captured with `-i any`: SLL2 frames, a local pod's packets
/// seen on its lxc device and again on the NIC (counted once), SNATed
/// flows paired with their pre-NAT copies.
#[test]
fn busy_node_captured_with_any_sees_pod_packets_twice() {
    let dir = scratch("synth-busy-any");
    let path = |name: &str| dir.join(name).display().to_string();
    synth_busy_any(&path("any.pcap"), "2M");
    let out = kpcap(&["flows", "--format", "json", &path("any.pcap")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let c = &doc["captures"][0];
    assert_eq!(c["interfaces"][0]["link_type"], 276);
    assert_eq!(c["decode_problems"], serde_json::json!({}));
    let (packets, copies) = (
        c["packets"].as_u64().unwrap(),
        c["duplicates"].as_u64().unwrap(),
    );
    // About a third of the conversations are a local pod's (overlay, DNS
    // to CoreDNS, SNATed HTTPS, unmasqueraded egress).
    assert!(
        copies * 8 > packets && copies * 3 < packets,
        "{copies} copies of {packets} packets"
    );

    let out = kpcap(&[
        "analyze",
        "--format",
        "json",
        "--fail-on",
        "never",
        &path("any.pcap"),
    ]);
    let report = stdout(&out);
    assert!(
        report.contains("pre- and post-NAT copies paired"),
        "SNAT seen: {report:.2000}"
    );

    let out = kpcap(&[
        "synth",
        "--scenario",
        "busy",
        "--view",
        "two-nics",
        "--size",
        "1M",
        "-o",
        &path("x.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--view ens19, any-sll or any-sll2"),
        "{}",
        stderr(&out)
    );
}
