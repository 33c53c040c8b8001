//! `trackerless ping`: is a DHT node there?

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::{NetworkArgs, output};

/// Arguments of `trackerless ping`.
#[derive(Args, Debug)]
pub struct PingArgs {
    /// The node to ping.
    #[arg(value_name = "HOST:PORT")]
    node: String,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Pings once; exit code 0 if it answered, 1 if not.
pub async fn run(args: PingArgs) -> Result<i32> {
    let addr = tokio::net::lookup_host(args.node.as_str())
        .await
        .with_context(|| format!("cannot resolve {}", args.node))?
        .find(|a| a.is_ipv4() == args.network.bind.is_ipv4())
        .with_context(|| format!("{} has no address of the bind address's family", args.node))?;
    let dht = args.network.start_dht().await?;
    let started = Instant::now();
    let answer = dht.ping(addr).await?;
    let rtt = started.elapsed();
    if args.network.json {
        output::json_line(&json!({
            "node": addr.to_string(),
            "id": answer.map(|id| id.to_hex()),
            "rtt_ms": answer.map(|_| output::millis(rtt)),
        }));
    } else {
        match answer {
            Some(id) => println!("{addr} answered in {}: node ID {id}", output::duration(rtt)),
            None => println!("{addr} did not answer within {}", output::duration(rtt)),
        }
    }
    dht.shutdown().await;
    Ok(if answer.is_some() { 0 } else { 1 })
}
