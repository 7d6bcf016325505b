//! A `--cluster` file: kubectl JSON/YAML dumps and `ip -j` output.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kpcap::fuzzing::cluster(data));
