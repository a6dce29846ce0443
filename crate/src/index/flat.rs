//! Exact search: one scan over row-major copies of the vectors, or, for a quantized
//! collection, over their codes and then exactly over the best candidates.
//!
//! Rows are dense: deleting moves the last row into the hole, so the scan never skips
//! a vacant slot. Codes follow the rows slot for slot.

use super::rows::Rows;
use super::{Candidate, Hit, Index, Kind, Metadata, Parts, Query, TopK, BLOCK_ROWS};
use crate::filter::Filter;
use crate::kernels;
use crate::metric::Metric;
use crate::quant::{self, Codes, Quantization};
use std::borrow::Cow;

/// Rows scored against every query of a batch before moving on: 384 KiB at 384
/// dimensions, so a tile stays in a core's L2 while the queries pass over it.
const TILE_ROWS: usize = 256;

pub struct Flat {
    metric: Metric,
    rows: Rows,
    quant: Quantization,
    /// Every slot's code, once a quantized Flat holds [`quant::CODES_FROM_ROWS`] rows.
    codes: Option<Codes>,
}

impl Flat {
    pub fn new(dim: usize, metric: Metric, quant: Quantization) -> Self {
        Flat {
            metric,
            rows: Rows::new(dim),
            quant,
            codes: None,
        }
    }

    /// A Flat of rows already laid out, as [`Index::parts`] gives them, with the codes
    /// its own bytes hold; `None` unless they are whole blocks of rows with an id and a
    /// metadata a slot. Codes that are missing, damaged or not the rows' are built
    /// again from the rows: they are a cache of them.
    pub fn restore(dim: usize, metric: Metric, quant: Quantization, parts: Parts) -> Option<Self> {
        let (rows, own) = Rows::restore(dim, parts)?;
        // Flat keeps no vacant slot.
        if rows.live() != rows.slots() {
            return None;
        }
        let codes = Codes::from_bytes(&own, dim, metric)
            .ok()
            .filter(|c| c.quantization() == quant && c.len() == rows.slots());
        let mut flat = Flat {
            metric,
            rows,
            quant,
            codes,
        };
        flat.train();
        Some(flat)
    }

    /// Builds the codes anew from the rows when they are due ([`quant::refresh`]).
    fn train(&mut self) {
        let rows = &self.rows;
        let all = (0..rows.slots()).map(|s| rows.row(s));
        quant::refresh(&mut self.codes, self.quant, rows.dim(), self.metric, rows.live(), all);
    }

    /// The search of [`Index::search_many`] on the codes: for each query, the best
    /// `fetch` rows that pass the filter by their codes, re-ranked on their vectors.
    fn search_codes(&self, codes: &Codes, queries: &[f32], query: &Query, fetch: usize) -> Vec<Vec<Hit<'_>>> {
        let (min_key, sign) = query.bounds(self.metric);
        let keep = |slot: usize| query.filter.is_none_or(|f| f.matches(self.rows.metadata(slot)));
        queries
            .chunks_exact(self.rows.dim())
            .map(|q| {
                let coarse = codes.coarse_top_where(q, fetch, keep);
                let mut top = codes.rerank(q, &coarse, query.k, self.rows.ids(), |s| self.rows.row(s));
                top.retain(|c| c.key >= min_key);
                self.rows.hits(self.metric, sign, top)
            })
            .collect()
    }

    /// Scores every row against every query, a tile of rows at a time (so the tile is
    /// in cache for all the queries) and two rows a kernel call: row r of a tile with
    /// row r + half, as rows next to each other ran several times slower in pairs (see
    /// kernels/src/simd128.rs). `key` scores one row and `pair` two, larger keys closer.
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
            Some(slot) => {
                self.rows.set(slot, id, vector, metadata);
                if let Some(codes) = &mut self.codes {
                    codes.replace(slot, vector);
                }
            }
            None => {
                self.rows.push(id, vector, metadata);
                if let Some(codes) = &mut self.codes {
                    codes.push(vector);
                }
            }
        }
        self.train();
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.rows.slot(id) else {
            return false;
        };
        self.rows.swap_remove(slot);
        if let Some(codes) = &mut self.codes {
            codes.remove(slot);
        }
        true
    }

    fn rows(&self) -> &Rows {
        &self.rows
    }

    /// One pass over the rows for the whole batch: a tile of rows is scored against
    /// every query while it is in cache, so a batch reads memory once, not once a query.
    /// Exact, so `query.ef` means nothing here. With codes, each query scans them and
    /// re-ranks its best `query.fetch` (at least k) exactly, unless that is every row.
    fn search_many(&self, queries: &[f32], query: &Query) -> Vec<Vec<Hit<'_>>> {
        if let Some(codes) = &self.codes {
            let fetch = query
                .fetch
                .unwrap_or_else(|| self.quant.default_fetch(query.k))
                .max(query.k);
            if fetch < self.rows.live() {
                return self.search_codes(codes, queries, query, fetch);
            }
        }
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

    fn code_bytes(&self) -> usize {
        self.codes.as_ref().map_or(0, Codes::bytes)
    }

    fn parts(&self) -> Parts<'_> {
        let own = self.codes.as_ref().map_or(Vec::new(), Codes::to_bytes);
        self.rows.parts(Cow::Owned(own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::test_row as row;
    use crate::quant::CODES_FROM_ROWS;

    #[test]
    fn rows_cross_blocks_and_deletes_keep_them_dense() {
        let mut f = Flat::new(2, Metric::Dot, Quantization::None);
        let n = BLOCK_ROWS + 5;
        for i in 0..n {
            f.upsert(&format!("{i}"), &[i as f32, 1.0], None);
        }
        assert_eq!(f.rows.blocks().len(), 2);
        // Remove a row of the first block: the last row moves into its slot.
        assert!(f.remove("3"));
        assert_eq!(f.len(), n - 1);
        assert_eq!(f.ids().nth(3), Some(format!("{}", n - 1).as_str()));
        let query = Query::nearest(1);
        let top = f.search_many(&[1.0, 0.0], &query);
        assert_eq!(top[0][0].id, format!("{}", n - 1));
        for i in (0..n).filter(|&i| i != 3).rev() {
            assert!(f.remove(&format!("{i}")), "{i}");
        }
        assert!(f.is_empty() && f.rows.blocks().is_empty());
    }

    fn top1(f: &Flat, q: &[f32]) -> (String, f32) {
        let query = Query::nearest(1);
        let hits = f.search_many(q, &query);
        (hits[0][0].id.to_owned(), hits[0][0].score)
    }

    #[test]
    fn codes_start_at_enough_rows_follow_every_change_and_are_rebuilt_when_damaged() {
        let dim = 32;
        for quant in [Quantization::Int8, Quantization::Binary] {
            let mut f = Flat::new(dim, Metric::Cosine, quant);
            for i in 0..CODES_FROM_ROWS - 1 {
                f.upsert(&format!("r{i}"), &row(i, dim), None);
            }
            assert_eq!(f.code_bytes(), 0, "{quant:?}: too few rows to code");
            for i in CODES_FROM_ROWS - 1..CODES_FROM_ROWS + 500 {
                f.upsert(&format!("r{i}"), &row(i, dim), None);
            }
            let slot_bytes = f.codes.as_ref().unwrap().bytes_per_slot();
            assert_eq!(f.code_bytes(), f.len() * slot_bytes, "{quant:?}");
            // A delete moves the last row (and its code) into the hole; an update
            // codes the row anew in place.
            assert!(f.remove("r7"));
            f.upsert("r8", &row(5_000, dim), None);
            assert_eq!(f.code_bytes(), f.len() * slot_bytes, "{quant:?}");
            let last = format!("r{}", CODES_FROM_ROWS + 499);
            assert_eq!(top1(&f, &row(CODES_FROM_ROWS + 499, dim)).0, last, "{quant:?}");
            assert_eq!(top1(&f, &row(5_000, dim)).0, "r8", "{quant:?}");
            assert_ne!(top1(&f, &row(7, dim)).0, "r7", "{quant:?}");

            let restored = Flat::restore(dim, Metric::Cosine, quant, f.parts()).unwrap();
            assert_eq!(
                restored.codes.as_ref().unwrap().to_bytes(),
                f.codes.as_ref().unwrap().to_bytes()
            );
            let mut damaged = f.parts().own.into_owned();
            let mid = damaged.len() / 2;
            damaged[mid] ^= 0x10;
            for own in [damaged, Vec::new()] {
                let parts = Parts {
                    own: Cow::Owned(own),
                    ..f.parts()
                };
                let rebuilt = Flat::restore(dim, Metric::Cosine, quant, parts).unwrap();
                assert_eq!(rebuilt.code_bytes(), f.code_bytes(), "{quant:?}");
                assert_eq!(
                    top1(&rebuilt, &row(5_000, dim)),
                    top1(&f, &row(5_000, dim)),
                    "{quant:?}"
                );
            }
        }
    }
}
