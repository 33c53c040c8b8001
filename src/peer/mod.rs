//! Peer-wire state machines (sans-IO): one connection ([`session`]) and the
//! assembly of a torrent's metadata from many connections ([`metadata`]).

pub mod metadata;
pub mod session;

pub use metadata::{AssemblerLimits, AssemblyError, Completion, MetadataAssembler, PeerKey};
pub use session::{PeerSession, SessionConfig, SessionError, SessionEvent};
