//! Parallel results are identical to single-threaded ones: every report
//! (`flows` and `analyze`, tables, JSON and NDJSON), for 1, 2 and 8 threads and chunk sizes from one record up to the whole
//! file, byte for byte.

mod common;
use common::*;

fn reports(capture: &str, threads: &str, chunk_bytes: &str) -> Vec<String> {
    let views: [&[&str]; 6] = [
        &["flows", "--format", "json"],
        &["flows", "--format", "json", "--by", "5tuple"],
        &["flows", "--limit", "0"],
        &["analyze", "--format", "json", "--fail-on", "never"],
        &["analyze", "--format", "ndjson", "--fail-on", "never"],
        &["analyze", "--limit", "0", "--fail-on", "never"],
    ];
    views
        .iter()
        .map(|view| {
            let mut args = vec![
                view[0],
                capture,
                "--threads",
                threads,
                "--chunk-bytes",
                chunk_bytes,
            ];
            args.extend_from_slice(&view[1..]);
            let out = kpcap(&args);
            assert_eq!(out.status.code(), Some(0), "{capture}: {}", stderr(&out));
            stdout(&out)
        })
        .collect()
}

fn assert_thread_independent(capture: &str) {
    let baseline = reports(capture, "1", "1000000000");
    for (threads, chunk) in [
        ("1", "1"),
        ("2", "4096"),
        ("8", "1"),
        ("8", "65536"),
        ("2", "4194304"),
    ] {
        let other = reports(capture, threads, chunk);
        for (a, b) in baseline.iter().zip(&other) {
            assert!(a == b, "{capture}: --threads {threads} --chunk-bytes {chunk} differs from one thread, one chunk");
        }
    }
}

#[test]
fn testdata_reports_do_not_depend_on_threads_or_chunks() {
    for file in [
        "synth-mixed.pcapng",
        "incident-before.pcapng",
        "incident-after.pcapng",
        // Copies across interfaces: dedup windows span chunk boundaries.
        "incident-before-any.pcap",
        "incident-after-any.pcap",
        "incident-before-any-sll.pcap",
        "incident-before-two-nics.pcapng",
        "overlay-geneve.pcap",
        "ppp_dns_over_tcp.pcapng",
        "zeek_dns-edns-ecs.pcap",
        "zeek_dns-tkey.pcap",
        "zeek_nmap-vsn.pcap",
        "ppp_sll.pcap",
        "ppp_many_interfaces-1.pcapng",
        "zeek_1000-requests-one-dropped-response.pcap.gz",
        "tcpdump_geneve.pcap",
    ] {
        assert_thread_independent(&testdata(file));
    }
}

#[test]
fn generated_capture_reports_do_not_depend_on_threads_or_chunks() {
    let path = scratch("threads").join("mixed-4m.pcap");
    let path = path.display().to_string();
    let out = kpcap(&["synth", "--size", "4M", "--seed", "3", "-o", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_thread_independent(&path);
    // A busy node with `-i any`: copies across interfaces everywhere, so
    // chunks start inside the duplicate windows of thousands of flows.
    let path = scratch("threads").join("busy-any-1m.pcap");
    let path = path.display().to_string();
    synth_busy_any(&path, "1M");
    assert_thread_independent(&path);
}

#[test]
fn corpus_reports_do_not_depend_on_threads_or_chunks() {
    let Some(dir) = shared_captures("corpus_reports_do_not_depend_on_threads_or_chunks") else {
        return;
    };
    // Non-monotonic timestamps, and a 37k-pair flow table.
    for file in [
        "zeek_echo-connections.pcap",
        "stopddos_synflood.spoofed.pcap",
        "ppa_synscan.pcapng",
    ] {
        assert_thread_independent(&dir.join(file).display().to_string());
    }
}

/// Classic pcap chunks start at guessed record boundaries. A capture whose
/// payloads are full of decoy record headers (runs of plausible zero-length
/// records) makes the guesses land inside packets: the walk must notice and
/// the result must still equal a serial walk's.
#[test]
fn wrong_chunk_start_guesses_fall_back_to_the_exact_walk() {
    use kpcap::analysis::flow_table;
    use kpcap::capture::{Bytes, Capture, Input};
    use kpcap::pipeline::Reading;
    use kpcap::synth::frame::{ethernet, udp_packet};
    use kpcap::synth::{CaptureWriter, Container, START};
    use kpcap::time::Timestamp;
    use std::net::{IpAddr, Ipv4Addr};

    let mut out = CaptureWriter::new(Vec::new(), Container::Pcap, "eth0").unwrap();
    // 24 decoy headers: seconds near the capture's, nothing captured of
    // a 60-byte packet.
    let decoy: Vec<u8> = (0..24)
        .flat_map(|_| {
            let secs = (START.0 / Timestamp::NANOS_PER_SEC) as u32;
            [secs.to_be_bytes(), [0; 4], [0; 4], 60u32.to_be_bytes()].concat()
        })
        .collect();
    for i in 0..2000u32 {
        let src = (IpAddr::V4(Ipv4Addr::new(10, 42, 1, (i % 200) as u8)), 40000);
        let dst = (IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 9000 + (i % 7) as u16);
        let frame = ethernet(&udp_packet(src, dst, &decoy), &[]);
        out.write(Timestamp(START.0 + u64::from(i) * 1000), &frame)
            .unwrap();
    }
    let bytes = out.into_inner();
    let open = |chunk_bytes| Capture::from_bytes(Bytes::Owned(bytes.clone()), chunk_bytes).unwrap();
    let true_starts: Vec<usize> = open(1)
        .exact_layout()
        .unwrap()
        .chunks
        .iter()
        .map(|c| c.start)
        .collect();
    let (exact, _) = flow_table(Input::Mapped(open(usize::MAX)), &Reading::default()).unwrap();
    assert_eq!(exact.summary.packets, 2000);
    for chunk_bytes in [1000, 4096, 65536] {
        let capture = open(chunk_bytes);
        let guessed_wrong = capture
            .layout()
            .chunks
            .iter()
            .filter(|c| true_starts.binary_search(&c.start).is_err())
            .count();
        assert!(
            guessed_wrong > 0,
            "{chunk_bytes}: the decoys fooled no guess"
        );
        let (table, _) = flow_table(Input::Mapped(capture), &Reading::default()).unwrap();
        assert_eq!(table.summary, exact.summary, "{chunk_bytes}");
        assert_eq!(table.flows.len(), exact.flows.len(), "{chunk_bytes}");
        for (key, flow) in &exact.flows {
            assert_eq!(table.flows.get(key), Some(flow), "{chunk_bytes}: {key:?}");
        }
    }
}
