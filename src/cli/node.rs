//! `trackerless node`: a long-lived DHT node with a status line.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{NetworkArgs, output};

/// Arguments of `trackerless node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    status_interval: u64,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Runs until Ctrl-C, then saves state and exits 0.
pub async fn run(mut args: NodeArgs) -> Result<i32> {
    if args.network.bind.port() == 0 {
        args.network.bind.set_port(6881);
    }
    let json = args.network.json;
    let dht = args.network.start_dht().await?;
    if !json {
        println!(
            "DHT node {} listening on UDP {}",
            dht.id(),
            dht.local_addr()
        );
    }
    let bootstrap = dht.bootstrap().await?;
    if !bootstrap.reached && !json {
        eprintln!("no entry point answered yet; retrying with backoff while answering queries");
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(args.status_interval.max(1)));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let stats = dht.stats().await?;
                if json {
                    output::json_line(&json!({ "status": stats }));
                } else {
                    println!(
                        "nodes {} ({} good) | queries served {} | peers stored {} for {} info-hashes | in {} out {}",
                        stats.routing_table_nodes,
                        stats.routing_table_good,
                        stats.queries_in.total(),
                        stats.peers_stored,
                        stats.info_hashes_stored,
                        output::bytes(stats.bytes_in),
                        output::bytes(stats.bytes_out),
                    );
                }
            }
            _ = &mut ctrl_c => break,
        }
    }
    if !json {
        eprintln!("stopping; saving state");
    }
    dht.shutdown().await;
    Ok(0)
}
