//! Analysis throughput over a generated 64 MiB capture (never committed:
//! the deterministic generator makes it in memory), reported in bytes/s.
//!
//! `cargo bench --bench throughput` (`-- analyze` for the detectors only)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kpcap::capture::{Bytes, Capture, DEFAULT_CHUNK_BYTES};
use kpcap::detect::{Context, Findings, Settings};
use kpcap::pipeline::{flow_table, observations, Reading};
use kpcap::synth::{self, Container, Scenario};
use kpcap::topology::{Preset, Topology};

const SIZE: u64 = 64 << 20;

fn analysis(c: &mut Criterion) {
    let mut group = c.benchmark_group("flows");
    group.sample_size(10);
    let reading = Reading::default();
    for container in [Container::Pcap, Container::Pcapng] {
        let bytes = synth::generate(Scenario::Mixed { bytes: SIZE }, container, 1);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let capture = Capture::from_bytes(Bytes::Owned(bytes), DEFAULT_CHUNK_BYTES)
            .expect("generated capture is valid");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let id = BenchmarkId::new(format!("{container:?}"), format!("{threads}-threads"));
            group.bench_with_input(id, &capture, |b, capture| {
                b.iter(|| pool.install(|| flow_table(capture, &reading)).flows.len())
            });
        }
        // The indexing pass alone (validating every record header).
        let raw = synth::generate(Scenario::Mixed { bytes: SIZE }, container, 1);
        group.bench_function(
            BenchmarkId::new(format!("{container:?}"), "index-only"),
            |b| {
                b.iter_batched(
                    || raw.clone(),
                    |bytes| {
                        Capture::from_bytes(Bytes::Owned(bytes), DEFAULT_CHUNK_BYTES)
                            .unwrap()
                            .layout()
                            .records
                    },
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

/// `kpcap analyze`'s work: observations (flows, ICMP, DNS), merge,
/// detectors and verdict.
fn detectors(c: &mut Criterion) {
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    let bytes = synth::generate(Scenario::Mixed { bytes: SIZE }, Container::Pcap, 1);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let capture = Capture::from_bytes(Bytes::Owned(bytes), DEFAULT_CHUNK_BYTES)
        .expect("generated capture is valid");
    let settings = Settings::default();
    let topology = Topology::preset(Preset::K3s, true);
    let reading = Reading::default();
    let names = reading.names(capture.layout());
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let id = BenchmarkId::new("Pcap", format!("{threads}-threads"));
        group.bench_with_input(id, &capture, |b, capture| {
            b.iter(|| {
                pool.install(|| {
                    let observed = observations(capture, &reading, &settings);
                    let context = Context {
                        topology: &topology,
                        settings: &settings,
                        interfaces: &names,
                    };
                    let findings = Findings::new(observed, &context);
                    kpcap::detect::verdict::correlate(&findings).causes.len()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, analysis, detectors);
criterion_main!(benches);
