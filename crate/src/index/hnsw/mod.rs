//! Approximate search: a hierarchical navigable small world graph (Malkov & Yashunin,
//! "Efficient and robust approximate nearest neighbor search using Hierarchical
//! Navigable Small World graphs", TPAMI 2018), laid out as hnswlib lays it out.
//!
//! Each slot of [`Rows`] is a node. Its level is drawn once, `floor(-ln(U) * mL)` with
//! `mL = 1/ln(M)`, from a seeded generator so that a build is reproducible. Layer 0
//! keeps up to `M_max0 = 2M` links a node, in one flat array of fixed stride (a count
//! then the links); a node with upper layers keeps `M` links a layer in an array of its
//! own. Keys are larger-is-closer as everywhere in the index: the dot product for
//! cosine (rows are unit length) and dot, the negative squared distance for Euclidean.
//!
//! Deletion marks the node deleted and vacates its row; the node stays in the graph,
//! vector and links, as a waypoint searches walk through but never return, and its
//! slot goes on a free list that the next insert takes (hnswlib's
//! `allow_replace_deleted`). Taking a slot, like updating a row, runs hnswlib's
//! `updatePoint` repair: the node's old neighbours choose their links again among
//! their two-hop neighbourhood, and the node finds its own from the entry point.
//! Slots are thus bounded by the most rows the collection has held at once, and a
//! node deleted and not yet replaced costs a walk a few steps, not a broken path.
//! Removing and reinserting a row would do the same work as the update in place, so
//! an update is that repair on its own slot. Deleted nodes are never chosen as new
//! links, so they drift out of the graph until their slot is taken.

mod insert;
mod persist;
mod repair;
mod search;
mod shared;
mod space;
mod walk;

pub use shared::{decline, help, pair, Mirror, Peer, Thread};

use super::rows::Rows;
use super::{Batch, Candidate, Hit, Id, Index, Kind, Metadata, Parts, Query, TopK};
use crate::filter::Filter;
use crate::metric::Metric;
use crate::quant::{Codes, Quantization};
use search::Plan;
use space::{Probe, Space};
use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use walk::Visited;

/// A graph is rebuilt (see [`Hnsw::compact`]) once 1 slot in this many is deleted.
const COMPACT_DELETED_SHARE: usize = 3;

/// Highest level a node may draw: past it, a layer would hold a node in about `M^31`.
const MAX_LEVEL: usize = 31;

/// efSearch when a query does not say: at least k.
pub const DEFAULT_EF: usize = 64;

/// How a graph is built; the paper's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Links a node keeps on each layer above 0 (`M`); layer 0 keeps `2M`. At least 2.
    pub m: usize,
    /// Candidates kept while linking a new node (`efConstruction`).
    pub ef_construction: usize,
    /// Algorithm 4's `keepPrunedConnections`: fill a short list with candidates the
    /// heuristic pruned. Off by default, as hnswlib leaves it.
    pub keep_pruned: bool,
    /// Seed of the level draws.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            m: 16,
            ef_construction: 200,
            keep_pruned: false,
            seed: 0x5EED_0F9A_2024,
        }
    }
}

/// A node as a search holds it: its key to the query and its slot. Ordered by key,
/// then by slot, lower first, so that heaps break ties the same way every run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near {
    key: f32,
    slot: u32,
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.total_cmp(&other.key).then(other.slot.cmp(&self.slot))
    }
}

/// splitmix64: small, seedable, and enough for level draws.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub struct Hnsw {
    metric: Metric,
    params: Params,
    rows: Rows,
    /// What walks score nodes on: the rows, or their codes.
    space: Space,
    /// Each slot's top layer.
    levels: Vec<u8>,
    /// Whether each slot's node is deleted (its row vacant, its slot free).
    deleted: Vec<bool>,
    /// Layer 0: for each slot, a count then room for `2M` links.
    links0: Vec<u32>,
    /// Layers 1 and up: for each slot, per layer a count then room for `M` links.
    upper: Vec<Vec<u32>>,
    /// Where every search starts: a live node on the top layer.
    entry: Option<u32>,
    /// Deleted slots, taken last-in first-out by inserts.
    free: Vec<u32>,
    /// The level generator's state.
    rng: u64,
    visited: RefCell<Visited>,
    /// This graph's lineage (high word, unique in the process) and edits so far (low
    /// word): a helper's copy at this version is this graph.
    version: u64,
    /// The version a helper's copy was left at by the last shared batch.
    mirrored: Option<u64>,
}

impl Hnsw {
    /// An empty graph; walked on int8 codes when `quant` is [`Quantization::Int8`] (see
    /// [`Kind::check_quantization`]).
    pub fn new(dim: usize, metric: Metric, params: Params, quant: Quantization) -> Self {
        let params = Params {
            m: params.m.clamp(2, u16::MAX as usize),
            ef_construction: params.ef_construction.max(1),
            ..params
        };
        Hnsw {
            metric,
            params,
            rows: Rows::new(dim),
            space: Space::new(metric, quant),
            levels: Vec::new(),
            deleted: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            entry: None,
            free: Vec::new(),
            rng: params.seed,
            visited: RefCell::default(),
            version: shared::new_version(),
            mirrored: None,
        }
    }

    /// The parameters it was built with.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Slots held, deleted ones waiting for reuse included: the memory it takes.
    pub fn slots(&self) -> usize {
        self.rows.slots()
    }

    fn m_max(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Where `slot`'s list on `level` lives: a count, then room for the links.
    fn list_range(&self, slot: u32, level: usize) -> (bool, std::ops::Range<usize>) {
        let s = slot as usize;
        if level == 0 {
            let w = 1 + 2 * self.params.m;
            (true, s * w..(s + 1) * w)
        } else {
            let w = 1 + self.params.m;
            (false, (level - 1) * w..level * w)
        }
    }

    #[inline(always)]
    fn links(&self, slot: u32, level: usize) -> &[u32] {
        let (zero, range) = self.list_range(slot, level);
        let list = if zero {
            &self.links0[range]
        } else {
            &self.upper[slot as usize][range]
        };
        &list[1..1 + list[0] as usize]
    }

    fn set_links(&mut self, slot: u32, level: usize, links: &[u32]) {
        debug_assert!(links.len() <= self.m_max(level));
        let (zero, range) = self.list_range(slot, level);
        let list = if zero {
            &mut self.links0[range]
        } else {
            &mut self.upper[slot as usize][range]
        };
        list[0] = links.len() as u32;
        list[1..1 + links.len()].copy_from_slice(links);
    }

    /// The ranking key of `slot` for `q` in the graph's space: larger is closer.
    #[inline(always)]
    fn key(&self, q: &Probe, slot: u32) -> f32 {
        self.space.key(&self.rows, q, slot)
    }

    #[inline(always)]
    fn near(&self, q: &Probe, slot: u32) -> Near {
        Near {
            key: self.key(q, slot),
            slot,
        }
    }

    /// Forgets every node: the graph of no rows.
    fn clear(&mut self) {
        self.rows.clear();
        self.space.clear();
        self.levels.clear();
        self.deleted.clear();
        self.links0.clear();
        self.upper.clear();
        self.free.clear();
        self.entry = None;
    }
}

impl Index for Hnsw {
    fn kind(&self) -> Kind {
        Kind::Hnsw(self.params)
    }

    fn dim(&self) -> usize {
        self.rows.dim()
    }

    fn len(&self) -> usize {
        self.rows.live()
    }

    fn reserve(&mut self, rows: usize) {
        let new = rows.saturating_sub(self.free.len());
        self.rows.reserve(new);
        self.levels.reserve(new);
        self.deleted.reserve(new);
        self.links0.reserve(new * (1 + 2 * self.params.m));
        self.upper.reserve(new);
    }

    fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        debug_assert_eq!(vector.len(), self.rows.dim());
        self.version += 1;
        if let Some(slot) = self.rows.slot(id) {
            self.rows.set(slot, id, vector, metadata);
            self.space.row_changed(&self.rows, slot);
            self.relink(slot);
        } else if let Some(slot) = self.free.pop() {
            self.deleted[slot as usize] = false;
            self.rows.set(slot, id, vector, metadata);
            self.space.row_changed(&self.rows, slot);
            self.relink(slot);
        } else {
            let slot = self.append(id, vector, metadata);
            self.insert(slot);
        }
    }

    fn upsert_batch(
        &mut self,
        rows: Batch,
        helper: Option<&mut dyn Peer>,
        store: &mut dyn FnMut() -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        match helper {
            Some(peer) => self.upsert_shared(rows, peer, store),
            None => {
                store()?;
                rows.each(|id, v, m| self.upsert(id, v, m));
                Ok(())
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.rows.slot(id) else {
            return false;
        };
        self.version += 1;
        if self.rows.live() == 1 {
            self.clear();
            return true;
        }
        self.rows.vacate(slot);
        self.deleted[slot as usize] = true;
        self.free.push(slot);
        if self.free.len() * COMPACT_DELETED_SHARE >= self.rows.slots() {
            self.compact();
        } else if self.entry == Some(slot) {
            // The live node on the highest layer, lowest slot first, so that a search
            // never starts from a row it cannot return and the top layers stay reachable.
            let best = (0..self.rows.slots())
                .filter(|&s| !self.deleted[s])
                .max_by_key(|&s| (self.levels[s], Reverse(s)))
                .expect("a live row remains");
            self.entry = Some(best as u32);
        }
        true
    }

    fn rows(&self) -> &Rows {
        &self.rows
    }

    /// Each query walks the graph with `ef = max(query.ef or 64, k)`; a filter may make
    /// it exact over the matching rows instead (see [`Hnsw::plan`]). The threshold is
    /// applied to the k found, which are the k best that reach it when the walk is exact.
    fn search_many(&self, queries: &[f32], query: &Query) -> Vec<Vec<Hit<'_>>> {
        let metric = self.metric;
        let (min_key, sign) = query.bounds(metric);
        let k = query.k;
        let ef = query.ef.unwrap_or(DEFAULT_EF).max(k);
        let plan = query.filter.map_or(Plan::Walk, |f| self.plan(f));
        let deleted = &self.deleted;
        queries
            .chunks_exact(self.rows.dim())
            .map(|q| {
                let mut found = match query.filter {
                    None => self.knn(q, k, ef, plan, |s| !deleted[s as usize]),
                    Some(f) => self.knn(q, k, ef, plan, |s| {
                        !deleted[s as usize] && f.matches(self.rows.metadata(s as usize))
                    }),
                };
                found.retain(|c| c.key >= min_key);
                self.rows.hits(metric, sign, found)
            })
            .collect()
    }

    fn matrix_bytes(&self) -> usize {
        self.rows.matrix_bytes()
    }

    fn code_bytes(&self) -> usize {
        self.space.codes().map_or(0, Codes::bytes)
    }

    /// The link lists (with room for every slot's full lists), levels and deletion
    /// marks: what the graph adds to the rows. Lengths, not capacities, so a graph
    /// reopened from its segment reports what it did before.
    fn graph_bytes(&self) -> usize {
        let links = self.links0.len() + self.upper.iter().map(Vec::len).sum::<usize>();
        links * size_of::<u32>() + self.levels.len() + self.deleted.len()
    }

    fn parts(&self) -> Parts<'_> {
        self.rows.parts(Cow::Owned(self.own_bytes()))
    }
}

#[cfg(test)]
mod tests;
