//! The DHT state file: our node ID and routing-table nodes, so a restarted
//! node rejoins without the bootstrap routers.
//!
//! Written crash-safely: a temporary file beside the target, fsync, rename
//! over the target, fsync of the directory. A reader sees the old file or the
//! new one, never a torn one.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wire::{Id, NodeContact, NodeId};

/// Largest state file read back; a routing table is a few tens of KiB.
pub const STATE_FILE_SIZE_MAX: u64 = 4 * 1024 * 1024;
/// Most nodes saved or restored.
pub const STATE_NODES_MAX: usize = 2000;
/// Format version written into the file.
const STATE_VERSION: u32 = 1;

/// What is saved between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtState {
    /// Our node ID, kept so other nodes' tables stay valid for us.
    pub node_id: NodeId,
    /// Nodes from the routing table.
    pub nodes: Vec<NodeContact>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a state file we wrote.
    #[error("state file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    node_id: String,
    nodes: Vec<SavedNode>,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    addr: SocketAddr,
}

/// Reads the state file; `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> Result<Option<DhtState>, StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let malformed = |reason: String| StateError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut text = String::new();
    file.take(STATE_FILE_SIZE_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > STATE_FILE_SIZE_MAX {
        return Err(malformed(format!(
            "larger than {STATE_FILE_SIZE_MAX} bytes"
        )));
    }
    let parsed: StateFile = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    if parsed.version != STATE_VERSION {
        return Err(malformed(format!("unknown version {}", parsed.version)));
    }
    let node_id = Id::parse(&parsed.node_id).map_err(|e| malformed(e.to_string()))?;
    let nodes = parsed
        .nodes
        .iter()
        .take(STATE_NODES_MAX)
        .filter_map(|n| {
            Some(NodeContact {
                id: Id::parse(&n.id).ok()?,
                addr: n.addr,
            })
        })
        .collect();
    Ok(Some(DhtState { node_id, nodes }))
}

/// Writes the state file crash-safely (temp file, fsync, rename, fsync dir).
pub fn save(path: &Path, state: &DhtState) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = StateFile {
        version: STATE_VERSION,
        node_id: state.node_id.to_hex(),
        nodes: state
            .nodes
            .iter()
            .take(STATE_NODES_MAX)
            .map(|n| SavedNode {
                id: n.id.to_hex(),
                addr: n.addr,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?;
    write_atomically(path, &bytes).map_err(io)
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old
/// file or the new one, never a torn one: temporary file beside it, fsync,
/// rename over it, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut out = File::create(&temp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.json");
        assert!(load(&path).unwrap().is_none());
        let state = DhtState {
            node_id: Id([7; 20]),
            nodes: vec![NodeContact {
                id: Id([9; 20]),
                addr: "127.0.0.5:6881".parse().unwrap(),
            }],
        };
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state.clone()));
        // Overwriting leaves no temporary file behind.
        save(&path, &state).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(load(&path), Err(StateError::Malformed { .. })));
    }
}
