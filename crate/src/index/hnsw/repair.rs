//! Repairs after deletes and updates: hnswlib's `updatePoint` for a slot whose row
//! changed, and a rebuild from the live rows once a third of the slots are deleted.

use super::*;

impl Hnsw {
    /// hnswlib's `updatePoint`: the node in `slot` has a new vector (an update, or a
    /// deleted slot taken by a new row); its neighbours choose their links again among
    /// their two-hop neighbourhood, then it finds its own from the entry point.
    pub(super) fn relink(&mut self, slot: u32) {
        if self.rows.live() == 1 {
            // The only row: it is the entry point, and has nothing to link to.
            self.entry = Some(slot);
            return;
        }
        let level = self.levels[slot as usize] as usize;
        for lc in 0..=level {
            let one_hop = self.links(slot, lc).to_vec();
            if one_hop.is_empty() {
                continue;
            }
            let mut around = one_hop.clone();
            around.push(slot);
            for &n in &one_hop {
                around.extend_from_slice(self.links(n, lc));
            }
            around.sort_unstable();
            around.dedup();
            for &n in &one_hop {
                let base = self.space.probe_slot(&self.rows, n);
                let mut candidates: Vec<Near> = around
                    .iter()
                    .filter(|&&s| s != n && !self.deleted[s as usize])
                    .map(|&s| self.near(&base, s))
                    .collect();
                candidates.sort_unstable_by(|a, b| b.cmp(a));
                candidates.truncate(self.params.ef_construction);
                let chosen = self.select(&candidates, self.m_max(lc));
                self.set_links(n, lc, &chosen);
            }
        }
        let entry = self.entry.expect("a live row besides this one");
        let top = self.levels[entry as usize] as usize;
        self.link_down(slot, level, top);
        if level > top {
            // A taken slot can stand above the entry point, which was chosen again when
            // the old one was deleted: its links up there led to deleted nodes.
            for lc in top + 1..=level {
                self.set_links(slot, lc, &[]);
            }
            self.entry = Some(slot);
        }
    }

    /// Builds the graph again from the live rows alone, after many deletes.
    ///
    /// Reusing a deleted slot repairs its old neighbourhood over two hops, several times
    /// the distance computations of a fresh insert; when a third of the slots are
    /// deleted (a collection spread over the workers loses half its rows at once), one
    /// rebuild costs less than the repairs would, and the walks stop wading through
    /// waypoints. Paid once per a third of the slots deleted, so amortised per delete.
    pub(super) fn compact(&mut self) {
        let live: Vec<(Id, Vec<f32>, Option<Metadata>)> = (0..self.rows.slots())
            .filter(|&s| !self.deleted[s])
            .map(|s| {
                (
                    self.rows.ids()[s].clone(),
                    self.rows.row(s).to_vec(),
                    self.rows.metadata(s).cloned(),
                )
            })
            .collect();
        let rng = self.rng;
        *self = Hnsw::new(self.rows.dim(), self.metric, self.params, self.space.quantization());
        // The level draws go on where they were, so a rebuild draws fresh levels.
        self.rng = rng;
        self.reserve(live.len());
        for (id, vector, metadata) in live {
            self.upsert(&id, &vector, metadata);
        }
    }
}
