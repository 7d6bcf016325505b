//! `kpcap scan` over a generated archive: nested directories of plain,
//! gzip'ed and zstd'ed captures, a truncated and a corrupt capture, a text
//! file and an empty file. Every file gets its line, the bad ones their
//! reason, the aggregate counts each subject once with its files; the
//! output does not depend on threads, and merging shards gives the
//! unsharded report.

mod common;
use common::*;
use kpcap::synth::{generate, Container, Phase, Scenario, View};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

fn incident(phase: Phase) -> Vec<u8> {
    generate(Scenario::Incident(phase, View::Ens19), Container::Pcap, 1)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The archive; returns its root.
fn archive(root: &Path) {
    let before = incident(Phase::Before);
    let after = incident(Phase::After);
    let write = |name: &str, bytes: &[u8]| {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("node-a/2025-06-01/before.pcap", &before);
    write("node-a/2025-06-01/after.pcap", &after);
    // Named without an extension that says what they are: found by magic.
    write("node-b/rotated/capture.0", &gzip(&before));
    write(
        "node-b/rotated/capture.1",
        &zstd::encode_all(&before[..], 3).unwrap(),
    );
    write("node-b/after.gz", &gzip(&after));
    write("node-c/cut.pcap", &before[..before.len() * 2 / 3]);
    // A version no reader knows: unreadable.
    let mut corrupt = before.clone();
    corrupt[4..6].copy_from_slice(&[0, 3]);
    write("node-c/corrupt.pcap", &corrupt);
    write("node-c/notes.txt", b"tcpdump -ni ens19 -w before.pcap\n");
    write("empty", b"");
}

fn scan(args: &[&str]) -> (std::process::Output, Value) {
    let out = kpcap(args);
    let value = if args.contains(&"json") {
        json(&out)
    } else {
        Value::Null
    };
    (out, value)
}

#[test]
fn every_file_gets_its_line_and_the_aggregate_counts_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    archive(dir.path());
    let (out, report) = scan(&["scan", root, "--format", "json"]);
    // Findings (bit 1) and an unreadable file (bit 2).
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let files = report["files"].as_array().unwrap();
    let line = |suffix: &str| {
        files
            .iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no line for {suffix}"))
    };
    assert_eq!(files.len(), 9);
    for analyzed in [
        "before.pcap",
        "after.pcap",
        "capture.0",
        "capture.1",
        "after.gz",
        "cut.pcap",
    ] {
        assert_eq!(line(analyzed)["status"], "analyzed", "{analyzed}");
    }
    assert_eq!(line("capture.0")["digest"]["compression"], "gzip");
    assert_eq!(line("capture.1")["digest"]["compression"], "zstd");
    // The same capture, plain or compressed, reads the same.
    for copy in ["capture.0", "capture.1"] {
        assert_eq!(
            line(copy)["digest"]["findings"],
            line("2025-06-01/before.pcap")["digest"]["findings"]
        );
    }
    let cut = &line("cut.pcap")["digest"];
    assert!(cut["warnings"][0].as_str().unwrap().contains("cut short"));
    assert!(cut["packets"].as_u64().unwrap() > 0);
    assert_eq!(line("corrupt.pcap")["status"], "error");
    assert!(line("corrupt.pcap")["error"]
        .as_str()
        .unwrap()
        .contains("byte 4: unsupported pcap version 3."));
    assert_eq!(line("notes.txt")["status"], "not_a_capture");
    assert_eq!(line("empty")["status"], "not_a_capture");

    let a = &report["aggregate"];
    assert_eq!(a["files"], 9);
    assert_eq!(a["analyzed"], 6);
    assert_eq!(a["errors"], 1);
    assert_eq!(a["not_captures"], 2);
    assert_eq!(a["worst"], "failure");
    // The before capture in four files (plain, gzip, zstd, cut short): one
    // finding per pod, with four files of evidence; the after captures
    // have none.
    let egress: Vec<&Value> = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unmasqueraded_egress")
        .collect();
    assert_eq!(egress.len(), 3, "{egress:?}");
    let pod = egress
        .iter()
        .find(|f| f["subject"] == "10.42.1.12")
        .expect("10.42.1.12 unmasqueraded");
    let in_files: Vec<&str> = pod["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(in_files.len(), 4, "{in_files:?}");
    assert!(in_files.iter().all(|f| !f.contains("after")));
    let cause = &a["causes"][0];
    assert_eq!(cause["id"], "pod_egress_not_masqueraded");
    assert_eq!(cause["files"].as_array().unwrap().len(), 4);
    // Counts are sums over the files' lines.
    let summed: u64 = files
        .iter()
        .filter_map(|f| f["digest"]["counts"]["unanswered_syns"].as_u64())
        .sum();
    assert_eq!(a["counts"]["unanswered_syns"].as_u64(), Some(summed));
    assert!(summed > 0);
}

#[test]
fn scan_output_does_not_depend_on_threads_and_shards_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    archive(&root);
    let root = root.to_str().unwrap();
    for format in ["table", "json"] {
        let one = kpcap(&["scan", root, "--threads", "1", "--format", format]);
        let eight = kpcap(&["scan", root, "--threads", "8", "--format", format]);
        assert_eq!(stdout(&one), stdout(&eight), "{format}");
        assert!(!stdout(&one).is_empty());
    }
    let whole = kpcap(&["scan", root, "--format", "json"]);
    let mut shards = Vec::new();
    for i in 1..=3 {
        let shard = kpcap(&[
            "scan",
            root,
            "--shard",
            &format!("{i}/3"),
            "--format",
            "json",
        ]);
        let path = dir.path().join(format!("shard-{i}.json"));
        std::fs::write(&path, &shard.stdout).unwrap();
        assert_eq!(json(&shard)["files"].as_array().unwrap().len(), 3);
        shards.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge", "--format", "json"];
    args.extend(shards.iter().map(String::as_str));
    let merged = kpcap(&args);
    assert_eq!(merged.status.code(), whole.status.code());
    assert_eq!(stdout(&merged), stdout(&whole));
    // In any order.
    let mut args = vec!["merge", "--format", "json"];
    args.extend(shards.iter().rev().map(String::as_str));
    assert_eq!(stdout(&kpcap(&args)), stdout(&whole));
    // Some shards only: the report says which.
    let partial = kpcap(&["merge", "--format", "json", &shards[0], &shards[2]]);
    let listed = &json(&partial)["shards"];
    assert_eq!(
        listed,
        &serde_json::json!([{"index": 1, "count": 3}, {"index": 3, "count": 3}])
    );
    // The same shard twice, or a shard beside the whole scan, is refused.
    let twice = kpcap(&["merge", &shards[1], &shards[0], &shards[1]]);
    assert_eq!(twice.status.code(), Some(2));
    let error = stderr(&twice);
    assert!(
        error.contains("shard 2/3 is already in") && error.lines().count() == 1,
        "{error}"
    );
    let whole_path = dir.path().join("whole.json");
    std::fs::write(&whole_path, &whole.stdout).unwrap();
    let overlap = kpcap(&["merge", whole_path.to_str().unwrap(), &shards[0]]);
    assert_eq!(overlap.status.code(), Some(2));
    assert!(
        stderr(&overlap).contains("the reports' file lists overlap"),
        "{}",
        stderr(&overlap)
    );
}

#[test]
fn ndjson_streams_one_line_per_file_then_the_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path());
    let out = kpcap(&["scan", dir.path().to_str().unwrap(), "--format", "ndjson"]);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(lines[..9].iter().all(|l| l["type"] == "file"));
    assert_eq!(lines[9]["type"], "aggregate");
    assert_eq!(lines[9]["aggregate"]["files"], 9);
}

#[test]
fn a_clean_archive_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("after.pcap"), incident(Phase::After)).unwrap();
    std::fs::write(dir.path().join("README"), "no captures here").unwrap();
    for quiet in [&["--quiet"][..], &[]] {
        let mut args = vec!["scan", dir.path().to_str().unwrap()];
        args.extend_from_slice(quiet);
        let out = kpcap(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert!(stdout(&out).contains("CLEAN"), "{}", stdout(&out));
        // stderr is not a terminal here: no progress bar, nothing at all.
        assert_eq!(stderr(&out), "");
    }
}

#[test]
fn a_missing_path_is_an_input_error() {
    let out = kpcap(&["scan", "/nonexistent/archive"]);
    // Bit 2: a path could not be read; bit 3: nothing was analyzed.
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        stderr(&out).trim(),
        "kpcap: error: /nonexistent/archive: cannot be walked: No such file or directory (os error 2)"
    );
    assert!(
        stdout(&out).contains("/nonexistent/archive"),
        "{}",
        stdout(&out)
    );
}

/// The args of the Job's container, its mount paths and its completions,
/// as deploy/kpcap-sweep-job.yaml declares them.
fn job_manifest() -> (Vec<String>, Vec<(String, String)>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kpcap-sweep-job.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let spec = &docs[0]["spec"];
    let container = &spec["template"]["spec"]["containers"][0];
    let args = (container["args"].as_vec().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mounts = (container["volumeMounts"].as_vec().unwrap().iter())
        .map(|m| {
            let (name, at) = (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            );
            (name.to_string(), at.to_string())
        })
        .collect();
    let completions = spec["completions"].as_i64().unwrap() as usize;
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    (args, mounts, completions)
}

#[test]
fn the_job_manifest_runs_without_a_shell_and_its_shards_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let captures = dir.path().join("captures");
    let reports = dir.path().join("reports");
    archive(&captures);
    std::fs::create_dir_all(&reports).unwrap();
    let (args, mounts, completions) = job_manifest();
    assert!(completions > 1);
    // The volumes, mounted here instead.
    let local = |arg: &str| {
        let mut arg = arg.to_string();
        for (name, at) in &mounts {
            let here = match name.as_str() {
                "captures" => &captures,
                "reports" => &reports,
                other => panic!("unexpected volume {other}"),
            };
            arg = arg.replace(at.as_str(), here.to_str().unwrap());
        }
        arg
    };
    for index in 0..completions {
        // What the kubelet does: JOB_COMPLETION_INDEX in the environment,
        // and $(VAR) in args expanded from it. No shell runs.
        let expanded: Vec<String> = (args.iter())
            .map(|a| local(&a.replace("$(JOB_COMPLETION_INDEX)", &index.to_string())))
            .collect();
        assert!(expanded.iter().all(|a| !a.contains("$(")), "{expanded:?}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpcap"))
            .args(&expanded)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        // The archive has an unreadable file: its shard exits 2, the others 0.
        assert!(matches!(out.status.code(), Some(0 | 2)), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "the report goes to --output");
    }
    let mut written: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .collect();
    written.sort();
    assert_eq!(written.len(), completions, "{written:?}");
    assert!(
        written.iter().all(|p| p.ends_with(".json")),
        "no partial report left"
    );
    let mut merge = vec!["merge", "--format", "json"];
    merge.extend(written.iter().map(String::as_str));
    let merged = kpcap(&merge);
    let whole = kpcap(&["scan", captures.to_str().unwrap(), "--format", "json"]);
    assert_eq!(stdout(&merged), stdout(&whole));
    assert!(json(&whole)["files"].as_array().unwrap().len() >= 8);
}

fn tar_gz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_tarball_of_three_captures_scans_as_three_captures() {
    let dir = tempfile::tempdir().unwrap();
    let before = incident(Phase::Before);
    let after = incident(Phase::After);
    let tarball = dir.path().join("node-a-captures.tar.gz");
    std::fs::write(
        &tarball,
        tar_gz(&[
            ("node-a/before.pcap", before.clone()),
            ("node-a/after.pcap", after.clone()),
            (
                "node-a/README",
                b"captured with tcpdump -ni ens19\n".to_vec(),
            ),
            ("node-a/before.pcap.gz", gzip(&before)),
        ]),
    )
    .unwrap();
    let name = tarball.to_str().unwrap();
    let (out, report) = scan(&["scan", name, "--format", "json"]);
    let files: Vec<&str> = (report["files"].as_array().unwrap().iter())
        .filter(|f| f["status"] == "analyzed")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            format!("{name}:node-a/after.pcap"),
            format!("{name}:node-a/before.pcap"),
            format!("{name}:node-a/before.pcap.gz"),
        ],
        "{}",
        stderr(&out)
    );
    assert_eq!(report["aggregate"]["analyzed"], 3);
    // Each member as analyzed alone.
    let alone = dir.path().join("before.pcap");
    std::fs::write(&alone, &before).unwrap();
    let (_, single) = scan(&["scan", alone.to_str().unwrap(), "--format", "json"]);
    let digest = |r: &Value, i: usize| r["files"][i]["digest"]["counts"].clone();
    let member = (0..4)
        .find(|&i| {
            report["files"][i]["file"]
                .as_str()
                .unwrap()
                .ends_with("before.pcap")
        })
        .unwrap();
    assert_eq!(digest(&report, member), digest(&single, 0));
    // analyze: one report per capture member.
    let analyzed = kpcap(&["analyze", name, "--format", "json"]);
    let captures = json(&analyzed)["captures"].as_array().unwrap().clone();
    assert_eq!(captures.len(), 3, "{}", stderr(&analyzed));
    assert!(stderr(&analyzed).contains("node-a/README: not a capture, skipped"));
}

#[test]
fn a_directory_given_to_analyze_points_to_scan_and_other_formats_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = kpcap(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory") && stderr(&out).contains("kpcap scan"));
    for (name, magic, says) in [
        (
            "a.pcap.xz",
            &[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4][..],
            "xz-compressed",
        ),
        ("a.pcap.bz2", b"BZh91AY&SY", "bzip2-compressed"),
        ("a.zip", b"PK\x03\x04\x14\x00\x00\x00", "zip archive"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, magic).unwrap();
        let out = kpcap(&["analyze", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let error = stderr(&out);
        assert!(
            error.contains(says) && error.lines().count() == 1,
            "{error}"
        );
    }
}
