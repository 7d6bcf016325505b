//! Bad input never panics: a one-line error naming the file and the byte
//! offset with exit code 2, or, for a truncated tail, a warning and a
//! report of everything before the damage.

mod common;
use common::*;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// Runs `flows` on `path`; expects exit 2 and one stderr line that names
/// the file and contains `needle`.
fn assert_refused(path: &str, needle: &str) {
    let out = kpcap(&["flows", path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{path}: {err}");
    assert_eq!(err.lines().count(), 1, "{path}: one line expected: {err}");
    assert!(
        err.contains(path),
        "{path}: message should name the file: {err}"
    );
    assert!(
        err.contains(needle),
        "{path}: expected '{needle}' in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        stdout(&out).is_empty(),
        "nothing on stdout for a refused file"
    );
}

fn pcap_header(link_type: u32) -> Vec<u8> {
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&link_type.to_le_bytes());
    h
}

fn record_header(len: u32) -> Vec<u8> {
    [1u32, 0, len, len]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

#[test]
fn missing_file_directory_and_empty_file() {
    let dir = scratch("bad-basic");
    let missing = dir.join("nope.pcap").display().to_string();
    assert_refused(&missing, "cannot read");
    assert_refused(&dir.display().to_string(), "is a directory");
    assert_refused(&write(&dir, "empty.pcap", b""), "empty file");
}

#[test]
fn not_a_capture() {
    let dir = scratch("bad-magic");
    assert_refused(
        &write(&dir, "notes.pcap", b"GET / HTTP/1.1\r\n"),
        "byte 0: not a pcap or pcapng capture",
    );
}

#[test]
fn unknown_link_type() {
    let dir = scratch("bad-link");
    let mut bytes = pcap_header(9);
    bytes.extend(record_header(4));
    bytes.extend([0xff, 0x03, 0, 0x21]);
    assert_refused(
        &write(&dir, "ppp.pcap", &bytes),
        "byte 20: unsupported link type 9 (PPP)",
    );
    assert_refused(
        &testdata("tcpdump_truncated-aack.pcap"),
        "byte 20: unsupported link type 9",
    );
}

#[test]
fn truncated_global_headers() {
    let dir = scratch("bad-header");
    assert_refused(
        &write(&dir, "short.pcap", &pcap_header(1)[..10]),
        "byte 0: pcap global header cut short: 24 bytes needed, 10 available",
    );
    assert_refused(
        &testdata("libpcap_pr1704_pcap-truncated-hdr-23.pcap"),
        "byte 0: pcap global header cut short",
    );
    assert_refused(
        &write(&dir, "short.pcapng", &[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0]),
        "byte 0: pcapng section header cut short",
    );
}

#[test]
fn corrupt_headers_from_the_corpus() {
    assert_refused(
        &testdata("libpcap_pcap-invalid-version-1.pcap"),
        "byte 4: unsupported pcap version 1",
    );
    assert_refused(
        &testdata("libpcap_shb-option-too-long.pcapng"),
        "byte 0: corrupt pcapng block",
    );
}

/// A corrupt record header is skipped with what follows it up to the next
/// plausible record (here: the end of the file), and said so.
#[test]
fn record_length_over_256_kib_is_skipped() {
    let dir = scratch("bad-length");
    let mut bytes = pcap_header(1);
    bytes.extend(record_header(60));
    bytes.extend([0u8; 60]);
    bytes.extend(record_header(300_000));
    bytes.extend([0u8; 100]);
    let path = write(&dir, "huge.pcap", &bytes);
    let out = kpcap(&["flows", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "kpcap: warning: {path}: bytes 100..216 skipped (116 bytes): corrupt record header \
             (record length 300000 exceeds the 262144-byte limit); reading resumed at the next \
             plausible record"
        )
    );
    assert_eq!(json(&out)["captures"][0]["packets"], 1);
}

/// Cuts a real capture inside its last record: the warning names the
/// offset, and every complete record is still analyzed.
#[test]
fn truncated_last_record_is_analyzed_up_to_the_damage() {
    let dir = scratch("bad-tail");
    let original = std::fs::read(testdata("zeek_pop3.pcap")).unwrap();
    let cut = write(&dir, "pop3-cut.pcap", &original[..original.len() - 7]);
    let out = kpcap(&["flows", "--format", "json", &cut]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with(&format!("kpcap: warning: {cut}: byte ")),
        "{err}"
    );
    assert!(err.contains("last record cut short"), "{err}");
    let doc = json(&out);
    assert_eq!(
        doc["captures"][0]["packets"], 124,
        "all 125 but the cut one"
    );
    assert!(doc["captures"][0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("cut short"));

    // Cut inside a record header, and a pcapng cut inside its last block.
    let header_cut = write(&dir, "pop3-hdr.pcap", &original[..24 + 5]);
    let out = kpcap(&["flows", &header_cut]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("byte 24: last record header cut short (5 of 16 bytes)"),
        "{}",
        stderr(&out)
    );
    let ng = std::fs::read(testdata("zeek_pcapng-multi-interface.pcapng")).unwrap();
    let ng_cut = write(&dir, "multi-cut.pcapng", &ng[..ng.len() - 10]);
    let out = kpcap(&["flows", "--format", "json", &ng_cut]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("last block cut short"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["captures"][0]["packets"], 5);
}

#[test]
fn one_bad_file_does_not_stop_a_batch() {
    let dir = scratch("bad-batch");
    let junk = write(&dir, "junk.pcap", b"junk junk junk junk junk");
    let good = testdata("zeek_pop3.pcap");
    let out = kpcap(&["flows", "--format", "json", &junk, &good]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an input error still sets exit 2"
    );
    let doc = json(&out);
    assert!(doc["captures"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not a pcap"));
    assert_eq!(doc["captures"][1]["packets"], 125);
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = kpcap(&[
        "flows",
        "--pod-cidr",
        "10.42.0.0/33",
        &testdata("zeek_pop3.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--pod-cidr: '10.42.0.0/33' is not a CIDR"),
        "{}",
        stderr(&out)
    );
    let out = kpcap(&["flows", "--threads", "0", &testdata("zeek_pop3.pcap")]);
    assert_eq!(out.status.code(), Some(2));
}
