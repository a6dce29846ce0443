//! A collection's search copy as one file, so that opening it is a few large reads.
//!
//! Loading a collection row by row from SQLite reads a page per call, and in OPFS each
//! call costs ~25 us whatever its size: 100k x 384 took ~0.8 s that way against ~0.1 s
//! for the same bytes read in large calls. A segment is an index's [`Parts`]: the
//! prepared vectors, block by block, followed by the ids and metadata. It is a cache, not
//! the truth: SQLite records which change (`seq`) it was written at, and loading it
//! replays the rows changed since; without a valid record the rows are read instead.
//!
//! Layout, little-endian: a 48-byte header (magic, collection key, seq, dim, rows,
//! length of the tail), `rows x dim` f32s, then per row its id (u32 length + UTF-8)
//! and its metadata (u32 length + JSON, or `u32::MAX` for none).

use crate::error::{Code, Error, Result};
use crate::index::{Id, Index, Metadata, Parts, BLOCK_ROWS};
use crate::store::{SegmentRecord, Settings};
use std::borrow::Cow;

const MAGIC: &[u8; 8] = b"QVSEG\0\0\x01";
const HEADER: usize = 48;
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

fn bytes_of(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn bytes_of_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: as above, and every bit pattern is a valid f32.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

fn corrupt(key: i64, why: &str) -> Error {
    Error::new(Code::Storage, format!("segment of collection {key}: {why}"))
}

/// Writes `index` as collection `key`'s segment at change `seq`; returns its length.
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
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&key.to_le_bytes());
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&(index.dim() as u32).to_le_bytes());
    header.extend_from_slice(&(index.len() as u32).to_le_bytes());
    header.extend_from_slice(&(tail.len() as u64).to_le_bytes());
    header.resize(HEADER, 0);
    files.write(key, 0, &header)?;
    let mut at = HEADER as u64;
    for block in parts.blocks.iter() {
        files.write(key, at, bytes_of(block))?;
        at += std::mem::size_of_val(block.as_slice()) as u64;
    }
    files.write(key, at, &tail)?;
    at += tail.len() as u64;
    files.flush(key, at)?;
    Ok(at)
}

/// Reads the segment of the collection `settings` describe, which `record` says was
/// written at which change and how long it is.
pub fn read(files: &mut dyn SegmentFiles, settings: &Settings, record: SegmentRecord) -> Result<Box<dyn Index>> {
    let (key, dim) = (settings.key, settings.dim);
    let SegmentRecord { seq, bytes } = record;
    let mut header = [0u8; HEADER];
    files.read(key, 0, &mut header)?;
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    if &header[..8] != MAGIC || u64_at(8) as i64 != key || u64_at(16) != seq || u32_at(24) as usize != dim {
        return Err(corrupt(key, "its header does not match its record"));
    }
    let rows = u32_at(28) as usize;
    let tail_len = u64_at(32);
    let vector_bytes = (rows * dim * 4) as u64;
    if HEADER as u64 + vector_bytes + tail_len != bytes {
        return Err(corrupt(key, "its length does not match its record"));
    }
    let mut blocks = Vec::with_capacity(rows.div_ceil(BLOCK_ROWS));
    let mut at = HEADER as u64;
    for first in (0..rows).step_by(BLOCK_ROWS) {
        let mut block = vec![0f32; (rows - first).min(BLOCK_ROWS) * dim];
        files.read(key, at, bytes_of_mut(&mut block))?;
        at += (block.len() * 4) as u64;
        blocks.push(block);
    }
    let mut tail = vec![0u8; tail_len as usize];
    files.read(key, at, &mut tail)?;
    let (ids, metadata) = parse_tail(&tail, rows).ok_or_else(|| corrupt(key, "its ids or metadata are damaged"))?;
    let parts = Parts {
        blocks: Cow::Owned(blocks),
        ids: Cow::Owned(ids),
        metadata: Cow::Owned(metadata),
    };
    settings
        .index
        .restore(dim, settings.metric, parts)
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
