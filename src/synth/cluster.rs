//! The incident's cluster as `kubectl get nodes,pods,services,servicecidrs
//! -A -o json` and the worker's `ip -j addr` print it, consistent with
//! the incident captures (the same nodes, pods, devices and addresses),
//! and the cilium-config of before the fix: masquerading on, BPF
//! masquerading off, devices unset.

use super::incident::{Device, CONTROL_PLANE, COREDNS_POD, ENS18, ENS19, NODE, NODE_LAN, PODS};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::Path;

const CREATED: &str = "2025-05-28T09:14:02Z";

pub(super) fn addr(octets: [u8; 4]) -> String {
    Ipv4Addr::from(octets).to_string()
}

pub(super) fn node(name: &str, role: Option<&str>, internal: [u8; 4], pod_cidr: &str) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    });
    if let Some(role) = role {
        labels[format!("node-role.kubernetes.io/{role}")] = json!("true");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": "2025-05-20T08:00:00Z", "labels": labels},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": addr(internal)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {"kubeletVersion": "v1.33.1+k3s1", "containerRuntimeVersion": "containerd://2.0.5-k3s1"},
        },
    })
}

/// A pod of `owner` (`ReplicaSet name`, `DaemonSet name`, `Job name`)
/// on the incident's control-plane node or worker.
fn pod(
    namespace: &str,
    name: &str,
    node: &str,
    ip: &str,
    phase: &str,
    owner: (&str, &str),
) -> Value {
    let host = if node == "k3s-cp" {
        CONTROL_PLANE
    } else {
        NODE
    };
    pod_on((node, host), namespace, name, ip, phase, owner)
}

/// A pod on the node `(name, address)`.
pub(super) fn pod_on(
    (node, host): (&str, [u8; 4]),
    namespace: &str,
    name: &str,
    ip: &str,
    phase: &str,
    owner: (&str, &str),
) -> Value {
    let host_ip = addr(host);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": CREATED,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                "controller": true, "blockOwnerDeletion": true,
                "uid": format!("{:08x}-0000-4000-8000-000000000000", name.len() * 7919),
            }],
        },
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "registry.example/main:1"}]},
        "status": {
            "phase": phase,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
        },
    })
}

pub(super) fn service(namespace: &str, name: &str, ip: &str, ports: &[(u16, &str, &str)]) -> Value {
    let ports: Vec<Value> = (ports.iter())
        .map(|(port, protocol, name)| json!({"name": name, "port": port, "protocol": protocol, "targetPort": port}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2025-05-20T08:01:00Z"},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"], "ports": ports},
    })
}

/// The cluster dump: one `List`, as `kubectl get -o json` prints it.
pub fn dump() -> Value {
    let [coredns, probe, flux] = PODS.map(|(ip, _)| addr(ip));
    debug_assert_eq!(coredns, addr(COREDNS_POD));
    let items = vec![
        node(
            "k3s-cp",
            Some("control-plane"),
            CONTROL_PLANE,
            "10.42.0.0/24",
        ),
        node("k3s-w1", None, NODE, "10.42.1.0/24"),
        pod(
            "kube-system",
            "coredns-6799fbcd5-9kq2p",
            "k3s-w1",
            &coredns,
            "Running",
            ("ReplicaSet", "coredns-6799fbcd5"),
        ),
        pod(
            "default",
            "netcheck-7d9c5b8f6-x2x8q",
            "k3s-w1",
            &probe,
            "Running",
            ("ReplicaSet", "netcheck-7d9c5b8f6"),
        ),
        // A finished Job pod that held the same address before: not the owner.
        pod(
            "kube-system",
            "helm-install-traefik-crd-b8n4w",
            "k3s-w1",
            &probe,
            "Succeeded",
            ("Job", "helm-install-traefik-crd"),
        ),
        pod(
            "flux-system",
            "source-controller-6f8b9c7d4-lm5zt",
            "k3s-w1",
            &flux,
            "Running",
            ("ReplicaSet", "source-controller-6f8b9c7d4"),
        ),
        pod(
            "default",
            "echo-5c6d8f7b9-q7w2e",
            "k3s-cp",
            "10.42.0.8",
            "Running",
            ("ReplicaSet", "echo-5c6d8f7b9"),
        ),
        {
            // Cilium's agent runs in the host's network: its address is the node's.
            let mut agent = pod(
                "kube-system",
                "cilium-7xk2p",
                "k3s-w1",
                &addr(NODE),
                "Running",
                ("DaemonSet", "cilium"),
            );
            agent["spec"]["hostNetwork"] = json!(true);
            agent
        },
        service(
            "default",
            "kubernetes",
            "10.43.0.1",
            &[(443, "TCP", "https")],
        ),
        service(
            "kube-system",
            "kube-dns",
            "10.43.0.10",
            &[
                (53, "UDP", "dns"),
                (53, "TCP", "dns-tcp"),
                (9153, "TCP", "metrics"),
            ],
        ),
        service("default", "echo", "10.43.12.7", &[(8080, "TCP", "http")]),
        service_cidr(),
        cilium_config(),
    ];
    list(items)
}

/// Objects as one `List`, as `kubectl get -o json` prints them.
pub(super) fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

pub(super) fn service_cidr() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": "kubernetes"},
        "spec": {"cidrs": ["10.43.0.0/16"]},
    })
}

/// Before the fix: masquerading on, BPF masquerading off, devices unset.
pub(super) fn cilium_config() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": "kube-system"},
        "data": {
            "cluster-pool-ipv4-cidr": "10.42.0.0/16",
            "enable-ipv4-masquerade": "true",
            "enable-bpf-masquerade": "false",
            "routing-mode": "tunnel",
            "tunnel-protocol": "vxlan",
            "ipam": "kubernetes",
        },
    })
}

pub(super) fn mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) fn link(
    index: u32,
    name: &str,
    kind: &str,
    mac_address: &str,
    addrs: &[(String, u8)],
) -> Value {
    let infos: Vec<Value> = (addrs.iter())
        .map(|(local, prefix)| json!({"family": "inet", "local": local, "prefixlen": prefix, "scope": "global", "label": name}))
        .collect();
    json!({
        "ifindex": index, "ifname": name, "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500, "qdisc": "noqueue", "operstate": "UP", "group": "default",
        "link_type": kind, "address": mac_address, "broadcast": "ff:ff:ff:ff:ff:ff", "addr_info": infos,
    })
}

/// `lo`, as every host's `ip -j addr` starts.
pub(super) fn loopback() -> Value {
    link(
        1,
        "lo",
        "loopback",
        "00:00:00:00:00:00",
        &[("127.0.0.1".into(), 8)],
    )
}

fn device(d: Device, addrs: &[(String, u8)]) -> Value {
    link(d.ifindex, d.name, "ether", &mac(d.mac), addrs)
}

/// The worker's `ip -j addr`: its NICs, Cilium's devices and the pods' lxc
/// devices, with the indexes and addresses the `-i any` captures carry.
pub fn ip_addr() -> Value {
    let mut links = vec![
        loopback(),
        device(ENS18, &[(addr(NODE_LAN), 24)]),
        device(ENS19, &[(addr(NODE), 24)]),
        link(4, "cilium_net", "ether", "3a:1e:55:0c:9d:41", &[]),
        link(
            5,
            "cilium_host",
            "ether",
            "9a:6c:02:7e:11:b3",
            &[("10.42.1.1".into(), 32)],
        ),
        link(6, "cilium_vxlan", "ether", "d6:2b:91:44:0a:7f", &[]),
    ];
    links.extend(PODS.iter().map(|(_, d)| device(*d, &[])));
    Value::Array(links)
}

/// Writes `value` to `path` as kubectl and `ip -j -p` print JSON.
pub(super) fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
}

/// Writes `cluster.json` and `ip-k3s-w1.json` into `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("cluster.json"), &dump())?;
    write_json(&dir.join("ip-k3s-w1.json"), &ip_addr())
}
