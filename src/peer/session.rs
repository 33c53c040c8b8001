//! One peer-wire connection as a sans-IO state machine: the BEP 3
//! handshake, the BEP 10 extended handshake, and BEP 9 ut_metadata in both
//! directions (fetching and serving).
//!
//! The owner feeds received bytes to [`PeerSession::handle_bytes`], sends
//! what [`PeerSession::poll_transmit`] returns, and acts on
//! [`PeerSession::poll_event`]. Every error closes the connection.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::InfoHash;
use crate::wire::extension::{
    EXTENDED_HANDSHAKE_ID, ExtendedHandshake, ExtensionError, MetadataMessage, UT_METADATA,
    metadata_piece_len,
};
use crate::wire::peer::{
    HANDSHAKE_LEN, Handshake, PeerId, PeerMessage, PeerWireError, decode_frame,
};

/// The id we ask peers to send ut_metadata messages under.
pub const OUR_UT_METADATA_ID: u8 = 1;
/// Bytes an incoming peer may send after its handshake before we accept
/// it: one message of the largest size (the owner normally accepts at once).
pub const AWAITING_ACCEPT_BUFFER_MAX: usize =
    crate::wire::peer::MESSAGE_SIZE_MAX + crate::wire::peer::LENGTH_PREFIX_LEN;
/// Metadata requests we answer per connection before refusing more: a
/// peer needs each piece once; more is a peer trying to use us as a pump.
pub const METADATA_REQUESTS_SERVED_MAX: usize = 4 * 1920;

/// What we tell peers about ourselves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our peer ID.
    pub peer_id: PeerId,
    /// `v` in our extended handshake.
    pub client: String,
    /// Our TCP listen port, if we accept connections (`p`).
    pub listen_port: Option<u16>,
}

/// Something the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The peer's BEP 3 handshake arrived. For an incoming session the owner
    /// must now [`accept`](PeerSession::accept) or drop the connection.
    Handshake {
        /// The torrent the peer wants.
        info_hash: InfoHash,
        /// The peer's ID.
        peer_id: PeerId,
        /// Whether it speaks the extension protocol.
        extensions: bool,
    },
    /// The peer's extended handshake arrived.
    ExtendedHandshake {
        /// The size of the metadata it can serve.
        metadata_size: Option<usize>,
        /// Whether it serves ut_metadata.
        ut_metadata: bool,
        /// Its client name.
        client: Option<String>,
        /// Our address as it sees us.
        your_ip: Option<IpAddr>,
    },
    /// A metadata piece arrived (length already checked against the size
    /// the peer announced).
    MetadataPiece {
        /// Piece index.
        piece: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer will not send this metadata piece.
    MetadataRejected {
        /// Piece index.
        piece: u32,
    },
    /// We sent a metadata piece to the peer.
    MetadataServed {
        /// Piece index.
        piece: u32,
    },
    /// Any other peer-wire message, for the owner (piece exchange).
    Message(PeerMessage),
}

/// Why the session ended. Sorted by whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer sent bytes that are not the peer-wire protocol.
    #[error("malformed peer-wire input: {0}")]
    Wire(#[from] PeerWireError),
    /// The peer sent a malformed extension message.
    #[error("malformed extension message: {0}")]
    Extension(#[from] ExtensionError),
    /// The peer's handshake names another torrent.
    #[error("peer answered for another torrent")]
    WrongInfoHash,
    /// The peer broke the protocol's order: an extended message before its
    /// extended handshake, metadata sent to a peer that has it, a metadata
    /// request without advertising ut_metadata, or a flood before we accepted.
    #[error("peer misbehaved: {0}")]
    Misbehaved(&'static str),
    /// The peer does not support what we need (extension protocol, ut_metadata).
    #[error("peer incompatible: {0}")]
    Incompatible(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's BEP 3 handshake.
    AwaitingHandshake,
    /// Incoming: the handshake came; the owner decides.
    AwaitingAccept,
    /// Handshakes exchanged; messages flow.
    Open,
}

/// One peer connection.
pub struct PeerSession {
    config: SessionConfig,
    info_hash: Option<InfoHash>,
    state: State,
    buffer: Vec<u8>,
    outbox: Vec<u8>,
    events: VecDeque<SessionEvent>,
    peer_extended: Option<ExtendedHandshake>,
    metadata: Option<Arc<Vec<u8>>>,
    metadata_requests_served: usize,
}

impl PeerSession {
    /// A session we open to fetch or exchange `info_hash`; our handshake
    /// goes out at once.
    pub fn outgoing(
        config: SessionConfig,
        info_hash: InfoHash,
        metadata: Option<Arc<Vec<u8>>>,
    ) -> PeerSession {
        let mut session = PeerSession::new(config, Some(info_hash), metadata);
        session.send_handshake(info_hash);
        session
    }

    /// A session a peer opened to us; we wait for its handshake to learn
    /// which torrent it wants.
    pub fn incoming(config: SessionConfig) -> PeerSession {
        PeerSession::new(config, None, None)
    }

    fn new(
        config: SessionConfig,
        info_hash: Option<InfoHash>,
        metadata: Option<Arc<Vec<u8>>>,
    ) -> PeerSession {
        PeerSession {
            config,
            info_hash,
            state: State::AwaitingHandshake,
            buffer: Vec::new(),
            outbox: Vec::new(),
            events: VecDeque::new(),
            peer_extended: None,
            metadata,
            metadata_requests_served: 0,
        }
    }

    /// For an incoming session after [`SessionEvent::Handshake`]: answer
    /// with our handshake, serving `metadata` (the info dictionary) if we
    /// have it.
    ///
    /// Messages the peer sent right behind its handshake are processed now;
    /// an error among them means: close the connection.
    pub fn accept(&mut self, metadata: Option<Arc<Vec<u8>>>) -> Result<(), SessionError> {
        if self.state != State::AwaitingAccept {
            return Ok(());
        }
        let Some(info_hash) = self.info_hash else {
            return Ok(());
        };
        self.metadata = metadata;
        self.send_handshake(info_hash);
        self.state = State::Open;
        self.send_extended_handshake();
        self.consume()
    }

    /// Feeds received bytes. An error means: close the connection.
    ///
    /// The buffer holds at most one incomplete frame plus `bytes`: frames
    /// are consumed as soon as they are complete, and a length prefix over
    /// [`MESSAGE_SIZE_MAX`](crate::wire::peer::MESSAGE_SIZE_MAX) is refused
    /// before its payload is buffered.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        if self.state == State::AwaitingAccept
            && self.buffer.len() + bytes.len() > AWAITING_ACCEPT_BUFFER_MAX
        {
            return Err(SessionError::Misbehaved(
                "sent more than a message before our handshake",
            ));
        }
        self.buffer.extend_from_slice(bytes);
        self.consume()
    }

    /// Asks the peer for metadata piece `piece`.
    pub fn request_metadata(&mut self, piece: u32) -> Result<(), SessionError> {
        let id = self
            .peer_extended
            .as_ref()
            .and_then(|h| h.ut_metadata_id())
            .ok_or(SessionError::Incompatible("no ut_metadata"))?;
        self.send_extended(id, MetadataMessage::Request { piece }.encode());
        Ok(())
    }

    /// Sends a peer-wire message (piece exchange).
    pub fn send(&mut self, message: &PeerMessage) {
        message.encode(&mut self.outbox);
    }

    /// The metadata size the peer announced, once known.
    pub fn peer_metadata_size(&self) -> Option<usize> {
        self.peer_extended.as_ref().and_then(|h| h.metadata_size)
    }

    /// Bytes to write to the connection, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn consume(&mut self) -> Result<(), SessionError> {
        let mut offset = 0;
        loop {
            let rest = &self.buffer[offset..];
            match self.state {
                State::AwaitingHandshake => {
                    let Some(handshake) = Handshake::decode(rest)? else {
                        break;
                    };
                    offset += HANDSHAKE_LEN;
                    self.on_handshake(handshake)?;
                }
                State::AwaitingAccept => break,
                State::Open => {
                    let Some((message, used)) = decode_frame(rest)? else {
                        break;
                    };
                    offset += used;
                    self.on_message(message)?;
                }
            }
        }
        self.buffer.drain(..offset);
        Ok(())
    }

    fn on_handshake(&mut self, handshake: Handshake) -> Result<(), SessionError> {
        let extensions = handshake.supports_extension_protocol();
        self.events.push_back(SessionEvent::Handshake {
            info_hash: handshake.info_hash,
            peer_id: handshake.peer_id,
            extensions,
        });
        match self.info_hash {
            Some(ours) if ours != handshake.info_hash => Err(SessionError::WrongInfoHash),
            Some(_) => {
                self.state = State::Open;
                if extensions {
                    self.send_extended_handshake();
                }
                Ok(())
            }
            None => {
                self.info_hash = Some(handshake.info_hash);
                self.state = State::AwaitingAccept;
                Ok(())
            }
        }
    }

    fn on_message(&mut self, message: PeerMessage) -> Result<(), SessionError> {
        let PeerMessage::Extended { id, payload } = message else {
            self.events.push_back(SessionEvent::Message(message));
            return Ok(());
        };
        if id == EXTENDED_HANDSHAKE_ID {
            let handshake = ExtendedHandshake::decode(&payload)?;
            self.events.push_back(SessionEvent::ExtendedHandshake {
                metadata_size: handshake.metadata_size,
                ut_metadata: handshake.ut_metadata_id().is_some(),
                client: handshake.client.clone(),
                your_ip: handshake.your_ip,
            });
            self.peer_extended = Some(handshake);
            return Ok(());
        }
        if self.peer_extended.is_none() {
            return Err(SessionError::Misbehaved(
                "extended message before the extended handshake",
            ));
        }
        if id != OUR_UT_METADATA_ID {
            // An extension we did not advertise: ignore it (BEP 10).
            return Ok(());
        }
        // Pieces we fetch are checked against what the peer announced. When
        // we serve, requests are range-checked by serve_metadata, which
        // rejects a piece past the end rather than closing (as libtorrent does).
        let size = match &self.metadata {
            Some(_) => None,
            None => self.peer_metadata_size(),
        };
        match MetadataMessage::decode(&payload, size) {
            Ok(MetadataMessage::Request { piece }) => self.serve_metadata(piece),
            Ok(MetadataMessage::Data { piece, data, .. }) => {
                if self.metadata.is_some() {
                    return Err(SessionError::Misbehaved(
                        "metadata data sent to a peer that has it",
                    ));
                }
                self.events
                    .push_back(SessionEvent::MetadataPiece { piece, data });
                Ok(())
            }
            Ok(MetadataMessage::Reject { piece }) => {
                self.events
                    .push_back(SessionEvent::MetadataRejected { piece });
                Ok(())
            }
            // BEP 9: unknown message types must be ignored.
            Err(ExtensionError::UnknownMessageType(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn serve_metadata(&mut self, piece: u32) -> Result<(), SessionError> {
        let Some(peer_id) = self.peer_extended.as_ref().and_then(|h| h.ut_metadata_id()) else {
            return Err(SessionError::Misbehaved(
                "metadata request without advertising ut_metadata",
            ));
        };
        let answer = match &self.metadata {
            Some(metadata) if self.metadata_requests_served < METADATA_REQUESTS_SERVED_MAX => {
                match metadata_piece_len(metadata.len(), piece) {
                    Some(len) => {
                        let start = piece as usize * crate::wire::extension::METADATA_PIECE_SIZE;
                        self.metadata_requests_served += 1;
                        self.events
                            .push_back(SessionEvent::MetadataServed { piece });
                        MetadataMessage::Data {
                            piece,
                            total_size: metadata.len(),
                            data: metadata[start..start + len].to_vec(),
                        }
                    }
                    None => MetadataMessage::Reject { piece },
                }
            }
            _ => MetadataMessage::Reject { piece },
        };
        self.send_extended(peer_id, answer.encode());
        Ok(())
    }

    fn send_handshake(&mut self, info_hash: InfoHash) {
        let mut handshake = Handshake::new(info_hash, self.config.peer_id);
        handshake.set_extension_protocol(true);
        handshake.set_dht(true);
        self.outbox.extend_from_slice(&handshake.encode());
    }

    fn send_extended_handshake(&mut self) {
        let handshake = ExtendedHandshake {
            extensions: BTreeMap::from([(UT_METADATA.to_string(), OUR_UT_METADATA_ID)]),
            metadata_size: self.metadata.as_ref().map(|m| m.len()),
            client: Some(self.config.client.clone()),
            listen_port: self.config.listen_port,
            request_queue_len: Some(250),
            your_ip: None,
        };
        self.send_extended(EXTENDED_HANDSHAKE_ID, handshake.encode());
    }

    fn send_extended(&mut self, id: u8, payload: Vec<u8>) {
        PeerMessage::Extended { id, payload }.encode(&mut self.outbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::extension::METADATA_PIECE_SIZE;
    use crate::wire::metainfo::info_hash;

    fn config(byte: u8) -> SessionConfig {
        SessionConfig {
            peer_id: [byte; 20],
            client: "test".into(),
            listen_port: None,
        }
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn pump(a: &mut PeerSession, b: &mut PeerSession) -> Result<(), SessionError> {
        loop {
            let mut moved = false;
            if let Some(bytes) = a.poll_transmit() {
                b.handle_bytes(&bytes)?;
                moved = true;
            }
            if let Some(bytes) = b.poll_transmit() {
                a.handle_bytes(&bytes)?;
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    #[test]
    fn a_fetcher_gets_every_piece_from_a_server() {
        let metadata: Vec<u8> = (0..2 * METADATA_PIECE_SIZE + 5).map(|i| i as u8).collect();
        let hash = info_hash(&metadata);
        let mut fetcher = PeerSession::outgoing(config(1), hash, None);
        let mut server = PeerSession::incoming(config(2));
        pump(&mut fetcher, &mut server).unwrap();
        assert!(matches!(
            server.poll_event(),
            Some(SessionEvent::Handshake { info_hash, extensions: true, .. }) if info_hash == hash
        ));
        server.accept(Some(Arc::new(metadata.clone()))).unwrap();
        pump(&mut fetcher, &mut server).unwrap();
        let mut size = None;
        while let Some(event) = fetcher.poll_event() {
            if let SessionEvent::ExtendedHandshake {
                metadata_size,
                ut_metadata: true,
                ..
            } = event
            {
                size = metadata_size;
            }
        }
        assert_eq!(size, Some(metadata.len()));
        for piece in 0..3 {
            fetcher.request_metadata(piece).unwrap();
        }
        pump(&mut fetcher, &mut server).unwrap();
        let mut assembled = Vec::new();
        let mut rejected = Vec::new();
        while let Some(event) = fetcher.poll_event() {
            match event {
                SessionEvent::MetadataPiece { data, .. } => assembled.extend(data),
                SessionEvent::MetadataRejected { piece } => rejected.push(piece),
                _ => {}
            }
        }
        assert_eq!(assembled, metadata);
        assert!(rejected.is_empty());
    }

    #[test]
    fn a_peer_without_the_metadata_rejects_requests() {
        let hash = InfoHash::default();
        let mut fetcher = PeerSession::outgoing(config(1), hash, None);
        let mut server = PeerSession::incoming(config(2));
        pump(&mut fetcher, &mut server).unwrap();
        server.accept(None).unwrap();
        pump(&mut fetcher, &mut server).unwrap();
        while fetcher.poll_event().is_some() {}
        // It announced no size, so any piece is in range as far as we know.
        fetcher.request_metadata(0).unwrap();
        pump(&mut fetcher, &mut server).unwrap();
        assert_eq!(
            fetcher.poll_event(),
            Some(SessionEvent::MetadataRejected { piece: 0 })
        );
    }

    #[test]
    fn messages_right_behind_the_handshake_are_processed_on_accept() {
        let hash = InfoHash::default();
        let mut server = PeerSession::incoming(config(2));
        let mut hello = Handshake::new(hash, [3; 20]);
        hello.set_extension_protocol(true);
        let mut bytes = hello.encode().to_vec();
        let payload = b"d1:md11:ut_metadatai3eee".to_vec();
        PeerMessage::Extended { id: 0, payload }.encode(&mut bytes);
        server.handle_bytes(&bytes).unwrap();
        assert!(matches!(
            server.poll_event(),
            Some(SessionEvent::Handshake { .. })
        ));
        assert_eq!(server.poll_event(), None, "nothing before accept");
        server.accept(None).unwrap();
        assert!(matches!(
            server.poll_event(),
            Some(SessionEvent::ExtendedHandshake {
                ut_metadata: true,
                ..
            })
        ));
    }

    #[test]
    fn a_flood_before_accept_is_refused() {
        let mut server = PeerSession::incoming(config(2));
        server
            .handle_bytes(&Handshake::new(InfoHash::default(), [3; 20]).encode())
            .unwrap();
        let flood = vec![0u8; AWAITING_ACCEPT_BUFFER_MAX + 1];
        assert!(matches!(
            server.handle_bytes(&flood),
            Err(SessionError::Misbehaved(_))
        ));
    }

    #[test]
    fn a_peer_for_another_torrent_is_dropped() {
        let mut fetcher = PeerSession::outgoing(config(1), InfoHash::default(), None);
        let mut other = PeerSession::outgoing(config(2), crate::wire::Id([9; 20]), None);
        let bytes = other.poll_transmit().unwrap();
        assert_eq!(
            fetcher.handle_bytes(&bytes),
            Err(SessionError::WrongInfoHash)
        );
    }

    #[test]
    fn hostile_metadata_sizes_in_the_handshake_close_the_session() {
        for size in ["i0e", "i-5e", "i99999999999e"] {
            let mut fetcher = PeerSession::outgoing(config(1), InfoHash::default(), None);
            let mut reply = Handshake::new(InfoHash::default(), [3; 20]);
            reply.set_extension_protocol(true);
            let mut bytes = reply.encode().to_vec();
            let payload = format!("d1:md11:ut_metadatai3ee13:metadata_size{size}e");
            PeerMessage::Extended {
                id: 0,
                payload: payload.into_bytes(),
            }
            .encode(&mut bytes);
            assert!(
                matches!(
                    fetcher.handle_bytes(&bytes),
                    Err(SessionError::Extension(_))
                ),
                "size {size} accepted"
            );
        }
    }

    #[test]
    fn extended_messages_before_the_extended_handshake_are_refused() {
        let mut fetcher = PeerSession::outgoing(config(1), InfoHash::default(), None);
        let mut reply = Handshake::new(InfoHash::default(), [3; 20]);
        reply.set_extension_protocol(true);
        let mut bytes = reply.encode().to_vec();
        PeerMessage::Extended {
            id: 1,
            payload: b"d8:msg_typei0e5:piecei0ee".to_vec(),
        }
        .encode(&mut bytes);
        assert!(matches!(
            fetcher.handle_bytes(&bytes),
            Err(SessionError::Misbehaved(_))
        ));
    }
}
