//! The verdict: findings correlated into ranked causes, each with evidence
//! counts (facts), what share of the symptoms it explains (unanswered SYNs,
//! DNS timeouts), and remediation hints per CNI (advice).
//!
//! Root causes (no SNAT, untranslated ClusterIPs) rank before the symptoms
//! they explain; symptoms they do not explain get causes of their own.

use super::dns::DnsOutcome;
use super::syn::SynOutcome;
use super::{Findings, Severity};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    pub explained: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explains {
    pub unanswered_syns: Share,
    pub dns_timeouts: Share,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hint {
    pub cni: &'static str,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub rank: usize,
    /// Stable identifier, e.g. `pod_egress_not_masqueraded`.
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// One paragraph of facts with counts.
    pub summary: String,
    pub evidence: BTreeMap<&'static str, u64>,
    pub explains: Explains,
    /// Supporting observations (which sources differ, examples).
    pub details: Vec<String>,
    pub remediation: Vec<Hint>,
}

impl Cause {
    /// A cause that explains none of the symptoms yet, with no evidence,
    /// details or hints: the builders below add them.
    fn new(
        symptoms: &Symptoms,
        id: &'static str,
        severity: Severity,
        title: &'static str,
        summary: String,
    ) -> Cause {
        Cause {
            rank: 0,
            id,
            severity,
            title,
            summary,
            evidence: BTreeMap::new(),
            explains: symptoms.share(0, 0),
            details: Vec::new(),
            remediation: Vec::new(),
        }
    }

    fn evidence<const N: usize>(mut self, counts: [(&'static str, u64); N]) -> Cause {
        self.evidence.extend(counts);
        self
    }

    fn explaining(mut self, explains: Explains) -> Cause {
        self.explains = explains;
        self
    }

    fn detail(mut self, detail: String) -> Cause {
        self.details.push(detail);
        self
    }

    fn fix(mut self, cni: &'static str, hint: impl Into<String>) -> Cause {
        self.remediation.push(Hint {
            cni,
            hint: hint.into(),
        });
        self
    }
}

/// Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The detectors ran on the traffic and found nothing.
    Clean,
    /// Nothing at warning or failure was found, but not everything the
    /// question needs was judged (see the `not_judged` cause).
    Inconclusive,
    Warning,
    Failure,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::Inconclusive => "inconclusive",
            Status::Warning => "warning",
            Status::Failure => "failure",
        }
    }
}

/// Something the verdict could not judge, and what would let it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unjudged {
    pub what: String,
    pub hint: String,
}

/// Qualifies a verdict by what was not judged: a clean verdict becomes
/// inconclusive, and every verdict gets a last cause saying what was left
/// out, so a failure found is never mistaken for the whole picture.
pub fn qualify(verdict: &mut Verdict, unjudged: &[Unjudged]) {
    if unjudged.is_empty() {
        return;
    }
    if verdict.status == Status::Clean {
        verdict.status = Status::Inconclusive;
    }
    let what: Vec<&str> = unjudged.iter().map(|u| u.what.as_str()).collect();
    let mut cause = Cause::new(
        &Symptoms::default(),
        "not_judged",
        Severity::Info,
        "Part of the question was not judged",
        format!("{}.", what.join("; ")),
    );
    for u in unjudged {
        cause = cause.fix("any", u.hint.clone());
    }
    cause.rank = verdict.causes.len() + 1;
    verdict.causes.push(cause);
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub status: Status,
    pub causes: Vec<Cause>,
}

/// (source, destination) pairs that a root cause accounts for.
type Pairs = BTreeSet<(IpAddr, IpAddr)>;

/// The capture's symptoms a cause may explain (none for `not_judged`).
#[derive(Default)]
struct Symptoms {
    syn_total: u64,
    dns_total: u64,
}

impl Symptoms {
    fn explains(
        &self,
        findings: &Findings,
        syn: impl Fn(IpAddr, IpAddr) -> bool,
        dns: impl Fn(IpAddr, IpAddr) -> bool,
    ) -> Explains {
        let syns = findings
            .tcp_syns
            .groups
            .iter()
            .filter(|g| g.outcome == SynOutcome::Unanswered && syn(g.source, g.destination))
            .map(|g| g.flows)
            .sum();
        let timeouts = findings
            .dns
            .groups
            .iter()
            .filter(|g| g.outcome == DnsOutcome::TimedOut && dns(g.client, g.server))
            .map(|g| g.count)
            .sum();
        self.share(syns, timeouts)
    }

    /// `syns` of the unanswered SYNs and `timeouts` of the DNS timeouts.
    fn share(&self, syns: u64, timeouts: u64) -> Explains {
        Explains {
            unanswered_syns: Share {
                explained: syns,
                total: self.syn_total,
            },
            dns_timeouts: Share {
                explained: timeouts,
                total: self.dns_total,
            },
        }
    }
}

pub fn correlate(findings: &Findings) -> Verdict {
    let symptoms = Symptoms {
        syn_total: findings.tcp_syns.counts.unanswered,
        dns_total: findings.dns.counts.timed_out,
    };
    let mut causes = Vec::new();
    let unmasqueraded: Pairs = findings
        .unmasqueraded_egress
        .failing()
        .map(|g| (g.pod, g.destination))
        .collect();
    let vips: BTreeSet<IpAddr> = findings
        .service_vips
        .groups
        .iter()
        .filter(|g| g.severity == Severity::Failure)
        .map(|g| g.service)
        .collect();
    if !unmasqueraded.is_empty() {
        causes.push(pod_egress_not_masqueraded(
            findings,
            &symptoms,
            &unmasqueraded,
        ));
    }
    if !vips.is_empty() {
        causes.push(clusterip_not_translated(findings, &symptoms, &vips));
    }
    let explained = |s: IpAddr, d: IpAddr| unmasqueraded.contains(&(s, d)) || vips.contains(&d);
    if let Some(cause) = unreachable(findings, &symptoms) {
        causes.push(cause);
    }
    if let Some(cause) = other_unanswered_syns(findings, &symptoms, &explained) {
        causes.push(cause);
    }
    if let Some(cause) = other_dns_timeouts(findings, &symptoms, &explained) {
        causes.push(cause);
    }
    if let Some(cause) = routed_without_snat(findings, &symptoms) {
        causes.push(cause);
    }
    if let Some(cause) = dns_errors(findings, &symptoms) {
        causes.push(cause);
    }
    if let Some(cause) = refused(findings, &symptoms) {
        causes.push(cause);
    }
    // Stable: equal severities keep the root-causes-first order above.
    causes.sort_by_key(|c: &Cause| std::cmp::Reverse(c.severity));
    for (i, cause) in causes.iter_mut().enumerate() {
        cause.rank = i + 1;
    }
    let status = match causes.first().map(|c| c.severity) {
        Some(Severity::Failure) => Status::Failure,
        Some(Severity::Warning) => Status::Warning,
        _ => Status::Clean,
    };
    Verdict { status, causes }
}

/// The first `max` items, and how many more: only those shown are
/// formatted (a storm's lists run to hundreds of thousands).
fn list<T: ToString>(items: impl IntoIterator<Item = T>, max: usize) -> String {
    let mut items = items.into_iter();
    let shown: Vec<String> = items.by_ref().take(max).map(|i| i.to_string()).collect();
    let mut text = shown.join(", ");
    let more = items.count();
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

/// The members of a hash set, in order. Hash sets gather the distinct
/// addresses of hundreds of thousands of groups faster than ordered sets.
fn sorted<T: Ord>(set: FxHashSet<T>) -> Vec<T> {
    let mut all: Vec<T> = set.into_iter().collect();
    all.sort_unstable();
    all
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn explains_text(e: &Explains) -> String {
    format!(
        "they explain {} of {} unanswered SYNs and {} of {} DNS timeouts",
        e.unanswered_syns.explained,
        e.unanswered_syns.total,
        e.dns_timeouts.explained,
        e.dns_timeouts.total
    )
}

fn pod_egress_not_masqueraded(findings: &Findings, symptoms: &Symptoms, pairs: &Pairs) -> Cause {
    let egress = &findings.unmasqueraded_egress;
    let groups: Vec<_> = egress.failing().collect();
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    let packets: u64 = groups.iter().map(|g| g.packets).sum();
    let pods: BTreeSet<IpAddr> = groups.iter().map(|g| g.pod).collect();
    let destinations: BTreeSet<IpAddr> = groups.iter().map(|g| g.destination).collect();
    let interfaces: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| &g.left_on)
        .filter(|i| !i.is_unnamed_capture_interface())
        .map(|i| i.as_str())
        .collect();
    let explains = symptoms.explains(
        findings,
        |s, d| pairs.contains(&(s, d)),
        |c, s| pairs.contains(&(c, s)),
    );
    let dns_example = findings
        .dns
        .groups
        .iter()
        .find(|g| g.outcome == DnsOutcome::TimedOut && pairs.contains(&(g.client, g.server)))
        .map(|g| {
            format!(
                " (DNS: {} -> {}:{}, {})",
                g.client,
                g.server,
                g.server_port,
                plural(g.count, "query", "queries")
            )
        })
        .unwrap_or_default();
    let device = if interfaces.is_empty() {
        "the egress device".to_string()
    } else {
        format!(
            "the egress device: egress on {} carried pod source addresses",
            list(&interfaces, 3)
        )
    };
    let summary = format!(
        "{} ({} packets) from {} pod {} ({}) left with pod source addresses to {} external {} ({}) and got 0 replies; {}{}. Masquerading is not applied on {}.",
        plural(flows, "flow", "flows"),
        packets,
        pods.len(),
        if pods.len() == 1 { "address" } else { "addresses" },
        list(&pods, 4),
        destinations.len(),
        if destinations.len() == 1 { "destination" } else { "destinations" },
        list(&destinations, 4),
        explains_text(&explains),
        dns_example,
        device,
    );
    let mut details = Vec::new();
    let subnets = &egress.contrast.unmasqueraded_pod_subnets;
    details.push(format!(
        "Unmasqueraded pod subnets (per-node slices): {}.",
        list(
            subnets
                .iter()
                .map(|(net, pods)| format!("{net} ({})", plural(pods.len() as u64, "pod", "pods"))),
            6
        )
    ));
    let answered = &egress.contrast.answered_sources;
    if !answered.is_empty() {
        details.push(format!(
            "Masquerading is inconsistent: {} reached the same destinations and {} answered, so host traffic (or SNAT on some nodes) works while these pod sources do not.",
            list(
                answered
                    .iter()
                    .map(|s| format!("{} ({})", s.source, s.class)),
                5
            ),
            if answered.len() == 1 { "was" } else { "were" }
        ));
    }
    let masqueraded = &egress.contrast.masqueraded_pods;
    if !masqueraded.is_empty() {
        details.push(format!(
            "SNAT does happen for other pods (pre- and post-NAT copies paired): {}.",
            list(
                masqueraded.iter().map(|m| {
                    if m.seen_on.is_empty() || m.translated_on.is_empty() {
                        format!("{} -> {}", m.pod, list(&m.translated_to, 2))
                    } else {
                        format!(
                            "{} left {} as {} and {} as {}",
                            m.pod,
                            list(&m.seen_on, 2),
                            m.pod,
                            list(&m.translated_on, 2),
                            list(&m.translated_to, 2)
                        )
                    }
                }),
                5
            )
        ));
    }
    // A hint names a device to configure only if it is a named NIC: never
    // a pod-side or overlay device, nor `ifindex 11` of an unnamed `-i any`.
    let nics: BTreeSet<&str> = (groups.iter().flat_map(|g| &g.left_on))
        .filter_map(|label| label.nic_name())
        .collect();
    let (nic, unnamed_nic) = match nics.first() {
        Some(nic) => (nic.to_string(), String::new()),
        None if interfaces.is_empty() => ("<egress NIC>".to_string(), String::new()),
        None => (
            "<egress NIC>".to_string(),
            format!(
                " The capture does not name the device the pod sources left on ({}): find the NIC with `ip -o link` and `ip route get <destination>` on the node, and name it with --ifname INDEX=NAME (or MAC=NAME).",
                list(&interfaces, 3)
            ),
        ),
    };
    let cause = Cause::new(
        symptoms,
        "pod_egress_not_masqueraded",
        Severity::Failure,
        "Pod egress is not masqueraded",
        summary,
    )
    .evidence([
        ("flows", flows),
        ("packets", packets),
        ("pod_sources", pods.len() as u64),
        ("external_destinations", destinations.len() as u64),
        ("replies", 0),
        ("answered_non_pod_sources", answered.len() as u64),
        ("masqueraded_pods_paired", masqueraded.len() as u64),
    ])
    .explaining(explains);
    details
        .into_iter()
        .fold(cause, Cause::detail)
        .fix(
            "cilium",
            format!(
                "Set enableIPv4Masquerade=true (enableIPv6Masquerade for IPv6), bpf.masquerade=true and devices={nic} so the BPF masquerading is attached to the NIC that carries the default route; with two NICs or two default routes, enableIPv4Masquerade alone is not enough. Check with `cilium status | grep Masquerading`.{unnamed_nic}"
            ),
        )
        .fix(
            "calico",
            "Set natOutgoing: true on the IPPool that covers these pod addresses (`calicoctl get ippool -o yaml`).",
        )
        .fix(
            "flannel / ip-masq-agent",
            "Run flannel with --ip-masq, and make sure nonMasqueradeCIDRs lists only cluster-internal ranges (the pod and node CIDRs), never the destinations above or 0.0.0.0/0.",
        )
}

/// The groups `keep` selects, if any.
fn chosen<G>(groups: &[G], keep: impl Fn(&G) -> bool) -> Option<Vec<&G>> {
    let chosen: Vec<&G> = groups.iter().filter(|g| keep(g)).collect();
    (!chosen.is_empty()).then_some(chosen)
}

fn clusterip_not_translated(
    findings: &Findings,
    symptoms: &Symptoms,
    vips: &BTreeSet<IpAddr>,
) -> Cause {
    let groups: Vec<_> = findings
        .service_vips
        .groups
        .iter()
        .filter(|g| g.severity == Severity::Failure)
        .collect();
    let packets: u64 = groups.iter().map(|g| g.packets).sum();
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    let sources: BTreeSet<IpAddr> = groups.iter().map(|g| g.source).collect();
    let explains = symptoms.explains(findings, |_, d| vips.contains(&d), |_, s| vips.contains(&s));
    let summary = format!(
        "{} ({} packets) from {} were sent on the wire to service VIPs {}: the ClusterIP was not translated to a backend on this path; {}.",
        plural(flows, "flow", "flows"),
        packets,
        list(&sources, 4),
        list(vips, 4),
        explains_text(&explains)
    );
    Cause::new(
        symptoms,
        "clusterip_not_translated",
        Severity::Failure,
        "ClusterIP traffic leaves the node untranslated",
        summary,
    )
    .evidence([
        ("flows", flows),
        ("packets", packets),
        ("sources", sources.len() as u64),
        ("service_vips", vips.len() as u64),
    ])
    .explaining(explains)
    .fix(
        "cilium",
        "With kubeProxyReplacement, check `cilium status` (KubeProxyReplacement, Socket LB) and `cilium service list` for the VIP; host-network and hostPort paths need socketLB / bpf-lb on every device (devices=<NIC>).",
    )
    .fix(
        "kube-proxy",
        "Check that kube-proxy runs on this node and its iptables/IPVS rules exist for the VIP (`iptables-save | grep <VIP>` or `ipvsadm -Ln`).",
    )
}

fn unreachable(findings: &Findings, symptoms: &Symptoms) -> Option<Cause> {
    let groups = chosen(&findings.tcp_syns.groups, |g| {
        g.outcome == SynOutcome::Unreachable
    })?;
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    let mut by_meaning: BTreeMap<(&str, IpAddr), u64> = BTreeMap::new();
    for item in groups.iter().flat_map(|g| &g.items) {
        if let Some(icmp) = item.icmp {
            *by_meaning.entry((icmp.meaning, icmp.from)).or_default() += 1;
        }
    }
    let destinations: BTreeSet<IpAddr> = groups.iter().map(|g| g.destination).collect();
    let summary = format!(
        "{} to {} were answered by ICMP destination unreachable: {}.",
        plural(flows, "SYN flow", "SYN flows"),
        list(&destinations, 4),
        list(
            by_meaning
                .iter()
                .map(|((meaning, from), n)| format!("{meaning} from {from} ({n})")),
            4
        )
    );
    let cause = Cause::new(
        symptoms,
        "destinations_unreachable",
        Severity::Failure,
        "Connection attempts rejected with ICMP unreachable",
        summary,
    )
    .evidence([("flows", flows), ("destinations", destinations.len() as u64)])
    .fix(
        "any",
        "The sender of the ICMP message names the hop that rejects: check its routes and firewall rules (administratively prohibited = a filter; net/host unreachable = a missing route or a down host).",
    );
    Some(cause)
}

/// ", and N more in M groups not listed" when the SYN lists left groups of
/// `outcome` out (`syn::MAX_GROUPS`).
fn unlisted(findings: &Findings, outcome: SynOutcome) -> String {
    match findings.tcp_syns.omitted.get(&outcome) {
        Some(o) if o.flows > 0 => format!(
            "; and {} in {} more groups, not listed",
            plural(o.flows, "attempt", "attempts"),
            o.groups
        ),
        _ => String::new(),
    }
}

fn other_unanswered_syns(
    findings: &Findings,
    symptoms: &Symptoms,
    explained: &impl Fn(IpAddr, IpAddr) -> bool,
) -> Option<Cause> {
    let groups = chosen(&findings.tcp_syns.groups, |g| {
        g.outcome == SynOutcome::Unanswered && !explained(g.source, g.destination)
    })?;
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    let retransmits: u64 = groups.iter().map(|g| g.retransmits).sum();
    let mut by_destination: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for g in &groups {
        *by_destination.entry(g.destination).or_default() += g.flows;
    }
    let mut top: Vec<(IpAddr, u64)> = by_destination.into_iter().collect();
    top.sort_by_key(|&(d, n)| (std::cmp::Reverse(n), d));
    let one_sided: u64 = groups.iter().map(|g| g.initiator_sent_data).sum();
    let summary = format!(
        "{} ({} retransmitted SYNs) to {} {} got neither SYN-ACK, RST nor ICMP: {}{}. Something on the path drops them (firewall, security group, missing return route) or the destination is down.",
        plural(flows, "connection attempt", "connection attempts"),
        retransmits,
        top.len(),
        if top.len() == 1 { "destination" } else { "destinations" },
        list(top.iter().map(|(d, n)| format!("{d} ({n})")), 5),
        unlisted(findings, SynOutcome::Unanswered),
    );
    let mut cause = Cause::new(
        symptoms,
        "syns_unanswered",
        Severity::Failure,
        "TCP SYNs get no answer",
        summary,
    )
    .evidence([
        ("flows", flows),
        ("retransmitted_syns", retransmits),
        ("destinations", top.len() as u64),
        ("initiator_sent_data", one_sided),
    ])
    .explaining(symptoms.share(flows, 0));
    if one_sided > 0 {
        cause = cause.detail(format!(
            "{one_sided} of these flows carried ACKs or data from the initiator although no SYN-ACK is in the capture: the capture probably sees only one direction (asymmetric routing, or a one-sided capture point)."
        ));
    }
    Some(cause.fix(
        "any",
        "Test the path from the same source (`curl -v`, `nc -vz`), and capture on the next hop to see where the SYNs stop.",
    ))
}

fn other_dns_timeouts(
    findings: &Findings,
    symptoms: &Symptoms,
    explained: &impl Fn(IpAddr, IpAddr) -> bool,
) -> Option<Cause> {
    let groups = chosen(&findings.dns.groups, |g| {
        g.outcome == DnsOutcome::TimedOut && !explained(g.client, g.server)
    })?;
    let keys: u64 = groups.iter().map(|g| g.count).sum();
    let servers: BTreeSet<IpAddr> = groups.iter().map(|g| g.server).collect();
    let names: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.names.iter().map(String::as_str))
        .collect();
    let late: u64 = groups.iter().map(|g| g.answered_late).sum();
    let summary = format!(
        "{} to {} got no response within the timeout (names: {}).",
        plural(keys, "DNS query", "DNS queries"),
        list(&servers, 4),
        list(&names, 5)
    );
    let mut cause = Cause::new(
        symptoms,
        "dns_timeouts",
        Severity::Failure,
        "DNS queries time out",
        summary,
    )
    .evidence([
        ("queries", keys),
        ("servers", servers.len() as u64),
        ("answered_late", late),
    ])
    .explaining(symptoms.share(0, keys));
    if late > 0 {
        cause = cause.detail(format!(
            "{late} of them were answered after the timeout: the server is slow rather than unreachable."
        ));
    }
    Some(cause.fix(
        "any",
        "Query the server directly from the same source (`dig @<server> <name>`); for CoreDNS, check its forward plugin target and the logs of the coredns pods.",
    ))
}

fn routed_without_snat(findings: &Findings, symptoms: &Symptoms) -> Option<Cause> {
    let groups = chosen(&findings.unmasqueraded_egress.groups, |g| {
        g.severity == Severity::Warning
    })?;
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    // A group's replies are its address pair's: count each pair once,
    // however many ports its groups split into.
    let mut replies_by_pair: FxHashMap<(IpAddr, IpAddr), u64> = FxHashMap::default();
    let (mut pods, mut destinations) = (FxHashSet::default(), FxHashSet::default());
    for g in &groups {
        replies_by_pair.insert((g.pod, g.destination), g.replies);
        pods.insert(g.pod);
        destinations.insert(g.destination);
    }
    let replies: u64 = replies_by_pair.values().sum();
    let (pods, destinations) = (sorted(pods), sorted(destinations));
    let summary = format!(
        "{} from pod addresses {} reached {} with pod source addresses and got {} reply packets: the upstream network routes the pod CIDR. Intended with native routing and BGP; otherwise masquerading is missing.",
        plural(flows, "flow", "flows"),
        list(&pods, 4),
        list(&destinations, 4),
        replies
    );
    let cause = Cause::new(
        symptoms,
        "pod_addresses_routed_without_snat",
        Severity::Warning,
        "Pod addresses are routed upstream without SNAT",
        summary,
    )
    .evidence([
        ("flows", flows),
        ("reply_packets", replies),
        ("pod_sources", pods.len() as u64),
    ])
    .fix(
        "any",
        "If these destinations are meant to see pod addresses, declare them with --internal-cidr; otherwise enable masquerading as for unmasqueraded egress.",
    );
    Some(cause)
}

fn dns_errors(findings: &Findings, symptoms: &Symptoms) -> Option<Cause> {
    let errors = chosen(&findings.dns.rcodes, |r| r.severity == Severity::Warning)?;
    let responses: u64 = errors.iter().map(|r| r.responses).sum();
    let servers: BTreeSet<IpAddr> = errors
        .iter()
        .flat_map(|r| r.servers.iter().copied())
        .collect();
    let summary = format!(
        "{} from {}: {}.",
        plural(responses, "error response", "error responses"),
        list(&servers, 4),
        list(
            errors
                .iter()
                .map(|r| format!("{} {} ({})", r.name, r.rcode, r.responses)),
            5
        )
    );
    let cause = Cause::new(
        symptoms,
        "dns_server_errors",
        Severity::Warning,
        "DNS servers answer with errors",
        summary,
    )
    .evidence([("responses", responses), ("servers", servers.len() as u64)])
    .fix(
        "any",
        "SERVFAIL usually means the server could not reach its upstream (check CoreDNS's forward target and its egress); REFUSED means the server does not serve this client or zone.",
    );
    Some(cause)
}

fn refused(findings: &Findings, symptoms: &Symptoms) -> Option<Cause> {
    let groups = chosen(&findings.tcp_syns.groups, |g| {
        g.outcome == SynOutcome::Refused
    })?;
    let flows: u64 = groups.iter().map(|g| g.flows).sum();
    let targets: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| {
            g.ports
                .iter()
                .map(move |p| format!("{}:{p}", g.destination))
        })
        .collect();
    let summary = format!(
        "{} answered with RST by {}{}: nothing listens there, or a firewall rejects.",
        plural(flows, "connection attempt", "connection attempts"),
        list(&targets, 5),
        unlisted(findings, SynOutcome::Refused),
    );
    let cause = Cause::new(
        symptoms,
        "connections_refused",
        Severity::Warning,
        "Connections refused",
        summary,
    )
    .evidence([("flows", flows), ("targets", targets.len() as u64)])
    .fix(
        "any",
        "Check that the service listens on that port (and, for a Service, that it has ready endpoints).",
    );
    Some(cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::egress::{EgressFindings, EgressGroup};
    use crate::time::Timestamp;

    fn group(pod: &str, destination: &str, port: u16, replies: u64) -> EgressGroup {
        EgressGroup {
            pod: pod.parse().unwrap(),
            destination: destination.parse().unwrap(),
            protocol: "tcp".into(),
            port,
            severity: Severity::Warning,
            flows: 1,
            packets: 1,
            bytes: 60,
            replies,
            first: Timestamp(0),
            last: Timestamp(0),
            left_on: Vec::new(),
            items: Vec::new(),
        }
    }

    fn ids(verdict: &Verdict) -> Vec<(usize, &'static str)> {
        verdict.causes.iter().map(|c| (c.rank, c.id)).collect()
    }

    #[test]
    fn no_findings_is_clean() {
        let mut t = crate::detect::testing::Traffic::default();
        t.syn(0, "10.50.10.21:40000", "1.1.1.1:443").syn_ack(
            10,
            "1.1.1.1:443",
            "10.50.10.21:40000",
        );
        let verdict = correlate(&t.findings());
        assert_eq!(verdict.status, Status::Clean);
        assert!(verdict.causes.is_empty());
    }

    /// The root cause explains the symptoms between its own pairs only;
    /// the others get causes of their own, ranked after it.
    #[test]
    fn a_root_cause_explains_its_own_symptoms_and_ranks_first() {
        let mut t = crate::detect::testing::Traffic::default();
        // Pod egress unmasqueraded: its SYNs and DNS queries go unanswered.
        t.syn(0, "10.42.1.5:40000", "1.1.1.1:443");
        t.query(0, "10.42.1.5:40001", "1.1.1.1:53", 1, "ghcr.io");
        // The node's own SYN to another destination is dropped too.
        t.syn(0, "10.50.10.21:40002", "9.9.9.9:443");
        // And a refused connection.
        t.syn(0, "10.50.10.21:40003", "8.8.8.8:80")
            .rst(5, "8.8.8.8:80", "10.50.10.21:40003");
        t.udp(20_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        let verdict = correlate(&t.findings());
        assert_eq!(verdict.status, Status::Failure);
        assert_eq!(
            ids(&verdict),
            [
                (1, "pod_egress_not_masqueraded"),
                (2, "syns_unanswered"),
                (3, "connections_refused")
            ]
        );
        let root = &verdict.causes[0].explains;
        assert_eq!(
            (root.unanswered_syns.explained, root.unanswered_syns.total),
            (1, 2)
        );
        assert_eq!(
            (root.dns_timeouts.explained, root.dns_timeouts.total),
            (1, 1)
        );
        let other = &verdict.causes[1];
        assert_eq!(other.explains.unanswered_syns.explained, 1);
        assert!(other.summary.contains("9.9.9.9 (1)"), "{}", other.summary);
        assert_eq!(other.evidence["flows"], 1);
    }

    #[test]
    fn warnings_alone_make_a_warning() {
        let mut t = crate::detect::testing::Traffic::default();
        t.syn(0, "10.50.10.21:40003", "8.8.8.8:80")
            .rst(5, "8.8.8.8:80", "10.50.10.21:40003");
        let verdict = correlate(&t.findings());
        assert_eq!(verdict.status, Status::Warning);
        assert_eq!(ids(&verdict), [(1, "connections_refused")]);
        assert_eq!(verdict.causes[0].remediation[0].cni, "any");
    }

    #[test]
    fn routed_pod_replies_count_each_address_pair_once() {
        let findings = Findings {
            unmasqueraded_egress: EgressFindings {
                groups: vec![
                    group("10.42.0.5", "1.1.1.1", 443, 10),
                    group("10.42.0.5", "1.1.1.1", 80, 10),
                    group("10.42.0.6", "1.1.1.1", 443, 3),
                ],
                ..Default::default()
            },
            tcp_syns: Default::default(),
            dns: Default::default(),
            service_vips: Default::default(),
        };
        let verdict = correlate(&findings);
        let cause = verdict
            .causes
            .iter()
            .find(|c| c.id == "pod_addresses_routed_without_snat")
            .expect("routed cause");
        assert_eq!(cause.evidence["reply_packets"], 13);
        assert_eq!(cause.evidence["flows"], 3);
        assert!(
            cause.summary.contains("got 13 reply packets"),
            "{}",
            cause.summary
        );
    }
}
