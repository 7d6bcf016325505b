//! The names of the addresses an outcome mentions: every address in the
//! findings (fields and map keys alike, whatever item holds them), named
//! by the cluster's directory. Read off the findings' serialized form, so
//! a detector's new field is named without this module knowing it.

use crate::cluster::{AddressName, CniSetting, Directory};
use crate::detect::verdict::{Hint, Verdict};
use crate::detect::Findings;
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub fn of_mentioned(
    directory: &Directory,
    findings: &Findings,
    capture_end: Option<Timestamp>,
) -> BTreeMap<IpAddr, AddressName> {
    if directory.is_empty() {
        return BTreeMap::new();
    }
    let mut mentioned = BTreeSet::new();
    if let Ok(value) = serde_json::to_value(findings) {
        collect(&value, &mut mentioned);
    }
    (mentioned.into_iter())
        .filter_map(|addr| Some((addr, directory.name(addr, capture_end)?)))
        .collect()
}

/// Every string (and object key) of `value` that is an address. Iterative:
/// findings nest a few levels, but nothing here should recurse on data.
fn collect(value: &Value, out: &mut BTreeSet<IpAddr>) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => out.extend(text.parse::<IpAddr>()),
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => {
                out.extend(map.keys().filter_map(|k| k.parse::<IpAddr>().ok()));
                pending.extend(map.values());
            }
            _ => {}
        }
    }
}

/// Adds to each cause what the cluster says about it: the named pods,
/// services and nodes among the addresses it cites, and, for pod egress
/// that leaves unmasqueraded, the CNI settings in force with a fix for
/// this cluster (hints for other CNIs then go).
pub fn annotate(
    verdict: &mut Verdict,
    names: &BTreeMap<IpAddr, AddressName>,
    directory: &Directory,
    findings: &Findings,
) {
    for cause in &mut verdict.causes {
        let cited: BTreeSet<IpAddr> = (std::iter::once(&cause.summary).chain(&cause.details))
            .flat_map(|text| addresses_in(text))
            .collect();
        let named: Vec<(IpAddr, &AddressName)> = (cited.iter())
            .filter_map(|a| Some((*a, names.get(a)?)))
            .collect();
        for (kind, title) in [("pod", "Pods"), ("service", "Services"), ("node", "Nodes")] {
            let of_kind: Vec<(IpAddr, &AddressName)> = (named.iter())
                .filter(|(_, n)| n.kind == kind)
                .map(|(a, n)| (*a, *n))
                .collect();
            if !of_kind.is_empty() {
                let listed = listed(&of_kind);
                cause
                    .details
                    .push(format!("{title}: {}.", listed.join(", ")));
            }
        }
        // Addresses on a node's own network that are not nodes: why they
        // count as destinations outside the cluster.
        let neighbours: Vec<String> = (cited.iter())
            .filter(|a| !names.contains_key(a))
            .filter_map(|a| {
                let n = directory.networks.iter().find(|n| n.net.contains(a))?;
                Some(format!("{a} ({}'s {} network {})", n.node, n.nic, n.net))
            })
            .collect();
        if !neighbours.is_empty() {
            cause.details.push(format!(
                "On a node's network but not nodes (its router, LAN hosts), so outside the cluster: {}.",
                neighbours.join(", ")
            ));
        }
        if cause.id == "pod_egress_not_masqueraded" {
            let nodes: BTreeSet<&str> = (named.iter())
                .filter(|(_, n)| n.kind == "pod")
                .filter_map(|(_, n)| n.node.as_deref())
                .collect();
            let left_on: BTreeSet<String> = (findings.unmasqueraded_egress.groups.iter())
                .flat_map(|g| {
                    g.left_on
                        .iter()
                        .filter_map(|l| l.nic_name().map(str::to_string))
                })
                .collect();
            if let Some(hint) = cni_hint(directory, &nodes, &left_on) {
                cause
                    .remediation
                    .retain(|h| h.cni == hint.cni || h.cni.starts_with(hint.cni));
                cause.remediation.insert(0, hint);
            }
        }
    }
}

/// Named addresses as a cause lists them: one pod as `ns/name (address on
/// node)`; several pods of one workload together, as `Deployment ns/name:
/// 3 pods (addresses on node)`, which reads better than three hashes.
fn listed(named: &[(IpAddr, &AddressName)]) -> Vec<String> {
    let mut by_workload: BTreeMap<&str, Vec<(IpAddr, &AddressName)>> = BTreeMap::new();
    let mut single = Vec::new();
    for (addr, name) in named {
        match &name.workload {
            Some(w) => by_workload
                .entry(w.as_str())
                .or_default()
                .push((*addr, name)),
            None => single.push((*addr, *name)),
        }
    }
    let mut out = Vec::new();
    for (workload, pods) in by_workload {
        if pods.len() == 1 {
            single.push(pods[0]);
            continue;
        }
        let addrs: Vec<String> = pods.iter().map(|(a, _)| a.to_string()).collect();
        let nodes: BTreeSet<&str> = pods.iter().filter_map(|(_, n)| n.node.as_deref()).collect();
        let on = if nodes.is_empty() {
            String::new()
        } else {
            format!(" on {}", nodes.into_iter().collect::<Vec<_>>().join(", "))
        };
        out.push(format!(
            "{workload}: {} pods ({}{on})",
            pods.len(),
            addrs.join(", ")
        ));
    }
    single.sort_by_key(|(a, _)| *a);
    for (addr, n) in single {
        let mut text = format!("{} ({addr}", n.label());
        if let Some(node) = &n.node {
            text += &format!(" on {node}");
        }
        if let Some(note) = &n.note {
            text += &format!("; {note}");
        }
        out.push(text + ")");
    }
    out
}

/// Tokens of `text` that are addresses (`10.42.1.5`, `10.42.1.5,`, `(1.1.1.1)`).
fn addresses_in(text: &str) -> impl Iterator<Item = IpAddr> + '_ {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | ';'))
        .filter_map(|t| t.trim_end_matches(['.', ':']).parse::<IpAddr>().ok())
}

/// The fix for this cluster, quoting the settings the dump holds.
pub fn cni_hint(
    directory: &Directory,
    nodes: &BTreeSet<&str>,
    left_on: &BTreeSet<String>,
) -> Option<Hint> {
    let setting = |source: &str, key: &str| {
        (directory.cni.iter())
            .find(|s| s.source == source && s.key == key)
            .map(|s| s.value.as_str())
    };
    let left = left_on.iter().cloned().collect::<Vec<_>>().join(",");
    let nics: Vec<String> = (nodes.iter())
        .filter_map(|node| {
            let nics = directory.nics.get(*node)?;
            (nics.len() > 1).then(|| {
                format!(
                    "{node} has {} NICs with addresses ({})",
                    nics.len(),
                    nics.join(", ")
                )
            })
        })
        .collect();
    if setting("cilium-config", "enable-ipv4-masquerade").is_some() {
        let quoted: Vec<String> = (directory.cni.iter())
            .filter(|s| s.source == "cilium-config")
            .map(|s| match s.value.as_str() {
                "unset" => format!("{} unset", s.key),
                value => format!("{}={value}", s.key),
            })
            .collect();
        let masquerade = setting("cilium-config", "enable-ipv4-masquerade") == Some("true");
        let bpf = setting("cilium-config", "enable-bpf-masquerade") == Some("true");
        let devices = setting("cilium-config", "devices").filter(|d| *d != "unset");
        let mut facts = vec![format!("cilium-config: {}", quoted.join(", "))];
        facts.extend(nics);
        if !left.is_empty() {
            facts.push(format!("pod sources left on {left}"));
        }
        let mut fix = Vec::new();
        if !masquerade {
            fix.push("enableIPv4Masquerade=true".to_string());
        }
        if !bpf {
            fix.push("bpf.masquerade=true".to_string());
        }
        let covered = devices.is_some_and(|d| {
            left_on
                .iter()
                .all(|nic| d.split([',', ' ']).any(|x| x == nic))
        });
        if !covered && !left.is_empty() {
            fix.push(format!("devices={left}"));
        }
        let action = if fix.is_empty() {
            "the settings look right: check `cilium status | grep Masquerading` on the node"
                .to_string()
        } else {
            format!(
                "set {} (Helm values, then restart the agents)",
                fix.join(" and ")
            )
        };
        return Some(Hint {
            cni: "cilium",
            hint: format!("{}: {action}.", facts.join("; ")),
        });
    }
    let pools: Vec<&CniSetting> = (directory.cni.iter())
        .filter(|s| s.source.starts_with("IPPool ") && s.key == "natOutgoing")
        .collect();
    if !pools.is_empty() {
        let off: Vec<String> = (pools.iter())
            .filter(|s| s.value != "true")
            .map(|s| format!("{} natOutgoing={}", s.source, s.value))
            .collect();
        let hint = if off.is_empty() {
            "every IPPool has natOutgoing=true: check that the pool covers these pods and that Felix runs on the node".to_string()
        } else {
            format!("{}: set natOutgoing: true on it.", off.join(", "))
        };
        return Some(Hint {
            cni: "calico",
            hint,
        });
    }
    let cidrs: Vec<&str> = (directory.cni.iter())
        .filter(|s| s.source == "ip-masq-agent" && s.key == "nonMasqueradeCIDRs")
        .map(|s| s.value.as_str())
        .collect();
    if !cidrs.is_empty() {
        return Some(Hint {
            cni: "flannel / ip-masq-agent",
            hint: format!(
                "ip-masq-agent nonMasqueradeCIDRs: {}: traffic to these leaves unmasqueraded by design; list only cluster-internal ranges.",
                cidrs.join(", ")
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, workload: Option<&str>) -> AddressName {
        AddressName {
            kind: "pod",
            namespace: Some("flux-system".into()),
            name: name.into(),
            node: Some("k3s-w1".into()),
            workload: workload.map(str::to_string),
            roles: Vec::new(),
            ports: Vec::new(),
            note: None,
        }
    }

    #[test]
    fn pods_of_one_workload_are_listed_together() {
        let (a, b, c) = (
            pod(
                "source-controller-6f8b9c7d4-lm5zt",
                Some("Deployment flux-system/source-controller"),
            ),
            pod(
                "source-controller-6f8b9c7d4-q9x2k",
                Some("Deployment flux-system/source-controller"),
            ),
            pod(
                "helm-controller-5c6d8f7b9-abcde",
                Some("Deployment flux-system/helm-controller"),
            ),
        );
        let named = [
            ("10.42.1.17".parse().unwrap(), &a),
            ("10.42.1.18".parse().unwrap(), &b),
            ("10.42.1.9".parse().unwrap(), &c),
        ];
        assert_eq!(
            listed(&named),
            [
                "Deployment flux-system/source-controller: 2 pods (10.42.1.17, 10.42.1.18 on k3s-w1)",
                "flux-system/helm-controller-5c6d8f7b9-abcde (10.42.1.9 on k3s-w1)",
            ]
        );
        assert_eq!(
            addresses_in("from 3 pod addresses (10.42.1.5, 10.42.1.12) to 1.1.1.1:53.")
                .collect::<Vec<_>>(),
            [
                "10.42.1.5".parse::<IpAddr>().unwrap(),
                "10.42.1.12".parse().unwrap()
            ]
        );
    }
}
