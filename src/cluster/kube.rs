//! Kubernetes objects as `kubectl get -o json|yaml` prints them, read into
//! the inventory. Nothing in a dump is trusted to be well formed: a field
//! of the wrong type or an address that does not parse is a warning that
//! names the file, the object and the field, and the rest is read.

use super::inventory::{CniSetting, Inventory, Node, Pod, PodCidr, Service, ServicePort};
use crate::time::Timestamp;
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

/// Where an object is: `cluster.json: items[17] (Pod default/x)`.
pub struct Place<'a> {
    pub file: &'a str,
    pub path: String,
}

impl Place<'_> {
    pub fn object(&self, object: &Value) -> String {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object");
        let meta = object.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str);
        let name = match (namespace, name) {
            (Some(ns), Some(name)) => format!(" {ns}/{name}"),
            (None, Some(name)) => format!(" {name}"),
            _ => String::new(),
        };
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!("{} ", self.path)
        };
        format!("{}: {path}({kind}{name})", self.file)
    }
}

/// Reads `value`: a `List` (or any object with `items`), or one object.
/// Returns whether it held Kubernetes objects at all.
pub fn read(value: &Value, place: &Place<'_>, inventory: &mut Inventory) -> bool {
    if let Some(items) = value.get("items").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}items[{i}]", prefix(&place.path));
            let item_place = Place {
                file: place.file,
                path,
            };
            read_item(item, &item_place, inventory);
        }
        return true;
    }
    read_object(value, place, inventory)
}

/// Reads one item of a list (itself a List, or one object); anything else
/// is a warning.
pub fn read_item(item: &Value, place: &Place<'_>, inventory: &mut Inventory) {
    if !read(item, place, inventory) {
        let at = place.object(item);
        inventory.warn(format!("{at}: not a Kubernetes object, skipped"));
    }
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

/// One object of a kind kpcap uses; other kinds are ignored. Returns
/// whether it was a Kubernetes object (it has a kind and an apiVersion).
fn read_object(object: &Value, place: &Place<'_>, inventory: &mut Inventory) -> bool {
    let (Some(kind), Some(_)) = (
        object.get("kind").and_then(Value::as_str),
        object.get("apiVersion").and_then(Value::as_str),
    ) else {
        return false;
    };
    let mut fields = Fields {
        object,
        at: place.object(object),
        warnings: Vec::new(),
    };
    match kind {
        // A List's items were read by `read`; one without a list of items
        // (null, cut short) has none.
        "List" => {}
        "Node" => {
            let node = node(&mut fields);
            inventory.nodes.extend(node);
        }
        "Pod" => {
            let pod = pod(&mut fields);
            inventory.pods.extend(pod);
        }
        "Service" => {
            let service = service(&mut fields);
            inventory.services.extend(service);
        }
        "ServiceCIDR" => {
            let name = fields.str(&["metadata", "name"]).unwrap_or("?").to_string();
            for net in fields.nets(&["spec", "cidrs"]) {
                inventory
                    .service_cidrs
                    .push((net, format!("ServiceCIDR {name}")));
            }
        }
        "CiliumNode" => {
            let name = fields.str(&["metadata", "name"]).unwrap_or("?").to_string();
            for net in fields.nets(&["spec", "ipam", "podCIDRs"]) {
                inventory.pod_cidrs.push(PodCidr {
                    net,
                    from: format!("CiliumNode {name}"),
                    node: Some(name.clone()),
                });
            }
        }
        "IPPool" => ip_pool(&mut fields, inventory),
        "ConfigMap" => config_map(&mut fields, inventory),
        _ => {}
    }
    for warning in fields.warnings {
        inventory.warn(warning);
    }
    true
}

/// Typed access to an object's fields, each failure a located warning.
struct Fields<'v> {
    object: &'v Value,
    at: String,
    warnings: Vec<String>,
}

impl<'v> Fields<'v> {
    fn get(&self, path: &[&str]) -> Option<&'v Value> {
        let mut value = self.object;
        for key in path {
            value = value.get(key)?;
        }
        Some(value).filter(|v| !v.is_null())
    }

    fn warn(&mut self, path: &str, message: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}: {path}: {message}", self.at));
    }

    /// A string field; another type is warned about.
    fn str(&mut self, path: &[&str]) -> Option<&'v str> {
        let value = self.get(path)?;
        let text = value.as_str();
        if text.is_none() {
            self.warn(
                &path.join("."),
                format!("not a string ({})", type_name(value)),
            );
        }
        text
    }

    fn array(&mut self, path: &[&str]) -> &'v [Value] {
        match self.get(path) {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.warn(
                    &path.join("."),
                    format!("not a list ({})", type_name(other)),
                );
                &[]
            }
        }
    }

    fn bool(&mut self, path: &[&str]) -> bool {
        match self.get(path) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.warn(
                    &path.join("."),
                    format!("not true or false ({})", type_name(other)),
                );
                false
            }
        }
    }

    /// An address; None (warned) if it does not parse.
    fn addr(&mut self, path: &str, value: &Value) -> Option<IpAddr> {
        match value.as_str().map(|s| s.trim().parse::<IpAddr>()) {
            Some(Ok(addr)) => Some(addr),
            Some(Err(_)) => {
                self.warn(path, format!("not an address ({})", short(value)));
                None
            }
            None => {
                self.warn(path, format!("not an address ({})", type_name(value)));
                None
            }
        }
    }

    /// The CIDRs of a list field (a comma- or space-separated string is
    /// accepted too, as ConfigMaps write them).
    fn nets(&mut self, path: &[&str]) -> Vec<IpNet> {
        let Some(value) = self.get(path) else {
            return Vec::new();
        };
        let name = path.join(".");
        let texts: Vec<(String, &Value)> = match value {
            Value::Array(items) => (items.iter().enumerate())
                .map(|(i, v)| (format!("{name}[{i}]"), v))
                .collect(),
            other => vec![(name, other)],
        };
        let mut nets = Vec::new();
        for (path, value) in texts {
            match value.as_str() {
                Some(text) => {
                    for piece in text.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
                        match parse_net(piece.trim()) {
                            Some(net) => nets.push(net),
                            None => self.warn(&path, format!("not a CIDR ({})", short(value))),
                        }
                    }
                }
                None => self.warn(&path, format!("not a CIDR ({})", type_name(value))),
            }
        }
        nets
    }
}

/// A CIDR, or a bare address as its one-address network.
pub fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .map(|n| n.trunc())
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value as a warning quotes it: at most 40 characters.
fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() <= 40 {
        return text;
    }
    let head: String = text.chars().take(39).collect();
    format!("{head}…")
}

fn name_of(fields: &mut Fields<'_>) -> Option<String> {
    let name = fields.str(&["metadata", "name"]).map(str::to_string);
    if name.is_none() {
        fields.warn("metadata.name", "missing: object skipped");
    }
    name
}

fn created(fields: &mut Fields<'_>) -> Option<Timestamp> {
    let text = fields.str(&["metadata", "creationTimestamp"])?;
    match humantime::parse_rfc3339(text).or_else(|_| humantime::parse_rfc3339_weak(text)) {
        Ok(t) => {
            let nanos = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
            Some(Timestamp(nanos.min(u64::MAX as u128) as u64))
        }
        Err(_) => {
            fields.warn("metadata.creationTimestamp", "not a time");
            None
        }
    }
}

fn node(fields: &mut Fields<'_>) -> Option<Node> {
    let name = name_of(fields)?;
    let mut node = Node {
        name,
        ..Node::default()
    };
    if let Some(Value::Object(labels)) = fields.get(&["metadata", "labels"]) {
        for key in labels.keys() {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                node.roles.push(role.to_string());
            }
        }
    }
    node.pod_cidrs = fields.nets(&["spec", "podCIDRs"]);
    if node.pod_cidrs.is_empty() {
        node.pod_cidrs = fields.nets(&["spec", "podCIDR"]);
    }
    let addresses = fields.array(&["status", "addresses"]);
    for (i, entry) in addresses.iter().enumerate() {
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(value) = entry.get("address") else {
            continue;
        };
        let path = format!("status.addresses[{i}].address");
        match kind {
            "InternalIP" => node.internal.extend(fields.addr(&path, value)),
            "ExternalIP" => node.external.extend(fields.addr(&path, value)),
            _ => {}
        }
    }
    Some(node)
}

fn pod(fields: &mut Fields<'_>) -> Option<Pod> {
    let name = name_of(fields)?;
    let namespace = fields.str(&["metadata", "namespace"]).unwrap_or("default");
    let mut pod = Pod {
        namespace: namespace.to_string(),
        name,
        node: fields.str(&["spec", "nodeName"]).map(str::to_string),
        phase: fields
            .str(&["status", "phase"])
            .unwrap_or("Unknown")
            .to_string(),
        host_network: fields.bool(&["spec", "hostNetwork"]),
        created: created(fields),
        ..Pod::default()
    };
    let ips = fields.array(&["status", "podIPs"]);
    for (i, entry) in ips.iter().enumerate() {
        let path = format!("status.podIPs[{i}]");
        match entry.get("ip") {
            Some(value) => pod.ips.extend(fields.addr(&format!("{path}.ip"), value)),
            // Some tools flatten podIPs to a list of strings.
            None => pod.ips.extend(fields.addr(&path, entry)),
        }
    }
    if pod.ips.is_empty() {
        if let Some(value) = fields.get(&["status", "podIP"]) {
            pod.ips.extend(fields.addr("status.podIP", value));
        }
    }
    let owners = fields.array(&["metadata", "ownerReferences"]);
    let owner = owners
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .or(owners.first());
    if let Some(owner) = owner {
        let kind = owner.get("kind").and_then(Value::as_str);
        let name = owner.get("name").and_then(Value::as_str);
        if let (Some(kind), Some(name)) = (kind, name) {
            pod.workload = Some(workload(kind, &pod.namespace, name));
        }
    }
    Some(pod)
}

/// The workload a pod's owner stands for: a ReplicaSet named
/// `deployment-<hash>` is its Deployment's.
fn workload(kind: &str, namespace: &str, name: &str) -> String {
    if kind == "ReplicaSet" {
        if let Some((deployment, hash)) = name.rsplit_once('-') {
            let looks_like_hash = (6..=10).contains(&hash.len())
                && hash
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if looks_like_hash && !deployment.is_empty() {
                return format!("Deployment {namespace}/{deployment}");
            }
        }
    }
    format!("{kind} {namespace}/{name}")
}

fn service(fields: &mut Fields<'_>) -> Option<Service> {
    let name = name_of(fields)?;
    let namespace = fields.str(&["metadata", "namespace"]).unwrap_or("default");
    let mut service = Service {
        namespace: namespace.to_string(),
        name,
        ..Service::default()
    };
    let ips = fields.array(&["spec", "clusterIPs"]);
    let mut texts: Vec<(String, &Value)> = (ips.iter().enumerate())
        .map(|(i, v)| (format!("spec.clusterIPs[{i}]"), v))
        .collect();
    if texts.is_empty() {
        texts.extend(
            fields
                .get(&["spec", "clusterIP"])
                .map(|v| ("spec.clusterIP".into(), v)),
        );
    }
    for (path, value) in texts {
        // Headless services have none.
        if value.as_str() == Some("None") || value.as_str() == Some("") {
            continue;
        }
        service.cluster_ips.extend(fields.addr(&path, value));
    }
    let ports = fields.array(&["spec", "ports"]);
    for (i, port) in ports.iter().enumerate() {
        let number = port
            .get("port")
            .and_then(Value::as_u64)
            .filter(|p| *p <= 65535);
        let Some(number) = number else {
            fields.warn(&format!("spec.ports[{i}].port"), "not a port number");
            continue;
        };
        service.ports.push(ServicePort {
            port: number as u16,
            protocol: (port.get("protocol").and_then(Value::as_str))
                .unwrap_or("TCP")
                .to_string(),
            name: port.get("name").and_then(Value::as_str).map(str::to_string),
        });
    }
    Some(service)
}

/// Calico's pools: their CIDR is a pod CIDR; `natOutgoing` is quoted in
/// the diagnosis.
fn ip_pool(fields: &mut Fields<'_>, inventory: &mut Inventory) {
    let name = fields.str(&["metadata", "name"]).unwrap_or("?").to_string();
    let source = format!("IPPool {name}");
    for net in fields.nets(&["spec", "cidr"]) {
        inventory.pod_cidrs.push(PodCidr {
            net,
            from: source.clone(),
            node: None,
        });
    }
    let nat = match fields.get(&["spec", "natOutgoing"]) {
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => short(other),
        None => "unset".into(),
    };
    inventory.cni.push(CniSetting {
        source,
        key: "natOutgoing".into(),
        value: nat,
    });
}

/// The CNI ConfigMaps kpcap reads: cilium-config, ip-masq-agent and
/// flannel's net-conf.
fn config_map(fields: &mut Fields<'_>, inventory: &mut Inventory) {
    let name = fields.str(&["metadata", "name"]).unwrap_or("").to_string();
    let Some(Value::Object(data)) = fields.get(&["data"]) else {
        return;
    };
    // ConfigMap values are strings; a hand-written one may hold `false`.
    let text = |key: &str| {
        data.get(key).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
            _ => None,
        })
    };
    match name.as_str() {
        "cilium-config" => {
            for key in CILIUM_KEYS {
                inventory.cni.push(CniSetting {
                    source: name.clone(),
                    key: key.to_string(),
                    value: text(key).unwrap_or_else(|| "unset".into()),
                });
            }
            for key in ["cluster-pool-ipv4-cidr", "cluster-pool-ipv6-cidr"] {
                for net in fields.nets(&["data", key]) {
                    inventory.pod_cidrs.push(PodCidr {
                        net,
                        from: format!("cilium-config {key}"),
                        node: None,
                    });
                }
            }
            for net in fields.nets(&["data", "ipv4-native-routing-cidr"]) {
                inventory
                    .internal
                    .push((net, "cilium-config ipv4-native-routing-cidr".into()));
            }
        }
        "ip-masq-agent" => {
            let Some(config) = text("config") else {
                return;
            };
            // The agent's config is YAML (or JSON) inside the ConfigMap.
            let parsed = super::yaml::documents(&config).ok();
            let doc = parsed
                .as_ref()
                .and_then(|d| d.first())
                .cloned()
                .unwrap_or_default();
            let mut inner = Fields {
                object: &doc,
                at: fields.at.clone(),
                warnings: Vec::new(),
            };
            for net in inner.nets(&["nonMasqueradeCIDRs"]) {
                inventory
                    .internal
                    .push((net, "ip-masq-agent nonMasqueradeCIDRs".into()));
                inventory.cni.push(CniSetting {
                    source: name.clone(),
                    key: "nonMasqueradeCIDRs".into(),
                    value: net.to_string(),
                });
            }
            fields.warnings.append(&mut inner.warnings);
        }
        "kube-flannel-cfg" => {
            let Some(config) = text("net-conf.json") else {
                return;
            };
            match serde_json::from_str::<Value>(&config) {
                Ok(conf) => {
                    let mut inner = Fields {
                        object: &conf,
                        at: fields.at.clone(),
                        warnings: Vec::new(),
                    };
                    for key in ["Network", "IPv6Network"] {
                        for net in inner.nets(&[key]) {
                            inventory.pod_cidrs.push(PodCidr {
                                net,
                                from: format!("kube-flannel-cfg {key}"),
                                node: None,
                            });
                        }
                    }
                    fields.warnings.append(&mut inner.warnings);
                }
                Err(e) => fields.warn("data.net-conf.json", format!("not JSON: {e}")),
            }
        }
        _ => {}
    }
}

/// The cilium-config keys that decide how pod egress leaves a node.
pub const CILIUM_KEYS: [&str; 5] = [
    "enable-ipv4-masquerade",
    "enable-bpf-masquerade",
    "devices",
    "routing-mode",
    "tunnel-protocol",
];
