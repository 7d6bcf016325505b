//! A deterministic mutation fuzzer for the readers and decoders, cheap
//! enough for every test run: real and generated captures with bytes
//! flipped, lengths corrupted and tails cut must give a report or a typed
//! error, never a panic.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Per file; `KPCAP_FUZZ_MUTATIONS=100000` runs a longer campaign.
fn mutations_per_file() -> usize {
    std::env::var("KPCAP_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn random_bytes_never_panic_the_dns_decoder() {
    let mut rng = ChaCha8Rng::seed_from_u64(53);
    for _ in 0..mutations_per_file() * 50 {
        let len = rng.gen_range(0..96);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Bias towards plausible headers and compression pointers.
        if len >= 12 {
            bytes[2] &= 0x87;
            bytes[4] = 0;
            bytes[5] = 1;
        }
        kpcap::fuzzing::dns(&bytes);
    }
}

/// Runs one mutation; a panic is raised again naming the input, the
/// mutation and its seed, so it can be reproduced.
fn named_panic(name: &dyn std::fmt::Display, mutation: usize, seed: u64, run: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        let message = (panic.downcast_ref::<String>().map(String::as_str))
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        panic!("{name} mutation {mutation} (seed {seed:#x}): {message}");
    }
}

fn mutate(original: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.gen_range(0..4) {
        // Flip a few random bytes anywhere.
        0 => {
            for _ in 0..rng.gen_range(1..16) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
        }
        // Overwrite a 4-byte field with an extreme value (lengths, counts).
        1 => {
            let i = rng.gen_range(0..bytes.len().saturating_sub(4).max(1));
            let value: u32 = [0, 1, 0xffff_ffff, 0x8000_0000, 12, 65535][rng.gen_range(0..6)];
            let end = (i + 4).min(bytes.len());
            bytes[i..end].copy_from_slice(&value.to_le_bytes()[..end - i]);
        }
        // Cut the tail anywhere.
        2 => bytes.truncate(rng.gen_range(0..bytes.len())),
        // Damage only the packet area, keeping the file header intact.
        _ => {
            for _ in 0..rng.gen_range(1..64) {
                let i = rng.gen_range(24.min(bytes.len() - 1)..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
        }
    }
    bytes
}

#[test]
fn mutated_captures_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    for (index, file) in files.iter().enumerate() {
        let original = std::fs::read(file).unwrap();
        // Fuzz the first 16 KiB: tens of records and 32 chunks of 512
        // bytes, so planning, guesses and merges all run, in a time a
        // laptop's test run affords (64 KiB took 4 minutes on 2 cores).
        let original = &original[..original.len().min(16 << 10)];
        // The fuzz targets' entry point: mapped and streamed, every report.
        kpcap::fuzzing::analyze(original);
        // Mutations run on the pool's workers, where the analysis's own
        // small parallel steps cost little; each has its own seed, so a
        // failure names the file and mutation that reproduce it.
        (0..mutations_per_file())
            .into_par_iter()
            .for_each(|mutation| {
                let seed = 0x6b70636170 ^ ((index as u64) << 32) ^ mutation as u64;
                let mutated = mutate(original, &mut ChaCha8Rng::seed_from_u64(seed));
                let name = file.display();
                named_panic(&name, mutation, seed, || kpcap::fuzzing::analyze(&mutated));
            });
    }
    assert!(files.len() >= 20);
}

/// A pod and a service of a `kubectl -o yaml` dump, for the YAML reader.
const YAML_DUMP: &str = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: web-5c6d8f7b9-q7w2e\n    namespace: default\n    ownerReferences:\n    - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5c6d8f7b9, controller: true}\n  spec: {nodeName: w1, hostNetwork: false}\n  status:\n    phase: Running\n    podIPs:\n    - ip: 10.42.1.7\n    - ip: fd00:42::7\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web, namespace: default}\n  spec:\n    clusterIPs: [10.43.9.9]\n    ports:\n    - {name: http, port: 80, protocol: TCP}\n";

#[test]
fn mutated_cluster_dumps_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/incident-cluster");
    let mut dumps: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    dumps.sort();
    dumps.push(("yaml".into(), YAML_DUMP.as_bytes().to_vec()));
    assert!(dumps.len() >= 3);
    for (index, (name, original)) in dumps.iter().enumerate() {
        kpcap::fuzzing::cluster(original);
        // Dumps are cheap to read: ten times the captures' mutations.
        (0..mutations_per_file() * 10)
            .into_par_iter()
            .for_each(|mutation| {
                let seed = 0x636c7573746572 ^ ((index as u64) << 32) ^ mutation as u64;
                let mutated = mutate(original, &mut ChaCha8Rng::seed_from_u64(seed));
                named_panic(name, mutation, seed, || kpcap::fuzzing::cluster(&mutated));
            });
    }
}
