//! A verdict is a claim: CLEAN only when the detectors ran on the traffic
//! and found nothing. Each case here once printed CLEAN (exit 0) about
//! traffic kpcap had not judged, evidence it had thrown away, or a
//! capture it had misread.

mod common;

use common::{json, kpcap, scratch, stderr, stdout, testdata};
use kpcap::synth::frame::{dns_message, ethernet, ip_packet, L4};
use std::net::IpAddr;
use std::path::Path;

const SYN: u8 = 0x02;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// An Ethernet frame with a TCP SYN.
fn syn(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: sport,
        dst_port: dport,
        flags: SYN,
        seq: 7,
        ack: 0,
        payload: &[],
    };
    ethernet(&ip_packet(addr(src), addr(dst), &l4), &[])
}

/// An Ethernet frame with a DNS query for `name`.
fn dns_query(src: &str, sport: u16, dst: &str, id: u16, name: &str) -> Vec<u8> {
    let payload = dns_message(id, false, 0, name, 1, None);
    let l4 = L4::Udp {
        src_port: sport,
        dst_port: 53,
        payload: &payload,
    };
    ethernet(&ip_packet(addr(src), addr(dst), &l4), &[])
}

fn u16le(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

fn u32le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A little-endian pcapng written by hand, so its interface options can
/// be what no writer would produce.
#[derive(Default)]
struct Pcapng {
    bytes: Vec<u8>,
}

impl Pcapng {
    fn new() -> Pcapng {
        let mut p = Pcapng::default();
        let mut body = Vec::new();
        body.extend(u32le(0x1A2B_3C4D));
        body.extend(u16le(1));
        body.extend(u16le(0));
        body.extend((-1i64).to_le_bytes());
        p.block(0x0A0D_0D0A, &body);
        p
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        self.bytes.extend(u32le(kind));
        self.bytes.extend(u32le(len));
        self.bytes.extend(&body);
        self.bytes.extend(u32le(len));
    }

    /// An interface of `link_type` with options (code, value).
    fn interface(&mut self, link_type: u16, options: &[(u16, Vec<u8>)]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(u16le(link_type));
        body.extend(u16le(0));
        body.extend(u32le(0));
        for (code, value) in options {
            body.extend(u16le(*code));
            body.extend(u16le(value.len() as u16));
            body.extend(value);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
        }
        body.extend([0, 0, 0, 0]);
        self.block(1, &body);
        self
    }

    /// An enhanced packet block; `ts` in the interface's units.
    fn packet(&mut self, interface: u32, ts: u64, frame: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(u32le(interface));
        body.extend(u32le((ts >> 32) as u32));
        body.extend(u32le(ts as u32));
        body.extend(u32le(frame.len() as u32));
        body.extend(u32le(frame.len() as u32));
        body.extend(frame);
        self.block(6, &body);
        self
    }
}

fn name(text: &str) -> (u16, Vec<u8>) {
    (2, text.as_bytes().to_vec())
}

/// Pod SYNs to an external address, never answered, over 20 s.
fn pod_egress(p: &mut Pcapng, interface: u32, start_us: u64) {
    for i in 0..6u64 {
        let frame = syn("10.42.1.5", 40000 + i as u16, "1.1.1.1", 443);
        p.packet(interface, start_us + i * 4_000_000, &frame);
    }
}

fn status(doc: &serde_json::Value) -> &str {
    doc["captures"][0]["verdict"]["status"].as_str().unwrap()
}

fn causes(doc: &serde_json::Value) -> Vec<String> {
    let causes = doc["captures"][0]["verdict"]["causes"].as_array().unwrap();
    causes
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_capture_without_packets_is_inconclusive() {
    let dir = scratch("no-packets");
    let pcap = std::fs::read(testdata("tcpdump_tcp-handshake-nano.pcap")).unwrap();
    let empty = write(&dir, "empty.pcap", &pcap[..24]);
    let out = kpcap(&["analyze", &empty]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("VERDICT   INCONCLUSIVE"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("no IP packet was judged"));
    let out = kpcap(&["analyze", "--format", "json", &empty]);
    let doc = json(&out);
    assert_eq!(status(&doc), "inconclusive");
    let coverage = &doc["captures"][0]["coverage"];
    assert_eq!(coverage["ip_packets"], 0);
    assert!(coverage["not_judged"][0]
        .as_str()
        .unwrap()
        .starts_with("no IP packet was judged"));
    let out = kpcap(&["analyze", "--fail-on", "never", &empty]);
    assert_eq!(out.status.code(), Some(0), "--fail-on never exits 0");
    let ndjson = kpcap(&["analyze", "--format", "ndjson", &empty]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&ndjson).lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "inconclusive");
    assert_eq!(first["coverage"]["ip_packets"], 0);
}

#[test]
fn a_capture_whose_every_record_was_rejected_is_inconclusive() {
    let dir = scratch("all-rejected");
    let pcap = std::fs::read(testdata("tcpdump_tcp-handshake-nano.pcap")).unwrap();
    let mut bytes = pcap[..24].to_vec();
    for i in 0..50u32 {
        // incl_len 100 > orig_len 60 on every record header.
        for field in [1_700_000_000 + i, 0, 100, 60] {
            bytes.extend(u32le(field));
        }
        bytes.extend([0u8; 100]);
    }
    let path = write(&dir, "rejected.pcap", &bytes);
    let out = kpcap(&["analyze", "--format", "json", &path]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    if out.status.code() == Some(3) {
        let doc = json(&out);
        assert_eq!(status(&doc), "inconclusive");
        assert_eq!(doc["captures"][0]["coverage"]["ip_packets"], 0);
    } else {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    }
}

#[test]
fn an_interface_filter_that_matches_nothing_is_an_error_naming_the_interfaces() {
    let out = kpcap(&[
        "analyze",
        "--interface",
        "eth0",
        &testdata("incident-before.pcapng"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--interface eth0") && err.contains("ens19"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_cidr_flag_replaces_only_its_class_of_the_preset() {
    let before = testdata("incident-before.pcapng");
    let out = kpcap(&[
        "analyze",
        "--format",
        "json",
        "--node-cidr",
        "10.50.10.0/24",
        &before,
    ]);
    let doc = json(&out);
    assert_eq!(status(&doc), "failure");
    assert_eq!(
        causes(&doc)[0],
        "pod_egress_not_masqueraded",
        "{:?}",
        causes(&doc)
    );
    assert_eq!(doc["topology"]["pod"][0], "10.42.0.0/16");
    assert_eq!(doc["topology"]["node"][0], "10.50.10.0/24");

    // Without a pod CIDR the checks that need one are off, and say so.
    let after = testdata("incident-after.pcapng");
    let flags = ["--preset", "none", "--node-cidr", "10.50.10.0/24"];
    let out = kpcap(&[&["analyze", "--format", "json"][..], &flags, &[&after]].concat());
    assert_eq!(out.status.code(), Some(3));
    let doc = json(&out);
    assert_eq!(status(&doc), "inconclusive");
    let detectors = &doc["captures"][0]["coverage"]["detectors"];
    let off: Vec<&str> = detectors
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ran"] == false)
        .map(|d| d["detector"].as_str().unwrap())
        .collect();
    assert_eq!(off, ["unmasqueraded_egress", "service_vips"]);
    assert_eq!(causes(&doc).last().unwrap(), "not_judged");
    let table = kpcap(&[&["analyze"][..], &flags, &[&before]].concat());
    let text = stdout(&table);
    assert!(
        text.contains("checks    off: unmasqueraded_egress (no pod CIDR)"),
        "{text}"
    );
    assert!(
        text.contains("Part of the question was not judged"),
        "{text}"
    );
}

#[test]
fn senseless_values_are_one_line_errors() {
    let capture = testdata("incident-after.pcapng");
    for flags in [
        &["--dns-timeout", "0"][..],
        &["--syn-grace", "0s"],
        &["--dns-port", "0"],
        &["--threads", "100000"],
    ] {
        let out = kpcap(&[&["analyze"][..], flags, &[&capture]].concat());
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(flags[0]), "{flags:?}: {err}");
    }
    let out = kpcap(&[
        "analyze",
        "--format",
        "json",
        "--pod-cidr",
        "10.42.1.5/16",
        &capture,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("host bits"), "{}", stderr(&out));
    assert_eq!(json(&out)["topology"]["pod"][0], "10.42.0.0/16");
}

#[test]
fn a_rejected_interface_keeps_its_number() {
    let dir = scratch("rejected-idb");
    let mut p = Pcapng::new();
    // Interface 0 declares a resolution no clock has; interface 1 is fine.
    p.interface(1, &[name("bad0"), (9, vec![0xff])]);
    p.interface(1, &[name("ens19")]);
    p.packet(0, 1_000, &syn("10.50.10.21", 1, "10.50.10.22", 22));
    pod_egress(&mut p, 1, 1_700_000_000_000_000);
    let frame = dns_query("10.50.10.21", 5353, "10.43.0.10", 1, "end.example");
    p.packet(1, 1_700_000_030_000_000, &frame);
    let path = write(&dir, "rejected-idb.pcapng", &p.bytes);
    let out = kpcap(&["analyze", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(status(&doc), "failure");
    assert_eq!(causes(&doc)[0], "pod_egress_not_masqueraded");
    let coverage = &doc["captures"][0]["coverage"];
    assert_eq!(coverage["unread_interfaces"][0]["id"], 0);
    assert_eq!(coverage["unread_interfaces"][0]["packets"], 1);
    assert_eq!(coverage["undecodable"]["link_unsupported"], 1);
    let err = stderr(&out);
    assert!(err.contains("if_tsresol 0xff"), "{err}");
    // The rejected interface's clock is not trusted for the time span.
    assert_eq!(doc["captures"][0]["duration_seconds"], 30.0);
}

#[test]
fn a_negative_timestamp_offset_moves_time_back() {
    let dir = scratch("tsoffset");
    let mut p = Pcapng::new();
    let offset = (-3600i64).to_le_bytes().to_vec();
    p.interface(1, &[name("ens19"), (14, offset)]);
    pod_egress(&mut p, 0, 1_700_003_600_000_000);
    let path = write(&dir, "tsoffset.pcapng", &p.bytes);
    let out = kpcap(&["analyze", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    let capture = &doc["captures"][0];
    assert_eq!(capture["first"], "2023-11-14T22:13:20.000000000Z");
    assert_eq!(capture["duration_seconds"], 20.0);
    assert_eq!(status(&doc), "failure");
}

#[test]
fn unsupported_link_types_in_pcapng() {
    let dir = scratch("ppp-ng");
    let mut only_ppp = Pcapng::new();
    only_ppp.interface(9, &[name("ppp0")]);
    only_ppp.packet(0, 1_000, &[0xff, 0x03, 0x00, 0x21, 0x45]);
    let path = write(&dir, "ppp.pcapng", &only_ppp.bytes);
    let out = kpcap(&["analyze", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("byte 28") && err.contains("PPP"), "{err}");

    let mut mixed = Pcapng::new();
    mixed.interface(9, &[name("ppp0")]);
    mixed.interface(1, &[name("ens19")]);
    mixed.packet(0, 1_000, &[0xff, 0x03, 0x00, 0x21, 0x45]);
    pod_egress(&mut mixed, 1, 2_000);
    let path = write(&dir, "mixed.pcapng", &mixed.bytes);
    let out = kpcap(&["analyze", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 packets on interface 0 (ppp0) not decoded"));
    let doc = json(&out);
    assert_eq!(
        doc["captures"][0]["coverage"]["unread_interfaces"][0]["packets"],
        1
    );
}

#[test]
fn a_capture_too_short_to_judge_its_syns_is_inconclusive() {
    let dir = scratch("short");
    let mut p = Pcapng::new();
    p.interface(1, &[name("ens19")]);
    p.packet(0, 1_000_000, &syn("10.50.10.21", 40000, "1.1.1.1", 443));
    p.packet(0, 1_500_000, &syn("10.50.10.21", 40000, "1.1.1.1", 443));
    let path = write(&dir, "short.pcapng", &p.bytes);
    let out = kpcap(&["analyze", &path]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("younger than --syn-grace"));
}

fn scan_json(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = kpcap(&[&["scan", "--quiet", "--format", "json"][..], args].concat());
    (out.status.code(), json(&out))
}

#[test]
fn a_scan_that_analyzed_nothing_is_inconclusive() {
    let dir = scratch("scan-nothing");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, doc) = scan_json(&[empty.to_str().unwrap()]);
    assert_eq!(code, Some(4), "bit 3: nothing was analyzed");
    assert_eq!(doc["aggregate"]["analyzed"], 0);
    let junk = dir.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "no captures here").unwrap();
    let out = kpcap(&["scan", "--quiet", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stdout(&out).contains("VERDICT ACROSS FILES   INCONCLUSIVE"),
        "{}",
        stdout(&out)
    );
    let out = kpcap(&[
        "scan",
        "--quiet",
        "--fail-on",
        "never",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_scan_loses_no_path() {
    let dir = scratch("scan-loses-nothing");
    let archive = dir.join("archive");
    std::fs::create_dir_all(archive.join("sub")).unwrap();
    std::fs::copy(
        testdata("incident-after.pcapng"),
        archive.join("sub/after.pcapng"),
    )
    .unwrap();
    let looped = dir.join("loop");
    let _ = std::fs::remove_file(&looped);
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let fifo = dir.join("given.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let archive_text = archive.to_str().unwrap();
    let mut args = vec![
        archive_text,
        looped.to_str().unwrap(),
        "/nonexistent/x.pcap",
    ];
    if made.is_ok_and(|s| s.success()) {
        args.push(fifo.to_str().unwrap());
        let found = archive.join("sub/found.fifo");
        let _ = std::fs::remove_file(&found);
        std::process::Command::new("mkfifo")
            .arg(&found)
            .status()
            .unwrap();
    } else {
        eprintln!("a_scan_loses_no_path: mkfifo unavailable: FIFOs not tried");
    }
    // Would hang on a FIFO; a scan never opens one.
    let (code, doc) = scan_json(&args);
    assert_eq!(code, Some(2), "{doc}");
    let lines = doc["files"].as_array().unwrap();
    let status_of = |suffix: &str| {
        let line = lines
            .iter()
            .find(|l| l["file"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no line for {suffix}: {doc}"));
        line["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status_of("sub/after.pcapng"), "analyzed");
    assert_eq!(status_of("/loop"), "error");
    assert_eq!(status_of("/nonexistent/x.pcap"), "error");
    if args.len() == 4 {
        assert_eq!(status_of("given.fifo"), "error");
        assert_eq!(status_of("found.fifo"), "not_a_capture");
    }
    // The NDJSON stream has a line for each of them too.
    let out = kpcap(&[&["scan", "--quiet", "--format", "ndjson"][..], &args].concat());
    let file_lines = stdout(&out)
        .lines()
        .filter(|l| l.contains(r#""type":"file""#))
        .count();
    assert_eq!(file_lines, lines.len());
}

#[test]
fn an_unreadable_subdirectory_does_not_stop_the_scan() {
    let dir = scratch("scan-locked");
    let locked = dir.join("lost+found");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::copy(testdata("incident-after.pcapng"), dir.join("after.pcapng")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        eprintln!("an_unreadable_subdirectory_does_not_stop_the_scan: skipped: running as root, every directory is readable");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let (code, doc) = scan_json(&[dir.to_str().unwrap()]);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, Some(2));
    assert_eq!(doc["aggregate"]["analyzed"], 1);
    assert_eq!(doc["aggregate"]["errors"], 1);
}

#[test]
fn file_names_are_kept_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("scan-names");
    let archive = dir.join("names");
    let _ = std::fs::remove_dir_all(&archive);
    std::fs::create_dir_all(&archive).unwrap();
    let before = std::fs::read(testdata("incident-before.pcapng")).unwrap();
    let names: [&[u8]; 4] = [
        b"bad\xff.pcap",
        b"bad\xfe.pcap",
        b"bad\\xff.pcap",
        b"new\nline.pcap",
    ];
    for name in names {
        let path = archive.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(path, &before).unwrap();
    }
    let (code, doc) = scan_json(&[archive.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    let distinct: std::collections::BTreeSet<&&str> = files.iter().collect();
    assert_eq!(distinct.len(), 4, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(r"bad\xff.pcap")));
    assert!(files.iter().any(|f| f.ends_with(r"bad\\xff.pcap")));
    let cause = &doc["aggregate"]["causes"][0];
    assert_eq!(
        cause["files"].as_array().unwrap().len(),
        4,
        "in 4 of 4 files"
    );
    // A table row per file: the newline is escaped, not printed.
    let out = kpcap(&["scan", "--quiet", archive.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains(r"new\nline.pcap"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("line.pcap")), "{text}");
}

#[test]
fn analyze_ndjson_has_a_line_for_a_capture_it_could_not_read() {
    let out = kpcap(&[
        "analyze",
        "--format",
        "ndjson",
        "/nonexistent/a.pcap",
        &testdata("incident-after.pcapng"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "error");
    assert_eq!(first["file"], "/nonexistent/a.pcap");
    assert!(first["error"].as_str().unwrap().contains("No such file"));
}

#[test]
fn hints_name_a_nic_or_say_how_to_name_it() {
    let unnamed = kpcap(&["analyze", &testdata("incident-before-any.pcap")]);
    let text = stdout(&unnamed);
    assert!(!text.contains("devices=ifindex"), "{text}");
    assert!(text.contains("devices=<egress NIC>"), "{text}");
    assert!(text.contains("--ifname INDEX=NAME"), "{text}");
    let sll = stdout(&kpcap(&[
        "analyze",
        &testdata("incident-before-any-sll.pcap"),
    ]));
    assert!(
        !sll.contains("devices=in ") && !sll.contains("devices=out "),
        "{sll}"
    );
    // A pod's lxc device is never the device to configure.
    let lxc = kpcap(&[
        "analyze",
        "--ifname",
        "11=lxc1234,12=lxc5678,13=lxc9abc",
        &testdata("incident-before-any.pcap"),
    ]);
    assert!(!stdout(&lxc).contains("devices=lxc"), "{}", stdout(&lxc));
    let named = kpcap(&["analyze", &testdata("incident-before.pcapng")]);
    assert!(stdout(&named).contains("devices=ens19"));
}

#[test]
fn a_fix_is_not_confirmed_by_an_after_capture_that_judged_nothing() {
    let dir = scratch("diff-unjudged");
    let pcap = std::fs::read(testdata("tcpdump_tcp-handshake-nano.pcap")).unwrap();
    let empty = write(&dir, "after-empty.pcap", &pcap[..24]);
    let out = kpcap(&["diff", &testdata("incident-before.pcapng"), &empty]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("VERDICT   NOT CONFIRMED"),
        "{}",
        stdout(&out)
    );
    let out = kpcap(&[
        "diff",
        &testdata("incident-before.pcapng"),
        &testdata("incident-after.pcapng"),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn merge_keeps_an_inconclusive_file_inconclusive() {
    let dir = scratch("merge-inconclusive");
    let archive = dir.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let pcap = std::fs::read(testdata("tcpdump_tcp-handshake-nano.pcap")).unwrap();
    std::fs::write(archive.join("a-empty.pcap"), &pcap[..24]).unwrap();
    std::fs::copy(
        testdata("incident-after.pcapng"),
        archive.join("b-after.pcapng"),
    )
    .unwrap();
    let mut shards = Vec::new();
    for shard in ["1/2", "2/2"] {
        let out = kpcap(&[
            "scan",
            "--quiet",
            "--format",
            "json",
            "--fail-on",
            "never",
            "--shard",
            shard,
            archive.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let path = dir.join(format!("shard-{}.json", shards.len()));
        std::fs::write(&path, &out.stdout).unwrap();
        shards.push(path.display().to_string());
    }
    let args: Vec<&str> = ["merge", "--format", "json"]
        .into_iter()
        .chain(shards.iter().map(String::as_str))
        .collect();
    let out = kpcap(&args);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["aggregate"]["inconclusive"], 1);
    assert_eq!(doc["aggregate"]["analyzed"], 2);
    let table = kpcap(&[&["merge"][..], &args[3..]].concat());
    assert!(stdout(&table).contains("VERDICT ACROSS FILES   INCONCLUSIVE"));
}

#[test]
fn an_interface_description_that_does_not_parse_keeps_its_number() {
    let dir = scratch("unparsed-idb");
    let mut p = Pcapng::new();
    // An option whose length runs past the block: pcap-file rejects it.
    let mut body = Vec::new();
    body.extend(u16le(1));
    body.extend(u16le(0));
    body.extend(u32le(0));
    body.extend(u16le(2));
    body.extend(u16le(200));
    body.extend(b"eth0");
    p.block(1, &body);
    p.interface(1, &[name("ens19")]);
    pod_egress(&mut p, 1, 1_700_000_000_000_000);
    let path = write(&dir, "unparsed-idb.pcapng", &p.bytes);
    let out = kpcap(&["analyze", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(causes(&doc)[0], "pod_egress_not_masqueraded");
    assert_eq!(doc["captures"][0]["coverage"]["ip_packets"], 6);
}
