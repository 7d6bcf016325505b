//! Reading a capture as a stream (stdin, gzip, zstd) or as rotated parts
//! (`analyze --merge`) gives the report of the plain, whole file: segments
//! and files join where records left off, de-duplication windows included.

mod common;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// `kpcap analyze --format json ARGS` with `input` on stdin.
fn analyze_stdin(input: &[u8], args: &[&str]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(["analyze", "-", "--format", "json", "--fail-on", "never"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

fn analyze_files(files: &[&str], args: &[&str]) -> Value {
    let mut all = vec!["analyze", "--format", "json", "--fail-on", "never"];
    all.extend_from_slice(files);
    all.extend_from_slice(args);
    let out = kpcap(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

/// A capture's report without what names the file it came from.
fn content(doc: &Value) -> Value {
    let mut capture = doc["captures"][0].clone();
    let object = capture.as_object_mut().unwrap();
    for field in ["file", "parts", "file_bytes", "gzip", "compression"] {
        object.remove(field);
    }
    capture
}

const CAPTURES: [&str; 5] = [
    "incident-before.pcapng",
    // Copies on two interfaces: the de-duplication window crosses
    // segment and file boundaries.
    "incident-before-any.pcap",
    "incident-after-any.pcap",
    "incident-before-two-nics.pcapng",
    "synth-mixed.pcapng",
];

#[test]
fn streams_read_like_the_mapped_file() {
    for name in CAPTURES {
        let path = testdata(name);
        let bytes = std::fs::read(&path).unwrap();
        let mapped = content(&analyze_files(&[&path], &[]));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let inputs = [
            ("plain", bytes.clone()),
            ("gzip", gz.finish().unwrap()),
            ("zstd", zstd::encode_all(&bytes[..], 3).unwrap()),
        ];
        for (how, input) in inputs {
            // 4 KiB segments: dozens per capture.
            for threads in ["1", "2"] {
                let streamed = analyze_stdin(&input, &["--chunk-bytes", "1", "--threads", threads]);
                assert!(
                    content(&streamed) == mapped,
                    "{name} as a {how} stream, {threads} threads"
                );
                let expected = (how != "plain").then_some(how);
                assert_eq!(streamed["captures"][0]["compression"].as_str(), expected);
            }
        }
    }
}

/// Cuts a classic pcap into `parts` files at record boundaries, the first
/// cut right after a TCP SYN (so a handshake spans two files), each with
/// the global header, as `tcpdump -C` writes them.
fn rotate(bytes: &[u8], parts: usize) -> Vec<Vec<u8>> {
    let header = &bytes[..24];
    let big_endian = header[0] == 0xa1;
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // Where the IP header starts: Ethernet, Linux cooked v1 or v2.
    let (ip_at, ethertype_at) = match u32_at(20) {
        1 => (14, 12),
        113 => (16, 14),
        276 => (20, 0),
        other => panic!("link type {other}"),
    };
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32_at(at + 8) as usize;
        records.push(&bytes[at..at + 16 + len]);
        at += 16 + len;
    }
    let is_syn = |record: &[u8]| {
        let frame = &record[16..];
        frame.len() > ip_at + 20 + 14
            && frame[ethertype_at..ethertype_at + 2] == [0x08, 0x00]
            && frame[ip_at + 9] == 6
            && frame[ip_at + 20 + 13] == 0x02
    };
    let per = records.len() / parts;
    let first_cut = (per..records.len())
        .find(|&i| is_syn(records[i]))
        .map(|i| i + 1)
        .unwrap_or(per);
    let mut cuts = vec![0, first_cut];
    cuts.extend((2..parts).map(|k| (first_cut + (k - 1) * per).min(records.len())));
    cuts.push(records.len());
    cuts.windows(2)
        .map(|w| {
            let mut file = header.to_vec();
            records[w[0]..w[1]]
                .iter()
                .for_each(|r| file.extend_from_slice(r));
            file
        })
        .collect()
}

#[test]
fn rotated_parts_merge_into_the_whole_capture() {
    for name in [
        "incident-before-any.pcap",
        "incident-after-any.pcap",
        "incident-before-any-sll.pcap",
    ] {
        let path = testdata(name);
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let parts: Vec<String> = rotate(&bytes, 3)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                // capture.pcap, capture.pcap1, capture.pcap2: given below in
                // an order that is not the capture's.
                let suffix = if i == 0 { String::new() } else { i.to_string() };
                let file = dir.path().join(format!("capture.pcap{suffix}"));
                std::fs::write(&file, part).unwrap();
                file.to_str().unwrap().to_string()
            })
            .collect();
        let shuffled = [&*parts[2], &*parts[0], &*parts[1]];
        let whole = content(&analyze_files(&[&path], &[]));
        for chunk_bytes in ["1", "4194304"] {
            let merged = analyze_files(&shuffled, &["--merge", "--chunk-bytes", chunk_bytes]);
            assert!(
                content(&merged) == whole,
                "{name}: --merge differs from the whole file"
            );
            assert_eq!(merged["captures"].as_array().unwrap().len(), 1);
            let listed: Vec<&str> = merged["captures"][0]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            assert_eq!(listed, parts.iter().map(String::as_str).collect::<Vec<_>>());
        }
        // Without --merge, each part is its own capture.
        let separate = analyze_files(&shuffled, &[]);
        assert_eq!(separate["captures"].as_array().unwrap().len(), 3);
    }
}

/// `zstd --long=30` from a pipe declares a 1 GiB window, which the
/// decoder refuses by default ("Frame requires too much memory"): a valid
/// file must be read.
#[test]
fn a_zstd_long_window_capture_is_analyzed() {
    let dir = scratch("zstd-long");
    let plain = std::fs::read(testdata("incident-before.pcapng")).unwrap();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.window_log(30).unwrap();
    encoder.long_distance_matching(true).unwrap();
    std::io::Write::write_all(&mut encoder, &plain).unwrap();
    let compressed = encoder.finish().unwrap();
    let path = dir.join("long.pcapng.zst");
    std::fs::write(&path, &compressed).unwrap();
    let out = kpcap(&["analyze", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["captures"][0]["compression"], "zstd");
    assert_eq!(doc["captures"][0]["packets"], 322);
}
