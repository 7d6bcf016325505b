//! Runs a parsed command: validated settings in, report on stdout, warnings
//! and errors on stderr, exit code out.

use crate::cli::{
    AnalyzeArgs, By, Cli, Command, CommonArgs, ContainerArg, FailOn, FloorArgs, FlowsArgs,
    OutputFormat, PresetArg, ScenarioArg, SynthArgs, TopologyArgs, ViewArg,
};
use anyhow::{Context, Result};
use ipnet::IpNet;
use kpcap::capture::Capture;
use kpcap::decode::Decoder;
use kpcap::detect::{Context as DetectContext, Findings, Settings, Severity};
use kpcap::error::ConfigError;
use kpcap::interface::DeviceKey;
use kpcap::pipeline::Reading;
use kpcap::report::{AnalyzeReport, CaptureHeader, FlowsReport, Grouping, JsonDocument};
use kpcap::synth;
use kpcap::topology::{Preset, Topology};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Flows(args) => flows(args),
        Command::Synth(args) => synthesize(args),
        Command::Floor(args) => floor(args),
    }
}

fn parse_cidrs(flag: &'static str, values: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    values
        .iter()
        .map(|v| {
            v.parse::<IpNet>().map_err(|_| ConfigError::BadCidr {
                flag,
                value: v.clone(),
            })
        })
        .collect()
}

fn topology(args: &TopologyArgs) -> Result<Topology, ConfigError> {
    let pod = parse_cidrs("pod-cidr", &args.pod)?;
    let service = parse_cidrs("service-cidr", &args.service)?;
    let node = parse_cidrs("node-cidr", &args.node)?;
    let internal = parse_cidrs("internal-cidr", &args.internal)?;
    let none_given = pod.is_empty() && service.is_empty() && node.is_empty() && internal.is_empty();
    match args.preset {
        None if none_given => Ok(Topology::preset(Preset::K3s, true)),
        None => Ok(Topology::new(pod, service, node, internal, "flags".into())),
        Some(PresetArg::K3s) => {
            let base = Topology::preset(Preset::K3s, false);
            let source = if none_given {
                base.source.clone()
            } else {
                "preset k3s plus flags".into()
            };
            Ok(Topology::new(
                [base.pod, pod].concat(),
                [base.service, service].concat(),
                [base.node, node].concat(),
                [base.internal, internal].concat(),
                source,
            ))
        }
    }
}

fn reading(args: &CommonArgs) -> Result<Reading, ConfigError> {
    let mut device_names = std::collections::BTreeMap::new();
    for text in &args.ifnames {
        let (key, name) = text
            .split_once('=')
            .and_then(|(k, n)| Some((DeviceKey::parse(k.trim())?, n.trim())))
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| ConfigError::BadIfname(text.clone()))?;
        device_names.insert(key, name.to_string());
    }
    Ok(Reading {
        decoder: Decoder::with_vxlan_ports(&args.vxlan_ports),
        device_names,
        only_interfaces: args.interfaces.clone(),
    })
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    if threads == Some(0) {
        return Err(ConfigError::Threads("must be at least 1".into()).into());
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    builder
        .build()
        .map_err(|e| ConfigError::Threads(e.to_string()).into())
}

/// One capture's outcome in a JSON document: its report or its error.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<T: Serialize> {
    Report(T),
    Failed { file: String, error: String },
}

/// Opens and analyzes each capture in turn. A bad file is reported on
/// stderr and recorded; the others go on (batch scans).
fn for_each_capture<T: Serialize>(
    paths: &[std::path::PathBuf],
    common: &CommonArgs,
    mut analyze: impl FnMut(&str, &Capture) -> Result<T>,
) -> (Vec<Entry<T>>, bool) {
    let mut entries = Vec::new();
    let mut ok = true;
    for path in paths {
        let name = display_name(path);
        let outcome = Capture::open(path, common.chunk_bytes)
            .map_err(anyhow::Error::from)
            .and_then(|capture| {
                let report = analyze(&name, &capture);
                // Known once the capture has been walked.
                for warning in capture.warnings() {
                    eprintln!("kpcap: warning: {name}: {warning}");
                }
                report
            });
        match outcome {
            Ok(report) => entries.push(Entry::Report(report)),
            Err(e) => {
                eprintln!("kpcap: error: {name}: {e:#}");
                entries.push(Entry::Failed {
                    file: name,
                    error: format!("{e:#}"),
                });
                ok = false;
            }
        }
    }
    (entries, ok)
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

fn flows(args: FlowsArgs) -> Result<i32> {
    let topology = topology(&args.common.topology)?;
    let reading = reading(&args.common)?;
    let pool = thread_pool(args.common.threads)?;
    let by = match args.by {
        By::Pair => Grouping::Pair,
        By::FiveTuple => Grouping::FiveTuple,
    };
    // Buffered: stdout is line-buffered, and JSON reports are megabytes.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let format = args.common.format;
    let (entries, ok) = for_each_capture(&args.captures, &args.common, |name, capture| {
        let table = pool.install(|| kpcap::pipeline::flow_table(capture, &reading))?;
        let names = reading.names(capture.layout());
        let header = CaptureHeader::new(name, capture, &table.summary, &names);
        let report = FlowsReport::new(header, &table, &topology, &names, by);
        drop_in_background(table);
        match format {
            // Printed as each capture finishes, so batch scans show progress.
            OutputFormat::Table => writeln!(out, "{}", report.render(&topology, args.limit))?,
            OutputFormat::Ndjson => {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            }
            OutputFormat::Json => {}
        }
        out.flush()?;
        Ok(report)
    });
    if format == OutputFormat::Json {
        write_document(&mut out, "kpcap.flows/2", topology, None, &entries)?;
    }
    out.flush()?;
    exiting(entries);
    Ok(if ok { 0 } else { 2 })
}

fn write_document<T: Serialize>(
    out: &mut impl Write,
    schema: &'static str,
    topology: Topology,
    settings: Option<Settings>,
    captures: &[Entry<T>],
) -> Result<()> {
    let doc = JsonDocument {
        schema,
        kpcap_version: env!("CARGO_PKG_VERSION"),
        topology,
        settings,
        captures,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

fn analyze(args: AnalyzeArgs) -> Result<i32> {
    let topology = topology(&args.common.topology)?;
    let reading = reading(&args.common)?;
    let pool = thread_pool(args.common.threads)?;
    let settings = Settings {
        syn_grace_ns: args.syn_grace.as_nanos().min(u64::MAX as u128) as u64,
        dns_timeout_ns: args.dns_timeout.as_nanos().min(u64::MAX as u128) as u64,
        dns_ports: args.dns_ports.clone(),
    };
    let threshold = match args.fail_on {
        FailOn::Failure => Some(Severity::Failure),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Never => None,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let format = args.common.format;
    let mut failing = false;
    let (entries, ok) = for_each_capture(&args.captures, &args.common, |name, capture| {
        let mut clock = Stopwatch::from_env();
        let mut observations =
            pool.install(|| kpcap::pipeline::observations(capture, &reading, &settings))?;
        clock.lap("walk, decode, observe, merge");
        let names = reading.names(capture.layout());
        let context = DetectContext {
            topology: &topology,
            settings: &settings,
            interfaces: &names,
        };
        let header = CaptureHeader::new(name, capture, &observations.flows.summary, &names);
        let findings = pool.install(|| Findings::new(&mut observations, &context));
        drop_in_background(observations);
        let report = AnalyzeReport::new(header, findings);
        clock.lap("detectors");
        failing |= matches!((report.worst(), threshold), (Some(w), Some(t)) if w >= t);
        match format {
            OutputFormat::Table => writeln!(out, "{}", report.render(&topology, args.limit))?,
            OutputFormat::Ndjson => {
                for line in report.ndjson_lines() {
                    serde_json::to_writer(&mut out, &line)?;
                    writeln!(out)?;
                }
            }
            OutputFormat::Json => {}
        }
        out.flush()?;
        clock.lap("report");
        Ok(report)
    });
    if format == OutputFormat::Json {
        write_document(
            &mut out,
            "kpcap.analyze/1",
            topology,
            Some(settings),
            &entries,
        )?;
    }
    out.flush()?;
    exiting(entries);
    Ok(match (ok, failing) {
        (false, _) => 2,
        (true, true) => 1,
        (true, false) => 0,
    })
}

fn floor(args: FloorArgs) -> Result<i32> {
    let pool = thread_pool(args.threads)?;
    let loaded = kpcap::capture::load(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let sum = pool.install(|| kpcap::capture::floor::sum_words(&loaded.bytes));
    println!("{sum:016x}");
    Ok(0)
}

fn synthesize(args: SynthArgs) -> Result<i32> {
    let size = synth::parse_size(&args.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let container = match args.container {
        ContainerArg::Pcap => synth::Container::Pcap,
        ContainerArg::Pcapng => synth::Container::Pcapng,
    };
    let view = match args.view {
        ViewArg::Ens19 => synth::View::Ens19,
        ViewArg::TwoNics => synth::View::TwoNics,
        ViewArg::AnySll => synth::View::Any(synth::Link::Sll),
        ViewArg::AnySll2 => synth::View::Any(synth::Link::Sll2),
    };
    let scenario = match args.scenario {
        ScenarioArg::Mixed => synth::Scenario::Mixed {
            bytes: size,
            conversations: args.conversations,
        },
        ScenarioArg::Small => synth::Scenario::SmallPackets { bytes: size },
        ScenarioArg::IncidentBefore => synth::Scenario::Incident(synth::Phase::Before, view),
        ScenarioArg::IncidentAfter => synth::Scenario::Incident(synth::Phase::After, view),
        ScenarioArg::OverlayVxlan => synth::Scenario::Overlay(synth::TunnelKind::Vxlan),
        ScenarioArg::OverlayGeneve => synth::Scenario::Overlay(synth::TunnelKind::Geneve),
        ScenarioArg::OverlayIpip => synth::Scenario::Overlay(synth::TunnelKind::Ipip),
    };
    let bytes = synth::generate(scenario, container, args.seed);
    if args.output.as_os_str() == "-" {
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        std::fs::write(&args.output, &bytes)
            .with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!(
            "kpcap: wrote {} bytes to {}",
            bytes.len(),
            args.output.display()
        );
    }
    Ok(0)
}

/// Phase timings on stderr when `KPCAP_TIMINGS` is set: where a run's time
/// goes, without a profiler.
struct Stopwatch(Option<std::time::Instant>);

impl Stopwatch {
    fn from_env() -> Self {
        Stopwatch(std::env::var_os("KPCAP_TIMINGS").map(|_| std::time::Instant::now()))
    }

    fn lap(&mut self, phase: &str) {
        if let Some(start) = &mut self.0 {
            eprintln!(
                "kpcap: timing: {phase}: {:.3}s",
                start.elapsed().as_secs_f64()
            );
            *start = std::time::Instant::now();
        }
    }
}

/// Frees a large value (a flow table: a million flows take a noticeable
/// fraction of a second to free) on another thread, so the next capture or
/// the report does not wait for it.
fn drop_in_background<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// The reports of a run that is about to exit: the operating system takes
/// their memory back faster than freeing them one allocation at a time.
fn exiting<T>(reports: Vec<T>) {
    std::mem::forget(reports);
}
