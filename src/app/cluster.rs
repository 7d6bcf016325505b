//! `--cluster`: the inventory read once per run, its warnings on stderr,
//! and what it gives the run: the address plan (flags win per class), the
//! device names of `-i any` captures (`--ifname` wins per device).

use crate::cli::{PresetArg, TopologyArgs};
use anyhow::{Context, Result};
use ipnet::IpNet;
use kpcap::cluster::{Inventory, Plan};
use kpcap::error::ConfigError;
use kpcap::pipeline::Reading;
use kpcap::topology::Topology;
use std::path::{Path, PathBuf};

/// `--node NAME` (every capture's node) and `--node NAME=FILE` (one
/// capture's).
#[derive(Debug, Default)]
pub struct NodeFlags {
    pub all: Option<String>,
    /// (file as given, node).
    pub of_file: Vec<(PathBuf, String)>,
}

impl NodeFlags {
    pub fn parse(values: &[String]) -> Result<NodeFlags, ConfigError> {
        let mut flags = NodeFlags::default();
        for value in values {
            match value.split_once('=') {
                Some((node, file)) if !node.is_empty() && !file.is_empty() => {
                    flags.of_file.push((PathBuf::from(file), node.to_string()));
                }
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        flag: "node",
                        reason: format!("{value}: expected NAME or NAME=FILE"),
                    })
                }
                None if flags.all.is_some() => {
                    return Err(ConfigError::Invalid {
                        flag: "node",
                        reason: format!(
                            "{value}: a second node for every capture; use NAME=FILE to name each capture's node"
                        ),
                    })
                }
                None => flags.all = Some(value.clone()),
            }
        }
        Ok(flags)
    }

    /// The node `--node NAME=FILE` gives the capture at `path`: the same
    /// path, or the same file name when only a name was given.
    pub fn of(&self, path: &Path) -> Option<&str> {
        (self.of_file.iter())
            .find(|(file, _)| names(file, path))
            .map(|(_, node)| node.as_str())
    }

    /// The `NAME=FILE` flags that name none of `paths`.
    pub fn unmatched<'a>(
        &'a self,
        paths: &'a [PathBuf],
    ) -> impl Iterator<Item = &'a (PathBuf, String)> {
        (self.of_file.iter()).filter(|(file, _)| !paths.iter().any(|p| names(file, p)))
    }
}

/// Whether `file`, as given to `--node NAME=FILE`, names the capture at
/// `path`: the same path, or the same file name when only a name was given.
fn names(file: &Path, path: &Path) -> bool {
    file == path || (file.components().count() == 1 && path.file_name() == Some(file.as_os_str()))
}

/// The inventory of `--cluster`, if given; its warnings are printed.
pub fn inventory(args: &TopologyArgs) -> Result<Option<Inventory>> {
    if args.cluster.is_empty() {
        return Ok(None);
    }
    let inventory = Inventory::load(&args.cluster).context("--cluster")?;
    for warning in &inventory.warnings {
        eprintln!("kpcap: warning: {warning}");
    }
    if inventory.is_empty() {
        eprintln!(
            "kpcap: warning: --cluster: no node, pod, service or `ip -j` output found; CIDRs from flags and preset"
        );
    }
    Ok(Some(inventory))
}

/// The inventory's address plan; its warnings are printed.
pub fn plan(inventory: &Inventory) -> Plan {
    let plan = Plan::new(inventory);
    for warning in &plan.warnings {
        eprintln!("kpcap: warning: --cluster: {warning}");
    }
    plan
}

/// Names the devices of `-i any` captures from the node's `ip -j` output
/// before they are read: `--node`'s, or the one host's. Names given with
/// `--ifname` win.
pub fn name_devices(
    inventory: &Inventory,
    node: Option<&str>,
    reading: &mut Reading,
) -> Result<()> {
    let Some(host) = inventory.host(node) else {
        if let Some(node) = node {
            let known: Vec<&str> = (inventory.hosts.iter())
                .filter_map(|h| h.node.as_deref())
                .collect();
            return Err(ConfigError::Invalid {
                flag: "node",
                reason: format!(
                    "{node}: no `ip -j addr` output in --cluster matches this node (matched: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            }
            .into());
        }
        // Several hosts: each capture's node is found from its traffic
        // (`Directory::capture_node`), and its devices named then.
        return Ok(());
    };
    for (key, name) in host.device_names() {
        reading.device_names.entry(key).or_insert(name);
    }
    Ok(())
}

/// The address plan: per class, the flags' CIDRs, else the cluster's, else
/// the preset's; the source names each class's origin.
pub fn topology(
    flags: [Vec<IpNet>; 4],
    plan: &Plan,
    preset: &Topology,
    preset_arg: Option<PresetArg>,
) -> Topology {
    let preset_name = match preset_arg {
        None => "preset k3s, assumed",
        Some(_) => "preset k3s",
    };
    let [pod, service, node, internal] = flags;
    let mut sources = Vec::new();
    let mut pick = |class: &str,
                    flagged: Vec<IpNet>,
                    declared: &kpcap::cluster::Declared,
                    preset: &[IpNet]| {
        if !flagged.is_empty() {
            sources.push(format!("{class} from flags"));
            flagged
        } else if !declared.nets.is_empty() {
            sources.push(format!("{class} from {}", declared.from));
            declared.nets.clone()
        } else {
            if !preset.is_empty() {
                sources.push(format!("{class} from {preset_name}"));
            }
            preset.to_vec()
        }
    };
    let pod = pick("pod", pod, &plan.pod, &preset.pod);
    let service = pick("service", service, &plan.service, &preset.service);
    let node = pick("node", node, &plan.node, &preset.node);
    let internal = pick("internal", internal, &plan.internal, &preset.internal);
    Topology::new(pod, service, node, internal, sources.join("; "))
}
