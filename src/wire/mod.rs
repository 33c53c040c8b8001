//! Bytes to typed messages and back. No state, no I/O, no clock, no randomness.

pub mod bencode;
pub mod byte_string;
pub mod compact;
pub mod extension;
pub mod id;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod peer;

pub use compact::NodeContact;
pub use id::{Id, InfoHash, NodeId};
