//! Twice the input costs about twice the steps (`crate::ops`) on every
//! hostile class (`synth::Hostile`): each inner loop that was quadratic on
//! one of them counts its steps, so one turning quadratic again fails here
//! (not on a clock).

use super::Analyzer;
use crate::capture::{Bytes, Capture, Input, Stream};
use crate::detect::{Evidence, Settings};
use crate::pipeline::Reading;
use crate::synth::{self, Container, Hostile, Scenario};
use crate::topology::{Preset, Topology};

/// The steps of analyzing `class` at about `bytes`, mapped or streamed,
/// on a pool of its own whose threads' counts are summed (tests running
/// beside it count on threads of their own).
fn steps(class: Hostile, bytes: u64, streamed: bool) -> u64 {
    let capture = synth::generate(Scenario::Hostile { class, bytes }, Container::Pcap, 1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.broadcast(|_| crate::ops::take());
    pool.install(|| {
        let topology = Topology::preset(Preset::K3s, false);
        let settings = Settings::default();
        let reading = Reading {
            window_bytes: Some(1 << 20),
            ..Reading::default()
        };
        let analyzer = Analyzer {
            topology: &topology,
            settings: &settings,
            reading: &reading,
            chunk_bytes: 64 << 10,
            evidence: Evidence::All,
            names: None,
        };
        let input = if streamed {
            let reader = Box::new(std::io::Cursor::new(capture));
            Input::Stream(Stream::open(reader, None, 64 << 10).unwrap())
        } else {
            Input::Mapped(Capture::from_bytes(Bytes::Owned(capture), 64 << 10).unwrap())
        };
        let (mut observed, info) = analyzer.observe_input(input).unwrap();
        analyzer.outcome("hostile", &[], &mut observed, &info);
    });
    pool.broadcast(|_| crate::ops::take()).iter().sum()
}

fn assert_linear(class: Hostile, bytes: u64, streamed: bool) {
    let (one, two) = (
        steps(class, bytes, streamed),
        steps(class, 2 * bytes, streamed),
    );
    assert!(one > 0, "{class:?}: no step counted");
    let ratio = two as f64 / one as f64;
    assert!(
        ratio < 2.3,
        "{class:?} (streamed: {streamed}): {one} steps at {bytes} bytes, {two} at twice that"
    );
}

#[test]
fn resynchronising_over_zeros_and_garbage_is_linear() {
    for streamed in [false, true] {
        assert_linear(Hostile::Zeros, 4 << 20, streamed);
        assert_linear(Hostile::Garbage, 2 << 20, streamed);
    }
}

#[test]
fn a_new_interface_per_packet_is_linear() {
    assert_linear(Hostile::IfindexChurn, 1 << 20, false);
    assert_linear(Hostile::ManyInterfaces, 1 << 20, false);
}

#[test]
fn one_dns_key_and_one_tcp_stream_are_linear() {
    assert_linear(Hostile::DnsCopies, 2 << 20, false);
    assert_linear(Hostile::LateDns, 2 << 20, false);
    assert_linear(Hostile::DnsTcpStream, 2 << 20, true);
}

#[test]
fn a_syn_flood_is_linear() {
    assert_linear(Hostile::SynFlood, 2 << 20, false);
}
