//! The Mainline DHT (BEP 5) as sans-IO state machines.
//!
//! [`DhtNode`] is the whole node; [`RoutingTable`](routing::RoutingTable),
//! [`Lookup`](lookup::Lookup), [`PeerStore`](peer_store::PeerStore) and
//! [`TokenIssuer`](tokens::TokenIssuer) are its parts, each testable alone.

pub mod config;
pub mod lookup;
pub mod node;
pub mod peer_store;
pub mod routing;
pub mod rtt;
pub mod stats;
pub mod tokens;

pub use config::Config;
pub use lookup::LookupKind;
pub use node::{AnnouncePort, CommandError, DhtNode, Event, LookupSummary, RequestId, Transmit};
pub use stats::Stats;
