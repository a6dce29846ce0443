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

mod persist;
mod repair;
mod search;
mod shared;
mod space;

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

/// The nodes a walk has seen, by generation: clearing it is one increment.
#[derive(Default)]
struct Visited {
    marks: Vec<u32>,
    stamp: u32,
}

impl Visited {
    fn start(&mut self, slots: usize) {
        self.marks.resize(slots, 0);
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.fill(0);
            self.stamp = 1;
        }
    }

    /// Marks `slot`; whether it was unmarked.
    #[inline(always)]
    fn insert(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        let fresh = *m != self.stamp;
        *m = self.stamp;
        fresh
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

    fn draw_level(&mut self) -> usize {
        let u = (splitmix(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-(1.0 - u).ln() * ml) as usize).min(MAX_LEVEL)
    }

    /// Greedy descent on one upper layer (SEARCH-LAYER with ef = 1, as hnswlib runs it).
    fn greedy(&self, q: &Probe, mut best: Near, level: usize) -> Near {
        loop {
            let at = best.slot;
            for &e in self.links(at, level) {
                let n = self.near(q, e);
                if n > best {
                    best = n;
                }
            }
            if best.slot == at {
                return best;
            }
        }
    }

    /// From the entry point down to layer `level + 1`: the closest node found to `q`.
    fn descend(&self, q: &Probe, level: usize) -> Option<Near> {
        let entry = self.entry?;
        let mut ep = self.near(q, entry);
        for lc in (level + 1..=self.levels[entry as usize] as usize).rev() {
            ep = self.greedy(q, ep, lc);
        }
        Some(ep)
    }

    /// SEARCH-LAYER (Algorithm 2): the `ef` nodes closest to `q` on `level` reachable
    /// from `entry`, best first, among those `accept` lets into the result. The walk
    /// goes through every node; while fewer than `ef` accepted nodes are found it does
    /// not stop, as hnswlib's filtered search.
    fn search_layer(&self, q: &Probe, entry: Near, ef: usize, level: usize, accept: impl Fn(u32) -> bool) -> Vec<Near> {
        let mut visited = self.visited.borrow_mut();
        visited.start(self.rows.slots());
        visited.insert(entry.slot);
        let mut candidates = BinaryHeap::from([entry]);
        // Best first, the worst last: at efConstruction's sizes an insert into a sorted
        // array costs less than a heap's push and pop, and the result needs no sort.
        let mut found: Vec<Near> = Vec::with_capacity(ef + 1);
        if accept(entry.slot) {
            found.push(entry);
        }
        // A node's unvisited neighbours, scored two at a time (the kernels' pair form
        // shares the query's loads), then taken in link order as one at a time would.
        let mut fresh: Vec<Near> = Vec::with_capacity(self.m_max(level));
        while let Some(c) = candidates.pop() {
            if found.len() >= ef && c < found[found.len() - 1] {
                break;
            }
            fresh.clear();
            fresh.extend(
                self.links(c.slot, level)
                    .iter()
                    .filter(|&&e| visited.insert(e))
                    .map(|&slot| Near { key: 0.0, slot }),
            );
            for two in fresh.chunks_exact_mut(2) {
                let keys = self.space.key_pair(&self.rows, q, [two[0].slot, two[1].slot]);
                two[0].key = keys[0];
                two[1].key = keys[1];
            }
            if let Some(last) = fresh.chunks_exact_mut(2).into_remainder().first_mut() {
                last.key = self.key(q, last.slot);
            }
            for &n in &fresh {
                let e = n.slot;
                if found.len() < ef || n > found[found.len() - 1] {
                    candidates.push(n);
                    if accept(e) {
                        let at = found.partition_point(|f| *f > n);
                        found.insert(at, n);
                        found.truncate(ef);
                    }
                }
            }
        }
        found
    }

    /// SELECT-NEIGHBORS-HEURISTIC (Algorithm 4) over `candidates`, best first by key to
    /// their base node: a candidate is kept unless it is closer to one already kept
    /// than to the base, which spreads links over directions instead of one cluster.
    fn select(&self, candidates: &[Near], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        // Each kept node made ready once, to score the candidates after it.
        let mut probes: Vec<Probe> = Vec::with_capacity(m);
        let mut pruned = Vec::new();
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            if probes.iter().all(|r| self.key(r, c.slot) <= c.key) {
                kept.push(c.slot);
                probes.push(self.space.probe_slot(&self.rows, c.slot));
            } else if self.params.keep_pruned {
                pruned.push(c.slot);
            }
        }
        let room = m - kept.len();
        kept.extend(pruned.into_iter().take(room));
        kept
    }

    /// Links `slot` on `level` to the best of `found` (best first) by the heuristic, and
    /// them back to it; a list that overflows is shrunk with the heuristic too.
    fn connect(&mut self, slot: u32, found: &[Near], level: usize) {
        let chosen = self.choose(slot, found);
        self.link(slot, &chosen, level);
    }

    /// The links `slot` takes among `found` (best first) by the heuristic; it reads the
    /// rows only, not the graph.
    fn choose(&self, slot: u32, found: &[Near]) -> Vec<u32> {
        let candidates: Vec<Near> = found
            .iter()
            .filter(|n| n.slot != slot && !self.deleted[n.slot as usize])
            .copied()
            .collect();
        self.select(&candidates, self.params.m)
    }

    /// Gives `slot` the links `chosen` on `level`, and them a link back to it; a list
    /// that overflows is shrunk with the heuristic.
    fn link(&mut self, slot: u32, chosen: &[u32], level: usize) {
        self.set_links(slot, level, chosen);
        let cap = self.m_max(level);
        for &n in chosen {
            let mut list = self.links(n, level).to_vec();
            if list.contains(&slot) {
                continue;
            }
            if list.len() < cap {
                list.push(slot);
            } else {
                let base = self.space.probe_slot(&self.rows, n);
                let mut around: Vec<Near> = list.iter().chain([&slot]).map(|&s| self.near(&base, s)).collect();
                around.sort_unstable_by(|a, b| b.cmp(a));
                list = self.select(&around, cap);
            }
            self.set_links(n, level, &list);
        }
    }

    /// A new slot at the end for a row whose id the graph does not hold, its level
    /// drawn, linked to nothing yet.
    fn append(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) -> u32 {
        let slot = self.rows.push(id, vector, metadata);
        self.space.row_changed(&self.rows, slot);
        let level = self.draw_level();
        self.levels.push(level as u8);
        self.deleted.push(false);
        self.links0.resize(self.links0.len() + 1 + 2 * self.params.m, 0);
        self.upper.push(vec![0; level * (1 + self.params.m)]);
        slot
    }

    /// INSERT (Algorithm 1) of the node in `slot`, new and linked to nothing yet.
    fn insert(&mut self, slot: u32) {
        let level = self.levels[slot as usize] as usize;
        let Some(entry) = self.entry else {
            self.entry = Some(slot);
            return;
        };
        let top = self.levels[entry as usize] as usize;
        self.link_down(slot, level, top);
        if level > top {
            self.entry = Some(slot);
        }
    }

    /// Links the node in `slot` (its top layer `level`) on each layer it shares with the
    /// entry point (whose top is `top`): the greedy descent from the entry point, then
    /// on each layer the efConstruction closest found, linked by the heuristic.
    fn link_down(&mut self, slot: u32, level: usize, top: usize) {
        let found = self.find(slot, level, top);
        for (lc, found) in found.iter().enumerate().rev() {
            self.connect(slot, found, lc);
        }
    }

    /// The walk half of [`Hnsw::link_down`], which reads the graph only: for each layer
    /// from 0 to `min(level, top)`, the efConstruction nodes closest to `slot`'s row,
    /// best first. Linking a layer changes no other layer's lists, so walking every
    /// layer first and linking after gives the links that interleaving them would.
    fn find(&self, slot: u32, level: usize, top: usize) -> Vec<Vec<Near>> {
        let q = self.space.probe_slot(&self.rows, slot);
        let mut ep = self.descend(&q, level).expect("an entry point");
        let mut layers = vec![Vec::new(); level.min(top) + 1];
        for lc in (0..layers.len()).rev() {
            let found = self.search_layer(&q, ep, self.params.ef_construction, lc, |_| true);
            if let Some(&best) = found.iter().find(|n| n.slot != slot) {
                ep = best;
            }
            layers[lc] = found;
        }
        layers
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
