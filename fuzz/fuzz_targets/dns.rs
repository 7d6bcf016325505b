//! The DNS message parser (header, question, name decompression).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kpcap::fuzzing::dns(data));
