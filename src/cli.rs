//! Command-line flags, and only flags: `Config` turns them into validated
//! settings; nothing below it sees clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kpcap",
    version,
    about = "Offline forensics of packet captures taken on Kubernetes nodes",
    max_term_width = 100,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

const EXAMPLES: &str = "\
Examples:
  kpcap analyze node.pcap --pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12
  kpcap scan /var/captures --format json --output scan.json
  kpcap diff before.pcap after.pcap
  kpcap completions bash > /etc/bash_completion.d/kpcap";

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Colour severities: on a terminal (auto, unless NO_COLOR is set),
    /// always, or never.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub color: ColorArg,
    /// No progress line on stderr (warnings and errors still print).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose the capture: SNAT failures, unanswered SYNs, DNS timeouts,
    /// ClusterIPs on the wire, and a ranked verdict; with --cluster and
    /// several nodes' captures, a verdict across the nodes. Exit code 1
    /// when something at or above --fail-on was found.
    #[command(after_help = "\
Examples:
  kpcap analyze node.pcap
  kpcap analyze node.pcap --cluster cluster.json --cluster ip-node1.json
  kpcap analyze --cluster cluster/ cp.pcap w1.pcap w2.pcap   # and the verdict across nodes
  kpcap analyze node.pcap.gz --pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/12 --node-cidr 192.168.1.0/24
  kpcap analyze captures.tar.gz --format json --output report.json
  tcpdump -i any -w - | kpcap analyze -
  kpcap analyze --merge node.pcap0 node.pcap1 node.pcap2")]
    Analyze(AnalyzeArgs),
    /// Sweep files and directories of captures: one line per file, and
    /// findings aggregated across files. Exit code: bit 1 (value 1) set
    /// when a finding at or above --fail-on was found, bit 2 (value 2)
    /// when a file could not be read.
    #[command(after_help = "\
Examples:
  kpcap scan /var/captures
  kpcap scan archive.tar.zst --format ndjson
  kpcap scan /data --shard 2/8 --format json --output shard-2.json
  kpcap scan /data --shard-from-env JOB_COMPLETION_INDEX/8 --format json --output /out/shard.json")]
    Scan(ScanArgs),
    /// Combine the JSON reports of `kpcap scan --shard` into one.
    #[command(after_help = "\
Examples:
  kpcap merge shard-*.json
  kpcap merge --format json --output sweep.json shard-*.json")]
    Merge(MergeArgs),
    /// Compare the analyses of two captures, before and after a fix: what
    /// was fixed, what persists, what is new. Exit code 0 when the
    /// failures of BEFORE are gone and nothing got worse, 1 otherwise.
    #[command(after_help = "\
Examples:
  kpcap diff before.pcap after.pcap
  kpcap diff before.pcap after.pcap --format json")]
    Diff(DiffArgs),
    /// Traffic rolled up by (source, destination) address pair, or per flow.
    #[command(after_help = "\
Examples:
  kpcap flows node.pcap
  kpcap flows node.pcap --by 5tuple --limit 0")]
    Flows(FlowsArgs),
    /// Write a deterministic synthetic capture (test data, benchmarks).
    #[command(after_help = "\
Examples:
  kpcap synth --scenario incident-before -o before.pcap
  kpcap synth --scenario mixed --size 1G -o mixed.pcap")]
    Synth(SynthArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  kpcap completions bash > ~/.local/share/bash-completion/completions/kpcap
  kpcap completions zsh > ~/.zfunc/_kpcap
  kpcap completions fish > ~/.config/fish/completions/kpcap.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff).
    #[command(after_help = "\
Examples:
  kpcap man > ~/.local/share/man/man1/kpcap.1 && man kpcap")]
    Man,
    /// Benchmark floor: map a file and read every byte once (prints a
    /// checksum). What `bench/compare.sh` compares kpcap with.
    #[command(hide = true)]
    Floor(FloorArgs),
    /// Benchmark figure: distinct flows per 10 000 consecutive packets
    /// (how interleaved a capture's flows are), and its packets and flows.
    #[command(hide = true)]
    Locality(FloorArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    pub file: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, optionally gzip'ed or zstd'ed); `-`
    /// reads stdin.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// The files are rotated parts of one capture (`tcpdump -C` or `-G`):
    /// read them in order (of their first packet) as one capture, so a
    /// flow that crosses from one file to the next is seen whole.
    #[arg(long)]
    pub merge: bool,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value = "failure")]
    pub fail_on: FailOn,
    /// Groups to show per table (0 = all); JSON always lists all.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub detectors: DetectorArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Detector thresholds.
#[derive(Debug, Args)]
pub struct DetectorArgs {
    /// A SYN whose last copy is younger than this at capture end is
    /// inconclusive, not unanswered (e.g. 3s, 500ms, 2.5).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub syn_grace: std::time::Duration,
    /// A DNS query with no response within this is timed out.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub dns_timeout: std::time::Duration,
    /// Port DNS is served on (repeatable).
    #[arg(long = "dns-port", value_name = "PORT", default_value = "53")]
    pub dns_ports: Vec<u16>,
    /// Keep at most this many flows (and DNS query keys) in memory: beyond
    /// it, the ones idle longest are evicted, with a warning; an evicted
    /// SYN flow or DNS query is judged first and still counts. Checked
    /// after each 32 MiB window of the capture.
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..))]
    pub max_flows: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Capture files and directories (searched recursively; captures are
    /// recognised by their first bytes, not their names).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Analyze only shard I of N (1-based, e.g. 2/8): a deterministic
    /// share of the file list, for sweeping an archive on several
    /// machines; `kpcap merge` combines the shards' JSON reports.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    pub shard: Option<String>,
    /// Take the shard from a 0-based index in an environment variable, as
    /// a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX:
    /// `JOB_COMPLETION_INDEX/8` is shard index+1 of 8.
    #[arg(long, value_name = "VAR/N")]
    pub shard_from_env: Option<String>,
    /// Lowest severity that sets bit 1 of the exit code.
    #[arg(long, value_enum, default_value = "failure")]
    pub fail_on: FailOn,
    /// Aggregate findings to show in the table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub detectors: DetectorArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON reports of `kpcap scan --format json` (shards of one sweep).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write the report to FILE instead of stdout (replaced when done).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity that sets bit 1 of the exit code.
    #[arg(long, value_enum, default_value = "failure")]
    pub fail_on: FailOn,
    /// Aggregate findings to show in the table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// The cluster's files the shards were scanned with (`scan
    /// --cluster`): their CNI settings and NICs in the verdict across
    /// nodes, as in the whole scan's.
    #[arg(long = "cluster", value_name = "PATH")]
    pub cluster: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The capture before the fix.
    pub before: PathBuf,
    /// The capture after the fix.
    pub after: PathBuf,
    #[command(flatten)]
    pub detectors: DetectorArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Failure,
    Warning,
    /// Exit 0 whatever is found (input errors still exit 2).
    Never,
}

/// Seconds (`2.5`) or a humantime duration (`3s`, `500ms`, `1m`).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string());
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("'{text}' is not a duration (e.g. 3s, 500ms, 1m, or 2.5 for seconds)"))
}

#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// Capture files (pcap, pcapng, optionally gzip'ed or zstd'ed); `-`
    /// reads stdin.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// The files are rotated parts of one capture: read them as one.
    #[arg(long)]
    pub merge: bool,
    /// Group rows by address pair or by 5-tuple flow.
    #[arg(long, value_enum, default_value = "pair")]
    pub by: By,
    /// Table rows to show per capture (0 = all); JSON always lists all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write the report to FILE instead of stdout (replaced when done).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Worker threads (default: all cores; at most 256).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only analyze packets captured on this interface (repeatable): a
    /// pcapng interface name, a `--ifname` name, or `ifindex 3`.
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// Name a device of a `tcpdump -i any` capture, which records only its
    /// index (SLL2) or a link-layer address (SLL: the device's own for
    /// frames it sent, the sender's for frames it received): `3=ens19`,
    /// `52:54:00:12:34:56=ens19` (repeatable, or comma-separated).
    #[arg(long = "ifname", value_name = "INDEX=NAME", value_delimiter = ',')]
    pub ifnames: Vec<String>,
    /// Another UDP port that carries VXLAN, besides 4789 and 8472 (repeatable).
    #[arg(long = "vxlan-port", value_name = "PORT")]
    pub vxlan_ports: Vec<u16>,
    /// Bytes of records per unit of parallel work (tests use tiny values).
    #[arg(long, hide = true, default_value_t = kpcap::capture::DEFAULT_CHUNK_BYTES)]
    pub chunk_bytes: usize,
    /// Bytes of records between two settles of the tables, where
    /// `--max-flows` is applied (tests use tiny values).
    #[arg(long, hide = true)]
    pub window_bytes: Option<u64>,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// Pod CIDR (repeatable; IPv4 or IPv6).
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod: Vec<String>,
    /// Service (ClusterIP) CIDR (repeatable).
    #[arg(long = "service-cidr", value_name = "CIDR")]
    pub service: Vec<String>,
    /// Node CIDR (repeatable).
    #[arg(long = "node-cidr", value_name = "CIDR")]
    pub node: Vec<String>,
    /// Networks that legitimately see pod IPs, e.g. non-masquerade CIDRs (repeatable).
    #[arg(long = "internal-cidr", value_name = "CIDR")]
    pub internal: Vec<String>,
    /// A named address plan (k3s when none is given). A CIDR flag
    /// replaces the preset's CIDRs of its class (--pod-cidr the pod CIDR,
    /// ...); the other classes keep the preset's. `none`: only the flags.
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// What the cluster says about itself (repeatable; a file or a
    /// directory of files): `kubectl get nodes,pods,services -A -o json`
    /// (or YAML; ServiceCIDRs, CiliumNodes, CNI ConfigMaps and IPPools
    /// too) and each node's `ip -j addr`. Gives the CIDRs (flags still
    /// win), names of pods, services and nodes, and the device names of
    /// `-i any` captures.
    #[arg(long = "cluster", value_name = "PATH")]
    pub cluster: Vec<PathBuf>,
    /// The node the captures were taken on (its `ip -j addr` names the
    /// devices of an `-i any` capture); without it, each capture's node
    /// is the one whose addresses its traffic carries most. `NAME=FILE`
    /// (repeatable) names the node of one capture, when several nodes'
    /// captures are analyzed together.
    #[arg(long = "node", value_name = "NAME[=FILE]")]
    pub node_name: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetArg {
    /// pods 10.42.0.0/16, services 10.43.0.0/16
    K3s,
    /// No CIDR but the flags': classes without one have their checks off.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    /// One JSON document for the whole run.
    Json,
    /// One JSON value per line: per capture for `flows`, per cause and
    /// finding group for `analyze`, per file as it finishes for `scan`.
    Ndjson,
    /// GitHub-flavoured Markdown, for an incident ticket: the verdict,
    /// then the finding tables.
    Markdown,
    /// One self-contained HTML page (no script, no request): the verdict,
    /// a timeline, the finding tables and their items.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    Pair,
    #[value(name = "5tuple")]
    FiveTuple,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// What traffic to generate.
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: ScenarioArg,
    /// Approximate size of the capture, e.g. 64M, 1G (mixed, small, busy).
    #[arg(long, default_value = "16M")]
    pub size: String,
    /// Repeat this many distinct conversations (the same hosts and ports,
    /// later in time) instead of new ones throughout, so captures of
    /// different sizes hold the same flows. Mixed: memory should follow the
    /// flow count, not the file size. Small: the cost per packet apart
    /// from the cost per flow.
    #[arg(long)]
    pub conversations: Option<u64>,
    /// Container format to write (two-nics is always pcapng, any-sll and
    /// any-sll2 always pcap).
    #[arg(long = "container", value_enum, default_value = "pcap")]
    pub container: ContainerArg,
    /// Incident scenarios and busy: where the capture was taken (busy:
    /// ens19, the NIC, or `-i any`, where a pod's packets are also seen
    /// on its lxc device).
    #[arg(long, value_enum, default_value = "ens19")]
    pub view: ViewArg,
    /// incident-nodes: how far k3s-w2's clock runs ahead of the other
    /// nodes' (e.g. 2s).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub skew: std::time::Duration,
    /// incident-nodes: what breaks between the workers.
    #[arg(long, value_enum, default_value = "underlay")]
    pub fault: FaultArg,
    /// Seed of the generator: same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file (`-` for stdout).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScenarioArg {
    /// Busy node: web, DNS, scans, VLANs, VXLAN overlay, IPv6.
    Mixed,
    /// Small frames (about 100 bytes): DNS lookups, SYNs, bare ACKs.
    Small,
    /// A busy node's NIC: thousands of flows active at once (consecutive
    /// packets rarely share a flow), the mixed protocol mix at real sizes.
    Busy,
    /// The incident on ens19: pod egress leaves unmasqueraded.
    IncidentBefore,
    /// The same workload after the fix: SNATed to the node, answered.
    IncidentAfter,
    /// After a fix on ens19 only: CoreDNS and a probe pod still leave
    /// ens18 (the home LAN) unmasqueraded, to the router's DNS and a LAN
    /// host, which answer only the node (use `--view two-nics`).
    IncidentLanLeak,
    /// The incident's cluster for `--cluster`: `cluster.json` (kubectl's
    /// nodes, pods, services, ServiceCIDR, cilium-config) and the worker's
    /// `ip-k3s-w1.json` (`ip -j addr`), written into the directory `-o`.
    IncidentCluster,
    /// The incident on three nodes (`-i any` captures k3s-cp.pcap,
    /// k3s-w1.pcap, k3s-w2.pcap and their cluster files in `cluster/`,
    /// written into the directory `-o`): the control plane masquerades by
    /// chance, the workers do not, and VXLAN from k3s-w1 to k3s-w2 is
    /// dropped between the nodes.
    IncidentNodes,
    /// Two nodes' pod-to-pod traffic in VXLAN (UDP 8472), one inner
    /// unanswered SYN.
    OverlayVxlan,
    /// The same in Geneve (UDP 6081, with an option).
    OverlayGeneve,
    /// The same in IP-in-IP (Calico IPIP).
    OverlayIpip,
    /// Hostile: a valid pcap header, then `--size` of zeros.
    HostileZeros,
    /// Hostile: a pcapng section and interface, then random bytes.
    HostileGarbage,
    /// Hostile: a valid pcap header, then a sparse hole (file output only).
    HostileHole,
    /// Hostile: one long TCP connection to port 53 full of DNS queries.
    HostileDnsTcpStream,
    /// Hostile: the same DNS query (same id and ports), over and over.
    HostileDnsCopies,
    /// Hostile: queries, then responses after the timeout, on one key.
    HostileLateDns,
    /// Hostile: SLL2, one flow, each packet on a new interface index.
    HostileIfindexChurn,
    /// Hostile: a pcapng with an interface per packet of one flow.
    HostileManyInterfaces,
    /// Hostile: SYNs from a new spoofed source each.
    HostileSynFlood,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FaultArg {
    /// VXLAN from k3s-w1 to k3s-w2 is dropped between the nodes.
    Underlay,
    /// The web pod on k3s-w2 does not answer.
    DestinationPod,
    /// VXLAN from k3s-w2 to k3s-w1 is dropped (answers do not return).
    ReturnPath,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViewArg {
    /// `tcpdump -ni ens19`: the egress NIC only.
    Ens19,
    /// Both NICs, ens18 and ens19, in one pcapng.
    TwoNics,
    /// `tcpdump -i any` with Linux cooked v1 headers (no interface index).
    AnySll,
    /// `tcpdump -i any` with Linux cooked v2 headers (interface index).
    AnySll2,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContainerArg {
    Pcap,
    Pcapng,
}
