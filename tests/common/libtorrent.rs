//! Drives `tests/interop/lt_dht.py`: real libtorrent sessions on loopback,
//! controlled with JSON lines. Needs Debian's python3-libtorrent; a missing
//! client is a test failure, never a skip.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::within;

/// The Python that has Debian's libtorrent module.
const PYTHON: &str = "/usr/bin/python3";

/// A torrent a libtorrent session seeds.
pub struct Seeding {
    /// The v1 info-hash, 40 lowercase hex digits.
    pub info_hash: String,
    /// The seeding session's `IP:PORT`.
    pub peer: std::net::SocketAddr,
    /// The `.torrent` libtorrent wrote (gone once the swarm quits).
    pub torrent_file: std::path::PathBuf,
}

/// A running swarm of libtorrent sessions.
pub struct LibtorrentSwarm {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// `IP:PORT` of each session (TCP and UDP share it).
    pub nodes: Vec<std::net::SocketAddr>,
}

impl LibtorrentSwarm {
    /// Starts one libtorrent session per IP and waits until all listen.
    pub async fn start(ips: &[&str]) -> LibtorrentSwarm {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/lt_dht.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("--ips")
            .arg(ips.join(","))
            .arg("--port")
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {PYTHON} (apt-get install python3-libtorrent): {e}")
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut swarm = LibtorrentSwarm {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            nodes: Vec::new(),
        };
        let ready = swarm.expect_event("ready").await;
        swarm.nodes = ready["nodes"]
            .as_array()
            .expect("nodes list")
            .iter()
            .map(|n| {
                format!(
                    "{}:{}",
                    n["ip"].as_str().unwrap(),
                    n["port"].as_u64().unwrap()
                )
                .parse()
                .unwrap()
            })
            .collect();
        swarm
    }

    /// Sends one command.
    pub async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to harness");
        self.stdin.flush().await.expect("flush harness stdin");
    }

    /// Reads events until one named `name` arrives, and returns it.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        within(&format!("libtorrent event {name}"), async {
            loop {
                let Some(line) = self.lines.next_line().await.expect("read harness stdout") else {
                    let status = self.child.wait().await;
                    panic!("libtorrent harness exited ({status:?}) before {name} (is python3-libtorrent installed?)");
                };
                let event: Value = serde_json::from_str(&line).expect("harness prints JSON");
                if event["event"] == "error" {
                    panic!("libtorrent harness error: {event}");
                }
                if event["event"] == name {
                    return event;
                }
            }
        })
        .await
    }

    /// Makes every session add `addr` to its DHT.
    pub async fn add_node(&mut self, addr: std::net::SocketAddr) {
        self.send(json!({"cmd": "add_node", "addr": addr.to_string()}))
            .await;
        self.expect_event("ok").await;
    }

    /// Seeds a fresh v1 torrent of `size_mib` MiB of random bytes with
    /// `piece_kib` KiB pieces from session `session`, and waits until
    /// libtorrent seeds it.
    pub async fn seed(&mut self, session: usize, size_mib: u32, piece_kib: u32) -> Seeding {
        self.send(json!({
            "cmd": "seed",
            "session": session,
            "size_mib": size_mib,
            "piece_kib": piece_kib,
        }))
        .await;
        let event = self.expect_event("seeding").await;
        Seeding {
            info_hash: event["info_hash"].as_str().expect("info_hash").to_string(),
            peer: event["peer"]
                .as_str()
                .expect("peer")
                .parse()
                .expect("peer address"),
            torrent_file: event["torrent_file"].as_str().expect("torrent_file").into(),
        }
    }

    /// Starts one more session on `ip` (ephemeral port), told every other
    /// session's address; returns its index.
    pub async fn fresh_session(&mut self, ip: &str) -> usize {
        self.send(json!({"cmd": "fresh_session", "ip": ip})).await;
        let event = self.expect_event("ok").await;
        assert_eq!(event["cmd"], "fresh_session", "unexpected reply {event}");
        event["session"].as_u64().expect("session index") as usize
    }

    /// Adds the magnet of `info_hash` (40 hex digits) to session `session`,
    /// which then looks for peers and fetches the metadata.
    pub async fn find(&mut self, session: usize, info_hash: &str) {
        self.send(json!({"cmd": "find", "session": session, "info_hash": info_hash}))
            .await;
        let event = self.expect_event("ok").await;
        assert_eq!(event["cmd"], "find", "unexpected reply {event}");
    }

    /// Waits until a session that ran `find` for `info_hash` has its
    /// metadata (verified by libtorrent); returns the seconds from the find
    /// command to libtorrent's `metadata_received_alert`.
    pub async fn expect_metadata(&mut self, info_hash: &str) -> f64 {
        loop {
            let event = self.expect_event("metadata").await;
            if event["info_hash"].as_str() == Some(info_hash) {
                return event["elapsed_s"].as_f64().expect("elapsed_s");
            }
        }
    }

    /// Removes `info_hash` from session `session` (it stops announcing it).
    pub async fn remove(&mut self, session: usize, info_hash: &str) {
        self.send(json!({"cmd": "remove", "session": session, "info_hash": info_hash}))
            .await;
        let event = self.expect_event("ok").await;
        assert_eq!(event["cmd"], "remove", "unexpected reply {event}");
    }

    /// Stops the sessions.
    pub async fn quit(mut self) {
        self.send(json!({"cmd": "quit"})).await;
        let _ = within("libtorrent exit", self.child.wait()).await;
    }
}
