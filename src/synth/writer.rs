//! Writes frames into a pcap or pcapng container (Ethernet, nanosecond
//! timestamps) through pcap-file's writers.

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

enum Inner<W: Write> {
    Pcap(PcapWriter<W>),
    Pcapng(PcapNgWriter<W>),
}

pub struct CaptureWriter<W: Write> {
    inner: Inner<W>,
    pub bytes_written: u64,
    pub frames_written: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture of one Ethernet interface called `interface`.
    pub fn new(writer: W, container: Container, interface: &str) -> std::io::Result<Self> {
        let map = |e: pcap_file::PcapError| std::io::Error::other(e.to_string());
        let inner = match container {
            Container::Pcap => {
                let header = PcapHeader {
                    ts_resolution: TsResolution::NanoSecond,
                    datalink: DataLink::ETHERNET,
                    ..PcapHeader::default()
                };
                Inner::Pcap(PcapWriter::with_header(writer, header).map_err(map)?)
            }
            Container::Pcapng => {
                let mut w = PcapNgWriter::new(writer).map_err(map)?;
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen: 0,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(interface.to_string())),
                        // pcap-file writes enhanced packet timestamps in ns.
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                w.write_pcapng_block(idb).map_err(map)?;
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
        let map = |e: pcap_file::PcapError| std::io::Error::other(e.to_string());
        let timestamp = Duration::from_nanos(ts.0);
        let written = match &mut self.inner {
            Inner::Pcap(w) => w
                .write_packet(&PcapPacket::new(timestamp, frame.len() as u32, frame))
                .map_err(map)?,
            Inner::Pcapng(w) => w
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp,
                    original_len: frame.len() as u32,
                    data: Cow::Borrowed(frame),
                    options: vec![],
                })
                .map_err(map)?,
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
