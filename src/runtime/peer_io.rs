//! Driving a [`PeerSession`] over a TCP stream: the glue shared by the
//! metadata fetcher and the peer listener.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::RngExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::peer::{PeerSession, SessionConfig, SessionError};
use crate::wire::peer::PeerId;

/// Bytes read from a peer connection at a time.
pub const READ_CHUNK_SIZE: usize = 64 * 1024;

/// Why a peer connection ended.
#[derive(Debug, thiserror::Error)]
pub enum PeerIoError {
    /// Connecting, reading or writing failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting took longer than allowed.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The peer broke the protocol or does not support what we need.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    Closed,
}

/// A fresh peer ID in Azureus style: `-TL0001-` and 12 random bytes.
pub fn new_peer_id() -> PeerId {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-TL0001-");
    rand::rng().fill(&mut id[8..]);
    id
}

/// Our session settings with a fresh peer ID.
pub fn session_config(listen_port: Option<u16>) -> SessionConfig {
    SessionConfig {
        peer_id: new_peer_id(),
        client: format!("trackerless {}", env!("CARGO_PKG_VERSION")),
        listen_port,
    }
}

/// Opens a TCP connection to `addr`, from `bind_ip` if given.
pub async fn connect(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, PeerIoError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = bind_ip.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(stream) => {
            let stream = stream?;
            // Requests and handshakes are small writes that must not wait
            // for Nagle's algorithm (a 40 ms stall against delayed ACKs).
            stream.set_nodelay(true)?;
            Ok(stream)
        }
        Err(_) => Err(PeerIoError::ConnectTimeout),
    }
}

/// Writes everything the session wants sent.
pub async fn flush(stream: &mut TcpStream, session: &mut PeerSession) -> Result<(), PeerIoError> {
    while let Some(bytes) = session.poll_transmit() {
        stream.write_all(&bytes).await?;
    }
    Ok(())
}

/// Reads one chunk into the session; `Closed` at end of stream.
pub async fn read_into(
    stream: &mut TcpStream,
    session: &mut PeerSession,
    buffer: &mut [u8],
) -> Result<(), PeerIoError> {
    let read = stream.read(buffer).await?;
    if read == 0 {
        return Err(PeerIoError::Closed);
    }
    session.handle_bytes(&buffer[..read])?;
    Ok(())
}
