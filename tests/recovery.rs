//! Damage in the middle of a capture: kpcap skips the corrupt stretch,
//! says which bytes it skipped, and still reports what the undamaged
//! records show, whether the file is mapped (guessed chunk starts, then
//! the exact walk) or streamed.

mod common;
use common::*;
use kpcap::synth::{generate, Container, Phase, Scenario, View};
use serde_json::Value;

/// A u32 in the byte order of the pcap whose magic starts `file`.
fn u32_in(file: &[u8], value: u32) -> [u8; 4] {
    if file[0] == 0xa1 {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    }
}

/// Byte offsets of a classic pcap's records.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        offsets.push(at);
        let field: [u8; 4] = bytes[at + 8..at + 12].try_into().unwrap();
        let len = if bytes[0] == 0xa1 {
            u32::from_be_bytes(field)
        } else {
            u32::from_le_bytes(field)
        };
        at += 16 + len as usize;
    }
    offsets
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    ZeroedLengths,
    HugeLengths,
    Garbage,
}

fn damage(bytes: &[u8], at: usize, how: Damage) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match how {
        Damage::ZeroedLengths => out[at + 8..at + 16].fill(0),
        Damage::HugeLengths => {
            let huge = u32_in(bytes, 0x7fff_fff0);
            out[at + 8..at + 12].copy_from_slice(&huge);
            out[at + 12..at + 16].copy_from_slice(&huge);
        }
        Damage::Garbage => {
            let mut x = 0x9e37_79b9u32;
            for byte in &mut out[at..at + 300] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *byte = x as u8;
            }
        }
    }
    out
}

fn summary(doc: &Value) -> (Vec<Value>, Vec<String>, u64) {
    let capture = &doc["captures"][0];
    let causes = capture["verdict"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    let pods = capture["findings"]["unmasqueraded_egress"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["pod"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    (causes, pods, capture["packets"].as_u64().unwrap())
}

#[test]
fn corrupt_records_are_skipped_and_the_rest_analyzed() {
    let original = generate(
        Scenario::Incident(Phase::Before, View::Ens19),
        Container::Pcap,
        1,
    );
    let offsets = record_offsets(&original);
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.pcap");
    std::fs::write(&clean, &original).unwrap();
    let clean = clean.to_str().unwrap();
    let args = ["analyze", "--format", "json", "--fail-on", "never"];
    let baseline = json(&kpcap(&[&args[..], &[clean]].concat()));
    let (causes, pods, packets) = summary(&baseline);
    assert!(!pods.is_empty());

    for how in [Damage::ZeroedLengths, Damage::HugeLengths, Damage::Garbage] {
        for index in [offsets.len() / 3, offsets.len() / 2] {
            let at = offsets[index];
            let file = dir.path().join(format!("{how:?}-{index}.pcap"));
            std::fs::write(&file, damage(&original, at, how)).unwrap();
            let file = file.to_str().unwrap();
            for chunk in ["4096", "4194304"] {
                let out = kpcap(&[&args[..], &[file, "--chunk-bytes", chunk]].concat());
                let err = stderr(&out);
                assert_eq!(out.status.code(), Some(0), "{how:?}: {err}");
                let prefix = format!("kpcap: warning: {file}: bytes {at}..");
                assert!(err.starts_with(&prefix), "{how:?} at {at}: {err}");
                assert!(err.contains("corrupt record header"), "{err}");
                // Where reading resumed: a record start, not far on.
                let end: usize = err[prefix.len()..]
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(offsets.contains(&end), "{how:?}: resumed at {end}");
                let lost = offsets.iter().filter(|&&o| o >= at && o < end).count();
                let damaged_len = if let Damage::Garbage = how { 300 } else { 16 };
                let hit = offsets
                    .iter()
                    .filter(|&&o| o >= at && o < at + damaged_len)
                    .count();
                assert!(
                    lost <= hit + 1,
                    "{how:?}: {lost} records skipped, {hit} hit"
                );
                let doc = json(&out);
                let (c, p, n) = summary(&doc);
                assert_eq!(n, packets - lost as u64, "{how:?}");
                assert_eq!((c, p), (causes.clone(), pods.clone()), "{how:?}");
                let warnings = &doc["captures"][0]["warnings"];
                assert!(warnings[0].as_str().unwrap().contains("skipped"));
            }
            // Streamed: the same skip, the same report.
            let streamed = kpcap(&[&args[..], &[file, "--chunk-bytes", "1"]].concat());
            let compressed = dir.path().join("damaged.pcap.zst");
            let damaged = std::fs::read(file).unwrap();
            std::fs::write(&compressed, zstd::encode_all(&damaged[..], 1).unwrap()).unwrap();
            let out = kpcap(
                &[
                    &args[..],
                    &[compressed.to_str().unwrap(), "--chunk-bytes", "1"],
                ]
                .concat(),
            );
            assert_eq!(out.status.code(), Some(0));
            assert!(
                stderr(&out).contains(&format!("bytes {at}..")),
                "{}",
                stderr(&out)
            );
            let mapped = &json(&streamed)["captures"][0];
            let zst = &json(&out)["captures"][0];
            assert_eq!(mapped["findings"], zst["findings"], "{how:?}");
            assert_eq!(mapped["warnings"], zst["warnings"], "{how:?}");
        }
    }
}

/// pcapng: a packet block with a bad body is skipped by its length; a
/// block whose lengths are garbage is skipped up to the next block whose
/// leading and trailing lengths agree.
#[test]
fn corrupt_pcapng_blocks_are_skipped() {
    let original = std::fs::read(testdata("incident-before.pcapng")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clean = json(&kpcap(&[
        "analyze",
        "--format",
        "json",
        "--fail-on",
        "never",
        &testdata("incident-before.pcapng"),
    ]));
    let (causes, pods, packets) = summary(&clean);
    // Packet blocks (type 6) past the first third.
    let mut blocks = Vec::new();
    let mut at = 0;
    while at + 12 <= original.len() {
        let kind = u32::from_le_bytes(original[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(original[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            blocks.push(at);
        }
        at += len;
    }
    let at = blocks[blocks.len() / 2];
    // The interface id of one block: framing intact, body bad.
    let mut bad_body = original.clone();
    bad_body[at + 8..at + 12].copy_from_slice(&99u32.to_le_bytes());
    // The leading length of another: framing broken.
    let mut bad_len = original.clone();
    bad_len[at + 4..at + 8].copy_from_slice(&0x00ff_fff4u32.to_le_bytes());
    for (name, bytes) in [("body", bad_body), ("length", bad_len)] {
        let file = dir.path().join(format!("{name}.pcapng"));
        std::fs::write(&file, bytes).unwrap();
        let file = file.to_str().unwrap();
        let out = kpcap(&["analyze", "--format", "json", "--fail-on", "never", file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert!(err.contains(&format!("bytes {at}..")), "{name}: {err}");
        let (c, p, n) = summary(&json(&out));
        assert_eq!(n, packets - 1, "{name}: one block lost");
        assert_eq!((c, p), (causes.clone(), pods.clone()), "{name}");
    }
}

/// A streamed pcapng (gzip) names a skipped block where the mapped file
/// does: its offset in the capture, not in the stream's buffer.
#[test]
fn a_streamed_capture_names_damage_by_its_file_offset() {
    let bytes = generate(
        Scenario::Mixed {
            bytes: 40 << 20,
            conversations: Some(2000),
        },
        Container::Pcapng,
        2,
    );
    // The first enhanced packet block past 36 MiB: past the first segment.
    let mut at = 0;
    let mut target = None;
    while at + 12 <= bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 6 && at > 36 << 20 {
            target = Some(at);
            break;
        }
        at += len;
    }
    let at = target.expect("a packet block past 36 MiB");
    let mut damaged = bytes;
    damaged[at + 8..at + 12].copy_from_slice(&99u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("damaged.pcapng");
    std::fs::write(&plain, &damaged).unwrap();
    let gz = dir.path().join("damaged.pcapng.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &damaged).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    let warning = |path: &std::path::Path| {
        let out = kpcap(&["analyze", "--fail-on", "never", path.to_str().unwrap()]);
        let err = stderr(&out);
        let line = err
            .lines()
            .find(|l| l.contains("skipped"))
            .map(str::to_string);
        line.unwrap_or_else(|| panic!("no skip warning: {err}"))
    };
    let (mapped, streamed) = (warning(&plain), warning(&gz));
    assert!(mapped.contains(&format!("bytes {at}..")), "{mapped}");
    let strip = |line: &str| line.split_once(": bytes").map(|(_, rest)| rest.to_string());
    assert_eq!(strip(&streamed), strip(&mapped), "{streamed} vs {mapped}");
}
