//! Metainfo (`.torrent`) files and info dictionaries (BEP 3 "metainfo
//! files"), reading and writing.
//!
//! The info-hash is the SHA-1 of the `info` dictionary's bytes exactly as
//! received (BEP 3, "info_hash": "clients must either reject invalid
//! metainfo files or extract the substring directly"). This module extracts
//! the substring with the bounded scanner
//! ([`top_level_value_span`](super::bencode::top_level_value_span)) and
//! never hashes a re-encoding, so a dictionary with unknown keys or
//! non-canonical key order keeps its hash. Metadata fetched with
//! `ut_metadata` (BEP 9) is the info dictionary alone:
//! [`Metainfo::from_info_bytes`] applies the same rule to it.
//!
//! Parsing is strict about the info dictionary (it decides what is written
//! to disk: piece length, piece hashes, file paths and sizes are validated,
//! and unsafe paths are rejected) and lenient about the advisory outer keys
//! (`announce`, `announce-list`, `comment`, `created by`, `creation date`,
//! BEP 5 `nodes`): a malformed one is dropped, not fatal. v2-only torrents
//! (BEP 52, `meta version` 2 with no v1 keys) are recognised and refused
//! with [`MetainfoError::V2Only`]; hybrid torrents are read through their v1
//! keys, and their BEP 47 padding files are marked.
//!
//! Writing produces canonical bencode (keys sorted as raw bytes, as BEP 3
//! requires) so any client opens the file. [`Metainfo::to_bytes`] writes the
//! info dictionary's original bytes, so reading and writing a torrent keeps
//! its info-hash.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_bencode::value::Value;
use sha1::{Digest, Sha1};

use super::bencode::{self, BencodeError, BencodeLimits};
use super::byte_string::ByteString;
use super::id::{ID_LEN, Id, InfoHash};
use super::magnet::{self, Magnet};

/// Largest info dictionary accepted, in bytes (libtorrent's default too).
/// It bounds metadata fetched with ut_metadata and the `pieces` string.
pub const METADATA_SIZE_MAX: usize = 30 * 1024 * 1024;
/// Largest `.torrent` file accepted: three times [`METADATA_SIZE_MAX`]. Next
/// to its info dictionary, a hybrid torrent (BEP 52) carries `piece layers`
/// outside it, 32 bytes per piece where v1 `pieces` takes 20, plus tracker
/// lists and comments.
pub const TORRENT_SIZE_MAX: usize = 3 * METADATA_SIZE_MAX;
/// Scanner limits for metainfo. Depth 32 rather than KRPC's 10: a v1
/// torrent needs 5 levels, but hybrid torrents carry a BEP 52 `file tree`
/// that nests one level per directory. Strings up to the whole file (`pieces`
/// and each `piece layers` entry are single strings; the info dictionary
/// itself is held to [`METADATA_SIZE_MAX`] separately). Two million items
/// cover about 200,000 v1 file entries (roughly 7 items each) or about
/// 80,000 files of a hybrid.
pub const METAINFO_LIMITS: BencodeLimits = BencodeLimits {
    depth_max: 32,
    string_length_max: TORRENT_SIZE_MAX,
    items_max: 2_000_000,
};
/// Bytes in one piece hash (SHA-1).
pub const PIECE_HASH_LEN: usize = 20;
/// Largest piece length accepted. 64 MiB is the largest in common use;
/// 256 MiB leaves headroom while bounding what a session must buffer or
/// hash for one piece.
pub const PIECE_LENGTH_MAX: u64 = 256 * 1024 * 1024;
/// Largest total content size accepted: 2^48 - 1 bytes (256 TiB), far beyond
/// any real torrent and small enough that offsets never overflow.
pub const TOTAL_LENGTH_MAX: u64 = (1 << 48) - 1;
/// Most file entries accepted in a multi-file torrent (padding files included).
pub const FILE_COUNT_MAX: usize = 200_000;
/// Most components in one file path.
pub const PATH_COMPONENTS_MAX: usize = 64;
/// Most tracker URLs kept from `announce-list`; further ones are dropped.
pub const ANNOUNCE_URLS_MAX: usize = 256;
/// Most BEP 5 `nodes` kept; further ones are dropped.
pub const NODES_MAX: usize = 64;

/// Why a file path (or the torrent name) is unsafe to create on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path has no components.
    #[error("empty path")]
    Empty,
    /// A component (or the name) is the empty string, as in `a//b` or an
    /// absolute path split on `/`.
    #[error("empty path component")]
    EmptyComponent,
    /// A component is `.` or `..`.
    #[error("`.` or `..` path component")]
    DotComponent,
    /// A component contains `/` or `\`.
    #[error("path separator inside a component")]
    Separator,
    /// A component contains a NUL byte.
    #[error("NUL byte inside a component")]
    Nul,
    /// More than [`PATH_COMPONENTS_MAX`] components.
    #[error("more than {PATH_COMPONENTS_MAX} path components")]
    TooDeep,
}

/// Why bytes are not a torrent (or info dictionary) we accept. All are the
/// fault of whoever produced the file or metadata, except `TooLarge`, which
/// may also mean a legitimate torrent beyond our limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// Not acceptable bencode, or beyond [`METAINFO_LIMITS`].
    #[error("bad bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// The file or the info dictionary exceeds [`TORRENT_SIZE_MAX`] or
    /// [`METADATA_SIZE_MAX`].
    #[error("{what} of {length} bytes exceeds the maximum {max}")]
    TooLarge {
        /// "torrent file" or "info dictionary".
        what: &'static str,
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// Well-formed bencode with the wrong types (not a dictionary, a string
    /// where an integer belongs, ...).
    #[error("bencode does not have the shape of a torrent")]
    Schema,
    /// A required key is absent.
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    /// A v2-only torrent (BEP 52): no v1 keys, so no SHA-1 info-hash to use.
    #[error("v2-only torrent (BEP 52) is not supported")]
    V2Only,
    /// `piece length` is not in 1..=[`PIECE_LENGTH_MAX`].
    #[error("piece length {0} out of range")]
    BadPieceLength(i64),
    /// `pieces` is not a multiple of 20 bytes long.
    #[error("pieces string of {0} bytes is not a multiple of 20")]
    BadPiecesLength(usize),
    /// The number of piece hashes does not match ceil(total / piece length).
    #[error("{actual} piece hashes for content needing {expected}")]
    PieceCountMismatch {
        /// Pieces needed by the content length.
        expected: u64,
        /// Hashes present.
        actual: usize,
    },
    /// A file length is negative.
    #[error("negative file length {0}")]
    BadFileLength(i64),
    /// The total content length is zero.
    #[error("torrent has no content")]
    Empty,
    /// The total content length exceeds [`TOTAL_LENGTH_MAX`].
    #[error("total length exceeds {TOTAL_LENGTH_MAX}")]
    TotalTooLarge,
    /// Both `length` and `files`.
    #[error("both `length` and `files` present")]
    AmbiguousLayout,
    /// `files` is an empty list.
    #[error("empty `files` list")]
    NoFiles,
    /// More than [`FILE_COUNT_MAX`] files.
    #[error("{0} files exceed the maximum {FILE_COUNT_MAX}")]
    TooManyFiles(usize),
    /// The torrent name is unsafe.
    #[error("unsafe name: {0}")]
    BadName(PathError),
    /// A file path is unsafe.
    #[error("unsafe path of file {index}: {reason}")]
    BadPath {
        /// Index in the file list.
        index: usize,
        /// What is wrong with it.
        reason: PathError,
    },
    /// A file has the same path as an earlier file, or a path that another
    /// file uses as a directory.
    #[error("file {0} collides with another file's path")]
    PathCollision(usize),
}

/// How the content is laid out in files (BEP 3: `length` or `files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLayout {
    /// One file named after [`Info::name`].
    Single {
        /// Its length in bytes.
        length: u64,
    },
    /// Several files inside a directory named after [`Info::name`], in
    /// order: the content is their concatenation.
    Multi(Vec<FileEntry>),
}

/// One file of a multi-file torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent directory, each checked safe:
    /// no `.`/`..`, no separators, no NUL, none empty.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// A BEP 47 padding file (`attr` contains `p`): its bytes are zeros that
    /// align the next file to a piece boundary and are never written to disk.
    pub padding: bool,
}

/// The parsed info dictionary: what to download and how to check it.
#[derive(Clone, PartialEq, Eq)]
pub struct Info {
    /// Suggested file (single) or directory (multi) name, checked safe like a path component.
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// SHA-1 of every piece, in order.
    pub pieces: Vec<[u8; PIECE_HASH_LEN]>,
    /// File layout.
    pub files: FileLayout,
    /// BEP 27 private torrent: peers only from trackers, not from the DHT.
    pub private: bool,
}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("name", &self.name)
            .field("piece_length", &self.piece_length)
            .field("pieces", &format_args!("[{} hashes]", self.pieces.len()))
            .field("files", &self.files)
            .field("private", &self.private)
            .finish()
    }
}

impl Info {
    /// The info dictionary of a single file holding `data`, cut into pieces
    /// of `piece_length` bytes (for making torrents, e.g. the demo's).
    pub fn single_file(name: &str, data: &[u8], piece_length: u64) -> Result<Info, MetainfoError> {
        if piece_length == 0 || piece_length > PIECE_LENGTH_MAX {
            return Err(MetainfoError::BadPieceLength(piece_length as i64));
        }
        let pieces = data
            .chunks(piece_length as usize)
            .map(|chunk| {
                let mut hash = [0u8; PIECE_HASH_LEN];
                hash.copy_from_slice(&Sha1::digest(chunk));
                hash
            })
            .collect();
        let info = Info {
            name: name.to_string(),
            piece_length,
            pieces,
            files: FileLayout::Single {
                length: data.len() as u64,
            },
            private: false,
        };
        info.validate()?;
        Ok(info)
    }
}

/// The SHA-1 of an info dictionary's exact bytes: its v1 info-hash.
pub fn info_hash(raw_info: &[u8]) -> InfoHash {
    let digest = Sha1::digest(raw_info);
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&digest[..ID_LEN]);
    Id(out)
}

impl Info {
    /// Parses an info dictionary on its own (as assembled from ut_metadata
    /// pieces). Its info-hash is [`info_hash`]`(raw)`; the input must be
    /// exactly one dictionary with nothing after it.
    pub fn from_bytes(raw: &[u8]) -> Result<Info, MetainfoError> {
        if raw.len() > METADATA_SIZE_MAX {
            return Err(MetainfoError::TooLarge {
                what: "info dictionary",
                length: raw.len(),
                max: METADATA_SIZE_MAX,
            });
        }
        bencode::validate(raw, &METAINFO_LIMITS)?;
        if raw.first() != Some(&b'd') {
            return Err(MetainfoError::Schema);
        }
        let raw_info: RawInfo =
            serde_bencode::from_bytes(raw).map_err(|_| MetainfoError::Schema)?;
        Info::from_raw(raw_info)
    }

    /// Encodes the dictionary as canonical bencode (sorted keys, only the
    /// keys this type holds). Hash it with [`info_hash`] when creating a
    /// torrent; a parsed torrent's own bytes are in [`Metainfo::raw_info`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let pieces: Vec<u8> = self.pieces.iter().flatten().copied().collect();
        let (length, files) = match &self.files {
            FileLayout::Single { length } => (Some(*length), None),
            FileLayout::Multi(entries) => (
                None,
                Some(
                    entries
                        .iter()
                        .map(|entry| RawFileOut {
                            attr: entry.padding.then_some("p"),
                            length: entry.length,
                            path: entry.path.iter().map(String::as_str).collect(),
                        })
                        .collect(),
                ),
            ),
        };
        let raw = RawInfoOut {
            files,
            length,
            name: &self.name,
            piece_length: self.piece_length,
            pieces: ByteString::from(pieces),
            private: self.private.then_some(1),
        };
        // Plain structs of strings and integers always serialize.
        serde_bencode::to_bytes(&raw).unwrap_or_default()
    }

    /// Total content length in bytes (padding files included, as they
    /// occupy piece space).
    pub fn total_length(&self) -> u64 {
        match &self.files {
            FileLayout::Single { length } => *length,
            FileLayout::Multi(entries) => entries
                .iter()
                .fold(0u64, |sum, entry| sum.saturating_add(entry.length)),
        }
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index`: [`Info::piece_length`], except the last one.
    pub fn piece_len(&self, index: usize) -> Option<u64> {
        let count = self.pieces.len();
        if index >= count {
            return None;
        }
        if index + 1 < count {
            return Some(self.piece_length);
        }
        let before = self.piece_length.checked_mul(index as u64)?;
        self.total_length().checked_sub(before)
    }

    /// Checks every rule a parsed torrent must meet: safe name and paths,
    /// bounds, and piece hashes matching the content length.
    pub fn validate(&self) -> Result<(), MetainfoError> {
        check_component(&self.name).map_err(MetainfoError::BadName)?;
        if self.piece_length == 0 || self.piece_length > PIECE_LENGTH_MAX {
            return Err(MetainfoError::BadPieceLength(
                i64::try_from(self.piece_length).unwrap_or(i64::MAX),
            ));
        }
        let total = match &self.files {
            FileLayout::Single { length } => *length,
            FileLayout::Multi(entries) => {
                check_files(entries)?;
                entries
                    .iter()
                    .try_fold(0u64, |sum, entry| sum.checked_add(entry.length))
                    .ok_or(MetainfoError::TotalTooLarge)?
            }
        };
        if total > TOTAL_LENGTH_MAX {
            return Err(MetainfoError::TotalTooLarge);
        }
        if total == 0 {
            return Err(MetainfoError::Empty);
        }
        let expected = total.div_ceil(self.piece_length);
        if expected != self.pieces.len() as u64 {
            return Err(MetainfoError::PieceCountMismatch {
                expected,
                actual: self.pieces.len(),
            });
        }
        Ok(())
    }

    fn from_raw(raw: RawInfo) -> Result<Info, MetainfoError> {
        let has_v1 = raw.pieces.is_some() || raw.length.is_some() || raw.files.is_some();
        if !has_v1 && raw.meta_version == Some(2) {
            return Err(MetainfoError::V2Only);
        }
        let name = lossy(&raw.name.ok_or(MetainfoError::MissingKey("name"))?);
        let piece_length = raw
            .piece_length
            .ok_or(MetainfoError::MissingKey("piece length"))?;
        let piece_length = u64::try_from(piece_length)
            .ok()
            .filter(|&p| p > 0 && p <= PIECE_LENGTH_MAX)
            .ok_or(MetainfoError::BadPieceLength(piece_length))?;
        let pieces = raw.pieces.ok_or(MetainfoError::MissingKey("pieces"))?;
        if !pieces.len().is_multiple_of(PIECE_HASH_LEN) {
            return Err(MetainfoError::BadPiecesLength(pieces.len()));
        }
        let files = match (raw.length, raw.files) {
            (Some(_), Some(_)) => return Err(MetainfoError::AmbiguousLayout),
            (None, None) => return Err(MetainfoError::MissingKey("length")),
            (Some(length), None) => FileLayout::Single {
                length: file_length(length)?,
            },
            (None, Some(files)) => {
                if files.len() > FILE_COUNT_MAX {
                    return Err(MetainfoError::TooManyFiles(files.len()));
                }
                let entries = files
                    .into_iter()
                    .map(|file| {
                        Ok(FileEntry {
                            path: file
                                .path
                                .ok_or(MetainfoError::MissingKey("path"))?
                                .iter()
                                .map(|component| lossy(component))
                                .collect(),
                            length: file_length(
                                file.length.ok_or(MetainfoError::MissingKey("length"))?,
                            )?,
                            padding: file.attr.is_some_and(|attr| attr.contains(&b'p')),
                        })
                    })
                    .collect::<Result<Vec<_>, MetainfoError>>()?;
                FileLayout::Multi(entries)
            }
        };
        let info = Info {
            name,
            piece_length,
            pieces: pieces
                .chunks_exact(PIECE_HASH_LEN)
                .map(|chunk| {
                    let mut hash = [0u8; PIECE_HASH_LEN];
                    hash.copy_from_slice(chunk);
                    hash
                })
                .collect(),
            files,
            private: raw.private == Some(1),
        };
        info.validate()?;
        Ok(info)
    }
}

/// A parsed `.torrent` file: the validated info dictionary, its exact bytes
/// and hash, and the advisory outer keys.
///
/// The info-hash, the parsed [`Info`] and the raw bytes are kept private so
/// they cannot drift apart; `to_bytes` writes the raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Metainfo {
    info_hash: InfoHash,
    info: Info,
    raw_info: Vec<u8>,
    /// BEP 3 `announce`: the primary tracker URL.
    pub announce: Option<String>,
    /// BEP 12 `announce-list`: tiers of tracker URLs, at most
    /// [`ANNOUNCE_URLS_MAX`] URLs in all.
    pub announce_list: Vec<Vec<String>>,
    /// BEP 5 `nodes`: DHT nodes (host, port) to bootstrap from, for
    /// trackerless torrents; at most [`NODES_MAX`].
    pub nodes: Vec<(String, u16)>,
    /// Free-text `comment`.
    pub comment: Option<String>,
    /// `created by`: the program that made the file.
    pub created_by: Option<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
}

impl fmt::Debug for Metainfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metainfo")
            .field("info_hash", &self.info_hash)
            .field("info", &self.info)
            .field("raw_info", &format_args!("[{} bytes]", self.raw_info.len()))
            .field("announce", &self.announce)
            .field("announce_list", &self.announce_list)
            .field("nodes", &self.nodes)
            .field("comment", &self.comment)
            .field("created_by", &self.created_by)
            .field("creation_date", &self.creation_date)
            .finish()
    }
}

impl Metainfo {
    /// A new torrent around `info` (validated first), with no trackers: its
    /// info dictionary is `info.to_bytes()`.
    pub fn new(info: Info) -> Result<Metainfo, MetainfoError> {
        info.validate()?;
        let raw_info = info.to_bytes();
        if raw_info.len() > METADATA_SIZE_MAX {
            return Err(MetainfoError::TooLarge {
                what: "info dictionary",
                length: raw_info.len(),
                max: METADATA_SIZE_MAX,
            });
        }
        Ok(Metainfo::assemble(info, raw_info))
    }

    /// Parses a `.torrent` file. The info-hash is the SHA-1 of the `info`
    /// value's bytes exactly as they appear in `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        if bytes.len() > TORRENT_SIZE_MAX {
            return Err(MetainfoError::TooLarge {
                what: "torrent file",
                length: bytes.len(),
                max: TORRENT_SIZE_MAX,
            });
        }
        let span = bencode::top_level_value_span(bytes, b"info", &METAINFO_LIMITS)?;
        if bytes.first() != Some(&b'd') {
            return Err(MetainfoError::Schema);
        }
        let span = span.ok_or(MetainfoError::MissingKey("info"))?;
        if span.len() > METADATA_SIZE_MAX {
            return Err(MetainfoError::TooLarge {
                what: "info dictionary",
                length: span.len(),
                max: METADATA_SIZE_MAX,
            });
        }
        let raw: RawMetainfo =
            serde_bencode::from_bytes(bytes).map_err(|_| MetainfoError::Schema)?;
        let info = Info::from_raw(raw.info.ok_or(MetainfoError::MissingKey("info"))?)?;
        let raw_info = bytes.get(span).ok_or(MetainfoError::Schema)?.to_vec();
        let mut metainfo = Metainfo::assemble(info, raw_info);
        metainfo.announce = raw.announce.as_ref().and_then(value_string);
        metainfo.announce_list = raw
            .announce_list
            .as_ref()
            .map(announce_tiers)
            .unwrap_or_default();
        metainfo.nodes = raw.nodes.as_ref().map(dht_nodes).unwrap_or_default();
        metainfo.comment = raw.comment.as_ref().and_then(value_string);
        metainfo.created_by = raw.created_by.as_ref().and_then(value_string);
        metainfo.creation_date = match raw.creation_date {
            Some(Value::Int(date)) => Some(date),
            _ => None,
        };
        Ok(metainfo)
    }

    /// Wraps an info dictionary fetched with ut_metadata (BEP 9). The caller
    /// compares [`Metainfo::info_hash`] with the hash it asked for.
    pub fn from_info_bytes(raw_info: Vec<u8>) -> Result<Metainfo, MetainfoError> {
        let info = Info::from_bytes(&raw_info)?;
        Ok(Metainfo::assemble(info, raw_info))
    }

    fn assemble(info: Info, raw_info: Vec<u8>) -> Metainfo {
        Metainfo {
            info_hash: info_hash(&raw_info),
            info,
            raw_info,
            announce: None,
            announce_list: Vec::new(),
            nodes: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
        }
    }

    /// The v1 info-hash: SHA-1 of [`Metainfo::raw_info`].
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The parsed, validated info dictionary.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The info dictionary's bytes exactly as received (or as encoded by
    /// [`Metainfo::new`]): what ut_metadata serves and what the hash covers.
    pub fn raw_info(&self) -> &[u8] {
        &self.raw_info
    }

    /// Encodes the torrent file: canonical bencode for the outer keys with
    /// the info dictionary's original bytes in place, so the info-hash of
    /// the output equals [`Metainfo::info_hash`].
    pub fn to_bytes(&self) -> Vec<u8> {
        // Keys sorting before "info" and after it are serialized separately
        // (serde_bencode sorts each) and the raw info spliced between them.
        let before = RawOuterBeforeInfo {
            announce: self.announce.as_deref(),
            announce_list: (!self.announce_list.is_empty()).then(|| {
                self.announce_list
                    .iter()
                    .map(|tier| tier.iter().map(String::as_str).collect())
                    .collect()
            }),
            comment: self.comment.as_deref(),
            created_by: self.created_by.as_deref(),
            creation_date: self.creation_date,
        };
        let after = RawOuterAfterInfo {
            nodes: (!self.nodes.is_empty()).then(|| {
                self.nodes
                    .iter()
                    .map(|(host, port)| (host.as_str(), *port))
                    .collect()
            }),
        };
        let before = serde_bencode::to_bytes(&before).unwrap_or_default();
        let after = serde_bencode::to_bytes(&after).unwrap_or_default();
        let mut out = Vec::with_capacity(before.len() + after.len() + self.raw_info.len() + 8);
        out.push(b'd');
        out.extend_from_slice(dict_body(&before));
        out.extend_from_slice(b"4:info");
        out.extend_from_slice(&self.raw_info);
        out.extend_from_slice(dict_body(&after));
        out.push(b'e');
        out
    }

    /// A magnet link for this torrent: info-hash, name, and trackers
    /// (`announce` then `announce-list`, deduplicated, at most
    /// [`magnet::TRACKERS_MAX`]).
    pub fn to_magnet(&self) -> Magnet {
        let mut magnet = Magnet::new(self.info_hash);
        magnet.display_name = Some(self.info.name.clone());
        let urls = self
            .announce
            .iter()
            .chain(self.announce_list.iter().flatten());
        for url in urls {
            if magnet.trackers.len() >= magnet::TRACKERS_MAX {
                break;
            }
            if !magnet.trackers.contains(url) {
                magnet.trackers.push(url.clone());
            }
        }
        magnet
    }
}

/// The entries of an encoded dictionary without its `d` and `e`.
fn dict_body(encoded: &[u8]) -> &[u8] {
    encoded
        .strip_prefix(b"d")
        .and_then(|rest| rest.strip_suffix(b"e"))
        .unwrap_or_default()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file_length(length: i64) -> Result<u64, MetainfoError> {
    u64::try_from(length).map_err(|_| MetainfoError::BadFileLength(length))
}

/// Checks one path component (or the torrent name) for safety on disk.
fn check_component(component: &str) -> Result<(), PathError> {
    if component.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if component == "." || component == ".." {
        return Err(PathError::DotComponent);
    }
    if component.contains(['/', '\\']) {
        return Err(PathError::Separator);
    }
    if component.contains('\0') {
        return Err(PathError::Nul);
    }
    Ok(())
}

fn check_path(path: &[String]) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > PATH_COMPONENTS_MAX {
        return Err(PathError::TooDeep);
    }
    path.iter()
        .try_for_each(|component| check_component(component))
}

fn check_files(entries: &[FileEntry]) -> Result<(), MetainfoError> {
    if entries.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    if entries.len() > FILE_COUNT_MAX {
        return Err(MetainfoError::TooManyFiles(entries.len()));
    }
    for (index, entry) in entries.iter().enumerate() {
        check_path(&entry.path).map_err(|reason| MetainfoError::BadPath { index, reason })?;
    }
    // Padding files are never created, and BEP 47 names them `.pad/<size>`,
    // so equal padding paths are expected: only real files must be unique.
    let real = || entries.iter().enumerate().filter(|(_, e)| !e.padding);
    let mut files: HashSet<&[String]> = HashSet::new();
    for (index, entry) in real() {
        if !files.insert(entry.path.as_slice()) {
            return Err(MetainfoError::PathCollision(index));
        }
    }
    let mut directories: HashSet<&[String]> = HashSet::new();
    for (_, entry) in real() {
        for end in 1..entry.path.len() {
            directories.insert(&entry.path[..end]);
        }
    }
    match real().find(|(_, entry)| directories.contains(entry.path.as_slice())) {
        Some((index, _)) => Err(MetainfoError::PathCollision(index)),
        None => Ok(()),
    }
}

fn value_string(value: &Value) -> Option<String> {
    match value {
        Value::Bytes(bytes) if !bytes.is_empty() => Some(lossy(bytes)),
        _ => None,
    }
}

/// BEP 12 tiers, keeping only well-formed URLs, at most [`ANNOUNCE_URLS_MAX`] in all.
fn announce_tiers(value: &Value) -> Vec<Vec<String>> {
    let Value::List(tiers) = value else {
        return Vec::new();
    };
    let mut budget = ANNOUNCE_URLS_MAX;
    let mut out = Vec::new();
    for tier in tiers {
        let Value::List(urls) = tier else { continue };
        let tier: Vec<String> = urls.iter().filter_map(value_string).take(budget).collect();
        budget -= tier.len();
        if !tier.is_empty() {
            out.push(tier);
        }
        if budget == 0 {
            break;
        }
    }
    out
}

/// BEP 5 `nodes`: a list of `[host, port]` pairs; malformed pairs are dropped.
fn dht_nodes(value: &Value) -> Vec<(String, u16)> {
    let Value::List(nodes) = value else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter_map(|node| match node {
            Value::List(pair) => match pair.as_slice() {
                [Value::Bytes(host), Value::Int(port)] if !host.is_empty() => {
                    let port = u16::try_from(*port).ok().filter(|&p| p != 0)?;
                    Some((lossy(host), port))
                }
                _ => None,
            },
            _ => None,
        })
        .take(NODES_MAX)
        .collect()
}

/// Mirror of the outer dictionary: every key we read.
#[derive(Deserialize)]
struct RawMetainfo {
    #[serde(default)]
    info: Option<RawInfo>,
    #[serde(default)]
    announce: Option<Value>,
    #[serde(default, rename = "announce-list")]
    announce_list: Option<Value>,
    #[serde(default)]
    comment: Option<Value>,
    #[serde(default, rename = "created by")]
    created_by: Option<Value>,
    #[serde(default, rename = "creation date")]
    creation_date: Option<Value>,
    #[serde(default)]
    nodes: Option<Value>,
}

/// Mirror of the info dictionary: every key we read.
#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    name: Option<ByteString>,
    #[serde(default, rename = "piece length")]
    piece_length: Option<i64>,
    #[serde(default)]
    pieces: Option<ByteString>,
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    files: Option<Vec<RawFile>>,
    #[serde(default)]
    private: Option<i64>,
    #[serde(default, rename = "meta version")]
    meta_version: Option<i64>,
}

/// Mirror of one `files` entry.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    path: Option<Vec<ByteString>>,
    #[serde(default)]
    attr: Option<ByteString>,
}

/// The info dictionary as written (serde_bencode sorts the keys).
#[derive(Serialize)]
struct RawInfoOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<RawFileOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u64,
    pieces: ByteString,
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<i64>,
}

/// One `files` entry as written.
#[derive(Serialize)]
struct RawFileOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    attr: Option<&'static str>,
    length: u64,
    path: Vec<&'a str>,
}

/// Outer keys that sort before `info`.
#[derive(Serialize)]
struct RawOuterBeforeInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    announce: Option<&'a str>,
    #[serde(rename = "announce-list", skip_serializing_if = "Option::is_none")]
    announce_list: Option<Vec<Vec<&'a str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(rename = "created by", skip_serializing_if = "Option::is_none")]
    created_by: Option<&'a str>,
    #[serde(rename = "creation date", skip_serializing_if = "Option::is_none")]
    creation_date: Option<i64>,
}

/// Outer keys that sort after `info`.
#[derive(Serialize)]
struct RawOuterAfterInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<(&'a str, u16)>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sha1(bytes: &[u8]) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&Sha1::digest(bytes)[..]);
        out
    }

    fn multi_info() -> Info {
        Info {
            name: "album".into(),
            piece_length: 16,
            pieces: vec![[1; 20], [2; 20], [3; 20]],
            files: FileLayout::Multi(vec![
                FileEntry {
                    path: vec!["cd1".into(), "track 1.flac".into()],
                    length: 20,
                    padding: false,
                },
                FileEntry {
                    path: vec!["cover.jpg".into()],
                    length: 20,
                    padding: false,
                },
            ]),
            private: false,
        }
    }

    fn single_info() -> Info {
        Info {
            name: "file.iso".into(),
            piece_length: 32768,
            pieces: vec![[7; 20]; 2],
            files: FileLayout::Single { length: 40000 },
            private: true,
        }
    }

    /// A valid single-file info dictionary in a hand-chosen byte order.
    fn info_dict(order: &[&str]) -> Vec<u8> {
        let mut out = b"d".to_vec();
        for key in order {
            let entry: Vec<u8> = match *key {
                "length" => b"6:lengthi5e".to_vec(),
                "name" => b"4:name5:x.bin".to_vec(),
                "piece length" => b"12:piece lengthi16384e".to_vec(),
                "pieces" => [&b"6:pieces20:"[..], &[0xaa; 20]].concat(),
                "zzz-unknown" => b"11:zzz-unknownd1:ai1e1:bl1:xee".to_vec(),
                "aaa-unknown" => b"11:aaa-unknown3:yes".to_vec(),
                other => panic!("no such key {other}"),
            };
            out.extend(entry);
        }
        out.push(b'e');
        out
    }

    fn torrent_around(info: &[u8]) -> Vec<u8> {
        [
            &b"d8:announce19:udp://tracker:1337/7:comment2:hi4:info"[..],
            info,
            b"5:nodesll9:127.0.0.1i6881eee",
            b"e",
        ]
        .concat()
    }

    #[test]
    fn round_trip_keeps_the_info_hash() {
        for info in [multi_info(), single_info()] {
            let mut metainfo = Metainfo::new(info.clone()).unwrap();
            metainfo.announce = Some("udp://tracker.example:1337/announce".into());
            metainfo.announce_list = vec![
                vec!["udp://a.example:1/".into()],
                vec![
                    "http://b.example/announce".into(),
                    "udp://c.example:2/".into(),
                ],
            ];
            metainfo.nodes = vec![("router.example".into(), 6881)];
            metainfo.comment = Some("made in a test".into());
            metainfo.created_by = Some("trackerless".into());
            metainfo.creation_date = Some(1_700_000_000);
            let bytes = metainfo.to_bytes();
            let parsed = Metainfo::from_bytes(&bytes).unwrap();
            assert_eq!(parsed, metainfo);
            assert_eq!(parsed.info(), &info);
            let span = bencode::top_level_value_span(&bytes, b"info", &METAINFO_LIMITS)
                .unwrap()
                .unwrap();
            assert_eq!(parsed.info_hash(), Id(sha1(&bytes[span])));
            assert_eq!(parsed.info_hash(), info_hash(&info.to_bytes()));
        }
    }

    #[test]
    fn written_torrents_are_canonical_bencode() {
        let mut metainfo = Metainfo::new(multi_info()).unwrap();
        metainfo.announce = Some("http://t/".into());
        metainfo.nodes = vec![("1.2.3.4".into(), 1)];
        let bytes = metainfo.to_bytes();
        // Re-encoding a generic value sorts every dictionary: canonical
        // input comes back byte for byte.
        let value: Value = serde_bencode::from_bytes(&bytes).unwrap();
        assert_eq!(serde_bencode::to_bytes(&value).unwrap(), bytes);
        let info = multi_info().to_bytes();
        let value: Value = serde_bencode::from_bytes(&info).unwrap();
        assert_eq!(serde_bencode::to_bytes(&value).unwrap(), info);
        assert!(info.starts_with(b"d5:filesld6:lengthi20e4:pathl3:cd112:track 1.flaceed"));
    }

    #[test]
    fn hash_is_over_the_received_bytes_not_a_re_encoding() {
        // Keys out of canonical order plus unknown keys: a decode/encode
        // round trip would produce different bytes and a different hash.
        let info = info_dict(&[
            "zzz-unknown",
            "pieces",
            "name",
            "aaa-unknown",
            "piece length",
            "length",
        ]);
        let torrent = torrent_around(&info);
        let parsed = Metainfo::from_bytes(&torrent).unwrap();
        assert_eq!(parsed.info_hash(), Id(sha1(&info)));
        assert_eq!(parsed.raw_info(), &info[..]);
        assert_ne!(parsed.info().to_bytes(), info);
        assert_ne!(parsed.info_hash(), info_hash(&parsed.info().to_bytes()));
        // Writing the torrent back keeps the received info bytes and hash.
        let rewritten = Metainfo::from_bytes(&parsed.to_bytes()).unwrap();
        assert_eq!(rewritten.info_hash(), parsed.info_hash());
        assert_eq!(rewritten.raw_info(), &info[..]);
        // The info dictionary alone (ut_metadata) hashes the same way.
        let fetched = Metainfo::from_info_bytes(info.clone()).unwrap();
        assert_eq!(fetched.info_hash(), Id(sha1(&info)));
        assert_eq!(fetched.info(), parsed.info());
        assert_eq!(parsed.announce.as_deref(), Some("udp://tracker:1337/"));
        assert_eq!(parsed.comment.as_deref(), Some("hi"));
        assert_eq!(parsed.nodes, vec![("127.0.0.1".to_string(), 6881)]);
    }

    #[test]
    fn unsafe_names_and_paths_are_rejected() {
        let with_path = |path: &[&str]| {
            let mut info = multi_info();
            if let FileLayout::Multi(entries) = &mut info.files {
                entries[1].path = path.iter().map(|c| c.to_string()).collect();
            }
            info
        };
        let cases: &[(&[&str], PathError)] = &[
            (&[".."], PathError::DotComponent),
            (&["a", "..", "b"], PathError::DotComponent),
            (&["."], PathError::DotComponent),
            (&["/etc/passwd"], PathError::Separator),
            (&["a/../b"], PathError::Separator),
            (&["..\\..\\windows"], PathError::Separator),
            (&["", "etc", "passwd"], PathError::EmptyComponent),
            (&["a", ""], PathError::EmptyComponent),
            (&["a\0b"], PathError::Nul),
            (&[], PathError::Empty),
        ];
        for (path, reason) in cases {
            let info = with_path(path);
            let expected = MetainfoError::BadPath {
                index: 1,
                reason: *reason,
            };
            assert_eq!(info.validate(), Err(expected.clone()), "{path:?}");
            // Also through the parser: encode the hostile dictionary, parse it.
            assert_eq!(
                Info::from_bytes(&info.to_bytes()),
                Err(expected),
                "{path:?}"
            );
        }
        let deep = vec!["d"; PATH_COMPONENTS_MAX + 1];
        assert!(matches!(
            with_path(&deep).validate(),
            Err(MetainfoError::BadPath {
                reason: PathError::TooDeep,
                ..
            })
        ));
        for (name, reason) in [
            ("..", PathError::DotComponent),
            ("", PathError::EmptyComponent),
            ("/tmp/x", PathError::Separator),
            ("x\0", PathError::Nul),
        ] {
            let mut info = single_info();
            info.name = name.into();
            assert_eq!(
                Info::from_bytes(&info.to_bytes()),
                Err(MetainfoError::BadName(reason)),
                "{name:?}"
            );
        }
    }

    #[test]
    fn colliding_paths_are_rejected_but_padding_may_repeat() {
        let with_entries = |entries: Vec<FileEntry>| Info {
            files: FileLayout::Multi(entries),
            ..multi_info()
        };
        let file = |path: &[&str], length: u64| FileEntry {
            path: path.iter().map(|c| c.to_string()).collect(),
            length,
            padding: false,
        };
        let track = file(&["cd1", "track 1.flac"], 20);
        let info = with_entries(vec![track.clone(), track.clone()]);
        assert_eq!(info.validate(), Err(MetainfoError::PathCollision(1)));
        let info = with_entries(vec![track.clone(), file(&["cd1"], 20)]);
        assert_eq!(info.validate(), Err(MetainfoError::PathCollision(1)));
        let info = with_entries(vec![file(&["cd1"], 20), track.clone()]);
        assert_eq!(info.validate(), Err(MetainfoError::PathCollision(0)));
        // BEP 47 padding files named `.pad/<size>` may repeat.
        let pad = FileEntry {
            path: vec![".pad".into(), "8".into()],
            length: 8,
            padding: true,
        };
        let info = with_entries(vec![track, pad.clone(), file(&["x"], 4), pad]);
        assert_eq!(info.total_length(), 40);
        assert_eq!(info.validate(), Ok(()));
        let parsed = Info::from_bytes(&info.to_bytes()).unwrap();
        assert_eq!(parsed, info);
    }

    #[test]
    fn piece_rules_are_enforced() {
        let mut info = single_info();
        info.pieces.push([0; 20]);
        assert_eq!(
            info.validate(),
            Err(MetainfoError::PieceCountMismatch {
                expected: 2,
                actual: 3
            })
        );
        let mut info = single_info();
        info.piece_length = 0;
        assert_eq!(info.validate(), Err(MetainfoError::BadPieceLength(0)));
        info.piece_length = PIECE_LENGTH_MAX + 1;
        assert!(matches!(
            info.validate(),
            Err(MetainfoError::BadPieceLength(_))
        ));
        let mut info = single_info();
        info.files = FileLayout::Single { length: 0 };
        info.pieces.clear();
        assert_eq!(info.validate(), Err(MetainfoError::Empty));
        let mut info = single_info();
        info.files = FileLayout::Single {
            length: TOTAL_LENGTH_MAX + 1,
        };
        assert_eq!(info.validate(), Err(MetainfoError::TotalTooLarge));
        assert_eq!(single_info().piece_len(0), Some(32768));
        assert_eq!(single_info().piece_len(1), Some(40000 - 32768));
        assert_eq!(single_info().piece_len(2), None);
    }

    #[test]
    fn malformed_info_dictionaries_are_rejected() {
        let pieces20 = [&b"6:pieces20:"[..], &[0; 20]].concat();
        let dict = |parts: &[&[u8]]| [&b"d"[..], &parts.concat(), b"e"].concat();
        let cases: Vec<(Vec<u8>, MetainfoError)> = vec![
            (
                dict(&[
                    b"6:lengthi5e4:name1:x12:piece lengthi16e6:pieces19:",
                    &[0; 19],
                ]),
                MetainfoError::BadPiecesLength(19),
            ),
            (
                dict(&[b"6:lengthi5e4:name1:x12:piece lengthi-1e", &pieces20]),
                MetainfoError::BadPieceLength(-1),
            ),
            (
                dict(&[b"6:lengthi-5e4:name1:x12:piece lengthi16e", &pieces20]),
                MetainfoError::BadFileLength(-5),
            ),
            (
                dict(&[
                    b"5:filesle6:lengthi5e4:name1:x12:piece lengthi16e",
                    &pieces20,
                ]),
                MetainfoError::AmbiguousLayout,
            ),
            (
                dict(&[b"5:filesle4:name1:x12:piece lengthi16e", &pieces20]),
                MetainfoError::NoFiles,
            ),
            (
                dict(&[b"4:name1:x12:piece lengthi16e", &pieces20]),
                MetainfoError::MissingKey("length"),
            ),
            (
                dict(&[b"6:lengthi5e12:piece lengthi16e", &pieces20]),
                MetainfoError::MissingKey("name"),
            ),
            (
                dict(&[b"6:lengthi5e4:name1:x", &pieces20]),
                MetainfoError::MissingKey("piece length"),
            ),
            (
                b"d9:file treede12:meta versioni2e4:name1:x12:piece lengthi16384ee".to_vec(),
                MetainfoError::V2Only,
            ),
            (
                dict(&[b"6:lengthi5e4:name1:x12:piece length1:x", &pieces20]),
                MetainfoError::Schema,
            ),
            (b"le".to_vec(), MetainfoError::Schema),
            // A list of small integers is not a byte string (serde_bytes would take it).
            (
                dict(&[
                    b"6:lengthi5e4:name1:x12:piece lengthi16e6:piecesl",
                    &b"i0e".repeat(20),
                    b"e",
                ]),
                MetainfoError::Schema,
            ),
            (
                b"d4:name1:xee".to_vec(),
                MetainfoError::Bencode(BencodeError::TrailingBytes(1)),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                Info::from_bytes(&bytes),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn malformed_torrent_files_are_rejected() {
        assert_eq!(
            Metainfo::from_bytes(b"d8:announce1:xe"),
            Err(MetainfoError::MissingKey("info"))
        );
        assert_eq!(Metainfo::from_bytes(b"i1e"), Err(MetainfoError::Schema));
        assert_eq!(
            Metainfo::from_bytes(b"d4:infoi1ee"),
            Err(MetainfoError::Schema)
        );
        let good = Metainfo::new(single_info()).unwrap().to_bytes();
        let trailing = [&good[..], b"x"].concat();
        assert!(matches!(
            Metainfo::from_bytes(&trailing),
            Err(MetainfoError::Bencode(BencodeError::TrailingBytes(1)))
        ));
        let deep = format!("d4:info{}{}e", "l".repeat(40), "e".repeat(40));
        assert!(matches!(
            Metainfo::from_bytes(deep.as_bytes()),
            Err(MetainfoError::Bencode(BencodeError::TooDeep(32)))
        ));
        let huge = vec![b'd'; TORRENT_SIZE_MAX + 1];
        assert!(matches!(
            Metainfo::from_bytes(&huge),
            Err(MetainfoError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_advisory_keys_are_dropped_not_fatal() {
        let info = single_info().to_bytes();
        let torrent = [
            &b"d8:announcei5e13:announce-listl3:badl1:ui3eee13:creation date3:now4:info"[..],
            &info,
            b"5:nodesl3:badl1:hi0eel1:hi70000eel4:goodi9eeee",
        ]
        .concat();
        let parsed = Metainfo::from_bytes(&torrent).unwrap();
        assert_eq!(parsed.announce, None);
        assert_eq!(parsed.announce_list, vec![vec!["u".to_string()]]);
        assert_eq!(parsed.creation_date, None);
        assert_eq!(parsed.nodes, vec![("good".to_string(), 9)]);
    }

    #[test]
    fn hybrid_torrents_are_read_through_v1_keys() {
        let info = [
            &b"d9:file treed1:xd0:d6:lengthi5e11:pieces root32:"[..],
            &[0; 32],
            b"eee6:lengthi5e12:meta versioni2e4:name1:x12:piece lengthi16384e6:pieces20:",
            &[1; 20],
            b"e",
        ]
        .concat();
        let parsed = Metainfo::from_info_bytes(info.clone()).unwrap();
        assert_eq!(parsed.info().files, FileLayout::Single { length: 5 });
        assert_eq!(parsed.info_hash(), Id(sha1(&info)));
        // The whole file: `piece layers` (outside info) has binary keys.
        let torrent = [
            &b"d4:info"[..],
            &info,
            b"12:piece layersd32:",
            &[0xff; 32],
            b"32:",
            &[0xfe; 32],
            b"ee",
        ]
        .concat();
        let parsed = Metainfo::from_bytes(&torrent).unwrap();
        assert_eq!(parsed.info_hash(), Id(sha1(&info)));
    }

    #[test]
    fn to_magnet_carries_hash_name_and_trackers() {
        let mut metainfo = Metainfo::new(single_info()).unwrap();
        metainfo.announce = Some("udp://a/".into());
        metainfo.announce_list = vec![vec!["udp://a/".into(), "udp://b/".into()]];
        let magnet = metainfo.to_magnet();
        assert_eq!(magnet.info_hash, metainfo.info_hash());
        assert_eq!(magnet.display_name.as_deref(), Some("file.iso"));
        assert_eq!(magnet.trackers, vec!["udp://a/", "udp://b/"]);
    }

    fn any_component() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._-]{1,12}".prop_filter("not a dot component", |c| c != "." && c != "..")
    }

    fn any_info() -> impl Strategy<Value = Info> {
        let single = (1u64..100_000).prop_map(|length| FileLayout::Single { length });
        let multi = proptest::collection::btree_map(
            proptest::collection::vec(any_component(), 1..4),
            0u64..20_000,
            1..6,
        )
        .prop_filter_map("files need content and no dir/file clash", |files| {
            let entries: Vec<FileEntry> = files
                .into_iter()
                .map(|(path, length)| FileEntry {
                    path,
                    length,
                    padding: false,
                })
                .collect();
            let layout = FileLayout::Multi(entries.clone());
            check_files(&entries).ok()?;
            (entries.iter().map(|e| e.length).sum::<u64>() > 0).then_some(layout)
        });
        (
            any_component(),
            256u64..70_000,
            prop_oneof![single, multi],
            any::<bool>(),
            any::<u8>(),
        )
            .prop_map(|(name, piece_length, files, private, seed)| {
                let mut info = Info {
                    name,
                    piece_length,
                    pieces: Vec::new(),
                    files,
                    private,
                };
                let count = info.total_length().div_ceil(piece_length) as usize;
                info.pieces = (0..count)
                    .map(|i| [seed.wrapping_add(i as u8); 20])
                    .collect();
                info
            })
    }

    proptest! {
        #[test]
        fn generated_torrents_round_trip(info in any_info(), comment in proptest::option::of("[ -~]{0,20}")) {
            let mut metainfo = Metainfo::new(info.clone()).unwrap();
            metainfo.comment = comment.filter(|c| !c.is_empty());
            let bytes = metainfo.to_bytes();
            let parsed = Metainfo::from_bytes(&bytes).unwrap();
            prop_assert_eq!(parsed.info(), &info);
            prop_assert_eq!(parsed.info_hash(), metainfo.info_hash());
            let span = bencode::top_level_value_span(&bytes, b"info", &METAINFO_LIMITS).unwrap().unwrap();
            prop_assert_eq!(parsed.info_hash(), Id(sha1(&bytes[span])));
            prop_assert_eq!(parsed, metainfo);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Metainfo::from_bytes(&bytes);
            let _ = Info::from_bytes(&bytes);
        }
    }
}
