//! kpcap in a terminal: a pseudo-terminal of a given width, the way a
//! user's tmux or ssh session runs it. Tables, prose and help fit the
//! width; progress is drawn there, and only there.

mod common;

use common::*;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// A pseudo-terminal `columns` wide: (our end, the program's end).
fn pty(columns: u16) -> (std::fs::File, OwnedFd) {
    let (mut ours, mut theirs) = (0, 0);
    let size = libc::winsize {
        ws_row: 50,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened, which we own from
    // here on; the name buffer and termios are optional.
    let status = unsafe {
        libc::openpty(
            &mut ours,
            &mut theirs,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are open descriptors nobody else owns.
    unsafe {
        (
            std::fs::File::from_raw_fd(ours),
            OwnedFd::from_raw_fd(theirs),
        )
    }
}

/// What kpcap wrote to a terminal `columns` wide, its stdout and stderr
/// both on it (or stderr to `stderr_file`), with `env` set.
fn in_terminal(
    columns: u16,
    args: &[&str],
    env: &[(&str, &str)],
    stderr_file: Option<&std::path::Path>,
) -> (String, i32) {
    let (mut ours, theirs) = pty(columns);
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpcap"));
    command
        .args(args)
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::from(theirs.try_clone().unwrap()));
    match stderr_file {
        Some(path) => command.stderr(std::fs::File::create(path).unwrap()),
        None => command.stderr(Stdio::from(theirs.try_clone().unwrap())),
    };
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    drop(command);
    drop(theirs);
    // Read as it is written, or a full terminal buffer blocks kpcap; the
    // read ends (EIO) when the last writer is gone.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = ours.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        bytes
    });
    let status = child.wait().unwrap();
    let bytes = reader.join().unwrap();
    (
        String::from_utf8_lossy(&bytes).into_owned(),
        status.code().unwrap_or(-1),
    )
}

/// `text` without colour and cursor escapes. Written here, not taken
/// from the library's width measure, so the check does not share the code
/// it checks.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

fn widest(text: &str) -> (usize, String) {
    (plain(text).lines())
        .map(|l| (l.chars().count(), l.to_string()))
        .max_by_key(|(n, _)| *n)
        .unwrap_or_default()
}

#[test]
fn reports_and_help_fit_80_and_120_columns() {
    let incident = testdata("incident-before.pcapng");
    let testdata_dir = testdata("");
    let cluster = testdata("incident-cluster");
    let nodes: Vec<String> = ["k3s-cp", "k3s-w1", "k3s-w2"]
        .iter()
        .map(|n| testdata(&format!("incident-nodes/{n}.pcap")))
        .collect();
    let nodes_cluster = testdata("incident-nodes/cluster");
    let nodes_dir = testdata("incident-nodes");
    // `-i any` without names: the header lists every device and says why.
    let any = testdata("incident-before-any.pcap");
    let runs: [&[&str]; 8] = [
        &[
            "analyze",
            &incident,
            "--preset",
            "k3s",
            "--node-cidr",
            "10.50.10.0/24",
        ],
        &["analyze", &incident, "--cluster", &cluster],
        &["scan", &testdata_dir],
        &["analyze", "--help"],
        &["flows", &incident, "--by", "5tuple"],
        &[
            "analyze",
            "--cluster",
            &nodes_cluster,
            &nodes[0],
            &nodes[1],
            &nodes[2],
        ],
        &["scan", &nodes_dir, "--cluster", &nodes_cluster],
        &["analyze", &any],
    ];
    // Errors and warnings are one line each, whatever the width: stdout is
    // what must fit.
    let dir = tempfile::tempdir().unwrap();
    let diagnostics = dir.path().join("stderr.txt");
    for columns in [80, 120] {
        for args in runs {
            let (text, _) = in_terminal(columns, args, &[], Some(&diagnostics));
            let (width, line) = widest(&text);
            assert!(
                width <= columns as usize,
                "{args:?} at {columns}: a line of {width}:\n{line}"
            );
            assert!(plain(&text).lines().count() > 5, "{args:?}: {text}");
        }
    }
    // The same reports piped are as wide as their contents.
    let piped = kpcap(&["scan", &testdata_dir]);
    assert!(widest(&stdout(&piped)).0 > 120);
}

#[test]
fn severities_are_coloured_on_a_terminal_unless_no_color() {
    let incident = testdata("incident-before.pcapng");
    let (text, code) = in_terminal(120, &["analyze", &incident], &[], None);
    assert_eq!(code, 1);
    assert!(text.contains("\u{1b}[1;31mFAILURE"), "{text}");
    let (text, _) = in_terminal(120, &["analyze", &incident], &[("NO_COLOR", "1")], None);
    assert!(!text.contains('\u{1b}'), "{text}");
    let piped = kpcap(&["analyze", &incident, "--color", "always"]);
    assert!(stdout(&piped).contains('\u{1b}'));
    assert!(!stdout(&kpcap(&["analyze", &incident])).contains('\u{1b}'));
}

/// The byte counts of the progress lines drawn, in order.
fn progress_positions(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let frames = plain(&text.replace('\r', "\n"));
    for frame in frames.lines().filter(|l| l.contains(" ETA ")) {
        if let Some((_, rest)) = frame.split_once("] ") {
            let position = rest.split('/').next().unwrap_or("").to_string();
            if seen.last() != Some(&position) {
                seen.push(position);
            }
        }
    }
    seen
}

#[test]
fn a_long_analysis_shows_progress_on_a_terminal_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB: at over 1 GiB/s on one thread, 1 GiB was read in less time
    // than the line takes to appear and advance on a quiet machine.
    let capture = dir.path().join("mixed-2g.pcap");
    let path = capture.to_str().unwrap();
    let made = kpcap(&["synth", "--scenario", "mixed", "--size", "2G", "-o", path]);
    assert!(made.status.success(), "{}", stderr(&made));
    let args = ["analyze", "--threads", "1", path];
    let (text, code) = in_terminal(100, &args, &[], None);
    assert!(matches!(code, 0 | 1 | 3), "{text}");
    let positions = progress_positions(&text);
    assert!(
        positions.len() >= 2,
        "no advancing progress line: {positions:?}"
    );
    // Packets read, digit-grouped, beside the bytes.
    let packets = plain(&text.replace('\r', "\n"));
    assert!(
        (packets.lines()).any(|l| l.contains(" ETA ") && l.contains(",") && l.contains(" pkts ")),
        "no packet count: {packets}"
    );
    // stdout on the terminal, stderr to a file: nothing is drawn there.
    let log = dir.path().join("stderr.txt");
    in_terminal(100, &args, &[], Some(&log));
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.lines().all(|l| l.starts_with("kpcap: warning:")),
        "{written}"
    );
    // --quiet: no progress on the terminal either.
    let (quiet, _) = in_terminal(
        100,
        &["analyze", "--quiet", "--threads", "1", path],
        &[],
        None,
    );
    assert!(progress_positions(&quiet).is_empty(), "{quiet}");
}

#[test]
fn reading_stdin_from_a_terminal_is_refused_at_once() {
    let (_ours, theirs) = pty(80);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpcap"))
        .args(["analyze", "-"])
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Waiting for a capture to be typed would look like a hang.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("kpcap analyze - waits on a terminal");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("kpcap: error: <stdin>: standard input is a terminal"),
        "{message}"
    );
}
