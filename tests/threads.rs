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
