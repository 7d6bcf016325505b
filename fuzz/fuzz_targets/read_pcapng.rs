//! The pcapng reader (sections, interfaces, packet blocks), mapped and
//! streamed. Seeds: testdata/*.pcapng. Inputs that do not start with a
//! section header get one, so every input exercises the block walk.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        kpcap::fuzzing::read_all(data);
    } else {
        let mut with_header = vec![0x0a, 0x0d, 0x0d, 0x0a];
        with_header.extend_from_slice(data);
        kpcap::fuzzing::read_all(&with_header);
    }
});
