//! trackerless: find BitTorrent peers and download torrents with no tracker.
//!
//! # Layout
//! Arrows point to what a layer may use; nothing points back up.
//! ```text
//! cli (clap, output)                  src/main.rs, src/cli/
//!   -> runtime (tokio: sockets, timers, files)     src/runtime/
//!        -> dht, peer (sans-IO state machines)     src/dht/, src/peer/
//!             -> wire (bytes <-> typed messages)   src/wire/
//!   -> sim (discrete-event simulator of the DHT)   src/sim/
//! ```
//! - [`wire`]: bounded bencode scanner, 160-bit IDs, compact node and peer
//!   formats, KRPC messages, peer-wire messages, the BEP 10 handshake and
//!   ut_metadata, magnet URIs and metainfo. No state, no I/O, no clock, no
//!   randomness.
//! - [`dht`]: the Mainline DHT node (BEP 5): routing table, lookups, write
//!   tokens, peer store, counters. Time comes in as a [`time::Timestamp`],
//!   randomness from a seeded generator in [`dht::Config`].
//! - [`peer`]: one peer-wire connection ([`peer::PeerSession`]) and the
//!   assembly of verified metadata from many ([`peer::MetadataAssembler`]).
//!   `dht` never imports `peer`.
//! - [`runtime`]: the only place that touches sockets, `Instant::now()`,
//!   files and OS randomness: the [`runtime::Dht`] handle, the state file,
//!   [`runtime::fetch_metadata`] and [`runtime::PeerListener`].
//! - [`sim`]: runs thousands of unchanged `DhtNode`s in virtual time.
//!
//! # Driving the sans-IO node
//! [`dht::DhtNode`] never blocks, never reads a clock and never fails on
//! input. Whoever owns it (the tokio runtime, a simulator, a fuzzer, a test)
//! follows one contract:
//! ```text
//! node.handle_datagram(now, from, &bytes);   // never fails: bad input is counted
//! node.handle_timeout(now);                  // when poll_timeout() is reached
//! let id = node.start_lookup(now, target, kind)?;   // commands return ids
//! while let Some(t) = node.poll_transmit() { send(t.to, t.bytes) }
//! while let Some(e) = node.poll_event() { .. }       // peers found, lookup done, ...
//! let next_wake = node.poll_timeout();
//! ```
//! After any input, drain `poll_transmit` and `poll_event`, then sleep until
//! `poll_timeout()` or the next datagram.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod dht;
pub mod peer;
pub mod runtime;
pub mod sim;
pub mod time;
pub mod wire;
