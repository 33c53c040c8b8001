//! The only layer that touches sockets, clocks, files and OS randomness.

pub mod dht;
pub mod metadata;
pub mod peer_io;
pub mod peer_listener;
pub mod state;

pub use dht::{
    AnnounceReport, BootstrapReport, DEFAULT_ROUTERS, Dht, DhtError, DhtSettings, LookupEvent,
    LookupStream,
};
pub use metadata::{FetchError, FetchSettings, FetchedMetadata, fetch_metadata};
pub use peer_listener::PeerListener;
