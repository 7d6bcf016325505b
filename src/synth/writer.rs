//! Writes frames into a pcap or pcapng container (nanosecond timestamps)
//! through pcap-file's writers: one Ethernet interface, several named
//! interfaces (pcapng), or a Linux cooked `-i any` capture (SLL, SLL2).

use crate::time::Timestamp;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, TsResolution};
use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Pcap,
    Pcapng,
}

/// The link layer of a written interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Linux cooked v1 (`tcpdump -i any` before libpcap 1.10).
    Sll,
    /// Linux cooked v2 (with the interface index).
    Sll2,
}

impl Link {
    fn data_link(self) -> DataLink {
        match self {
            Link::Ethernet => DataLink::ETHERNET,
            Link::Sll => DataLink::LINUX_SLL,
            Link::Sll2 => DataLink::LINUX_SLL2,
        }
    }
}

enum Inner<W: Write> {
    Pcap(PcapWriter<W>),
    Pcapng(PcapNgWriter<W>),
}

pub struct CaptureWriter<W: Write> {
    inner: Inner<W>,
    pub bytes_written: u64,
    pub frames_written: u64,
}

fn io_error(e: pcap_file::PcapError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture of one Ethernet interface called `interface`.
    pub fn new(writer: W, container: Container, interface: &str) -> std::io::Result<Self> {
        Self::with_interfaces(writer, container, &[(interface, Link::Ethernet)])
    }

    /// Starts a capture of the given (name, link) interfaces, numbered in
    /// order. Classic pcap holds one interface and no name.
    pub fn with_interfaces(
        writer: W,
        container: Container,
        interfaces: &[(&str, Link)],
    ) -> std::io::Result<Self> {
        let inner = match container {
            Container::Pcap => {
                let [(_, link)] = interfaces else {
                    return Err(std::io::Error::other("classic pcap has one interface"));
                };
                let header = PcapHeader {
                    ts_resolution: TsResolution::NanoSecond,
                    datalink: link.data_link(),
                    ..PcapHeader::default()
                };
                Inner::Pcap(PcapWriter::with_header(writer, header).map_err(io_error)?)
            }
            Container::Pcapng => {
                let mut w = PcapNgWriter::new(writer).map_err(io_error)?;
                for (name, link) in interfaces {
                    let idb = InterfaceDescriptionBlock {
                        linktype: link.data_link(),
                        snaplen: 0,
                        options: vec![
                            InterfaceDescriptionOption::IfName(Cow::Owned(name.to_string())),
                            // pcap-file writes enhanced packet timestamps in ns.
                            InterfaceDescriptionOption::IfTsResol(9),
                        ],
                    };
                    w.write_pcapng_block(idb).map_err(io_error)?;
                }
                Inner::Pcapng(w)
            }
        };
        Ok(CaptureWriter {
            inner,
            bytes_written: 24,
            frames_written: 0,
        })
    }

    pub fn write(&mut self, ts: Timestamp, frame: &[u8]) -> std::io::Result<()> {
        self.write_on(0, ts, frame)
    }

    /// Writes a frame captured on interface `interface` (pcapng numbering).
    pub fn write_on(&mut self, interface: u32, ts: Timestamp, frame: &[u8]) -> std::io::Result<()> {
        let timestamp = Duration::from_nanos(ts.0);
        let written = match &mut self.inner {
            Inner::Pcap(w) => w
                .write_packet(&PcapPacket::new(timestamp, frame.len() as u32, frame))
                .map_err(io_error)?,
            Inner::Pcapng(w) => w
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: interface,
                    timestamp,
                    original_len: frame.len() as u32,
                    data: Cow::Borrowed(frame),
                    options: vec![],
                })
                .map_err(io_error)?,
        };
        self.bytes_written += written as u64;
        self.frames_written += 1;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        match self.inner {
            Inner::Pcap(w) => w.into_writer(),
            Inner::Pcapng(w) => w.into_inner(),
        }
    }
}
