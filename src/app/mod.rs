//! Runs a parsed command: validated settings in, report on stdout, warnings
//! and errors on stderr, exit code out. One module per command family.

mod analyze;
mod cluster;
mod diff;
mod progress;
mod scan;

use crate::cli::{
    Cli, ColorArg, Command, CommonArgs, ContainerArg, DetectorArgs, FailOn, FaultArg, FloorArgs,
    GlobalArgs, OutputFormat, PresetArg, ScenarioArg, SynthArgs, TopologyArgs, ViewArg,
};
use anyhow::{Context, Result};
use ipnet::IpNet;
use kpcap::cluster::{Directory, Plan};
use kpcap::decode::Decoder;
use kpcap::detect::{Settings, Severity};
use kpcap::error::ConfigError;
use kpcap::interface::DeviceKey;
use kpcap::pipeline::{Reading, BOUNDED_WINDOW_BYTES};
use kpcap::report::{Format, Layout, Output};
use kpcap::synth;
use kpcap::topology::{Preset, Topology};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub fn run(cli: Cli) -> Result<i32> {
    let global = &cli.global;
    match cli.command {
        Command::Analyze(args) => analyze::analyze(args, global),
        Command::Flows(args) => analyze::flows(args, global),
        Command::Scan(args) => scan::scan(args, global),
        Command::Merge(args) => scan::merge(args, global),
        Command::Diff(args) => diff::diff(args, global),
        Command::Synth(args) => synthesize(args),
        Command::Floor(args) => floor(args),
        Command::Locality(args) => locality(args),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(args.shell, &mut command, "kpcap", &mut out);
            out.flush().map_err(OutputError)?;
            Ok(0)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| out.flush())
                .map_err(OutputError)?;
            Ok(0)
        }
    }
}

/// What every analyzing command validates from its flags first.
struct Setup {
    topology: Topology,
    reading: Reading,
    settings: Settings,
    pool: rayon::ThreadPool,
    chunk_bytes: usize,
    /// Names of the addresses `--cluster` knows.
    names: Option<Directory>,
    /// `--node`: of every capture, or of named ones.
    nodes: cluster::NodeFlags,
}

impl Setup {
    fn new(common: &CommonArgs, detectors: Option<&DetectorArgs>) -> Result<Setup> {
        let settings = detectors.map(settings).transpose()?.unwrap_or_default();
        let mut reading = reading(common)?;
        if settings.max_flows.is_some() {
            reading.window_bytes = reading.window_bytes.or(Some(BOUNDED_WINDOW_BYTES));
        }
        let nodes = cluster::NodeFlags::parse(&common.topology.node_name)?;
        let inventory = cluster::inventory(&common.topology)?;
        let plan = inventory.as_ref().map(cluster::plan);
        if let Some(inventory) = &inventory {
            cluster::name_devices(inventory, nodes.all.as_deref(), &mut reading)?;
        }
        Ok(Setup {
            topology: topology(&common.topology, plan.as_ref())?,
            reading,
            settings,
            pool: thread_pool(common.threads)?,
            chunk_bytes: common.chunk_bytes,
            names: (inventory.as_ref()).map(|i| Directory::new(i, nodes.all.as_deref())),
            nodes,
        })
    }

    /// An analyzer whose findings list `evidence`.
    fn analyzer(&self, evidence: kpcap::detect::Evidence) -> kpcap::analysis::Analyzer<'_> {
        kpcap::analysis::Analyzer {
            topology: &self.topology,
            settings: &self.settings,
            reading: &self.reading,
            chunk_bytes: self.chunk_bytes,
            evidence,
            names: self.names.as_ref(),
        }
    }
}

/// Most worker threads `--threads` takes: far beyond any machine kpcap
/// runs on, and each one costs a stack and a share of every window.
pub const MAX_THREADS: usize = 256;

fn settings(args: &DetectorArgs) -> Result<Settings, ConfigError> {
    let ns = |d: std::time::Duration| d.as_nanos().min(u64::MAX as u128) as u64;
    let positive = |flag, d: std::time::Duration| {
        if d.is_zero() {
            Err(ConfigError::Invalid {
                flag,
                reason: "must be longer than 0 (e.g. 3s, 500ms)".into(),
            })
        } else {
            Ok(ns(d))
        }
    };
    if args.dns_ports.contains(&0) {
        return Err(ConfigError::Invalid {
            flag: "dns-port",
            reason: "port 0 is not a port DNS can be served on".into(),
        });
    }
    Ok(Settings {
        syn_grace_ns: positive("syn-grace", args.syn_grace)?,
        dns_timeout_ns: positive("dns-timeout", args.dns_timeout)?,
        dns_ports: args.dns_ports.clone(),
        max_flows: args.max_flows.map(|n| n as usize),
    })
}

/// The severity `--fail-on` makes count, if any.
fn threshold(fail_on: FailOn) -> Option<Severity> {
    match fail_on {
        FailOn::Failure => Some(Severity::Failure),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Never => None,
    }
}

fn at_or_above(worst: Option<Severity>, threshold: Option<Severity>) -> bool {
    matches!((worst, threshold), (Some(w), Some(t)) if w >= t)
}

/// The CIDRs of a flag; one with host bits set (10.42.1.5/16) is taken
/// as its network, with a warning.
fn parse_cidrs(flag: &'static str, values: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    values
        .iter()
        .map(|v| {
            let net = v.parse::<IpNet>().map_err(|_| ConfigError::BadCidr {
                flag,
                value: v.clone(),
            })?;
            if net.trunc() != net {
                eprintln!(
                    "kpcap: warning: --{flag} {v} has host bits set; using {}",
                    net.trunc()
                );
            }
            Ok(net.trunc())
        })
        .collect()
}

/// The address plan: the preset's CIDRs (k3s unless `--preset none`),
/// where a class given by flags replaces the preset's CIDRs of that class.
fn topology(args: &TopologyArgs, plan: Option<&Plan>) -> Result<Topology, ConfigError> {
    let flags = [
        ("pod", parse_cidrs("pod-cidr", &args.pod)?),
        ("service", parse_cidrs("service-cidr", &args.service)?),
        ("node", parse_cidrs("node-cidr", &args.node)?),
        ("internal", parse_cidrs("internal-cidr", &args.internal)?),
    ];
    let given: Vec<&str> = (flags.iter())
        .filter(|(_, nets)| !nets.is_empty())
        .map(|(class, _)| *class)
        .collect();
    let base = match args.preset {
        Some(PresetArg::None) => Topology::new(vec![], vec![], vec![], vec![], String::new()),
        Some(PresetArg::K3s) => Topology::preset(Preset::K3s, false),
        None => Topology::preset(Preset::K3s, true),
    };
    if let Some(plan) = plan {
        let [pod, service, node, internal] = flags.map(|(_, nets)| nets);
        return Ok(cluster::topology(
            [pod, service, node, internal],
            plan,
            &base,
            args.preset,
        ));
    }
    if given.is_empty() {
        return Ok(base);
    }
    let [pod, service, node, internal] = flags.map(|(_, nets)| nets);
    let or_base =
        |nets: Vec<IpNet>, base: &[IpNet]| if nets.is_empty() { base.to_vec() } else { nets };
    let source = match args.preset {
        Some(PresetArg::None) => "flags".to_string(),
        Some(PresetArg::K3s) => format!("preset k3s; {} from flags", given.join(", ")),
        None => format!("preset k3s, assumed; {} from flags", given.join(", ")),
    };
    Ok(Topology::new(
        or_base(pod, &base.pod),
        or_base(service, &base.service),
        or_base(node, &base.node),
        or_base(internal, &base.internal),
        source,
    ))
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
        window_bytes: args.window_bytes,
    })
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    if threads == Some(0) {
        return Err(ConfigError::Threads("must be at least 1".into()).into());
    }
    if threads.is_some_and(|n| n > MAX_THREADS) {
        return Err(ConfigError::Threads(format!("at most {MAX_THREADS}")).into());
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    builder
        .build()
        .map_err(|e| ConfigError::Threads(e.to_string()).into())
}

fn floor(args: FloorArgs) -> Result<i32> {
    let pool = thread_pool(args.threads)?;
    let bytes = kpcap::capture::load(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let sum = pool.install(|| kpcap::capture::floor::sum_words(&bytes));
    writeln!(std::io::stdout(), "{sum:016x}").map_err(OutputError)?;
    Ok(0)
}

fn locality(args: FloorArgs) -> Result<i32> {
    let pool = thread_pool(args.threads)?;
    let input = kpcap::capture::Input::open(&args.file, kpcap::capture::DEFAULT_CHUNK_BYTES)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let reading = Reading::default();
    let l = pool
        .install(|| kpcap::analysis::locality(input, &reading))
        .with_context(|| format!("reading {}", args.file.display()))?;
    writeln!(
        std::io::stdout(),
        "{} IP packets, {} flows; distinct flows per {} consecutive packets: {:.0} on average, {} at least ({} runs)",
        l.packets,
        l.flows,
        kpcap::analysis::WINDOW,
        l.mean,
        l.min,
        l.windows
    )
    .map_err(OutputError)?;
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
    let hostile = |class| synth::Scenario::Hostile { class, bytes: size };
    let scenario = match args.scenario {
        ScenarioArg::Mixed => synth::Scenario::Mixed {
            bytes: size,
            conversations: args.conversations,
        },
        ScenarioArg::Small => synth::Scenario::SmallPackets {
            bytes: size,
            conversations: args.conversations,
        },
        ScenarioArg::Busy => synth::Scenario::Busy {
            bytes: size,
            any: match view {
                synth::View::Ens19 => None,
                synth::View::Any(link) => Some(link),
                synth::View::TwoNics => {
                    anyhow::bail!("--scenario busy: --view ens19, any-sll or any-sll2")
                }
            },
        },
        ScenarioArg::IncidentBefore => synth::Scenario::Incident(synth::Phase::Before, view),
        ScenarioArg::IncidentAfter => synth::Scenario::Incident(synth::Phase::After, view),
        ScenarioArg::IncidentLanLeak => synth::Scenario::Incident(synth::Phase::AfterLanLeak, view),
        ScenarioArg::IncidentCluster => {
            synth::write_cluster(&args.output)
                .with_context(|| format!("writing {}", args.output.display()))?;
            let dir = args.output.display();
            eprintln!("kpcap: wrote cluster.json and ip-k3s-w1.json to {dir}");
            return Ok(0);
        }
        ScenarioArg::IncidentNodes => {
            let skew = args.skew.as_nanos().min(u64::MAX as u128) as u64;
            let fault = match args.fault {
                FaultArg::Underlay => synth::Fault::Underlay,
                FaultArg::DestinationPod => synth::Fault::DestinationPod,
                FaultArg::ReturnPath => synth::Fault::ReturnPath,
            };
            synth::write_nodes(&args.output, args.seed, skew, fault)
                .with_context(|| format!("writing {}", args.output.display()))?;
            let dir = args.output.display();
            eprintln!("kpcap: wrote k3s-cp.pcap, k3s-w1.pcap, k3s-w2.pcap and cluster/ to {dir}");
            return Ok(0);
        }
        ScenarioArg::OverlayVxlan => synth::Scenario::Overlay(synth::TunnelKind::Vxlan),
        ScenarioArg::OverlayGeneve => synth::Scenario::Overlay(synth::TunnelKind::Geneve),
        ScenarioArg::OverlayIpip => synth::Scenario::Overlay(synth::TunnelKind::Ipip),
        ScenarioArg::HostileZeros => hostile(synth::Hostile::Zeros),
        ScenarioArg::HostileGarbage => hostile(synth::Hostile::Garbage),
        ScenarioArg::HostileHole => hostile(synth::Hostile::Hole),
        ScenarioArg::HostileDnsTcpStream => hostile(synth::Hostile::DnsTcpStream),
        ScenarioArg::HostileDnsCopies => hostile(synth::Hostile::DnsCopies),
        ScenarioArg::HostileLateDns => hostile(synth::Hostile::LateDns),
        ScenarioArg::HostileIfindexChurn => hostile(synth::Hostile::IfindexChurn),
        ScenarioArg::HostileManyInterfaces => hostile(synth::Hostile::ManyInterfaces),
        ScenarioArg::HostileSynFlood => hostile(synth::Hostile::SynFlood),
    };
    if args.output.as_os_str() == "-" {
        if matches!(args.scenario, ScenarioArg::HostileHole) {
            anyhow::bail!("--scenario hostile-hole writes a sparse file: give -o FILE");
        }
        let out = std::io::BufWriter::new(std::io::stdout().lock());
        synth::write(out, scenario, container, args.seed)
            .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
            .map(drop)
            .map_err(OutputError)?;
    } else {
        let written = synth::write_file(&args.output, scenario, container, args.seed)
            .with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!("kpcap: wrote {written} bytes to {}", args.output.display());
    }
    Ok(0)
}

/// Phase timings on stderr when `KPCAP_TIMINGS` is set: where a run's time
/// goes, without a profiler.
struct Stopwatch(std::cell::Cell<Option<std::time::Instant>>);

impl Stopwatch {
    fn from_env() -> Self {
        let start = std::env::var_os("KPCAP_TIMINGS").map(|_| std::time::Instant::now());
        Stopwatch(std::cell::Cell::new(start))
    }

    fn lap(&self, phase: &str) {
        if let Some(start) = self.0.get() {
            eprintln!(
                "kpcap: timing: {phase}: {:.3}s{}",
                start.elapsed().as_secs_f64(),
                peak_rss().map_or(String::new(), |kb| format!(
                    " (peak RSS so far {} MB)",
                    kb / 1024
                ))
            );
            self.0.set(Some(std::time::Instant::now()));
        }
    }
}

/// The process's peak resident memory in KiB, where the system says
/// (Linux: `VmHWM` in `/proc/self/status`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

/// A failed write of the report. Not a capture's failure: the run stops.
/// A reader that went away (`| head`) ends it quietly with exit 0.
#[derive(Debug, thiserror::Error)]
#[error("writing the report: {0}")]
pub struct OutputError(#[from] pub std::io::Error);

impl OutputError {
    pub fn closed_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// The run's output, on stdout or in `--output FILE`, buffered: JSON
/// reports are megabytes, and stdout is line-buffered. Tables are fitted
/// to the terminal's width (README, "Output").
fn output(
    format: OutputFormat,
    limit: usize,
    file: Option<&Path>,
    global: &GlobalArgs,
) -> Result<Output<Sink>> {
    let format = match format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Json => Format::Json,
        OutputFormat::Ndjson => Format::Ndjson,
        OutputFormat::Markdown => Format::Markdown,
        OutputFormat::Html => Format::Html,
    };
    let terminal = file.is_none() && std::io::stdout().is_terminal();
    let layout = Layout {
        limit,
        width: report_width(terminal),
        color: match global.color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        },
        markdown: format == Format::Markdown,
    };
    let sink = match file {
        None => Sink::Stdout(std::io::BufWriter::new(std::io::stdout())),
        Some(path) => Sink::file(path)?,
    };
    Ok(Output::new(sink, format, layout))
}

/// Columns a table may take: `COLUMNS` when set, else the terminal's
/// when stdout is one; none (as wide as the contents) otherwise.
fn report_width(terminal: bool) -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok();
    if let Some(n) = columns.and_then(|c| c.trim().parse::<usize>().ok()) {
        return (n > 0).then_some(n);
    }
    if !terminal {
        return None;
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// Where a report is written. A file is written beside its final name
/// and renamed into place when complete (`finish`), so a reader (`kpcap
/// merge`, a Job's collector) never takes a half-written report.
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File {
        out: std::io::BufWriter<std::fs::File>,
        partial: PathBuf,
        path: PathBuf,
    },
}

impl Sink {
    fn file(path: &Path) -> Result<Sink> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = std::fs::File::create(&partial).with_context(|| {
            format!(
                "--output {}: cannot create {}",
                path.display(),
                partial.display()
            )
        })?;
        Ok(Sink::File {
            out: std::io::BufWriter::new(file),
            partial,
            path: path.to_path_buf(),
        })
    }

    /// Flushes, and moves a file into place.
    fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout(mut out) => out.flush().map_err(|e| OutputError(e).into()),
            Sink::File { out, partial, path } => {
                let file = out.into_inner().map_err(|e| OutputError(e.into_error()))?;
                file.sync_all().map_err(OutputError)?;
                std::fs::rename(&partial, &path).with_context(|| {
                    format!(
                        "--output {}: cannot rename {} into place",
                        path.display(),
                        partial.display()
                    )
                })
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(out) => out.write(buf),
            Sink::File { out, .. } => out.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File { out, .. } => out.flush(),
        }
    }
}
