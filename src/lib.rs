//! trackerless: find BitTorrent peers and download torrents with no tracker.
pub mod dht;
pub mod runtime;
pub mod time;
pub mod wire;
