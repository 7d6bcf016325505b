//! Captures inside tar archives (plain, gzip'ed or zstd'ed), read member
//! by member in one pass over the archive, never extracted to disk:
//! capture tools for Kubernetes hand their results over as tarballs.
//!
//! The `tar` crate reads each member's header; the member's bytes are then
//! read straight from the archive's stream by a reader that stops at the
//! member's end, so a member is analyzed as any other streamed capture.

use super::source::{self, Source};
use super::{Input, Stream};
use crate::error::CaptureError;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where the `ustar` magic of a tar header is, and what it reads.
const MAGIC_AT: usize = 257;
const MAGIC: &[u8] = b"ustar";
const BLOCK: u64 = 512;

/// Whether `bytes`, the start of a (decompressed) file, are a tar header.
pub fn is_tar_header(bytes: &[u8]) -> bool {
    bytes.get(MAGIC_AT..MAGIC_AT + MAGIC.len()) == Some(MAGIC)
}

/// Whether the file at `path` is a tar archive, compressed or not.
pub fn is_tar(path: &Path) -> bool {
    if path.as_os_str() == "-" || !path.is_file() {
        return false;
    }
    match source::open(path) {
        Ok(Source::Mapped(bytes)) => is_tar_header(&bytes),
        Ok(Source::Stream(mut reader, _)) => {
            let mut start = [0u8; MAGIC_AT + 5];
            reader.read_exact(&mut start).is_ok() && is_tar_header(&start)
        }
        Err(_) => false,
    }
}

/// The archive's stream, shared by the member being read and the walk to
/// the next header.
#[derive(Clone)]
struct Shared(Arc<Mutex<Box<dyn Read + Send>>>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().expect("archive lock").read(buf)
    }
}

/// One member's bytes: reads stop at its end.
struct MemberReader {
    archive: Shared,
    left: Arc<Mutex<u64>>,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut left = self.left.lock().expect("member lock");
        let room = (*left).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        let n = self.archive.read(&mut buf[..room])?;
        *left -= n as u64;
        Ok(n)
    }
}

/// One member: its path in the archive, and the member opened as a
/// capture, or why it could not be.
pub struct Member {
    pub name: String,
    pub input: Result<Input, CaptureError>,
}

/// The regular files of a tar archive, in archive order.
pub struct Members {
    archive: Shared,
    /// What the member handed out last has not read, and its padding.
    left: Arc<Mutex<u64>>,
    padding: u64,
    chunk_bytes: usize,
    done: bool,
}

impl Members {
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<Members, CaptureError> {
        let reader: Box<dyn Read + Send> = match source::open(path)? {
            Source::Mapped(bytes) => {
                Box::new(super::progress::Counted::new(std::io::Cursor::new(bytes)))
            }
            Source::Stream(reader, _) => reader,
        };
        Ok(Members {
            archive: Shared(Arc::new(Mutex::new(reader))),
            left: Arc::new(Mutex::new(0)),
            padding: 0,
            chunk_bytes,
            done: false,
        })
    }

    /// The next regular file. The member handed out before is finished:
    /// what it did not read is skipped.
    pub fn next_member(&mut self) -> Result<Option<Member>, CaptureError> {
        while !self.done {
            self.skip_rest()?;
            let mut archive = tar::Archive::new(self.archive.clone());
            let mut entries = archive.entries()?;
            let Some(entry) = entries.next() else {
                self.done = true;
                break;
            };
            let entry = entry?;
            let header = entry.header();
            let size = header.entry_size()?;
            let regular = header.entry_type().is_file();
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            *self.left.lock().expect("member lock") = size;
            self.padding = size.next_multiple_of(BLOCK) - size;
            if !regular {
                continue;
            }
            let reader = MemberReader {
                archive: self.archive.clone(),
                left: Arc::clone(&self.left),
            };
            let input = source::decompressed(BufReader::with_capacity(1 << 20, reader)).and_then(
                |(reader, compression)| {
                    Stream::open(reader, compression, self.chunk_bytes).map(Input::Stream)
                },
            );
            return Ok(Some(Member { name, input }));
        }
        Ok(None)
    }

    /// Reads past the rest of the last member and its padding; its reader
    /// reads nothing more.
    fn skip_rest(&mut self) -> Result<(), CaptureError> {
        let left = std::mem::take(&mut *self.left.lock().expect("member lock"));
        let skip = left + std::mem::take(&mut self.padding);
        let copied = std::io::copy(&mut (&mut self.archive).take(skip), &mut std::io::sink())?;
        if copied < skip {
            self.done = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn pcap(packets: usize) -> Vec<u8> {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        bytes.extend([0; 8]);
        bytes.extend(65535u32.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        for i in 0..packets {
            bytes.extend((i as u32).to_le_bytes());
            bytes.extend(0u32.to_le_bytes());
            bytes.extend(60u32.to_le_bytes());
            bytes.extend(60u32.to_le_bytes());
            bytes.extend([0u8; 60]);
        }
        bytes
    }

    fn members_of(bytes: Vec<u8>) -> Vec<(String, Result<u64, String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        std::fs::write(&path, bytes).unwrap();
        assert!(is_tar(&path));
        let mut members = Members::open(&path, 4096).unwrap();
        let mut out = Vec::new();
        while let Some(member) = members.next_member().unwrap() {
            let records = member.input.map_err(|e| e.to_string()).map(|input| {
                let Input::Stream(mut stream) = input else {
                    panic!("members are streamed")
                };
                let mut records = 0;
                while let Some(segment) = stream.next_segment().unwrap() {
                    for chunk in segment.layout().chunks.clone() {
                        segment.walk(&chunk, |_| records += 1);
                    }
                }
                records
            });
            out.push((member.name, records));
        }
        out
    }

    #[test]
    fn each_member_is_read_whole_and_alone() {
        let (a, b) = (pcap(3), pcap(5));
        let archive = tar_of(&[
            ("caps/a.pcap", &a),
            ("README", b"not a capture"),
            ("caps/b.pcap", &b),
        ]);
        let members = members_of(archive);
        assert_eq!(members.len(), 3);
        assert_eq!(members[0], ("caps/a.pcap".into(), Ok(3)));
        assert!(members[1].1.as_ref().unwrap_err().contains("not a pcap"));
        assert_eq!(members[2], ("caps/b.pcap".into(), Ok(5)));
    }

    #[test]
    fn a_member_left_unread_is_skipped() {
        let (a, b) = (pcap(40), pcap(2));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        std::fs::write(&path, tar_of(&[("a.pcap", &a), ("b.pcap", &b)])).unwrap();
        let mut members = Members::open(&path, 4096).unwrap();
        let first = members.next_member().unwrap().unwrap();
        drop(first);
        let second = members.next_member().unwrap().unwrap();
        assert_eq!(second.name, "b.pcap");
        assert!(second.input.is_ok());
        assert!(members.next_member().unwrap().is_none());
    }

    #[test]
    fn a_capture_is_not_a_tar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pcap");
        std::fs::write(&path, pcap(300)).unwrap();
        assert!(!is_tar(&path));
    }
}
