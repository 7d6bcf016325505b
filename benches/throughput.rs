//! Throughput of `flows` and `analyze` against the memory-read floor, in
//! bytes/s, over three generated captures written once under
//! `target/bench-data/` (never committed), each announced with its
//! locality (distinct flows per 10 000 consecutive packets):
//!
//! - `busy`: a busy node's NIC, thousands of flows active at once (~3 300
//!   distinct flows per 10 000 packets), ~190k flows and ~2.5M packets per
//!   GiB: the headline capture;
//! - `busy-any`: the same node with `tcpdump -i any` (SLL2): a pod's
//!   packets seen on its lxc device and again on the NIC, so the copies
//!   are told apart on every record;
//! - `mixed`: an egress NIC with 48 conversations at a time, 60-1514 byte
//!   frames (about 450 on average), ~150k flows per GiB: handshakes, DNS,
//!   VXLAN, unanswered SYNs, pod egress;
//! - `small`: DNS lookups, SYNs and bare ACKs, about 70-byte frames.
//!
//! Each iteration is the whole job on the file: map, index, analyze. The
//! `floor` in the same group maps the file and reads every byte once with
//! the same thread count; analyze/floor is the figure that matters.
//!
//! `cargo bench --bench throughput` (`-- busy`, `-- busy-any`, `-- mixed`,
//! `-- small`, `-- analyze`)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kpcap::analysis::{flow_table, Analyzer};
use kpcap::capture::{floor, load, Input, DEFAULT_CHUNK_BYTES};
use kpcap::detect::{Evidence, Settings};
use kpcap::pipeline::Reading;
use kpcap::synth::{self, Container, Link, Scenario};
use kpcap::topology::{Preset, Topology};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The capture for `name`, generated on first use.
fn bench_capture(name: &str, scenario: Scenario) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let path = dir.join(format!("{name}.pcap"));
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("target/ is writable");
        let file = std::fs::File::create(&path).expect("create bench capture");
        let out = std::io::BufWriter::new(file);
        synth::write(out, scenario, Container::Pcap, 1).expect("write bench capture");
        eprintln!("generated {}", path.display());
    }
    path
}

/// The whole analysis, with all the evidence a JSON report lists (a table
/// needs less).
fn analyze(path: &Path, reading: &Reading, settings: &Settings, topology: &Topology) -> usize {
    let analyzer = Analyzer {
        topology,
        settings,
        reading,
        chunk_bytes: DEFAULT_CHUNK_BYTES,
        evidence: Evidence::All,
        names: None,
    };
    let outcome = analyzer
        .analyze("bench", &[path.to_path_buf()])
        .expect("valid capture");
    outcome.verdict.causes.len()
}

fn group(c: &mut Criterion, name: &str, scenario: Scenario) {
    let path = bench_capture(name, scenario);
    let bytes = std::fs::metadata(&path).expect("bench capture").len();
    let reading = Reading::default();
    let input = Input::open(&path, DEFAULT_CHUNK_BYTES).expect("valid");
    let l = kpcap::analysis::locality(input, &reading).expect("valid");
    eprintln!(
        "{name}: {bytes} bytes, {} IP packets, {} flows, {:.0} distinct flows per {} consecutive packets (at least {})",
        l.packets,
        l.flows,
        l.mean,
        kpcap::analysis::WINDOW,
        l.min
    );
    let settings = Settings::default();
    let topology = Topology::preset(Preset::K3s, true);
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(bytes));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let id = |what: &str| BenchmarkId::new(what, format!("{threads}-threads"));
        group.bench_function(id("floor"), |b| {
            b.iter(|| pool.install(|| floor::sum_words(&load(&path).expect("readable"))))
        });
        group.bench_function(id("flows"), |b| {
            b.iter(|| {
                pool.install(|| {
                    let capture = Input::open(&path, DEFAULT_CHUNK_BYTES).expect("valid");
                    flow_table(capture, &reading).expect("valid").0.flows.len()
                })
            })
        });
        group.bench_function(id("analyze"), |b| {
            b.iter(|| pool.install(|| analyze(&path, &reading, &settings, &topology)))
        });
    }
    group.finish();
}

fn busy(c: &mut Criterion) {
    let busy = Scenario::Busy {
        bytes: 1 << 30,
        any: None,
    };
    group(c, "busy", busy);
}

fn busy_any(c: &mut Criterion) {
    let busy = Scenario::Busy {
        bytes: 1 << 30,
        any: Some(Link::Sll2),
    };
    group(c, "busy-any", busy);
}

fn mixed(c: &mut Criterion) {
    group(
        c,
        "mixed",
        Scenario::Mixed {
            bytes: 1 << 30,
            conversations: None,
        },
    );
}

fn small(c: &mut Criterion) {
    group(
        c,
        "small",
        Scenario::SmallPackets {
            bytes: 128 << 20,
            conversations: None,
        },
    );
}

criterion_group!(benches, busy, busy_any, mixed, small);
criterion_main!(benches);
