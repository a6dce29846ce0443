//! The rows an index ranks: vectors in blocks, each slot's id and metadata, and the
//! map from id to slot. Every index kind keeps its rows here, so that [`Parts`] has one
//! layout whatever the kind.
//!
//! Rows live in blocks of up to [`BLOCK_ROWS`] contiguous rows. Growing one big
//! vector would reallocate and copy everything at each doubling, and in wasm every
//! fresh page is a page fault: blocks keep bulk inserts to one pass over new memory.
//!
//! A slot may be vacant (its id empty, which no row's id can be: ids are 1 to 512
//! bytes): a graph keeps a deleted row's vector in place as a waypoint until a later
//! insert takes the slot. Flat never leaves one: it moves its last row into the hole.

use super::{Candidate, Hit, Id, Metadata, Parts, BLOCK_ROWS};
use crate::metric::Metric;
use std::borrow::Cow;
use std::collections::HashMap;

pub struct Rows {
    dim: usize,
    blocks: Vec<Vec<f32>>,
    ids: Vec<Id>,
    metadata: Vec<Option<Metadata>>,
    slots: HashMap<Id, u32>,
}

impl Rows {
    pub fn new(dim: usize) -> Self {
        Rows {
            dim,
            blocks: Vec::new(),
            ids: Vec::new(),
            metadata: Vec::new(),
            slots: HashMap::new(),
        }
    }

    /// Rows laid out as [`Rows::parts`] gives them, and the index kind's own bytes;
    /// `None` unless they are whole blocks with an id and a metadata a slot, and no id is
    /// held by two slots.
    pub fn restore(dim: usize, parts: Parts) -> Option<(Self, Cow<[u8]>)> {
        let Parts {
            blocks,
            ids,
            metadata,
            own,
        } = parts;
        let n = ids.len();
        let laid_out = blocks.len() == n.div_ceil(BLOCK_ROWS)
            && blocks
                .iter()
                .enumerate()
                .all(|(b, block)| block.len() == (n - b * BLOCK_ROWS).min(BLOCK_ROWS) * dim);
        if !laid_out || metadata.len() != n {
            return None;
        }
        let ids = ids.into_owned();
        let slots: HashMap<Id, u32> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !id.is_empty())
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        if slots.len() != ids.iter().filter(|id| !id.is_empty()).count() {
            return None;
        }
        let rows = Rows {
            dim,
            blocks: blocks.into_owned(),
            ids,
            metadata: metadata.into_owned(),
            slots,
        };
        Some((rows, own))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Slots, vacant ones included.
    pub fn slots(&self) -> usize {
        self.ids.len()
    }

    /// Rows held: the slots that are not vacant.
    pub fn live(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, id: &str) -> Option<u32> {
        self.slots.get(id).copied()
    }

    pub fn is_vacant(&self, slot: usize) -> bool {
        self.ids[slot].is_empty()
    }

    #[inline(always)]
    pub fn row(&self, slot: usize) -> &[f32] {
        let (b, r) = (slot / BLOCK_ROWS, slot % BLOCK_ROWS);
        &self.blocks[b][r * self.dim..(r + 1) * self.dim]
    }

    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        let (b, r) = (slot / BLOCK_ROWS, slot % BLOCK_ROWS);
        &mut self.blocks[b][r * self.dim..(r + 1) * self.dim]
    }

    pub fn blocks(&self) -> &[Vec<f32>] {
        &self.blocks
    }

    /// Each slot's id; empty for a vacant slot.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    pub fn metadata(&self, slot: usize) -> Option<&Metadata> {
        self.metadata[slot].as_ref()
    }

    /// The ids of the rows, in slot order.
    pub fn live_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.ids.iter().filter(|id| !id.is_empty()).map(|id| &**id)
    }

    pub fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        self.metadata.reserve(rows);
        self.slots.reserve(rows);
    }

    /// Adds a row in a new slot at the end; returns the slot.
    pub fn push(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) -> u32 {
        debug_assert_eq!(vector.len(), self.dim);
        if self.ids.len().is_multiple_of(BLOCK_ROWS) {
            // The first block grows with the collection, so a small one stays small;
            // later ones are allocated whole, never copied.
            let rows = if self.blocks.is_empty() { 0 } else { BLOCK_ROWS };
            self.blocks.push(Vec::with_capacity(rows * self.dim));
        }
        self.blocks.last_mut().expect("pushed above").extend_from_slice(vector);
        let slot = self.ids.len() as u32;
        let id: Id = id.into();
        self.slots.insert(id.clone(), slot);
        self.ids.push(id);
        self.metadata.push(metadata);
        slot
    }

    /// Puts a row into `slot`, which holds the same id or is vacant.
    pub fn set(&mut self, slot: u32, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        let s = slot as usize;
        if self.is_vacant(s) {
            let id: Id = id.into();
            self.slots.insert(id.clone(), slot);
            self.ids[s] = id;
        }
        debug_assert_eq!(&*self.ids[s], id);
        self.row_mut(s).copy_from_slice(vector);
        self.metadata[s] = metadata;
    }

    /// Empties `slot` of its row but keeps its vector, for a graph to route through.
    pub fn vacate(&mut self, slot: u32) {
        let s = slot as usize;
        self.slots.remove(&self.ids[s]);
        self.ids[s] = Id::from("");
        self.metadata[s] = None;
    }

    /// Removes the row in `slot` by moving the last row into it, so slots stay dense.
    pub fn swap_remove(&mut self, slot: u32) {
        let (s, last) = (slot as usize, self.ids.len() - 1);
        let dim = self.dim;
        self.slots.remove(&self.ids[s]);
        if s != last {
            // Move the last row into the hole, in place: it lives in the last block,
            // the hole in that block or an earlier one.
            let (b, r) = (s / BLOCK_ROWS, (s % BLOCK_ROWS) * dim);
            let last_block = self.blocks.len() - 1;
            let (head, tail) = self.blocks.split_at_mut(last_block);
            let tail = &mut tail[0];
            let from = tail.len() - dim;
            if b == head.len() {
                tail.copy_within(from.., r);
            } else {
                head[b][r..r + dim].copy_from_slice(&tail[from..]);
            }
            self.slots.insert(self.ids[last].clone(), slot);
        }
        let tail = self.blocks.last_mut().expect("a row exists");
        tail.truncate(tail.len() - dim);
        if tail.is_empty() {
            self.blocks.pop();
        }
        self.ids.swap_remove(s);
        self.metadata.swap_remove(s);
    }

    /// Empties it.
    pub fn clear(&mut self) {
        *self = Rows::new(self.dim);
    }

    /// Bytes the vectors occupy.
    pub fn matrix_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum::<usize>() * std::mem::size_of::<f32>()
    }

    /// The rows as a segment keeps them, with the kind's `own` bytes.
    pub fn parts<'a>(&'a self, own: Cow<'a, [u8]>) -> Parts<'a> {
        Parts {
            blocks: Cow::Borrowed(&self.blocks),
            ids: Cow::Borrowed(&self.ids),
            metadata: Cow::Borrowed(&self.metadata),
            own,
        }
    }

    /// Candidates (best first, keys signed by `sign`) as the hits a caller sees.
    pub fn hits(&self, metric: Metric, sign: f32, candidates: Vec<Candidate>) -> Vec<Hit<'_>> {
        candidates
            .into_iter()
            .map(|c| Hit {
                id: &self.ids[c.slot as usize],
                score: metric.public_score(sign * c.key),
                metadata: self.metadata[c.slot as usize].as_ref(),
            })
            .collect()
    }
}
