//! Scripted TCP conversations: sequence numbers advance as a real stack's
//! would, so handshakes, retransmissions and teardown look genuine.

use super::frame::{ip_packet, L4};
use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::net::IpAddr;

pub const PSH: u8 = 0x08;

/// A TCP exchange between two endpoints, as IP packets.
pub struct TcpScript {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub client_seq: u32,
    pub server_seq: u32,
    pub packets: Vec<Vec<u8>>,
}

impl TcpScript {
    pub fn new(client: (IpAddr, u16), server: (IpAddr, u16), rng: &mut ChaCha8Rng) -> Self {
        TcpScript {
            client,
            server,
            client_seq: rng.gen(),
            server_seq: rng.gen(),
            packets: Vec::new(),
        }
    }

    pub fn send(&mut self, from_client: bool, flags: u8, payload: &[u8]) {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        let l4 = L4::Tcp {
            src_port: src.1,
            dst_port: dst.1,
            flags,
            seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            payload,
        };
        self.packets.push(ip_packet(src.0, dst.0, &l4));
        let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.client_seq = self.client_seq.wrapping_add(advance);
        } else {
            self.server_seq = self.server_seq.wrapping_add(advance);
        }
    }

    /// Handshake, `exchanges` request/response rounds, orderly close.
    pub fn full_session(
        mut self,
        exchanges: usize,
        rng: &mut ChaCha8Rng,
        body: &[u8],
    ) -> Vec<Vec<u8>> {
        self.send(true, SYN, &[]);
        self.send(false, SYN | ACK, &[]);
        self.send(true, ACK, &[]);
        for _ in 0..exchanges {
            let request = rng.gen_range(80..600);
            self.send(true, PSH | ACK, &body[..request]);
            for _ in 0..rng.gen_range(1..6) {
                let size = rng.gen_range(200..1448);
                self.send(false, ACK, &body[..size]);
            }
            self.send(true, ACK, &[]);
        }
        self.send(true, FIN | ACK, &[]);
        self.send(false, FIN | ACK, &[]);
        self.send(true, ACK, &[]);
        self.packets
    }

    /// A SYN answered with RST: nothing listens there.
    pub fn refused(mut self) -> Vec<Vec<u8>> {
        self.send(true, SYN, &[]);
        self.send(false, RST | ACK, &[]);
        self.packets
    }

    /// A SYN sent `1 + retransmits` times (same ISN, as a kernel does).
    pub fn unanswered_syn(mut self, retransmits: usize) -> Vec<Vec<u8>> {
        for _ in 0..=retransmits {
            self.send(true, SYN, &[]);
            self.client_seq = self.client_seq.wrapping_sub(1);
        }
        self.packets
    }
}
