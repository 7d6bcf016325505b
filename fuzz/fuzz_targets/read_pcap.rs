//! The classic pcap reader: planned (guessed chunk starts), exact, and
//! streamed, on arbitrary bytes. Seeds: testdata/*.pcap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kpcap::fuzzing::read_all(data));
