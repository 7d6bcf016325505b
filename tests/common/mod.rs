//! Helpers shared by the black-box tests: run the release binary, find
//! test data and the optional `../shared/captures` corpus.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kpcap(args: &[&str]) -> Output {
    // Tables are as wide as their contents unless COLUMNS says otherwise.
    Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("kpcap runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn testdata(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
        .display()
        .to_string()
}

/// `../shared/captures` beside the checkout, if present. Tests that need it
/// print why they skip when it is absent (a user's fresh clone).
pub fn shared_captures(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    if dir.join("oracle.json").is_file() {
        Some(dir)
    } else {
        // Written to the real stderr, not through eprintln!, which the test
        // harness captures: the skip must be visible in a normal run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: ../shared/captures is absent (it ships only beside CI checkouts)"
        );
        None
    }
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// A scratch directory unique to one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpcap-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The three nodes' captures of `testdata/incident-nodes` and its cluster
/// directory.
pub fn incident_nodes() -> (Vec<String>, String) {
    let dir = testdata("incident-nodes");
    let captures = ["k3s-cp", "k3s-w1", "k3s-w2"]
        .iter()
        .map(|n| format!("{dir}/{n}.pcap"))
        .collect();
    (captures, format!("{dir}/cluster"))
}

/// Writes `synth --scenario busy --view any-sll2` of `size` to `path`: a
/// busy node captured with `-i any`.
pub fn synth_busy_any(path: &str, size: &str) {
    let args = [
        "synth",
        "--scenario",
        "busy",
        "--view",
        "any-sll2",
        "--size",
        size,
        "-o",
        path,
    ];
    let out = kpcap(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}
