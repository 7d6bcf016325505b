//! Entry points for the fuzz targets (`fuzz/`, `cargo fuzz`) and the
//! mutation tests: each takes arbitrary bytes and must return without
//! panicking, hanging or allocating without bound. Typed errors are fine
//! answers; a panic is a bug.

use crate::analysis::Analyzer;
use crate::capture::{link_type_supported, Bytes, Capture, Input, Stream};
use crate::decode::dns::DnsMessage;
use crate::decode::Decoder;
use crate::detect::{Evidence, Settings};
use crate::pipeline::{self, Reading};
use crate::report::analyze as analyze_report;
use crate::topology::{Preset, Topology};

/// Small chunks, so planning, guessed starts and the fallback to the
/// exact walk all run on small inputs.
const CHUNK_BYTES: usize = 512;

/// Both ways a capture is read: mapped (planned chunks, checked by the
/// walk) and streamed (bounded segments).
fn inputs(data: &[u8]) -> Vec<Input> {
    let mut inputs = Vec::new();
    let reader = Box::new(std::io::Cursor::new(data.to_vec()));
    if let Ok(stream) = Stream::open(reader, None, CHUNK_BYTES) {
        inputs.push(Input::Stream(stream));
    }
    if let Ok(capture) = Capture::from_bytes(Bytes::Owned(data.to_vec()), CHUNK_BYTES) {
        inputs.push(Input::Mapped(capture));
    }
    inputs
}

/// Reads every record, both ways, into a flow table.
pub fn read_all(data: &[u8]) {
    for input in inputs(data) {
        if let Ok((table, _)) = crate::analysis::flow_table(input, &Reading::default()) {
            // Every record has at least a 12-byte header.
            assert!(table.summary.packets <= data.len() as u64 / 12);
        }
    }
}

/// Decodes `frame` as link type number `pick` of the supported ones.
pub fn decode_frame(pick: u8, frame: &[u8]) {
    let supported: Vec<u32> = (0..300).filter(|&t| link_type_supported(t)).collect();
    let link_type = supported[pick as usize % supported.len()];
    let decoder = Decoder::with_vxlan_ports(&[4790]);
    let packet = decoder.decode(link_type, frame);
    let _ = pipeline::signature(&packet);
    // The straight path (`decode/plain.rs`) decodes as the layers do.
    let layered = decoder.decode_layered(link_type, frame);
    assert_eq!(format!("{packet:?}"), format!("{layered:?}"));
    assert_eq!(packet.l4.as_ptr_range(), layered.l4.as_ptr_range());
}

pub fn dns(data: &[u8]) {
    if let Some(message) = DnsMessage::parse(data) {
        let _ = (message.id(), message.rcode(), message.opcode());
        let _ = (message.is_response(), message.question_count());
        let _ = message.question();
    }
}

/// Runs `f` with an analyzer of default settings (the k3s preset) that
/// builds `evidence`.
pub fn with_default_analyzer<R>(
    chunk_bytes: usize,
    evidence: Evidence,
    f: impl FnOnce(&Analyzer<'_>) -> R,
) -> R {
    let topology = Topology::preset(Preset::K3s, true);
    let settings = Settings::default();
    let reading = Reading::default();
    f(&Analyzer {
        topology: &topology,
        settings: &settings,
        reading: &reading,
        chunk_bytes,
        evidence,
        names: None,
    })
}

/// The whole analyze path, both ways, with every report rendered; half
/// the inputs (by length) build brief evidence, as a table's analysis
/// does.
pub fn analyze(data: &[u8]) {
    let evidence = match data.len() % 2 {
        0 => Evidence::All,
        _ => Evidence::Brief,
    };
    with_default_analyzer(CHUNK_BYTES, evidence, |analyzer| {
        analyze_with(analyzer, data)
    });
}

fn analyze_with(analyzer: &Analyzer<'_>, data: &[u8]) {
    for input in inputs(data) {
        let Ok((mut observations, info)) = analyzer.observe_input(input) else {
            continue;
        };
        assert!(observations.flows.summary.packets <= data.len() as u64 / 12);
        let outcome = analyzer.outcome("fuzz", &[], &mut observations, &info);
        let _ = analyze_report::render(&outcome, analyzer.topology, &Default::default());
        let _ = serde_json::to_string(&outcome).expect("reports serialize");
        let _ = analyze_report::ndjson_lines(&outcome);
        let _ = crate::scan::Digest::of(&outcome);
    }
}

/// A `--cluster` file: read as a dump (JSON, YAML or `ip -j` output), its
/// plan, names and capture node worked out, every name asked for.
pub fn cluster(data: &[u8]) {
    use crate::cluster::{Directory, Inventory, Plan};
    let mut inventory = Inventory::default();
    inventory.read_bytes("fuzz.json", data);
    inventory.match_hosts();
    let plan = Plan::new(&inventory);
    assert!(plan.pod.nets.len() <= inventory.nodes.len() + inventory.pod_cidrs.len());
    let directory = Directory::new(&inventory, None);
    let addresses: Vec<std::net::IpAddr> = (inventory.pods.iter())
        .flat_map(|p| p.ips.iter().copied())
        .chain(
            inventory
                .services
                .iter()
                .flat_map(|s| s.cluster_ips.iter().copied()),
        )
        .chain(
            inventory
                .nodes
                .iter()
                .flat_map(|n| n.internal.iter().copied()),
        )
        .collect();
    for addr in &addresses {
        let _ = directory.name(*addr, Some(crate::time::Timestamp(0)));
    }
    let pairs = addresses.windows(2).map(|w| ((w[0], w[1]), 1));
    let _ = directory.capture_node(pairs);
}
