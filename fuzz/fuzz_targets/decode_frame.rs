//! The packet decoder from every supported link type: the first byte picks
//! the link type, the rest is the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, frame)) = data.split_first() {
        kpcap::fuzzing::decode_frame(pick, frame);
    }
});
