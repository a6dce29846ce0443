//! Exact search: one scan over row-major copies of the vectors.
//!
//! Rows are dense: deleting moves the last row into the hole, so the scan never skips
//! a vacant slot.

use super::rows::Rows;
use super::{Candidate, Hit, Index, Kind, Metadata, Parts, Query, TopK, BLOCK_ROWS};
use crate::filter::Filter;
use crate::kernels;
use crate::metric::Metric;
use std::borrow::Cow;

/// Rows scored against every query of a batch before moving on: 384 KiB at 384
/// dimensions, so a tile stays in a core's L2 while the queries pass over it.
const TILE_ROWS: usize = 256;

pub struct Flat {
    metric: Metric,
    rows: Rows,
}

impl Flat {
    pub fn new(dim: usize, metric: Metric) -> Self {
        Flat {
            metric,
            rows: Rows::new(dim),
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
        if !own.is_empty() {
            return None;
        }
        let rows = Rows::restore(dim, blocks, ids, metadata)?;
        // Flat keeps no vacant slot.
        (rows.live() == rows.slots()).then_some(Flat { metric, rows })
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
        let dim = self.rows.dim();
        let mut tops: Vec<TopK> = queries
            .chunks_exact(dim)
            .map(|_| TopK::new(k, self.rows.ids()))
            .collect();
        // The bar a row must clear, per query, kept apart from the heap: it changes only
        // when a row enters.
        let mut bars = vec![min_key; tops.len()];
        let mut pass = [true; TILE_ROWS];
        for (b, block) in self.rows.blocks().iter().enumerate() {
            for (t, tile) in block.chunks(TILE_ROWS * dim).enumerate() {
                let first = b * BLOCK_ROWS + t * TILE_ROWS;
                let rows = tile.len() / dim;
                // The filter depends on the row only: judge it once for all queries.
                if let Some(f) = filter {
                    for (r, p) in pass[..rows].iter_mut().enumerate() {
                        *p = f.matches(self.rows.metadata(first + r));
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
        self.rows.dim()
    }

    fn len(&self) -> usize {
        self.rows.live()
    }

    fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
    }

    fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        match self.rows.slot(id) {
            Some(slot) => self.rows.set(slot, id, vector, metadata),
            None => {
                self.rows.push(id, vector, metadata);
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.rows.slot(id) else {
            return false;
        };
        self.rows.swap_remove(slot);
        true
    }

    /// In slot order.
    fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.rows.live_ids())
    }

    fn rows(&self) -> &Rows {
        &self.rows
    }

    /// One pass over the rows for the whole batch: a tile of rows is scored against
    /// every query while it is in cache, so a batch reads memory once, not once a query.
    /// Exact, so `query.ef` means nothing here.
    fn search_many(&self, queries: &[f32], query: &Query) -> Vec<Vec<Hit<'_>>> {
        let metric = self.metric;
        // Rank by a key where larger is better for every metric.
        let (min_key, sign) = query.bounds(metric);
        let (k, filter) = (query.k, query.filter);
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
            .map(|top| self.rows.hits(metric, sign, top.into_sorted()))
            .collect()
    }

    fn matrix_bytes(&self) -> usize {
        self.rows.matrix_bytes()
    }

    fn parts(&self) -> Parts<'_> {
        self.rows.parts(Cow::Borrowed(&[]))
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
        assert_eq!(f.rows.blocks().len(), 2);
        // Remove a row of the first block: the last row moves into its slot.
        assert!(f.remove("3"));
        assert_eq!(f.len(), n - 1);
        assert_eq!(f.ids().nth(3), Some(format!("{}", n - 1).as_str()));
        let query = Query {
            k: 1,
            filter: None,
            threshold: None,
            ef: None,
        };
        let top = f.search_many(&[1.0, 0.0], &query);
        assert_eq!(top[0][0].id, format!("{}", n - 1));
        for i in (0..n).filter(|&i| i != 3).rev() {
            assert!(f.remove(&format!("{i}")), "{i}");
        }
        assert!(f.is_empty() && f.rows.blocks().is_empty());
    }
}
