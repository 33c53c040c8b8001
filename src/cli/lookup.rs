//! `trackerless lookup`: print each peer as it is found, then a summary.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use trackerless::runtime::LookupEvent;

use super::{NetworkArgs, output, parse_info_hash};

/// Arguments of `trackerless lookup`.
#[derive(Args, Debug)]
pub struct LookupArgs {
    /// 40 hex digits, 32 base32 characters, or a magnet link.
    #[arg(value_name = "INFOHASH|MAGNET")]
    target: String,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Runs the lookup; exit code 0 if a peer was found, 1 if none.
pub async fn run(args: LookupArgs) -> Result<i32> {
    let info_hash = parse_info_hash(&args.target)?;
    let json = args.network.json;
    let dht = args.network.start_dht().await?;
    // The lookup asks the entry points directly; the bootstrap round goes on beside it.
    dht.start_bootstrap().await?;
    let mut stream = dht.lookup(info_hash).await?;
    let lookup_started = Instant::now();
    let mut found = 0usize;
    let summary = loop {
        match stream.next().await {
            Some(LookupEvent::Peer(peer)) => {
                found += 1;
                if json {
                    output::json_line(&json!({
                        "peer": peer.to_string(),
                        "info_hash": info_hash.to_hex(),
                        "elapsed_ms": output::millis(lookup_started.elapsed()),
                    }));
                } else {
                    println!("{peer}");
                }
            }
            Some(LookupEvent::Done(summary)) => break Some(summary),
            None => break None,
        }
    };
    let Some(summary) = summary else {
        anyhow::bail!("the DHT node stopped during the lookup");
    };
    if json {
        output::json_line(&json!({
            "summary": {
                "info_hash": info_hash.to_hex(),
                "peers": found,
                "nodes_queried": summary.queried,
                "responses": summary.responses,
                "failures": summary.failures,
                "lookup_ms": output::millis(summary.elapsed),
                "time_to_first_peer_ms": summary.time_to_first_peer.map(output::millis),
            }
        }));
    } else {
        if summary.responses == 0 {
            eprintln!("no DHT node answered: check --bootstrap and the network");
        }
        eprintln!(
            "{found} peer{} for {info_hash} | {} nodes queried, {} answered | lookup {}",
            if found == 1 { "" } else { "s" },
            summary.queried,
            summary.responses,
            output::duration(summary.elapsed),
        );
    }
    dht.shutdown().await;
    Ok(if found > 0 { 0 } else { 1 })
}
