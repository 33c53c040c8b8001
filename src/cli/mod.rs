//! The `trackerless` command line: one file per command, human output by
//! default and `--json` (one object per line) for scripts.

mod announce;
mod demo;
mod lookup;
mod metadata;
mod node;
mod output;
mod ping;
mod sim;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use trackerless::runtime::{Dht, DhtSettings};
use trackerless::wire::Id;

/// Find BitTorrent peers with no tracker: a Mainline DHT node and tools.
#[derive(Parser, Debug)]
#[command(name = "trackerless", version, about)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a long-lived DHT node.
    Node(node::NodeArgs),
    /// Find peers for an info-hash or magnet link.
    Lookup(lookup::LookupArgs),
    /// Announce that a peer for an info-hash listens on a port.
    Announce(announce::AnnounceArgs),
    /// Fetch a magnet link's metadata from peers and write a .torrent.
    Metadata(metadata::MetadataArgs),
    /// Ping a DHT node.
    Ping(ping::PingArgs),
    /// Build a local DHT of our own nodes on loopback and show a lookup.
    Demo(demo::DemoArgs),
    /// Simulate a large DHT in virtual time and measure lookups.
    Sim(sim::SimArgs),
}

/// Options every network command takes.
#[derive(Args, Debug, Clone)]
pub struct NetworkArgs {
    /// Local address: UDP for the DHT, the same IP for peer connections.
    #[arg(long, value_name = "IP:PORT", default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// DHT entry points, comma-separated or repeated. Replaces the public
    /// routers; give an empty string to use none.
    #[arg(long, value_name = "HOST:PORT[,...]", value_delimiter = ',')]
    bootstrap: Option<Vec<String>>,
    /// Keep the node ID and routing table in this file between runs.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

impl NetworkArgs {
    /// Starts a DHT node as these options say.
    async fn start_dht(&self) -> Result<Dht> {
        let mut settings = DhtSettings::new(self.bind);
        settings.bootstrap = self.bootstrap.as_ref().map(|list| {
            list.iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        settings.state_file = self.state.clone();
        Dht::start(settings).await.context("starting the DHT node")
    }
}

/// Parses the command line and runs the command; the process exit code.
pub fn run() -> Result<i32> {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node::run(args).await,
            Command::Lookup(args) => lookup::run(args).await,
            Command::Announce(args) => announce::run(args).await,
            Command::Metadata(args) => metadata::run(args).await,
            Command::Ping(args) => ping::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            // Synchronous and single-threaded: it never touches the runtime.
            Command::Sim(args) => sim::run(args),
        }
    })
}

/// Reads an info-hash given as 40 hex digits, 32 base32 characters or a
/// magnet link (`xt=urn:btih:`).
pub fn parse_info_hash(text: &str) -> Result<Id> {
    let text = text.trim();
    let Some(query) = text.strip_prefix("magnet:?") else {
        return Id::parse(text).with_context(|| format!("{text:?} is not an info-hash"));
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("xt=urn:btih:") {
            return Id::parse(value)
                .with_context(|| format!("magnet link has a bad btih {value:?}"));
        }
        if pair.starts_with("xt=urn:btmh:") {
            bail!("magnet link names only a v2 (btmh) hash; trackerless handles v1 (btih) magnets");
        }
    }
    bail!("magnet link has no xt=urn:btih: parameter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_arguments() {
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let id = parse_info_hash(hex).unwrap();
        assert_eq!(
            parse_info_hash(&format!("magnet:?xt=urn:btih:{hex}&dn=x")).unwrap(),
            id
        );
        assert_eq!(
            parse_info_hash("magnet:?dn=x&xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK").unwrap(),
            id
        );
        assert!(parse_info_hash("magnet:?dn=x").is_err());
        assert!(parse_info_hash("magnet:?xt=urn:btmh:1220abcd").is_err());
        assert!(parse_info_hash("nothex").is_err());
    }
}
