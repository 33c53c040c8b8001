//! `trackerless announce`: tell the DHT that a peer for an info-hash listens on a port.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;
use trackerless::dht::AnnouncePort;

use super::{NetworkArgs, output, parse_info_hash};

/// Arguments of `trackerless announce`.
#[derive(Args, Debug)]
pub struct AnnounceArgs {
    /// 40 hex digits, 32 base32 characters, or a magnet link.
    #[arg(value_name = "INFOHASH")]
    target: String,
    /// TCP port the peer listens on; 0 announces the DHT's UDP port (implied_port).
    #[arg(long, value_name = "P")]
    port: u16,
    /// Keep running and re-announce every 15 minutes until Ctrl-C.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Announces once (or keeps announcing with `--keep`); exit code 1 if no node stored it.
pub async fn run(args: AnnounceArgs) -> Result<i32> {
    let info_hash = parse_info_hash(&args.target)?;
    let json = args.network.json;
    let dht = args.network.start_dht().await?;
    let bootstrap = dht.bootstrap().await?;
    if !bootstrap.reached {
        dht.shutdown().await;
        bail!(
            "no DHT node answered ({} entry points); nothing to announce to",
            bootstrap.entry_points
        );
    }
    let port = if args.port == 0 {
        AnnouncePort::Implied
    } else {
        AnnouncePort::Explicit(args.port)
    };
    let report = dht.announce(info_hash, port, args.keep).await?;
    if json {
        output::json_line(&json!({
            "info_hash": info_hash.to_hex(),
            "port": args.port,
            "stored": report.stored,
            "tried": report.tried,
            "nodes_queried": report.summary.queried,
            "peers_seen": report.summary.peers,
            "elapsed_ms": output::millis(report.summary.elapsed),
        }));
    } else {
        println!(
            "announced {info_hash} port {}: stored on {} of {} nodes ({} queried, {} other peers seen, {})",
            args.port,
            report.stored,
            report.tried,
            report.summary.queried,
            report.summary.peers,
            output::duration(report.summary.elapsed)
        );
    }
    if args.keep {
        if !json {
            eprintln!("re-announcing every 15 minutes; Ctrl-C to stop");
        }
        tokio::signal::ctrl_c().await?;
    }
    dht.shutdown().await;
    Ok(if report.stored > 0 { 0 } else { 1 })
}
