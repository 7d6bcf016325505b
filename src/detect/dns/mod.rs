//! DNS: queries matched to responses by (client, client port, server,
//! transaction id), over UDP and TCP (length-prefixed, several messages per
//! segment, messages across segments). A key is answered if a response
//! arrives within `--dns-timeout` of any copy of its query (so a
//! retransmitted query answered once is answered); otherwise it timed out,
//! or is inconclusive if its last copy is younger than the timeout at
//! capture end. Responses are tallied by rcode per name; responses with no
//! earlier query are unsolicited. mDNS and LLMNR are on other ports, and
//! DNS quoted inside ICMP errors is not a message, so neither is counted.

//!
//! This module judges and groups; `log` reads and keeps the messages.

mod log;

pub use log::{DnsCapped, DnsKey, DnsLog, DnsTransport, Name, MESSAGES_PER_KEY};

use super::brief::{BriefBuilder, FindingKind, FindingSet};
use super::{old_enough, Context, Evidence, Severity};
use crate::decode::dns::{self, rcode};
use crate::decode::{PROTO_TCP, PROTO_UDP};
use crate::flow::{merge_maps, min_option, Endpoint, FlowKey};
use crate::time::{Histogram, Timestamp};
use log::Message;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOutcome {
    TimedOut,
    Inconclusive,
    Answered,
    Unsolicited,
}

impl DnsOutcome {
    pub fn label(self) -> &'static str {
        match self {
            DnsOutcome::TimedOut => "timed_out",
            DnsOutcome::Inconclusive => "inconclusive",
            DnsOutcome::Answered => "answered",
            DnsOutcome::Unsolicited => "unsolicited",
        }
    }
}

/// One query key (or, for unsolicited, one response) as evidence.
#[derive(Debug, Clone, Serialize)]
pub struct DnsItem {
    pub client: Endpoint,
    pub server: Endpoint,
    pub id: u16,
    pub name: Option<Name>,
    pub qtype: Option<Cow<'static, str>>,
    pub transport: DnsTransport,
    pub outcome: DnsOutcome,
    /// Rcode of the answering (or unsolicited) response.
    pub rcode: Option<&'static str>,
    pub query_packets: u32,
    pub response_packets: u32,
    pub first: Timestamp,
    pub last: Timestamp,
    /// From the latest query copy before the answer to the answer.
    pub response_time_ms: Option<f64>,
    /// A response came, but later than the timeout.
    pub late_response: bool,
}

/// Timed-out, inconclusive or unsolicited items between two addresses.
#[derive(Debug, Clone, Serialize)]
pub struct DnsGroup {
    pub client: IpAddr,
    pub server: IpAddr,
    pub outcome: DnsOutcome,
    pub severity: Severity,
    /// Query keys (or responses, when unsolicited).
    pub count: u64,
    /// Query copies sent, retransmissions included.
    pub query_packets: u64,
    /// Distinct names, ascending.
    pub names: Vec<String>,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The server port of the group's first query.
    pub server_port: u16,
    /// Keys that did get a response, after the timeout.
    pub answered_late: u64,
    /// Keys judged when `--max-flows` evicted them: counted in `count`,
    /// not listed in `items` (and only their first names in `names`).
    pub evicted: u64,
    pub items: Vec<DnsItem>,
}

/// Responses with one rcode for one name.
#[derive(Debug, Clone, Serialize)]
pub struct RcodeGroup {
    pub name: String,
    pub rcode: &'static str,
    pub rcode_value: u8,
    pub severity: Severity,
    /// Response messages (duplicates, late and unsolicited ones included).
    pub responses: u64,
    pub servers: Vec<IpAddr>,
    /// The query keys these responses answered (none with
    /// `Evidence::Brief`).
    pub items: Vec<DnsItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DnsCounts {
    /// Query messages, retransmissions included, and response messages.
    pub queries: u64,
    pub responses: u64,
    pub query_keys: u64,
    pub answered: u64,
    pub timed_out: u64,
    pub inconclusive: u64,
    /// Timed-out keys that did get a response, after the timeout.
    pub answered_late: u64,
    /// Query keys that were sent more than once.
    pub retransmitted: u64,
    pub unsolicited_responses: u64,
    /// Response messages by rcode mnemonic.
    pub responses_by_rcode: BTreeMap<&'static str, u64>,
    /// Query keys left out of these counts as post-NAT copies of a pod's
    /// query that is counted (`-i any` captures).
    pub post_nat_copies: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DnsFindings {
    pub counts: DnsCounts,
    /// Timed out first, then inconclusive and unsolicited.
    pub groups: Vec<DnsGroup>,
    /// Every (name, rcode), NOERROR included; non-zero rcodes first.
    pub rcodes: Vec<RcodeGroup>,
    /// What the log's bounds left out (reported under coverage).
    #[serde(skip)]
    pub capped: DnsCapped,
    /// Timed-out queries by the second of their first copy, for the
    /// timeline.
    #[serde(skip)]
    pub timeout_starts: Histogram,
}

impl FindingSet for DnsFindings {
    fn worst(&self) -> Option<Severity> {
        let groups = self.groups.iter().map(|g| g.severity);
        groups.chain(self.rcodes.iter().map(|r| r.severity)).max()
    }

    /// Timeouts: subject `client -> server`, details the names; errors:
    /// subject `name RCODE`, details the servers.
    fn brief(&self, brief: &mut BriefBuilder) {
        brief.counts.dns_timeouts = self.counts.timed_out;
        for g in self
            .groups
            .iter()
            .filter(|g| g.severity >= Severity::Warning)
        {
            let subject = format!("{} -> {}", g.client, g.server);
            let names = match g.names.as_slice() {
                [] => vec!["(no name)".to_string()],
                names => names.to_vec(),
            };
            brief.add(FindingKind::DnsTimeout, subject, g.severity, g.count, names);
        }
        for r in self
            .rcodes
            .iter()
            .filter(|r| r.severity >= Severity::Warning)
        {
            brief.counts.dns_errors += r.responses;
            let subject = format!("{} {}", r.name, r.rcode);
            let servers = r.servers.iter().map(|s| s.to_string());
            brief.add(
                FindingKind::DnsError,
                subject,
                r.severity,
                r.responses,
                servers,
            );
        }
    }
}

/// Responses and answered queries of one (name, rcode), while counting.
#[derive(Debug, Clone, Default)]
struct RcodeTally {
    responses: u64,
    servers: BTreeSet<IpAddr>,
    items: Items,
}

impl RcodeTally {
    fn merge(&mut self, other: RcodeTally) {
        self.responses += other.responses;
        self.servers.extend(other.servers);
        self.items.append(other.items);
    }
}

/// Evidence items, a list per worker's share of the keys, in share order:
/// concatenated once at the end. Merged by extending one list with the
/// other, a storm's hundreds of thousands of items were copied once per
/// level of the merge tree. Items of keys judged at eviction are only
/// tallied (`Cut`).
#[derive(Debug, Clone, Default)]
struct Items {
    shares: Vec<Vec<DnsItem>>,
    cut: Cut,
}

/// Items judged at eviction, in brief: a group keeps its counts and its
/// first names, not the items.
#[derive(Debug, Clone, Default)]
struct Cut {
    count: u64,
    query_packets: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    names: BTreeSet<Name>,
    /// The earliest item's (time, server port).
    earliest: Option<(Timestamp, u16)>,
    late: u64,
}

/// Names an evicted group keeps: a storm of random names must not keep
/// them all.
const CUT_NAMES: usize = 100;

impl Cut {
    fn add(&mut self, item: &DnsItem) {
        self.count += 1;
        self.query_packets += u64::from(item.query_packets);
        self.first = min_option(self.first, Some(item.first));
        self.last = self.last.max(Some(item.last));
        self.earliest = min_option(self.earliest, Some((item.first, item.server.port)));
        self.late += u64::from(item.late_response);
        if let Some(name) = &item.name {
            if self.names.len() < CUT_NAMES {
                self.names.insert(name.clone());
            }
        }
    }

    fn merge(&mut self, other: Cut) {
        self.count += other.count;
        self.query_packets += other.query_packets;
        self.first = min_option(self.first, other.first);
        self.last = self.last.max(other.last);
        self.earliest = min_option(self.earliest, other.earliest);
        self.late += other.late;
        for name in other.names {
            if self.names.len() < CUT_NAMES {
                self.names.insert(name);
            }
        }
    }
}

impl Items {
    fn push(&mut self, item: DnsItem, cut: bool) {
        if cut {
            return self.cut.add(&item);
        }
        match self.shares.last_mut() {
            Some(share) => share.push(item),
            None => self.shares.push(vec![item]),
        }
    }

    fn append(&mut self, mut other: Items) {
        self.shares.append(&mut other.shares);
        self.cut.merge(other.cut);
    }

    /// All the items, in time order; ties by key, so the order does not
    /// depend on which worker judged what. Sorted on cached keys: each
    /// item moves once instead of once per pass of a merge sort.
    fn sorted(self) -> (Vec<DnsItem>, Cut) {
        let total = self.shares.iter().map(Vec::len).sum();
        let mut all = Vec::with_capacity(total);
        for share in self.shares {
            all.extend(share);
        }
        all.sort_by_cached_key(|i| (i.first, i.client, i.id, i.server));
        (all, self.cut)
    }
}

impl DnsCounts {
    fn add(&mut self, other: DnsCounts) {
        self.queries += other.queries;
        self.responses += other.responses;
        self.query_keys += other.query_keys;
        self.answered += other.answered;
        self.timed_out += other.timed_out;
        self.inconclusive += other.inconclusive;
        self.answered_late += other.answered_late;
        self.retransmitted += other.retransmitted;
        self.unsolicited_responses += other.unsolicited_responses;
        for (rcode, count) in other.responses_by_rcode {
            *self.responses_by_rcode.entry(rcode).or_default() += count;
        }
        self.post_nat_copies += other.post_nat_copies;
    }
}

fn rcode_severity(code: u8) -> Severity {
    match code {
        rcode::NOERROR | rcode::NXDOMAIN => Severity::Info,
        _ => Severity::Warning,
    }
}

const NO_QUESTION: &str = "<no question>";

fn question_name(m: &Message) -> Option<&Name> {
    m.name.as_ref()
}

fn qtype_of(m: &Message) -> Option<Cow<'static, str>> {
    m.name.as_ref().map(|_| dns::qtype_name(m.qtype))
}

/// What `find` needs besides the messages.
struct Judge<'a> {
    timeout: u64,
    capture_end: Option<Timestamp>,
    post_nat_copies: &'a FxHashSet<FlowKey>,
    /// The name of responses without a question.
    no_question: Name,
    evidence: Evidence,
    /// Judging keys evicted by `--max-flows`: tally the items, keep none.
    cut: bool,
}

/// A question name by its address: names are interned, so within one
/// log equal names are one allocation, and a tally holds its name, which
/// keeps the address from being reused. Looked up this way, a response
/// neither hashes its name nor touches the name's reference count, which
/// every worker would otherwise bump on the same few names. Logs merged
/// from several workers can hold one name twice, so `find` combines by
/// text at the end (a handful of entries).
fn address(name: &Name) -> usize {
    Arc::as_ptr(name).cast::<u8>() as usize
}

/// The tally of (`name`, `rcode`) in `rcodes`, added if new.
fn tally<'r>(rcodes: &'r mut RcodeTallies, name: &Name, rcode: u8) -> &'r mut RcodeTally {
    let (_, tally) = (rcodes.entry((address(name), rcode)))
        .or_insert_with(|| (name.clone(), RcodeTally::default()));
    tally
}

/// By (the name's `address`, rcode): the name and its tally.
type RcodeTallies = FxHashMap<(usize, u8), (Name, RcodeTally)>;

/// The outcomes of some query keys: counts, unanswered items by
/// (client, server, outcome), responses by (name, rcode). Keys are judged
/// independently, so workers judge their share and the tallies merge.
#[derive(Debug, Clone, Default)]
struct Judged {
    counts: DnsCounts,
    /// Response messages by their 4-bit rcode; into `counts` at the end.
    responses_by_rcode: [u64; 16],
    groups: FxHashMap<(IpAddr, IpAddr, DnsOutcome), Items>,
    rcodes: RcodeTallies,
    /// Timed-out keys by the second of their first query.
    timeouts: Histogram,
}

impl Judged {
    /// Folds the one with fewer groups into the other: what is merged is
    /// sums, and items sorted at the end.
    fn merge(mut self, mut other: Judged) -> Judged {
        if self.groups.len() < other.groups.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.counts.add(other.counts);
        self.timeouts.merge(other.timeouts);
        for (into, from) in self
            .responses_by_rcode
            .iter_mut()
            .zip(other.responses_by_rcode)
        {
            *into += from;
        }
        merge_maps(&mut self.groups, other.groups, Items::append);
        merge_maps(&mut self.rcodes, other.rcodes, |(_, into), (_, from)| {
            into.merge(from)
        });
        self
    }

    /// Judges one key by its messages, in order.
    fn key(&mut self, key: &DnsKey, messages: &[Message], judge: &Judge<'_>) {
        let is_copy = |protocol| {
            (judge.post_nat_copies).contains(&FlowKey::between(protocol, key.client, key.server).0)
        };
        if !judge.post_nat_copies.is_empty() && (is_copy(PROTO_UDP) || is_copy(PROTO_TCP)) {
            self.counts.post_nat_copies += 1;
            return;
        }
        let counts = &mut self.counts;
        // Messages come in time order, so the latest query so far is the
        // one a response is closest to: checking it alone is checking all
        // (one pass, however many copies a key has).
        let mut copies = 0u32;
        let mut latest_query: Option<Timestamp> = None;
        let mut first_query: Option<&Message> = None;
        let mut answer: Option<(&Message, u64)> = None;
        let mut late = false;
        let mut response_packets = 0u32;
        crate::ops::step(messages.len());
        for m in messages {
            if !m.response {
                counts.queries += 1;
                copies = copies.saturating_add(1);
                latest_query = latest_query.max(Some(m.ts));
                first_query.get_or_insert(m);
                continue;
            }
            counts.responses += 1;
            response_packets += 1;
            self.responses_by_rcode[usize::from(m.rcode & 0xf)] += 1;
            let name = question_name(m).unwrap_or(&judge.no_question);
            let tally = tally(&mut self.rcodes, name, m.rcode);
            tally.responses += 1;
            tally.servers.insert(key.server.addr);
            if latest_query.is_some_and(|t| m.ts.since(t) <= judge.timeout) {
                if answer.is_none() {
                    let latest = latest_query.unwrap_or(m.ts);
                    answer = Some((m, m.ts.since(latest)));
                }
            } else if latest_query.is_none() {
                counts.unsolicited_responses += 1;
                let item = item(key, m, DnsOutcome::Unsolicited, 0, 1, m.ts, m.ts);
                self.groups
                    .entry((key.client.addr, key.server.addr, DnsOutcome::Unsolicited))
                    .or_default()
                    .push(
                        DnsItem {
                            rcode: Some(rcode::name(m.rcode)),
                            ..item
                        },
                        judge.cut,
                    );
            } else {
                late = true;
            }
        }
        let Some(query) = first_query else {
            return;
        };
        counts.query_keys += 1;
        counts.retransmitted += u64::from(copies > 1);
        let first = query.ts;
        let last_query = latest_query.unwrap_or(first);
        let outcome = if answer.is_some() {
            counts.answered += 1;
            DnsOutcome::Answered
        } else if old_enough(last_query, judge.capture_end, judge.timeout) {
            counts.timed_out += 1;
            counts.answered_late += u64::from(late);
            self.timeouts.add(first, 1);
            DnsOutcome::TimedOut
        } else {
            counts.inconclusive += 1;
            DnsOutcome::Inconclusive
        };
        let last = messages.last().map_or(first, |m| m.ts);
        let entry = || item(key, query, outcome, copies, response_packets, first, last);
        match answer {
            Some((response, rtt)) => {
                let name = question_name(response)
                    .or_else(|| question_name(query))
                    .unwrap_or(&judge.no_question);
                let tally = tally(&mut self.rcodes, name, response.rcode);
                // Only JSON lists the queries an rcode answered.
                if judge.evidence == Evidence::All && !judge.cut {
                    tally.items.push(
                        DnsItem {
                            rcode: Some(rcode::name(response.rcode)),
                            response_time_ms: Some(rtt as f64 / 1e6),
                            ..entry()
                        },
                        false,
                    );
                }
            }
            None => self
                .groups
                .entry((key.client.addr, key.server.addr, outcome))
                .or_default()
                .push(
                    DnsItem {
                        late_response: late,
                        ..entry()
                    },
                    judge.cut,
                ),
        }
    }

    /// Judges keys `--max-flows` evicted at `now` (the latest record
    /// read), in parallel: their counts and groups are kept, their items
    /// tallied.
    fn retire(
        &mut self,
        keys: Vec<Vec<(DnsKey, log::Messages)>>,
        now: Option<Timestamp>,
        timeout: u64,
    ) {
        let none = FxHashSet::default();
        let judge = Judge {
            timeout,
            capture_end: now,
            post_nat_copies: &none,
            no_question: Name::from(NO_QUESTION),
            evidence: Evidence::Brief,
            cut: true,
        };
        let judged = (keys.into_par_iter())
            .map(|partition| {
                let mut judged = Judged::default();
                for (key, mut messages) in partition {
                    messages.sort_by_key(|m| (m.ts, m.order));
                    judged.key(&key, &messages, &judge);
                }
                judged
            })
            .reduce(Judged::default, Judged::merge);
        *self = std::mem::take(self).merge(judged);
    }

    /// The counts, with responses by rcode mnemonic, and the tallies by
    /// (name text, rcode).
    fn finish(mut self) -> (DnsCounts, FxHashMap<(Name, u8), RcodeTally>) {
        for (code, count) in self.responses_by_rcode.into_iter().enumerate() {
            if count > 0 {
                let name = rcode::name(code as u8);
                *self.counts.responses_by_rcode.entry(name).or_default() += count;
            }
        }
        let mut rcodes: FxHashMap<(Name, u8), RcodeTally> = FxHashMap::default();
        for ((_, code), (name, tally)) in self.rcodes {
            rcodes.entry((name, code)).or_default().merge(tally);
        }
        (self.counts, rcodes)
    }
}

pub fn find(
    mut log: DnsLog,
    capture_end: Option<Timestamp>,
    post_nat_copies: &FxHashSet<FlowKey>,
    context: &Context<'_>,
) -> DnsFindings {
    let judge = Judge {
        timeout: context.settings.dns_timeout_ns,
        capture_end,
        post_nat_copies,
        no_question: Name::from(NO_QUESTION),
        evidence: context.evidence,
        cut: false,
    };
    let retired = std::mem::take(&mut log.retired);
    let (partitions, capped) = log.into_partitions();
    let mut judged = (partitions.into_par_iter())
        .fold(Judged::default, |mut judged, partition| {
            for (key, mut messages) in partition {
                messages.sort_by_key(|m| (m.ts, m.order));
                judged.key(&key, &messages, &judge);
            }
            judged
        })
        .reduce(Judged::default, Judged::merge)
        .merge(retired);
    let groups = std::mem::take(&mut judged.groups);
    let timeout_starts = std::mem::take(&mut judged.timeouts);
    let (counts, rcodes) = judged.finish();
    let mut groups: Vec<DnsGroup> = (groups.into_par_iter())
        .map(|((client, server, outcome), items)| dns_group(client, server, outcome, items))
        .collect();
    groups.sort_by(|a, b| {
        (a.outcome, std::cmp::Reverse(a.count), a.client, a.server).cmp(&(
            b.outcome,
            std::cmp::Reverse(b.count),
            b.client,
            b.server,
        ))
    });
    let mut rcodes: Vec<RcodeGroup> = (rcodes.into_par_iter())
        .map(|((name, code), tally)| RcodeGroup {
            name: name.to_string(),
            rcode: rcode::name(code),
            rcode_value: code,
            severity: rcode_severity(code),
            responses: tally.responses,
            servers: tally.servers.into_iter().collect(),
            items: tally.items.sorted().0,
        })
        .collect();
    rcodes.sort_by(|a, b| {
        (b.severity, b.rcode_value != 0, b.responses)
            .cmp(&(a.severity, a.rcode_value != 0, a.responses))
            .then_with(|| (&a.name, a.rcode_value).cmp(&(&b.name, b.rcode_value)))
    });
    DnsFindings {
        counts,
        groups,
        rcodes,
        capped,
        timeout_starts,
    }
}

fn item(
    key: &DnsKey,
    m: &Message,
    outcome: DnsOutcome,
    query_packets: u32,
    response_packets: u32,
    first: Timestamp,
    last: Timestamp,
) -> DnsItem {
    DnsItem {
        client: key.client,
        server: key.server,
        id: key.id,
        name: question_name(m).cloned(),
        qtype: qtype_of(m),
        transport: m.transport,
        outcome,
        rcode: None,
        query_packets,
        response_packets,
        first,
        last,
        response_time_ms: None,
        late_response: false,
    }
}

fn dns_group(client: IpAddr, server: IpAddr, outcome: DnsOutcome, items: Items) -> DnsGroup {
    let (items, cut) = items.sorted();
    let names: BTreeSet<&str> = (items.iter().filter_map(|i| i.name.as_deref()))
        .chain(cut.names.iter().map(|n| &**n))
        .collect();
    let names: Vec<String> = names.into_iter().map(str::to_string).collect();
    let first = items.iter().map(|i| i.first).chain(cut.first).min();
    let last = items.iter().map(|i| i.last).chain(cut.last).max();
    DnsGroup {
        client,
        server,
        outcome,
        severity: match outcome {
            DnsOutcome::TimedOut => Severity::Failure,
            _ => Severity::Info,
        },
        count: items.len() as u64 + cut.count,
        query_packets: items
            .iter()
            .map(|i| u64::from(i.query_packets))
            .sum::<u64>()
            + cut.query_packets,
        names,
        first: first.unwrap_or_default(),
        last: last.unwrap_or_default(),
        server_port: (items.first().map(|i| (i.first, i.server.port)))
            .into_iter()
            .chain(cut.earliest)
            .min()
            .map_or(0, |(_, port)| port),
        answered_late: items.iter().filter(|i| i.late_response).count() as u64 + cut.late,
        evicted: cut.count,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::Traffic;

    const CLIENT: &str = "10.42.1.5:40000";
    const SERVER: &str = "10.43.0.10:53";

    fn outcomes(findings: &DnsFindings) -> Vec<(DnsOutcome, u64)> {
        findings
            .groups
            .iter()
            .map(|g| (g.outcome, g.count))
            .collect()
    }

    #[test]
    fn answered_within_the_timeout_and_timed_out_after_it() {
        let mut t = Traffic::default();
        t.query(0, CLIENT, SERVER, 1, "ghcr.io")
            .response(20, SERVER, CLIENT, 1, "ghcr.io", 0);
        t.query(100, CLIENT, SERVER, 2, "github.com");
        // Retransmitted, then answered 6 s after the last copy: late.
        t.query(200, CLIENT, SERVER, 3, "a.io")
            .query(1200, CLIENT, SERVER, 3, "a.io")
            .response(7300, SERVER, CLIENT, 3, "a.io", 0);
        t.udp(20_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        let findings = t.findings().dns;
        let c = &findings.counts;
        assert_eq!((c.query_keys, c.answered, c.timed_out), (3, 1, 2));
        assert_eq!((c.queries, c.retransmitted, c.answered_late), (4, 1, 1));
        assert_eq!(outcomes(&findings), [(DnsOutcome::TimedOut, 2)]);
        let group = &findings.groups[0];
        assert_eq!(group.severity, Severity::Failure);
        assert_eq!(group.names, ["a.io", "github.com"]);
        let late: Vec<(Option<&str>, bool)> = (group.items.iter())
            .map(|i| (i.name.as_deref(), i.late_response))
            .collect();
        assert_eq!(late, [(Some("github.com"), false), (Some("a.io"), true)]);
    }

    #[test]
    fn a_retransmitted_query_answered_once_is_answered() {
        let mut t = Traffic::default();
        t.query(0, CLIENT, SERVER, 9, "a.io")
            .query(2000, CLIENT, SERVER, 9, "a.io")
            .response(6500, SERVER, CLIENT, 9, "a.io", 0);
        t.udp(20_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        let c = t.findings().dns.counts;
        assert_eq!((c.answered, c.timed_out, c.answered_late), (1, 0, 0));
    }

    #[test]
    fn young_queries_are_inconclusive_and_responses_without_a_query_unsolicited() {
        let mut t = Traffic::default();
        t.response(0, SERVER, CLIENT, 4, "b.io", 0);
        t.query(16_000, CLIENT, SERVER, 5, "c.io");
        t.udp(20_000, "10.50.10.21:1", "10.50.10.22:2", b"end");
        let findings = t.findings().dns;
        assert_eq!(
            outcomes(&findings),
            [(DnsOutcome::Inconclusive, 1), (DnsOutcome::Unsolicited, 1)]
        );
        assert!(findings.groups.iter().all(|g| g.severity == Severity::Info));
        assert_eq!(findings.worst(), Some(Severity::Info));
    }

    #[test]
    fn rcodes_are_tallied_per_name_servfail_is_a_warning() {
        let mut t = Traffic::default();
        for id in 0..3 {
            t.query(id * 10, CLIENT, SERVER, id as u16, "broken.io")
                .response(
                    id * 10 + 5,
                    SERVER,
                    CLIENT,
                    id as u16,
                    "broken.io",
                    rcode::SERVFAIL,
                );
        }
        t.query(50, CLIENT, SERVER, 7, "nope.io").response(
            55,
            SERVER,
            CLIENT,
            7,
            "nope.io",
            rcode::NXDOMAIN,
        );
        let rcodes = t.findings().dns.rcodes;
        let tally: Vec<(&str, &str, Severity, u64)> = rcodes
            .iter()
            .map(|r| (r.name.as_str(), r.rcode, r.severity, r.responses))
            .collect();
        assert_eq!(
            tally,
            [
                ("broken.io", "SERVFAIL", Severity::Warning, 3),
                ("nope.io", "NXDOMAIN", Severity::Info, 1)
            ]
        );
    }
}
