//! `.torrent` and info-dictionary parsing never panics, and what it accepts
//! is consistent:
//!
//! - `Metainfo::from_bytes`: the info-hash is the SHA-1 (computed here with
//!   the `sha1` crate) of `raw_info()`, which is exactly the input's `info`
//!   value; the `Info` validates; `to_bytes()` parses back to an equal
//!   `Metainfo` (same info-hash, same `Info`, same outer keys) and writes the
//!   same bytes again; `raw_info()` alone parses (`Info::from_bytes`,
//!   `Metainfo::from_info_bytes`) to the same `Info` and hash; the magnet link
//!   round trips.
//! - `Info::from_bytes` on the raw input: the `Info` validates, its canonical
//!   `to_bytes()` parses back equal, `Metainfo::from_info_bytes` hashes the
//!   input itself, and `Metainfo::new` builds a torrent that round trips.
//! - Piece arithmetic: the piece lengths add up to the total length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use trackerless::wire::bencode::{self, top_level_value_span};
use trackerless::wire::magnet::Magnet;
use trackerless::wire::metainfo::{
    FileLayout, Info, METAINFO_LIMITS, Metainfo, PIECE_LENGTH_MAX, TOTAL_LENGTH_MAX,
};
use trackerless::wire::{Id, InfoHash};

fn sha1(bytes: &[u8]) -> InfoHash {
    let mut out = [0u8; 20];
    out.copy_from_slice(&Sha1::digest(bytes)[..]);
    Id(out)
}

fn check_info(info: &Info) {
    assert_eq!(info.validate(), Ok(()), "{info:?}");
    assert!(info.piece_length > 0 && info.piece_length <= PIECE_LENGTH_MAX);
    let total = info.total_length();
    assert!(total > 0 && total <= TOTAL_LENGTH_MAX);
    assert_eq!(info.piece_count(), info.pieces.len());
    // Pieces cover the content exactly. (Few pieces in a fuzz input.)
    if info.piece_count() <= 4096 {
        let mut sum = 0u64;
        for index in 0..info.piece_count() {
            let len = info.piece_len(index).expect("piece in range has a length");
            assert!(
                len > 0 && len <= info.piece_length,
                "piece {index} of {len} bytes"
            );
            sum += len;
        }
        assert_eq!(sum, total, "piece lengths do not add up");
    }
    assert_eq!(info.piece_len(info.piece_count()), None);
    if let FileLayout::Multi(files) = &info.files {
        assert!(!files.is_empty());
        assert!(files.iter().all(|f| !f.path.is_empty()));
    }
    // The canonical encoding parses back to the same Info.
    let canonical = info.to_bytes();
    assert_eq!(bencode::validate(&canonical, &METAINFO_LIMITS), Ok(()));
    assert_eq!(
        Info::from_bytes(&canonical).as_ref(),
        Ok(info),
        "Info round trip"
    );
}

fn check_metainfo(data: &[u8], metainfo: &Metainfo) {
    let raw = metainfo.raw_info();
    assert_eq!(
        metainfo.info_hash(),
        sha1(raw),
        "info_hash is not SHA-1(raw_info)"
    );
    let span = top_level_value_span(data, b"info", &METAINFO_LIMITS)
        .expect("parsed input is valid bencode")
        .expect("parsed input has an info key");
    assert_eq!(&data[span], raw, "raw_info is not the input's info value");
    check_info(metainfo.info());

    // raw_info alone is the same info dictionary.
    assert_eq!(Info::from_bytes(raw).as_ref(), Ok(metainfo.info()));
    let alone = Metainfo::from_info_bytes(raw.to_vec()).expect("raw_info parses alone");
    assert_eq!(alone.info_hash(), metainfo.info_hash());
    assert_eq!(alone.info(), metainfo.info());

    // Writing keeps the info dictionary's bytes, hence the hash.
    let bytes = metainfo.to_bytes();
    assert_eq!(bencode::validate(&bytes, &METAINFO_LIMITS), Ok(()));
    let again = match Metainfo::from_bytes(&bytes) {
        Ok(again) => again,
        Err(error) => panic!(
            "to_bytes output does not parse ({error}): {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(again.info_hash(), metainfo.info_hash(), "info-hash changed");
    assert_eq!(again.info(), metainfo.info(), "Info changed");
    assert_eq!(&again, metainfo, "outer keys changed");
    assert_eq!(again.to_bytes(), bytes, "to_bytes is not stable");

    let magnet = metainfo.to_magnet();
    assert_eq!(magnet.info_hash, metainfo.info_hash());
    assert_eq!(
        magnet.display_name.as_deref(),
        Some(metainfo.info().name.as_str())
    );
    assert_eq!(
        Magnet::parse(&magnet.to_uri()),
        Ok(magnet),
        "magnet round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(metainfo) = Metainfo::from_bytes(data) {
        check_metainfo(data, &metainfo);
    }
    if let Ok(info) = Info::from_bytes(data) {
        check_info(&info);
        let fetched = Metainfo::from_info_bytes(data.to_vec()).expect("Info parsed");
        assert_eq!(fetched.info_hash(), sha1(data));
        assert_eq!(fetched.raw_info(), data);
        assert_eq!(fetched.info(), &info);
        // A new torrent around it hashes its canonical encoding.
        let made = Metainfo::new(info.clone()).expect("a valid Info makes a torrent");
        assert_eq!(made.raw_info(), info.to_bytes());
        assert_eq!(made.info_hash(), sha1(&info.to_bytes()));
        let bytes = made.to_bytes();
        assert_eq!(Metainfo::from_bytes(&bytes), Ok(made.clone()));
        check_metainfo(&bytes, &made);
    }
});
