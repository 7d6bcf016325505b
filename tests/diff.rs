//! `kpcap diff`: the incident's before and after captures.

mod common;
use common::*;

#[test]
fn diff_reports_the_fix() {
    let before = testdata("incident-before-any.pcap");
    let after = testdata("incident-after-any.pcap");
    let out = kpcap(&["diff", &before, &after]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for line in [
        "pod egress from 10.42.1.12 to 1.1.1.1 tcp/443: not masqueraded before (5 flows), masqueraded as 10.50.10.21 after",
        "unanswered SYNs 10.42.1.12 -> 1.1.1.1 (tcp/443): 5 flows (failure) -> 0 flows",
        "DNS timeouts 10.42.1.5 -> 1.1.1.1 (api.github.com,ghcr.io,github.com): 8 queries (failure) -> 0 queries",
        "PERSISTS (0)",
        "NEW (0)",
        "RESOLVED",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    let out = kpcap(&["diff", &before, &after, "--format", "json"]);
    let doc = json(&out);
    let counts = doc["diff"]["counts"].as_array().unwrap();
    let count = |name: &str| {
        let c = counts.iter().find(|c| c["name"] == name).unwrap();
        (c["before"].as_u64().unwrap(), c["after"].as_u64().unwrap())
    };
    assert_eq!(count("unanswered SYNs"), (15, 0));
    assert_eq!(count("DNS timeouts"), (8, 0));
    assert_eq!(doc["diff"]["fixed"].as_array().unwrap().len(), 7);
    assert_eq!(doc["diff"]["resolved"], true);
}

#[test]
fn diff_exits_one_when_failures_persist_or_appear() {
    let before = testdata("incident-before.pcapng");
    let after = testdata("incident-after.pcapng");
    // The fix reverted: everything is new.
    let out = kpcap(&["diff", &after, &before]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("NEW (7)"), "{}", stdout(&out));
    // Nothing changed: the failures persist.
    let out = kpcap(&["diff", &before, &before]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("PERSISTS (7)"), "{}", stdout(&out));
    // ens19 alone shows no pre-NAT copy: the fix is still seen, without
    // the translated address.
    let out = kpcap(&["diff", &before, &after]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("not seen leaving unmasqueraded after"));
}

#[test]
fn diff_of_an_unreadable_capture_is_an_input_error() {
    let out = kpcap(&[
        "diff",
        &testdata("incident-before.pcapng"),
        "/nonexistent.pcap",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent.pcap"),
        "{}",
        stderr(&out)
    );
}
