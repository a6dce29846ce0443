//! Exact search: one scan over row-major copies of the vectors.
//!
//! Rows live in blocks of up to [`BLOCK_ROWS`] contiguous rows. Growing one big
//! vector would reallocate and copy everything at each doubling, and in wasm every
//! fresh page is a page fault: blocks keep bulk inserts to one pass over new memory.
//! Rows are dense: deleting moves the last row into the hole, so the scan never skips
//! tombstones.

use super::{Candidate, Hit, Id, Index, Kind, Metadata, Parts, TopK, BLOCK_ROWS};
use crate::filter::Filter;
use crate::kernels;
use crate::metric::Metric;
use std::borrow::Cow;
use std::collections::HashMap;

/// Rows scored against every query of a batch before moving on: 384 KiB at 384
/// dimensions, so a tile stays in a core's L2 while the queries pass over it.
const TILE_ROWS: usize = 256;

pub struct Flat {
    dim: usize,
    metric: Metric,
    blocks: Vec<Vec<f32>>,
    ids: Vec<Id>,
    metadata: Vec<Option<Metadata>>,
    slots: HashMap<Id, u32>,
}

impl Flat {
    pub fn new(dim: usize, metric: Metric) -> Self {
        Flat {
            dim,
            metric,
            blocks: Vec::new(),
            ids: Vec::new(),
            metadata: Vec::new(),
            slots: HashMap::new(),
        }
    }

    /// A Flat of rows already laid out, as [`Index::parts`] gives them; `None` unless
    /// they are whole blocks of rows with an id and a metadata a slot, and nothing more.
    pub fn restore(dim: usize, metric: Metric, parts: Parts) -> Option<Self> {
        let Parts {
            blocks,
            ids,
            metadata,
            own,
        } = parts;
        let rows = ids.len();
        let laid_out = blocks.len() == rows.div_ceil(BLOCK_ROWS)
            && blocks
                .iter()
                .enumerate()
                .all(|(b, block)| block.len() == (rows - b * BLOCK_ROWS).min(BLOCK_ROWS) * dim);
        if !laid_out || metadata.len() != rows || !own.is_empty() {
            return None;
        }
        let ids = ids.into_owned();
        let slots = ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        Some(Flat {
            dim,
            metric,
            blocks: blocks.into_owned(),
            ids,
            metadata: metadata.into_owned(),
            slots,
        })
    }

    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        let (b, r) = (slot / BLOCK_ROWS, slot % BLOCK_ROWS);
        &mut self.blocks[b][r * self.dim..(r + 1) * self.dim]
    }

    /// Scores every row against every query, a tile of rows at a time (so the tile is
    /// in cache for all the queries) and two rows a kernel call: row r of a tile with
    /// row r + half, as rows next to each other ran several times slower in pairs (see
    /// kernels/simd128.rs). `key` scores one row and `pair` two, larger keys closer.
    #[inline(always)]
    fn scan(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        min_key: f32,
        key: impl Fn(&[f32], &[f32]) -> f32,
        pair: impl Fn(&[f32], [&[f32]; 2]) -> [f32; 2],
    ) -> Vec<TopK<'_>> {
        let dim = self.dim;
        let mut tops: Vec<TopK> = queries.chunks_exact(dim).map(|_| TopK::new(k, &self.ids)).collect();
        // The bar a row must clear, per query, kept apart from the heap: it changes only
        // when a row enters.
        let mut bars = vec![min_key; tops.len()];
        let mut pass = [true; TILE_ROWS];
        for (b, block) in self.blocks.iter().enumerate() {
            for (t, tile) in block.chunks(TILE_ROWS * dim).enumerate() {
                let first = b * BLOCK_ROWS + t * TILE_ROWS;
                let rows = tile.len() / dim;
                // The filter depends on the row only: judge it once for all queries.
                if let Some(f) = filter {
                    for (r, p) in pass[..rows].iter_mut().enumerate() {
                        *p = f.matches(self.metadata[first + r].as_ref());
                    }
                }
                let half = rows / 2;
                let (low, high) = tile.split_at(half * dim);
                for ((q, top), bar) in queries.chunks_exact(dim).zip(&mut tops).zip(&mut bars) {
                    let mut offer = |r: usize, key: f32| {
                        if key >= *bar && pass[r] {
                            top.push(Candidate {
                                key,
                                slot: (first + r) as u32,
                            });
                            *bar = bar.max(top.floor());
                        }
                    };
                    for (r, (x, y)) in low.chunks_exact(dim).zip(high.chunks_exact(dim)).enumerate() {
                        let [kx, ky] = pair(q, [x, y]);
                        offer(r, kx);
                        offer(half + r, ky);
                    }
                    if rows % 2 == 1 {
                        offer(rows - 1, key(q, &tile[(rows - 1) * dim..]));
                    }
                }
            }
        }
        tops
    }
}

impl Index for Flat {
    fn kind(&self) -> Kind {
        Kind::Flat
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        self.metadata.reserve(rows);
        self.slots.reserve(rows);
    }

    fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        debug_assert_eq!(vector.len(), self.dim);
        match self.slots.get(id) {
            Some(&slot) => {
                self.row_mut(slot as usize).copy_from_slice(vector);
                self.metadata[slot as usize] = metadata;
            }
            None => {
                if self.ids.len().is_multiple_of(BLOCK_ROWS) {
                    // The first block grows with the collection, so a small one stays
                    // small; later ones are allocated whole, never copied.
                    let rows = if self.blocks.is_empty() { 0 } else { BLOCK_ROWS };
                    self.blocks.push(Vec::with_capacity(rows * self.dim));
                }
                self.blocks.last_mut().expect("pushed above").extend_from_slice(vector);
                let id: Id = id.into();
                self.slots.insert(id.clone(), self.ids.len() as u32);
                self.ids.push(id);
                self.metadata.push(metadata);
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        let (s, last) = (slot as usize, self.ids.len() - 1);
        let dim = self.dim;
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
        true
    }

    /// In slot order.
    fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.ids.iter().map(|id| &**id))
    }

    /// One pass over the rows for the whole batch: a tile of rows is scored against
    /// every query while it is in cache, so a batch reads memory once, not once a query.
    fn search_many(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        threshold: Option<f32>,
    ) -> Vec<Vec<Hit<'_>>> {
        let metric = self.metric;
        // Rank by a key where larger is better for every metric.
        let sign = if metric.higher_is_closer() { 1.0 } else { -1.0 };
        let min_key = threshold.map_or(f32::NEG_INFINITY, |t| sign * metric.internal_threshold(t));
        // One monomorphised scan per kernel keeps the metric's branch out of the loop.
        let tops = match metric {
            Metric::Cosine | Metric::Dot => self.scan(queries, k, filter, min_key, kernels::dot, kernels::dot_pair),
            Metric::Euclidean => self.scan(
                queries,
                k,
                filter,
                min_key,
                |q, r| -kernels::l2_squared(q, r),
                |q, rows| kernels::l2_squared_pair(q, rows).map(|d| -d),
            ),
        };
        tops.into_iter()
            .map(|top| {
                top.into_sorted()
                    .into_iter()
                    .map(|c| Hit {
                        id: &self.ids[c.slot as usize],
                        score: metric.public_score(sign * c.key),
                        metadata: self.metadata[c.slot as usize].as_ref(),
                    })
                    .collect()
            })
            .collect()
    }

    fn matrix_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum::<usize>() * std::mem::size_of::<f32>()
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            blocks: Cow::Borrowed(&self.blocks),
            ids: Cow::Borrowed(&self.ids),
            metadata: Cow::Borrowed(&self.metadata),
            own: Cow::Borrowed(&[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cross_blocks_and_deletes_keep_them_dense() {
        let mut f = Flat::new(2, Metric::Dot);
        let n = BLOCK_ROWS + 5;
        for i in 0..n {
            f.upsert(&format!("{i}"), &[i as f32, 1.0], None);
        }
        assert_eq!(f.blocks.len(), 2);
        // Remove a row of the first block: the last row moves into its slot.
        assert!(f.remove("3"));
        assert_eq!(f.len(), n - 1);
        assert_eq!(f.ids().nth(3), Some(format!("{}", n - 1).as_str()));
        let top = f.search_many(&[1.0, 0.0], 1, None, None);
        assert_eq!(top[0][0].id, format!("{}", n - 1));
        for i in (0..n).filter(|&i| i != 3).rev() {
            assert!(f.remove(&format!("{i}")), "{i}");
        }
        assert!(f.is_empty() && f.blocks.is_empty());
    }
}
