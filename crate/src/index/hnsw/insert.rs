//! INSERT (Algorithm 1): a new node's level, the walk down to its layers, and its links
//! chosen by the heuristic (Algorithm 4), with the links back that may shrink a
//! neighbour's list.

use super::*;

impl Hnsw {
    pub(super) fn draw_level(&mut self) -> usize {
        let u = (splitmix(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-(1.0 - u).ln() * ml) as usize).min(MAX_LEVEL)
    }

    /// SELECT-NEIGHBORS-HEURISTIC (Algorithm 4) over `candidates`, best first by key to
    /// their base node: a candidate is kept unless it is closer to one already kept
    /// than to the base, which spreads links over directions instead of one cluster.
    pub(super) fn select(&self, candidates: &[Near], m: usize) -> Vec<u32> {
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
    pub(super) fn connect(&mut self, slot: u32, found: &[Near], level: usize) {
        let chosen = self.choose(slot, found);
        self.link(slot, &chosen, level);
    }

    /// The links `slot` takes among `found` (best first) by the heuristic; it reads the
    /// rows only, not the graph.
    pub(super) fn choose(&self, slot: u32, found: &[Near]) -> Vec<u32> {
        let candidates: Vec<Near> = found
            .iter()
            .filter(|n| n.slot != slot && !self.deleted[n.slot as usize])
            .copied()
            .collect();
        self.select(&candidates, self.params.m)
    }

    /// Gives `slot` the links `chosen` on `level`, and them a link back to it; a list
    /// that overflows is shrunk with the heuristic.
    pub(super) fn link(&mut self, slot: u32, chosen: &[u32], level: usize) {
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
    pub(super) fn append(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) -> u32 {
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
    pub(super) fn insert(&mut self, slot: u32) {
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
    pub(super) fn link_down(&mut self, slot: u32, level: usize, top: usize) {
        let found = self.find(slot, level, top);
        for (lc, found) in found.iter().enumerate().rev() {
            self.connect(slot, found, lc);
        }
    }

    /// The walk half of [`Hnsw::link_down`], which reads the graph only: for each layer
    /// from 0 to `min(level, top)`, the efConstruction nodes closest to `slot`'s row,
    /// best first. Linking a layer changes no other layer's lists, so walking every
    /// layer first and linking after gives the links that interleaving them would.
    pub(super) fn find(&self, slot: u32, level: usize, top: usize) -> Vec<Vec<Near>> {
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
}
