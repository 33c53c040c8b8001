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
                let line = self
                    .lines
                    .next_line()
                    .await
                    .expect("read harness stdout")
                    .unwrap_or_else(|| panic!("libtorrent harness exited before {name} (is python3-libtorrent installed?)"));
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

    /// Stops the sessions.
    pub async fn quit(mut self) {
        self.send(json!({"cmd": "quit"})).await;
        let _ = within("libtorrent exit", self.child.wait()).await;
    }
}
