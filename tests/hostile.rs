//! Hostile inputs (`synth --scenario hostile-*`) cost memory in proportion
//! to what the bounds allow, not to their size: the growth from one size
//! to twice it is checked on the bytes allocated and held (a counting
//! allocator), never on wall time. And a mapped file that shrinks while it
//! is read ends the run with one line and exit 2.

mod common;

use kpcap::analysis::Analyzer;
use kpcap::capture::{Bytes, Capture, Input};
use kpcap::detect::{Evidence, Settings};
use kpcap::pipeline::Reading;
use kpcap::synth::{self, Container, Hostile, Scenario};
use kpcap::topology::{Preset, Topology};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The system allocator, counting the bytes held and their peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time allocates: the counters are the process's.
static MEASURING: Mutex<()> = Mutex::new(());

/// The peak of bytes held while analyzing `class` at `bytes`, beyond the
/// capture itself.
fn peak_beyond_input(class: Hostile, bytes: u64) -> usize {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let capture = synth::generate(Scenario::Hostile { class, bytes }, Container::Pcap, 1);
    let topology = Topology::preset(Preset::K3s, false);
    let settings = Settings::default();
    // Settled every MiB: what a window holds in flight is bounded by the
    // window, and the test sizes span several.
    let reading = Reading {
        window_bytes: Some(1 << 20),
        ..Reading::default()
    };
    let analyzer = Analyzer {
        topology: &topology,
        settings: &settings,
        reading: &reading,
        chunk_bytes: 1 << 20,
        evidence: Evidence::All,
        names: None,
    };
    let capture = Capture::from_bytes(Bytes::Owned(capture), 1 << 20).unwrap();
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (mut observed, info) = analyzer.observe_input(Input::Mapped(capture)).unwrap();
    let outcome = analyzer.outcome("hostile", &[], &mut observed, &info);
    drop((outcome, observed));
    PEAK.load(Ordering::Relaxed) - before
}

/// Memory at twice the size within `factor` of memory at the size.
fn assert_bounded(class: Hostile, bytes: u64, factor: f64) {
    let small = peak_beyond_input(class, bytes);
    let large = peak_beyond_input(class, 2 * bytes);
    assert!(
        (large as f64) <= factor * small as f64,
        "{class:?}: {small} bytes held at {bytes}, {large} at twice that"
    );
}

/// One query repeated: its key keeps 16 messages, not all of them. Kept
/// whole, the messages (40 bytes each, one per 87-byte record) would grow
/// the memory held by 40 bytes per record added; the check allows a
/// quarter of that. At four times the size, so the few MB a second window
/// in flight sometimes holds (on a loaded machine) stay well inside it.
#[test]
fn one_query_key_repeated_costs_the_same_at_four_times_the_size() {
    let bytes = 32 << 20;
    let small = peak_beyond_input(Hostile::DnsCopies, bytes);
    let large = peak_beyond_input(Hostile::DnsCopies, 4 * bytes);
    let records_added = 3 * bytes as usize / 87;
    assert!(
        large.saturating_sub(small) < records_added * 10,
        "{small} bytes held at {bytes}, {large} at four times that"
    );
}

/// A flood of spoofed SYNs holds flows (linear), not a group and an item
/// per flow on top: the judged lists stay in proportion to the list.
#[test]
fn a_syn_flood_grows_linearly() {
    assert_bounded(Hostile::SynFlood, 8 << 20, 2.3);
}

/// A file truncated while kpcap reads it from a mapping: one line naming
/// the file, exit 2, never a signal death. Racy by nature (the truncation
/// must land during the read), so a large file and a few tries.
#[test]
fn a_file_that_shrinks_while_it_is_read_ends_with_one_line_and_exit_2() {
    // Its writes would count in a measurement beside it.
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("shrinks");
    let path = dir.join("shrinking.pcap");
    for attempt in 0..4u64 {
        let size = (512 << 20) << attempt.min(1);
        let scenario = Scenario::Mixed {
            bytes: size,
            conversations: None,
        };
        synth::write_file(&path, scenario, Container::Pcap, 1).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kpcap"))
            .args(["analyze", "--threads", "1"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size / 4)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(2) && stderr.contains("shrank") {
            let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("shrank")).collect();
            assert_eq!(lines.len(), 1, "{stderr}");
            assert!(lines[0].contains("shrinking.pcap"), "{stderr}");
            return;
        }
        assert!(out.status.code().is_some(), "killed by a signal: {stderr}");
        eprintln!("attempt {attempt}: the read finished before the truncation; trying again");
    }
    panic!("the truncation never landed during a read");
}
