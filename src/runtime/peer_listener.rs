//! Accepting peer connections and serving the metadata (ut_metadata) of the
//! torrents we hold, so a trackerless node is a useful swarm member and not
//! only a taker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::peer_io::{self, PeerIoError, READ_CHUNK_SIZE};
use crate::peer::{PeerSession, SessionEvent};
use crate::wire::InfoHash;
use crate::wire::metainfo::Metainfo;

/// Incoming connections served at once; more wait in the accept queue.
pub const INCOMING_CONNECTIONS_MAX: usize = 64;
/// A connection with nothing received for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

type Registry = Arc<Mutex<HashMap<InfoHash, Arc<Vec<u8>>>>>;

/// A TCP listener that serves the metadata of registered torrents.
pub struct PeerListener {
    local_addr: SocketAddr,
    torrents: Registry,
    task: JoinHandle<()>,
}

impl PeerListener {
    /// Listens on `addr` (port 0 picks one).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<PeerListener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let torrents: Registry = Arc::default();
        let task = tokio::spawn(accept_loop(listener, torrents.clone()));
        Ok(PeerListener {
            local_addr,
            torrents,
            task,
        })
    }

    /// The address peers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `metainfo`'s info dictionary to peers that ask for it.
    pub fn add_torrent(&self, metainfo: &Metainfo) {
        let bytes = Arc::new(metainfo.raw_info().to_vec());
        if let Ok(mut torrents) = self.torrents.lock() {
            torrents.insert(metainfo.info_hash(), bytes);
        }
    }

    /// Stops accepting connections.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, torrents: Registry) {
    let slots = Arc::new(Semaphore::new(INCOMING_CONNECTIONS_MAX));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let torrents = torrents.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(stream, &torrents).await {
                tracing::debug!(%from, %error, "incoming peer connection ended");
            }
            drop(permit);
        });
    }
}

async fn serve(mut stream: TcpStream, torrents: &Registry) -> Result<(), PeerIoError> {
    stream.set_nodelay(true)?;
    let mut session = PeerSession::incoming(peer_io::session_config(
        stream.local_addr().ok().map(|a| a.port()),
    ));
    let mut buffer = vec![0u8; READ_CHUNK_SIZE];
    loop {
        match tokio::time::timeout(
            IDLE_TIMEOUT,
            peer_io::read_into(&mut stream, &mut session, &mut buffer),
        )
        .await
        {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        }
        while let Some(event) = session.poll_event() {
            if let SessionEvent::Handshake { info_hash, .. } = event {
                let metadata = torrents
                    .lock()
                    .ok()
                    .and_then(|t| t.get(&info_hash).cloned());
                if metadata.is_none() {
                    // Not a torrent of ours: BEP 3 says drop the connection.
                    return Ok(());
                }
                session.accept(metadata)?;
            }
        }
        peer_io::flush(&mut stream, &mut session).await?;
    }
}
