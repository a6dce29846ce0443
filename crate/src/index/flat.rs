//! Exact search: one scan over a contiguous row-major copy of the vectors.
//!
//! Rows are dense: deleting moves the last row into the hole, so the scan never
//! skips tombstones and the matrix stays one block the kernels can stream.

use super::{Candidate, TopK};
use crate::filter::Filter;
use crate::metric::Metric;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Metadata of one row, parsed once on write so filters do not re-parse it per query.
pub type Metadata = Map<String, Value>;

pub struct Flat {
    dim: usize,
    metric: Metric,
    data: Vec<f32>,
    ids: Vec<String>,
    metadata: Vec<Option<Metadata>>,
    slots: HashMap<String, u32>,
}

/// A search hit: the row's id, its public score and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub id: &'a str,
    pub score: f32,
    pub metadata: Option<&'a Metadata>,
}

impl Flat {
    pub fn new(dim: usize, metric: Metric) -> Self {
        Flat { dim, metric, data: Vec::new(), ids: Vec::new(), metadata: Vec::new(), slots: HashMap::new() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn reserve(&mut self, rows: usize) {
        self.data.reserve(rows * self.dim);
        self.ids.reserve(rows);
        self.metadata.reserve(rows);
        self.slots.reserve(rows);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// Bytes the matrix occupies; what one exact scan reads.
    pub fn matrix_bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// Inserts or replaces a row. `vector` is already prepared for the metric.
    pub fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        debug_assert_eq!(vector.len(), self.dim);
        match self.slots.get(id) {
            Some(&slot) => {
                let s = slot as usize;
                self.data[s * self.dim..(s + 1) * self.dim].copy_from_slice(vector);
                self.metadata[s] = metadata;
            }
            None => {
                self.slots.insert(id.to_owned(), self.ids.len() as u32);
                self.data.extend_from_slice(vector);
                self.ids.push(id.to_owned());
                self.metadata.push(metadata);
            }
        }
    }

    /// Removes a row; returns whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else { return false };
        let (s, last) = (slot as usize, self.ids.len() - 1);
        if s != last {
            self.data.copy_within(last * self.dim..(last + 1) * self.dim, s * self.dim);
            self.slots.insert(self.ids[last].clone(), slot);
        }
        self.data.truncate(last * self.dim);
        self.ids.swap_remove(s);
        self.metadata.swap_remove(s);
        true
    }

    /// The ids of all rows, in slot order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The `k` rows closest to `query` (already prepared) that pass `filter` and, when
    /// given, reach `threshold` (a minimum score, or for Euclidean a maximum distance).
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>, threshold: Option<f32>) -> Vec<Hit<'_>> {
        let metric = self.metric;
        // Rank by a key where larger is better for every metric.
        let sign = if metric.higher_is_closer() { 1.0 } else { -1.0 };
        let min_key = threshold.map_or(f32::NEG_INFINITY, |t| sign * metric.internal_threshold(t));
        let mut top = TopK::new(k, &self.ids);
        for (slot, row) in self.data.chunks_exact(self.dim).enumerate() {
            if let Some(f) = filter {
                if !f.matches(self.metadata[slot].as_ref()) {
                    continue;
                }
            }
            let key = sign * metric.score(query, row);
            if key >= min_key && key >= top.floor() {
                top.push(Candidate { key, slot: slot as u32 });
            }
        }
        top.into_sorted()
            .into_iter()
            .map(|c| Hit {
                id: &self.ids[c.slot as usize],
                score: metric.public_score(sign * c.key),
                metadata: self.metadata[c.slot as usize].as_ref(),
            })
            .collect()
    }
}
