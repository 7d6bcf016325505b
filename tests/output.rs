//! Where the report goes: a reader that goes away (`kpcap ... | head -1`)
//! ends the run quietly with exit 0; a real write error is one line and
//! exit 2, not a capture's failure.

mod common;

use common::testdata;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs kpcap with `args`, reads one line of its report, then closes the
/// pipe as `head -1` does; returns the exit code and stderr.
fn first_line_then_close(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kpcap runs");
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut first).expect("one line");
    drop(reader);
    let out = child.wait_with_output().expect("kpcap ends");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), first, stderr)
}

/// More output than a pipe holds (64 KiB), of captures with failures: the
/// exit code is 0 only if the closed pipe ended the run.
fn many_captures() -> Vec<String> {
    let names = [
        "incident-before.pcapng",
        "incident-before-any.pcap",
        "zeek_vxlan.pcap",
        "synth-mixed.pcapng",
    ];
    (0..8)
        .flat_map(|_| names.iter().map(|n| testdata(n)))
        .collect()
}

fn assert_quiet_exit(args: &[&str]) {
    let (code, first, stderr) = first_line_then_close(args);
    assert!(!first.is_empty(), "{args:?}: no first line");
    assert_eq!(code, Some(0), "{args:?}: exit code; stderr: {stderr}");
    assert_eq!(stderr, "", "{args:?}: stderr");
}

#[test]
fn analyze_into_a_closed_pipe_exits_0_quietly() {
    let files = many_captures();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    for format in ["table", "json", "ndjson"] {
        let mut args = vec!["analyze", "--limit", "0", "--format", format];
        args.extend(&files);
        assert_quiet_exit(&args);
    }
}

#[test]
fn flows_into_a_closed_pipe_exits_0_quietly() {
    let files = many_captures();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    for format in ["table", "ndjson"] {
        let mut args = vec![
            "flows", "--by", "5tuple", "--limit", "0", "--format", format,
        ];
        args.extend(&files);
        assert_quiet_exit(&args);
    }
}

#[test]
fn scan_into_a_closed_pipe_exits_0_quietly() {
    // More lines than a pipe holds (64 KiB), each file a failure: exit 0
    // only if the closed pipe ended the run.
    let dir = common::scratch("scan-closed-pipe");
    let original = dir.join("c000.pcapng");
    std::fs::copy(testdata("incident-before.pcapng"), &original).unwrap();
    for i in 1..400 {
        let link = dir.join(format!("c{i:03}.pcapng"));
        if std::fs::hard_link(&original, &link).is_err() {
            std::fs::copy(&original, &link).unwrap();
        }
    }
    let dir = dir.display().to_string();
    for format in ["table", "ndjson"] {
        assert_quiet_exit(&["scan", "-q", "--limit", "0", "--format", format, &dir]);
    }
}

#[test]
fn a_failed_write_is_one_line_and_exit_2() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("a_failed_write_is_one_line_and_exit_2: skipped: no /dev/full here");
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(["analyze", &testdata("incident-before.pcapng")])
        .arg(testdata("incident-after.pcapng"))
        .stdout(full)
        .output()
        .expect("kpcap runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("kpcap: error: writing the report: "),
        "{stderr}"
    );
}

#[test]
fn completions_and_the_man_page_are_printed() {
    let bash = common::kpcap(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = common::stdout(&bash);
    assert!(
        script.contains("_kpcap()")
            && script.contains("analyze")
            && script.contains("--shard-from-env")
    );
    for shell in ["zsh", "fish"] {
        let out = common::kpcap(&["completions", shell]);
        assert!(
            out.status.success() && common::stdout(&out).contains("analyze"),
            "{shell}"
        );
    }
    let man = common::kpcap(&["man"]);
    let page = common::stdout(&man);
    assert!(
        page.contains(".TH kpcap 1") && page.contains("analyze"),
        "{page}"
    );
}

#[test]
fn flag_errors_are_one_kpcap_line_then_the_usage() {
    let typo = common::kpcap(&["analyze", "--sny-grace", "3", "x.pcap"]);
    assert_eq!(typo.status.code(), Some(2));
    let text = common::stderr(&typo);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first, "kpcap: error: unexpected argument '--sny-grace' found",
        "{text}"
    );
    assert!(
        text.contains("--syn-grace") && text.contains("Usage:"),
        "{text}"
    );
    assert!(common::stdout(&typo).is_empty());
    let forever = common::kpcap(&["analyze", "--syn-grace", "forever", "x.pcap"]);
    let text = common::stderr(&forever);
    assert!(
        text.starts_with("kpcap: error: invalid value 'forever' for '--syn-grace")
            && text.contains("is not a duration (e.g. 3s, 500ms"),
        "{text}"
    );
    // Help is not an error.
    let help = common::kpcap(&["analyze", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(common::stdout(&help).contains("Examples:"));
}
