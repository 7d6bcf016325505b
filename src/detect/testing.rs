//! Small hand-built traffic for the detectors' unit tests: real frames
//! (from the generator's builders), decoded and observed as the engine
//! would, one record after another on one interface.

use super::{Context, Evidence, Findings, Observations, Settings};
use crate::capture::Record;
use crate::decode::tcp_flags::{ACK, RST, SYN};
use crate::decode::Decoder;
use crate::interface::{InterfaceNames, Via};
use crate::observe::{Seen, Settle};
use crate::synth::frame::{dns_message, ethernet, ip_packet, L4};
use crate::time::Timestamp;
use crate::topology::{Preset, Topology};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Frames in capture order, each with its time in milliseconds.
#[derive(Default)]
pub struct Traffic {
    frames: Vec<(u64, Vec<u8>)>,
}

fn socket(text: &str) -> SocketAddr {
    text.parse().expect("address:port")
}

impl Traffic {
    pub fn tcp(&mut self, at_ms: u64, from: &str, to: &str, flags: u8) -> &mut Self {
        let (from, to) = (socket(from), socket(to));
        let l4 = L4::Tcp {
            src_port: from.port(),
            dst_port: to.port(),
            flags,
            seq: 1000 + at_ms as u32,
            ack: 0,
            payload: &[],
        };
        self.frame(at_ms, ip_packet(from.ip(), to.ip(), &l4))
    }

    pub fn syn(&mut self, at_ms: u64, from: &str, to: &str) -> &mut Self {
        self.tcp(at_ms, from, to, SYN)
    }

    pub fn syn_ack(&mut self, at_ms: u64, from: &str, to: &str) -> &mut Self {
        self.tcp(at_ms, from, to, SYN | ACK)
    }

    pub fn rst(&mut self, at_ms: u64, from: &str, to: &str) -> &mut Self {
        self.tcp(at_ms, from, to, RST | ACK)
    }

    pub fn udp(&mut self, at_ms: u64, from: &str, to: &str, payload: &[u8]) -> &mut Self {
        let (from, to) = (socket(from), socket(to));
        let l4 = L4::Udp {
            src_port: from.port(),
            dst_port: to.port(),
            payload,
        };
        self.frame(at_ms, ip_packet(from.ip(), to.ip(), &l4))
    }

    /// A DNS query for `name` (type A) from `client` to `server`.
    pub fn query(
        &mut self,
        at_ms: u64,
        client: &str,
        server: &str,
        id: u16,
        name: &str,
    ) -> &mut Self {
        self.udp(
            at_ms,
            client,
            server,
            &dns_message(id, false, 0, name, 1, None),
        )
    }

    /// A DNS response with `rcode` from `server` to `client`.
    pub fn response(
        &mut self,
        at_ms: u64,
        server: &str,
        client: &str,
        id: u16,
        name: &str,
        rcode: u8,
    ) -> &mut Self {
        let answer = (rcode == 0).then_some([192, 0, 2, 1]);
        let message = dns_message(id, true, rcode, name, 1, answer);
        self.udp(at_ms, server, client, &message)
    }

    fn frame(&mut self, at_ms: u64, ip: Vec<u8>) -> &mut Self {
        self.frames.push((at_ms, ethernet(&ip, &[])));
        self
    }

    /// What the detectors observe of these frames, settled.
    pub fn observations(&self, settings: &Settings) -> Observations {
        let decoder = Decoder::default();
        let mut observations = Observations::default();
        for (index, (at_ms, frame)) in self.frames.iter().enumerate() {
            let record = Record {
                position: index as u64 * 100,
                ts: Timestamp(START_NS + at_ms * 1_000_000),
                interface: 0,
                link_type: 1,
                orig_len: frame.len() as u32,
                data: frame,
            };
            let seen = Seen {
                record,
                packet: decoder.decode(1, frame),
                via: Via::new(0, None),
                duplicate: false,
            };
            observations.observe(&seen, settings, &None);
        }
        observations.settle();
        observations
    }

    /// The findings of these frames, under the k3s preset (pods
    /// 10.42.0.0/16, services 10.43.0.0/16) and node CIDR 10.50.10.0/24.
    pub fn findings(&self) -> Findings {
        let settings = &Settings::default();
        let k3s = Topology::preset(Preset::K3s, false);
        let topology = Topology::new(
            k3s.pod,
            k3s.service,
            vec!["10.50.10.0/24".parse().expect("cidr")],
            k3s.internal,
            "test".into(),
        );
        let names = InterfaceNames::new(&[], BTreeMap::new());
        let context = Context {
            topology: &topology,
            settings,
            interfaces: &names,
            evidence: Evidence::All,
        };
        Findings::new(&mut self.observations(settings), &context)
    }
}

/// The time of the first frame: 2025-06-01T10:00:00Z.
const START_NS: u64 = 1_748_772_000 * 1_000_000_000;
