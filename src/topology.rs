//! The cluster's address plan and the classifier that puts every address
//! into one class: the most specific configured CIDR wins; addresses no
//! CIDR covers are `special` (loopback, link-local, multicast, broadcast,
//! unspecified) or `external`.

use ipnet::IpNet;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrClass {
    Pod,
    Service,
    Node,
    Internal,
    External,
    Special,
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AddrClass::Pod => "pod",
            AddrClass::Service => "service",
            AddrClass::Node => "node",
            AddrClass::Internal => "internal",
            AddrClass::External => "external",
            AddrClass::Special => "special",
        };
        f.write_str(name)
    }
}

/// Named address plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    K3s,
}

#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub pod: Vec<IpNet>,
    pub service: Vec<IpNet>,
    pub node: Vec<IpNet>,
    pub internal: Vec<IpNet>,
    /// Why these CIDRs: "flags", "preset k3s", or "preset k3s, assumed:
    /// no CIDR given".
    pub source: String,
    /// All CIDRs with their class, most specific first, as (network,
    /// mask) integers: every address of a capture is classified, several
    /// times.
    #[serde(skip)]
    ranked: Ranked,
}

#[derive(Debug, Clone, Default)]
struct Ranked {
    v4: Vec<(u32, u32, AddrClass)>,
    v6: Vec<(u128, u128, AddrClass)>,
}

impl Ranked {
    /// `nets` must be most specific first.
    fn new(nets: &[(IpNet, AddrClass)]) -> Ranked {
        let mut ranked = Ranked::default();
        for (net, class) in nets {
            match net {
                IpNet::V4(n) => {
                    ranked
                        .v4
                        .push((u32::from(n.network()), u32::from(n.netmask()), *class))
                }
                IpNet::V6(n) => {
                    ranked
                        .v6
                        .push((u128::from(n.network()), u128::from(n.netmask()), *class))
                }
            }
        }
        ranked
    }

    fn class(&self, addr: IpAddr) -> Option<AddrClass> {
        fn first<T: Copy + std::ops::BitAnd<Output = T> + Eq>(
            nets: &[(T, T, AddrClass)],
            addr: T,
        ) -> Option<AddrClass> {
            nets.iter()
                .find(|(net, mask, _)| addr & *mask == *net)
                .map(|(_, _, class)| *class)
        }
        match addr {
            IpAddr::V4(a) => first(&self.v4, u32::from(a)),
            IpAddr::V6(a) => first(&self.v6, u128::from(a)),
        }
    }
}

impl Topology {
    pub fn new(
        pod: Vec<IpNet>,
        service: Vec<IpNet>,
        node: Vec<IpNet>,
        internal: Vec<IpNet>,
        source: String,
    ) -> Self {
        let mut ranked: Vec<(IpNet, AddrClass)> = Vec::new();
        for (nets, class) in [
            (&pod, AddrClass::Pod),
            (&service, AddrClass::Service),
            (&node, AddrClass::Node),
            (&internal, AddrClass::Internal),
        ] {
            ranked.extend(nets.iter().map(|n| (n.trunc(), class)));
        }
        // Longest prefix first; stable, so equal prefixes keep flag order.
        ranked.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Topology {
            pod,
            service,
            node,
            internal,
            source,
            ranked: Ranked::new(&ranked),
        }
    }

    /// k3s defaults: pods 10.42.0.0/16, services 10.43.0.0/16.
    pub fn preset(preset: Preset, assumed: bool) -> Self {
        let Preset::K3s = preset;
        let source = if assumed {
            "preset k3s, assumed: no CIDR given"
        } else {
            "preset k3s"
        };
        Topology::new(
            vec!["10.42.0.0/16".parse().expect("valid")],
            vec!["10.43.0.0/16".parse().expect("valid")],
            vec![],
            vec![],
            source.to_string(),
        )
    }
    /// The CIDRs in words, and where they came from.
    pub fn describe(&self) -> String {
        let t = self;
        let mut parts = Vec::new();
        for (name, nets) in [
            ("pod", &t.pod),
            ("service", &t.service),
            ("node", &t.node),
            ("internal", &t.internal),
        ] {
            if !nets.is_empty() {
                let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
                parts.push(format!("{name} {}", list.join(",")));
            }
        }
        format!("{} ({})", parts.join("; "), t.source)
    }

    pub fn classify(&self, addr: IpAddr) -> AddrClass {
        // IPv4-mapped IPv6 addresses belong to their IPv4 address.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        if let Some(class) = self.ranked.class(addr) {
            return class;
        }
        if is_special(addr) {
            AddrClass::Special
        } else {
            AddrClass::External
        }
    }
}

fn is_special(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
        }
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn k3s_preset_classifies_pods_services_and_the_rest() {
        let t = Topology::preset(Preset::K3s, true);
        assert_eq!(t.classify(ip("10.42.1.12")), AddrClass::Pod);
        assert_eq!(t.classify(ip("10.43.0.10")), AddrClass::Service);
        assert_eq!(t.classify(ip("1.1.1.1")), AddrClass::External);
        assert_eq!(t.classify(ip("192.168.178.10")), AddrClass::External);
        assert_eq!(t.classify(ip("127.0.0.1")), AddrClass::Special);
        assert_eq!(t.classify(ip("169.254.1.1")), AddrClass::Special);
        assert_eq!(t.classify(ip("224.0.0.251")), AddrClass::Special);
        assert_eq!(t.classify(ip("255.255.255.255")), AddrClass::Special);
        assert_eq!(t.classify(ip("fe80::1")), AddrClass::Special);
        assert_eq!(t.classify(ip("::ffff:10.42.0.5")), AddrClass::Pod);
        assert!(t.source.contains("assumed"));
    }

    #[test]
    fn most_specific_cidr_wins_whatever_the_flag_order() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let t = Topology::new(
            vec![net("10.0.0.0/8")],
            vec![],
            vec![net("10.50.10.0/24")],
            vec![net("10.50.10.128/25")],
            "flags".into(),
        );
        assert_eq!(t.classify(ip("10.1.2.3")), AddrClass::Pod);
        assert_eq!(t.classify(ip("10.50.10.7")), AddrClass::Node);
        assert_eq!(t.classify(ip("10.50.10.200")), AddrClass::Internal);
    }

    #[test]
    fn ipv6_cidrs_classify_ipv6_addresses() {
        let t = Topology::new(
            vec!["fd00:42::/56".parse().unwrap()],
            vec!["fd00:43::/112".parse().unwrap()],
            vec![],
            vec![],
            "flags".into(),
        );
        assert_eq!(t.classify(ip("fd00:42::1")), AddrClass::Pod);
        assert_eq!(t.classify(ip("fd00:43::a")), AddrClass::Service);
        assert_eq!(t.classify(ip("2606:4700::1111")), AddrClass::External);
    }
}
