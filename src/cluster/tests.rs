//! The name rules and the reading of hostile dumps.

use super::*;
use crate::time::Timestamp;
use ipnet::IpNet;
use serde_json::json;
use serde_json::Value;

fn inventory(value: Value) -> Inventory {
    let mut inventory = Inventory::default();
    let bytes = serde_json::to_vec(&value).unwrap();
    inventory.read_bytes("cluster.json", &bytes);
    inventory
}

fn pod(ns: &str, name: &str, ips: &[&str], phase: &str) -> Value {
    let ips: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2025-05-28T09:14:02Z"},
        "spec": {"nodeName": "w1"},
        "status": {"phase": phase, "podIPs": ips},
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn name(inventory: &Inventory, addr: &str) -> Option<AddressName> {
    Directory::new(inventory, None).name(addr.parse().unwrap(), None)
}

#[test]
fn host_network_pods_do_not_name_their_node_address() {
    let mut agent = pod("kube-system", "cilium-x", &["10.50.10.21"], "Running");
    agent["spec"]["hostNetwork"] = json!(true);
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.50.10.21"}]},
    });
    let inv = inventory(list(vec![agent, node]));
    let named = name(&inv, "10.50.10.21").unwrap();
    assert_eq!((named.kind, named.name.as_str()), ("node", "w1"));
}

#[test]
fn a_running_pod_wins_over_a_finished_one_with_its_address() {
    let done = pod(
        "kube-system",
        "helm-install-x",
        &["10.42.1.12"],
        "Succeeded",
    );
    let running = pod("default", "netcheck-1", &["10.42.1.12"], "Running");
    let inv = inventory(list(vec![done.clone(), running]));
    let named = name(&inv, "10.42.1.12").unwrap();
    assert_eq!(named.label(), "default/netcheck-1");
    assert_eq!(named.note, None);
    // Alone, the finished pod names it, and says so.
    let inv = inventory(list(vec![done]));
    let named = name(&inv, "10.42.1.12").unwrap();
    assert_eq!(named.label(), "kube-system/helm-install-x");
    assert!(named.note.unwrap().contains("Succeeded"));
}

#[test]
fn dual_stack_pods_are_named_by_both_addresses() {
    let inv = inventory(pod(
        "default",
        "web",
        &["10.42.1.7", "fd00:42::7"],
        "Running",
    ));
    assert_eq!(name(&inv, "10.42.1.7").unwrap().label(), "default/web");
    assert_eq!(name(&inv, "fd00:42::7").unwrap().label(), "default/web");
}

#[test]
fn services_are_named_with_their_port_names() {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 9153, "protocol": "TCP"}]},
    });
    let headless = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"clusterIP": "None"},
    });
    let inv = inventory(list(vec![service, headless]));
    let named = name(&inv, "10.43.0.10").unwrap();
    assert_eq!(
        (named.kind, named.label().as_str()),
        ("service", "kube-system/kube-dns")
    );
    assert_eq!(named.ports, ["53/UDP dns", "9153/TCP"]);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    // No ServiceCIDR: the plan infers one and says so.
    let plan = Plan::new(&inv);
    assert_eq!(
        plan.service.nets,
        ["10.43.0.0/16".parse::<IpNet>().unwrap()]
    );
    assert!(plan.service.from.contains("inferred"));
}

#[test]
fn a_pod_address_outside_every_pod_cidr_is_warned_about() {
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"},
        "spec": {"podCIDRs": ["10.42.1.0/24"]},
    });
    let inv = inventory(list(vec![
        node,
        pod("default", "odd", &["192.168.5.5"], "Running"),
    ]));
    let plan = Plan::new(&inv);
    assert_eq!(plan.pod.nets, ["10.42.1.0/24".parse::<IpNet>().unwrap()]);
    assert_eq!(plan.warnings.len(), 1);
    assert!(
        plan.warnings[0].contains("default/odd has address 192.168.5.5, outside every pod CIDR")
    );
}

#[test]
fn pods_created_after_the_capture_are_flagged() {
    let inv = inventory(pod("default", "late", &["10.42.1.9"], "Running"));
    let end = Timestamp::from_secs_nanos(1_700_000_000, 0); // 2023, before 2025
    let named = Directory::new(&inv, None)
        .name("10.42.1.9".parse().unwrap(), Some(end))
        .unwrap();
    assert!(named.note.unwrap().contains("after the capture ended"));
}

#[test]
fn workloads_come_from_owner_references() {
    let mut p = pod(
        "flux-system",
        "source-controller-6f8b9c7d4-lm5zt",
        &["10.42.1.17"],
        "Running",
    );
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "source-controller-6f8b9c7d4", "controller": true}]);
    let inv = inventory(p);
    let named = name(&inv, "10.42.1.17").unwrap();
    assert_eq!(
        named.workload.as_deref(),
        Some("Deployment flux-system/source-controller")
    );
}

#[test]
fn a_yaml_dump_reads_as_its_json() {
    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: web\n    namespace: default\n  status:\n    phase: Running\n    podIPs:\n    - ip: 10.42.1.7\n---\napiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: kubernetes\nspec:\n  cidrs: [10.43.0.0/16]\n";
    let mut inv = Inventory::default();
    inv.read_bytes("cluster.yaml", yaml.as_bytes());
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_eq!(name(&inv, "10.42.1.7").unwrap().label(), "default/web");
    assert_eq!(Plan::new(&inv).service.from, "ServiceCIDR kubernetes");
}

#[test]
fn wrong_types_are_located_warnings_and_the_rest_is_read() {
    let bad = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "x", "namespace": "default", "ownerReferences": 7},
        "spec": {"hostNetwork": "yes", "nodeName": 12},
        "status": {"phase": ["Running"], "podIPs": [{"ip": "10.42.1.300"}, {"ip": 5}]},
    });
    let good = pod("default", "ok", &["10.42.1.8"], "Running");
    let inv = inventory(list(vec![json!(17), bad, good]));
    let text = inv.warnings.join("\n");
    assert!(
        text.contains("cluster.json: items[0] (object): not a Kubernetes object"),
        "{text}"
    );
    assert!(
        text.contains("cluster.json: items[1] (Pod default/x): status.podIPs[0].ip: not an address (\"10.42.1.300\")"),
        "{text}"
    );
    assert!(
        text.contains("items[1] (Pod default/x): spec.hostNetwork: not true or false"),
        "{text}"
    );
    assert!(
        text.contains("items[1] (Pod default/x): metadata.ownerReferences: not a list"),
        "{text}"
    );
    assert_eq!(name(&inv, "10.42.1.8").unwrap().label(), "default/ok");
}

#[test]
fn hostile_files_are_skipped_with_one_line_each() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deep.json", "[".repeat(1_000_000).into_bytes()),
        ("deep.yaml", ("- ".repeat(1_000_000) + "x\n").into_bytes()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x41, 0x80]),
        ("not-kube.json", br#"{"hello": "world"}"#.to_vec()),
        ("text", b"NAME READY STATUS\nweb 1/1 Running\n".to_vec()),
        ("latin1.yaml", b"kind: Pod\nname: caf\xe9\n".to_vec()),
        ("empty", Vec::new()),
    ];
    for (file, bytes) in cases {
        let mut inv = Inventory::default();
        inv.read_bytes(file, &bytes);
        assert_eq!(inv.warnings.len(), 1, "{file}: {:?}", inv.warnings);
        let warning = &inv.warnings[0];
        assert!(warning.starts_with(&format!("{file}: ")), "{warning}");
        assert!(!warning.contains('\n'), "{warning}");
    }
}

#[test]
fn ip_output_names_devices_and_is_matched_to_its_node() {
    let ip = json!([
        {"ifindex": 1, "ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00",
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifindex": 3, "ifname": "ens19", "link_type": "ether", "address": "52:54:00:19:00:21",
         "addr_info": [{"family": "inet", "local": "10.50.10.21", "prefixlen": 24}]},
        {"ifindex": 12, "ifname": "lxc3be5a77c0f12", "address": "6e:12:e5:a7:7c:12", "addr_info": []},
        {"ifindex": "x", "ifname": "bad"},
    ]);
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.50.10.21"}]},
    });
    let mut inv = Inventory::default();
    inv.read_bytes("ip-w1.json", &serde_json::to_vec(&ip).unwrap());
    inv.read_bytes("nodes.json", &serde_json::to_vec(&node).unwrap());
    inv.match_hosts();
    assert_eq!(inv.hosts[0].node.as_deref(), Some("w1"));
    assert_eq!(inv.hosts[0].devices.len(), 3);
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(inv.warnings[0].starts_with("ip-w1.json: [3]: ifindex or ifname"));
    let plan = Plan::new(&inv);
    // Exact node addresses: the rest of 10.50.10.0/24 is neighbours.
    assert_eq!(plan.node.nets, ["10.50.10.21/32".parse::<IpNet>().unwrap()]);
    assert_eq!(Directory::new(&inv, None).nics["w1"], ["ens19"]);
}

#[test]
fn conflicts_in_the_plan_are_warned_about() {
    let node = |name: &str| {
        json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDRs": ["10.42.0.0/16"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.50.10.21"}]},
        })
    };
    let cidr = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
        "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.42.128.0/17"]},
    });
    let plan = Plan::new(&inventory(list(vec![node("a"), node("b"), cidr])));
    let text = plan.warnings.join("\n");
    assert!(
        text.contains("nodes a and b both claim address 10.50.10.21"),
        "{text}"
    );
    assert!(
        text.contains(
            "pod CIDR 10.42.0.0/16 (2 nodes' podCIDRs) overlaps service CIDR 10.42.128.0/17"
        ),
        "{text}"
    );
}

#[test]
fn a_list_without_items_is_read_as_empty() {
    // Found by the mutation fuzzer: a List cut after `items:` recursed.
    for text in [
        "apiVersion: v1\nkind: List\nitems:",
        r#"{"apiVersion": "v1", "kind": "List", "items": null}"#,
    ] {
        let mut inv = Inventory::default();
        inv.read_bytes("cut", text.as_bytes());
        assert!(inv.is_empty());
    }
    // Nested Lists are read.
    let inner = list(vec![pod("default", "web", &["10.42.1.7"], "Running")]);
    let inv = inventory(list(vec![inner]));
    assert_eq!(name(&inv, "10.42.1.7").unwrap().label(), "default/web");
}
