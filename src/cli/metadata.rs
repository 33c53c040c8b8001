//! `trackerless metadata`: magnet link to a verified `.torrent`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use trackerless::runtime::state::write_atomically;
use trackerless::runtime::{FetchError, FetchSettings, fetch_metadata};
use trackerless::wire::magnet::Magnet;
use trackerless::wire::metainfo::FileLayout;

use super::{NetworkArgs, output};

/// Arguments of `trackerless metadata`.
#[derive(Args, Debug)]
pub struct MetadataArgs {
    /// The magnet link (or a bare 40-hex / 32-base32 info-hash).
    #[arg(value_name = "MAGNET")]
    magnet: String,
    /// Write the .torrent here (default: <info-hash>.torrent in the current directory).
    #[arg(short, long, value_name = "FILE.torrent")]
    output: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Peer connections at once.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Fetches the metadata; exit code 0 with a written .torrent, 1 if nothing
/// verified arrived in time.
pub async fn run(args: MetadataArgs) -> Result<i32> {
    let magnet = if args.magnet.starts_with("magnet:") {
        Magnet::parse(&args.magnet).with_context(|| "bad magnet link".to_string())?
    } else {
        Magnet::new(super::parse_info_hash(&args.magnet)?)
    };
    let json = args.network.json;
    let dht = args.network.start_dht().await?;
    if !json {
        eprintln!("looking up peers for {} ...", magnet.info_hash);
    }
    // The fetch's lookup starts from the entry points at once; the rest of
    // the bootstrap round goes on beside it.
    dht.start_bootstrap().await?;
    let settings = FetchSettings {
        bind_ip: Some(args.network.bind.ip()).filter(|ip| !ip.is_unspecified()),
        timeout: Duration::from_secs(args.timeout),
        connections_max: args.connections.max(1),
        ..FetchSettings::default()
    };
    let fetched = match fetch_metadata(&dht, &magnet, &settings).await {
        Ok(fetched) => fetched,
        Err(error @ FetchError::Timeout { .. }) => {
            let known = dht
                .stats()
                .await
                .map(|s| s.routing_table_nodes)
                .unwrap_or(0);
            dht.shutdown().await;
            if known == 0 && !json {
                eprintln!("no DHT node answered: check --bootstrap and the network");
            }
            if json {
                output::json_line(
                    &json!({ "info_hash": magnet.info_hash.to_hex(), "error": error.to_string() }),
                );
            } else {
                eprintln!("error: {error}");
            }
            return Ok(1);
        }
        Err(error) => {
            dht.shutdown().await;
            return Err(error.into());
        }
    };
    let metainfo = &fetched.metainfo;
    let path = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", metainfo.info_hash().to_hex())));
    write_atomically(&path, &metainfo.to_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let info = metainfo.info();
    let files: Vec<(String, u64)> = match &info.files {
        FileLayout::Single { length } => vec![(info.name.clone(), *length)],
        FileLayout::Multi(entries) => entries
            .iter()
            .filter(|e| !e.padding)
            .map(|e| (format!("{}/{}", info.name, e.path.join("/")), e.length))
            .collect(),
    };
    if json {
        output::json_line(&json!({
            "info_hash": metainfo.info_hash().to_hex(),
            "name": info.name,
            "size": info.total_length(),
            "pieces": info.piece_count(),
            "piece_length": info.piece_length,
            "files": files.iter().map(|(p, l)| json!({"path": p, "length": l})).collect::<Vec<_>>(),
            "metadata_bytes": metainfo.raw_info().len(),
            "time_to_first_peer_ms": fetched.time_to_first_peer.map(output::millis),
            "time_to_metadata_ms": output::millis(fetched.elapsed),
            "peers_seen": fetched.peers_seen,
            "peers_connected": fetched.peers_connected,
            "torrent_file": path.display().to_string(),
        }));
    } else {
        println!("name:      {}", info.name);
        println!("info-hash: {}", metainfo.info_hash());
        println!(
            "size:      {} in {} file{}, {} pieces of {}",
            output::bytes(info.total_length()),
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            info.piece_count(),
            output::bytes(info.piece_length)
        );
        for (file, length) in files.iter().take(20) {
            println!("  {file} ({})", output::bytes(*length));
        }
        if files.len() > 20 {
            println!("  ... and {} more", files.len() - 20);
        }
        println!(
            "metadata:  {} verified in {} (first peer after {}; {} peers found, {} connected)",
            output::bytes(metainfo.raw_info().len() as u64),
            output::duration(fetched.elapsed),
            fetched
                .time_to_first_peer
                .map(output::duration)
                .unwrap_or_else(|| "-".into()),
            fetched.peers_seen,
            fetched.peers_connected
        );
        println!("wrote:     {}", path.display());
    }
    dht.shutdown().await;
    Ok(0)
}
