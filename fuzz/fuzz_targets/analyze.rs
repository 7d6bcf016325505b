//! The whole `analyze` path on an in-memory capture: reading, decoding,
//! flows, detectors, verdict and every report format.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kpcap::fuzzing::analyze(data));
