//! The query side of the graph: how a filtered search runs (a walk, or exact over the
//! matching rows), and the k nearest with exact keys.

use super::*;

/// Rows of a filtered search's sample: enough to tell 5% from 2% matching.
const FILTER_SAMPLE: usize = 1024;
/// Below this share of matching rows a filtered search is exact over the matches.
const EXACT_BELOW_SHARE: f64 = 0.05;
/// Below this many matching rows, likewise.
const EXACT_BELOW_ROWS: usize = 2000;

/// How one filtered search runs; see [`Hnsw::plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Walk the graph; only passing rows enter the result.
    Walk,
    /// Score the matching rows only, exactly.
    Exact,
}

impl Hnsw {
    /// How a search under `filter` runs, decided once for a batch from a fixed sample
    /// of up to 1,024 slots:
    ///
    /// - when under 5% of the sampled rows match, or the matches it implies are fewer
    ///   than 2,000, exact over the matching rows ([`Plan::Exact`]): that many scores
    ///   cost about what a graph walk does, and a walk would wade through the
    ///   non-matching majority to fill its result;
    /// - otherwise a walk over the whole graph in which only matching rows enter the
    ///   result ([`Plan::Walk`]). `ef` counts matching rows, so the walk goes on until
    ///   it holds `ef` of them: it visits about `ef` divided by the matching share, the
    ///   raise a selective filter needs, without raising `ef` itself.
    pub(super) fn plan(&self, filter: &Filter) -> Plan {
        let n = self.rows.slots();
        let draws = n.min(FILTER_SAMPLE);
        let mut state = 0x0F11_7E25;
        let (mut seen, mut pass) = (0usize, 0usize);
        for i in 0..draws {
            // Every slot once when the sample is all of them.
            let s = if draws == n {
                i
            } else {
                (splitmix(&mut state) % n as u64) as usize
            };
            if !self.deleted[s] {
                seen += 1;
                pass += filter.matches(self.rows.metadata(s)) as usize;
            }
        }
        let share = pass as f64 / seen.max(1) as f64;
        let matching = share * self.rows.live() as f64;
        if share < EXACT_BELOW_SHARE || matching < EXACT_BELOW_ROWS as f64 {
            Plan::Exact
        } else {
            Plan::Walk
        }
    }

    /// The `k` closest accepted rows to `q`, best first, ties by id, with exact keys:
    /// a walk on codes re-ranks the `ef` it found on the rows.
    pub(super) fn knn(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        plan: Plan,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Candidate> {
        let mut top = TopK::new(k, self.rows.ids());
        match plan {
            Plan::Exact => {
                for s in 0..self.rows.slots() as u32 {
                    if accept(s) {
                        top.push(Candidate {
                            key: self.space.exact(&self.rows, q, s),
                            slot: s,
                        });
                    }
                }
            }
            Plan::Walk => {
                let probe = self.space.probe(q);
                if let Some(ep) = self.descend(&probe, 0) {
                    let exact = self.space.is_exact();
                    for n in self.search_layer(&probe, ep, ef, 0, accept) {
                        let key = if exact {
                            n.key
                        } else {
                            self.space.exact(&self.rows, q, n.slot)
                        };
                        top.push(Candidate { key, slot: n.slot });
                    }
                }
            }
        }
        top.into_sorted()
    }
}
