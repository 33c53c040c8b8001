//! trackerless: find BitTorrent peers and download torrents with no tracker.
pub mod wire;
