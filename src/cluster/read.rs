//! Reading `--cluster` files into an inventory: the format told by
//! content (JSON, YAML, `ip -j` output), a List's items one at a time.

use super::inventory::Inventory;
use super::{ip, kube, slim, yaml};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why `--cluster` could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Read(String, crate::error::CaptureError),
    #[error("{0}: larger than {MAX_FILE_BYTES} bytes, not a dump kpcap reads")]
    TooLarge(String),
}

/// Past any real dump (a 50 000-pod cluster's is a few hundred MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// What a file that holds nothing kpcap reads is told.
const NOT_A_DUMP: &str =
    "neither Kubernetes objects (kubectl get -o json|yaml) nor `ip -j addr` output, skipped";

/// A `List` (or any object with `items`), its items not parsed yet.
#[derive(Deserialize)]
struct Listing<'a> {
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

impl Inventory {
    /// Reads every file of `paths` (a directory: its files, in name order).
    pub fn load(paths: &[PathBuf]) -> Result<Inventory, ClusterError> {
        let mut inventory = Inventory::default();
        for path in paths {
            for file in files(path)? {
                inventory.read_file(&file)?;
            }
        }
        inventory.match_hosts();
        Ok(inventory)
    }

    fn read_file(&mut self, path: &Path) -> Result<(), ClusterError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ClusterError::Io(name.clone(), e))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(ClusterError::TooLarge(name));
        }
        // Mapped like a capture (and watched: a file truncated while it is
        // read is one line and exit 2), read once front to back.
        let bytes = crate::capture::load(path).map_err(|e| ClusterError::Read(name.clone(), e))?;
        self.read_bytes(&name, bytes.as_ref());
        Ok(())
    }

    /// Reads one file's bytes, telling the format by content.
    pub fn read_bytes(&mut self, file: &str, bytes: &[u8]) {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let documents = match first {
            None => {
                self.warn(format!("{file}: empty, skipped"));
                return;
            }
            Some(b'{' | b'[') => {
                if let Err(e) = self.read_json(file, bytes) {
                    self.warn(format!("{file}: not JSON kpcap can read ({e}), skipped"));
                }
                return;
            }
            Some(_) => {
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => {
                        let at = e.valid_up_to();
                        self.warn(format!("{file}: byte {at}: not UTF-8 text, skipped"));
                        return;
                    }
                };
                match yaml::documents(text) {
                    Ok(documents) => documents,
                    Err(e) => {
                        self.warn(format!("{file}: {e}: not YAML or JSON, skipped"));
                        return;
                    }
                }
            }
        };
        let mut understood = false;
        for (i, document) in documents.iter().enumerate() {
            let path = if documents.len() > 1 {
                format!("document {}", i + 1)
            } else {
                String::new()
            };
            if ip::is_ip_output(document) {
                ip::read(document, file, self);
                understood = true;
                continue;
            }
            let objects: Vec<&Value> = match document {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for object in objects {
                let place = kube::Place {
                    file,
                    path: path.clone(),
                };
                understood |= kube::read(object, &place, self);
            }
        }
        if !understood {
            self.warn(format!("{file}: {NOT_A_DUMP}"));
        }
    }

    /// A JSON file, a list's items one at a time: each is parsed from its
    /// slice of the file and dropped once read, so a dump of 50 000 pods
    /// never becomes one tree in memory.
    fn read_json(&mut self, file: &str, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let is_array = bytes.trim_ascii_start().starts_with(b"[");
        let (items, path): (Vec<&RawValue>, &str) = if is_array {
            (serde_json::from_slice(bytes)?, "")
        } else {
            match serde_json::from_slice::<Listing<'_>>(bytes)?.items {
                Some(items) => (items, "items"),
                None => {
                    let object: Value = serde_json::from_slice(bytes)?;
                    let place = kube::Place {
                        file,
                        path: String::new(),
                    };
                    if !kube::read(&object, &place, self) {
                        self.warn(format!("{file}: {NOT_A_DUMP}"));
                    }
                    return Ok(());
                }
            }
        };
        let mut links = Vec::new();
        for (i, raw) in items.iter().enumerate() {
            // A top-level array may be `ip -j` output: read whole.
            let item = if path.is_empty() {
                serde_json::from_str(raw.get())?
            } else {
                slim::parse(raw.get())?
            };
            if path.is_empty() && item.get("ifindex").is_some() {
                links.push(item);
                continue;
            }
            let place = kube::Place {
                file,
                path: format!("{path}[{i}]"),
            };
            kube::read_item(&item, &place, self);
        }
        if !links.is_empty() {
            ip::read(&Value::Array(links), file, self);
        }
        Ok(())
    }
}

/// A path's files: itself, or a directory's regular files in name order
/// (not recursing: a dump directory is flat).
fn files(path: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let name = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ClusterError::Io(name(), e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| ClusterError::Io(name(), e))? {
        let entry = entry.map_err(|e| ClusterError::Io(name(), e))?;
        let file = entry.path();
        if file.is_file() && !is_hidden(&file) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}
