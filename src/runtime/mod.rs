//! The only layer that touches sockets, clocks, files and OS randomness.

pub mod dht;
pub mod state;

pub use dht::{
    AnnounceReport, BootstrapReport, DEFAULT_ROUTERS, Dht, DhtError, DhtSettings, LookupEvent,
    LookupStream,
};
