//! An object of a dump with only the fields kpcap reads: serde skips the
//! rest (containers, conditions, managed fields) without building them,
//! which is most of a pod's bytes. The fields keep any JSON type, so a
//! wrong one is still a located warning (`kube::Fields`); an object whose
//! sections are not objects is read whole instead.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slim {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<Spec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    /// ConfigMaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    /// A nested List.
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Value>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_timestamp: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_references: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Value>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_network: Option<Value>,
    #[serde(rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pod_cidr: Option<Value>,
    #[serde(rename = "podCIDRs", skip_serializing_if = "Option::is_none")]
    pod_cidrs: Option<Value>,
    #[serde(rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    cluster_ip: Option<Value>,
    #[serde(rename = "clusterIPs", skip_serializing_if = "Option::is_none")]
    cluster_ips: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cidrs: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cidr: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipam: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nat_outgoing: Option<Value>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<Value>,
    #[serde(rename = "podIP", skip_serializing_if = "Option::is_none")]
    pod_ip: Option<Value>,
    #[serde(rename = "podIPs", skip_serializing_if = "Option::is_none")]
    pod_ips: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addresses: Option<Value>,
}

/// `text`'s object with only the fields kpcap reads.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let slim: Value = match serde_json::from_str::<Slim>(text) {
        Ok(slim) => serde_json::to_value(slim)?,
        // Not an object, or a section that is not: read whole, for the
        // reader to name what is wrong.
        Err(_) => serde_json::from_str(text)?,
    };
    Ok(slim)
}
