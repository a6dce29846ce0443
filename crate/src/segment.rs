//! A collection's search copy as one file, so that opening it is a few large reads.
//!
//! Loading a collection row by row from SQLite reads a page per call, and in OPFS a
//! call costs about the same whatever its size, so reading the same bytes in a few
//! large calls is several times faster (docs/BENCHMARKS.md). A segment is an index's [`Parts`]: the
//! prepared vectors, block by block, followed by the ids and metadata. It is a cache, not
//! the truth: SQLite records which change (`seq`) it was written at, and loading it
//! replays the rows changed since; without a valid record the rows are read instead.
//!
//! A segment carries a checksum of all its bytes, checked on every read: a file damaged
//! in storage would otherwise load as wrong vectors and answer wrong results without an
//! error. The hash is xxh3, computed on each block of vectors while it is still in cache
//! after its read: it runs at several times the speed of the read itself, so the check
//! adds a few percent to a load (docs/BENCHMARKS.md).
//!
//! Layout, little-endian: a 64-byte header, `rows x dim` f32s, then per row its id
//! (u32 length + UTF-8) and its metadata (u32 length + JSON, or `u32::MAX` for none),
//! then the bytes only the index kind understands. The header:
//!
//! | at | what |
//! |---:|------|
//! |  0 | magic `QVSEG\0\0`, then the format version (a byte) |
//! |  8 | collection key (i64) |
//! | 16 | the change (`seq`) it was written at (u64) |
//! | 24 | dim (u32) |
//! | 28 | rows (u32) |
//! | 32 | index kind: its name, NUL-padded to 8 bytes |
//! | 40 | bytes of ids and metadata (u64) |
//! | 48 | bytes of the kind's own (u64) |
//! | 56 | xxh3-64 of bytes 0..56 and of all that follows the header |

use crate::error::{Code, Error, Result};
use crate::index::{Id, Index, Kind, Metadata, Parts, BLOCK_ROWS};
use crate::store::{SegmentRecord, Settings};
use std::borrow::Cow;
use xxhash_rust::xxh3::Xxh3Default;

const MAGIC: &[u8; 7] = b"QVSEG\0\0";
/// The format version, the byte after the magic. Version 1 had no index kind and no
/// checksum. A file of another version is not read: the collection loads from its
/// rows, and the next checkpoint writes its segment anew.
const VERSION: u8 = 2;
const HEADER: usize = 64;
/// Where the header's checksum sits; it covers the header's bytes before it.
const CHECKSUM_AT: usize = 56;
const NO_METADATA: u32 = u32::MAX;

/// The files segments live in, one per collection key: in the browser, OPFS files
/// read and written through sync access handles; natively, plain files.
pub trait SegmentFiles {
    /// Fills `buf` from collection `key`'s file at byte `at`; an error if the file
    /// is missing or shorter.
    fn read(&mut self, key: i64, at: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `buf` to collection `key`'s file at byte `at`, creating it if missing.
    fn write(&mut self, key: i64, at: u64, buf: &[u8]) -> Result<()>;
    /// Makes what was written to `key`'s file durable, and cuts it at `len` bytes.
    fn flush(&mut self, key: i64, len: u64) -> Result<()>;
    /// Deletes collection `key`'s file, if there is one.
    fn remove(&mut self, key: i64) -> Result<()>;
}

fn corrupt(key: i64, why: &str) -> Error {
    Error::new(Code::Storage, format!("segment of collection {key}: {why}"))
}

/// The header's field for an index kind: its name, NUL-padded.
fn kind_field(kind: Kind) -> [u8; 8] {
    let mut field = [0u8; 8];
    let name = kind.as_str().as_bytes();
    field[..name.len()].copy_from_slice(name);
    field
}

/// Writes `index` as collection `key`'s segment at change `seq`; returns its length.
/// Each block is hashed just before it is written, while in cache; the header, which
/// holds the sum, goes last.
pub fn write(files: &mut dyn SegmentFiles, key: i64, seq: u64, index: &dyn Index) -> Result<u64> {
    let parts = index.parts();
    let mut tail = Vec::new();
    for (id, meta) in parts.ids.iter().zip(parts.metadata.iter()) {
        tail.extend_from_slice(&(id.len() as u32).to_le_bytes());
        tail.extend_from_slice(id.as_bytes());
        match meta {
            None => tail.extend_from_slice(&NO_METADATA.to_le_bytes()),
            Some(m) => {
                let text = serde_json::to_string(m).expect("a JSON object serialises");
                tail.extend_from_slice(&(text.len() as u32).to_le_bytes());
                tail.extend_from_slice(text.as_bytes());
            }
        }
    }
    let rows_len = tail.len();
    tail.extend_from_slice(&parts.own);
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&key.to_le_bytes());
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&(index.dim() as u32).to_le_bytes());
    header.extend_from_slice(&(parts.ids.len() as u32).to_le_bytes());
    header.extend_from_slice(&kind_field(index.kind()));
    header.extend_from_slice(&(rows_len as u64).to_le_bytes());
    header.extend_from_slice(&(parts.own.len() as u64).to_le_bytes());
    debug_assert_eq!(header.len(), CHECKSUM_AT);
    let mut sum = Xxh3Default::new();
    sum.update(&header);
    let mut at = HEADER as u64;
    for block in parts.blocks.iter() {
        let bytes = bytemuck::cast_slice(block);
        sum.update(bytes);
        files.write(key, at, bytes)?;
        at += bytes.len() as u64;
    }
    sum.update(&tail);
    files.write(key, at, &tail)?;
    at += tail.len() as u64;
    header.extend_from_slice(&sum.digest().to_le_bytes());
    files.write(key, 0, &header)?;
    files.flush(key, at)?;
    Ok(at)
}

/// Reads the segment of the collection `settings` describe, which `record` says was
/// written at which change and how long it is. Any byte that differs from what was
/// written is an error, found by the checksum if not before.
pub fn read(files: &mut dyn SegmentFiles, settings: &Settings, record: SegmentRecord) -> Result<Box<dyn Index>> {
    let (key, dim) = (settings.key, settings.dim);
    let SegmentRecord { seq, bytes } = record;
    let mut header = [0u8; HEADER];
    files.read(key, 0, &mut header)?;
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    if &header[..7] != MAGIC || header[7] != VERSION {
        return Err(corrupt(key, "it is not a segment of this format version"));
    }
    if u64_at(8) as i64 != key
        || u64_at(16) != seq
        || u32_at(24) as usize != dim
        || header[32..40] != kind_field(settings.index)
    {
        return Err(corrupt(key, "its header does not match its record"));
    }
    let rows = u32_at(28) as usize;
    let (rows_len, own_len) = (u64_at(40), u64_at(48));
    // Checked before anything is allocated, so a damaged length cannot ask for more
    // than the file holds.
    let length = (rows as u64 * dim as u64 * 4)
        .checked_add(rows_len)
        .and_then(|n| n.checked_add(own_len))
        .and_then(|n| n.checked_add(HEADER as u64));
    if length != Some(bytes) {
        return Err(corrupt(key, "its length does not match its record"));
    }
    let mut sum = Xxh3Default::new();
    sum.update(&header[..CHECKSUM_AT]);
    let mut blocks = Vec::with_capacity(rows.div_ceil(BLOCK_ROWS));
    let mut at = HEADER as u64;
    for first in (0..rows).step_by(BLOCK_ROWS) {
        let mut block = vec![0f32; (rows - first).min(BLOCK_ROWS) * dim];
        let bytes = bytemuck::cast_slice_mut(&mut block);
        files.read(key, at, bytes)?;
        sum.update(bytes);
        at += bytes.len() as u64;
        blocks.push(block);
    }
    let mut tail = vec![0u8; (rows_len + own_len) as usize];
    files.read(key, at, &mut tail)?;
    sum.update(&tail);
    if sum.digest() != u64_at(CHECKSUM_AT) {
        return Err(corrupt(key, "its checksum does not match its bytes"));
    }
    let own = tail.split_off(rows_len as usize);
    let (ids, metadata) = parse_tail(&tail, rows).ok_or_else(|| corrupt(key, "its ids or metadata are damaged"))?;
    let parts = Parts {
        blocks: Cow::Owned(blocks),
        ids: Cow::Owned(ids),
        metadata: Cow::Owned(metadata),
        own: Cow::Owned(own),
    };
    settings
        .index
        .restore(dim, settings.metric, settings.quantization, parts)
        .ok_or_else(|| corrupt(key, "its parts do not make an index"))
}

/// Splits `n` bytes off the front of `tail`.
fn take<'a>(tail: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = tail.split_at_checked(n)?;
    *tail = rest;
    Some(head)
}

fn take_u32(tail: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(tail, 4)?.try_into().ok()?))
}

fn parse_tail(mut tail: &[u8], rows: usize) -> Option<(Vec<Id>, Vec<Option<Metadata>>)> {
    let tail = &mut tail;
    let mut ids = Vec::with_capacity(rows);
    let mut metadata = Vec::with_capacity(rows);
    for _ in 0..rows {
        let len = take_u32(tail)? as usize;
        ids.push(Id::from(std::str::from_utf8(take(tail, len)?).ok()?));
        metadata.push(match take_u32(tail)? {
            NO_METADATA => None,
            n => Some(serde_json::from_slice::<Metadata>(take(tail, n as usize)?).ok()?),
        });
    }
    Some((ids, metadata))
}
