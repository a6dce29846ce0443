//! The graph as a segment keeps it: [`Hnsw`]'s own bytes, written and read back
//! without re-inserting a row.

use super::space::Space;
use super::{Hnsw, Params, MAX_LEVEL};
use crate::index::rows::Rows;
use crate::index::Parts;
use crate::metric::Metric;
use crate::quant::{Codes, Quantization};
use std::cell::RefCell;

/// First word of [`Hnsw`]'s own bytes, "HNSW" little-endian.
const MAGIC: u32 = u32::from_le_bytes(*b"HNSW");
/// Version of the own bytes' layout: 2 adds the codes a graph walks on; 1, without
/// them, is still read.
const VERSION: u32 = 2;
/// Words before the free list: magic, version, m, efConstruction, keepPruned, seed (2),
/// generator state (2), slots, entry; version 2 then the codes' length in bytes.
pub(super) const HEAD_WORDS: usize = 12;
const NO_ENTRY: u32 = u32::MAX;

impl Hnsw {
    /// The graph as [`Parts::own`] keeps it: little-endian u32 words, see
    /// [`Hnsw::restore`].
    pub(super) fn own_bytes(&self) -> Vec<u8> {
        let p = self.params;
        let mut w: Vec<u32> = vec![
            MAGIC,
            VERSION,
            p.m as u32,
            p.ef_construction.min(u32::MAX as usize) as u32,
            p.keep_pruned as u32,
            p.seed as u32,
            (p.seed >> 32) as u32,
            self.rng as u32,
            (self.rng >> 32) as u32,
            self.rows.slots() as u32,
            self.entry.unwrap_or(NO_ENTRY),
            0,
            self.free.len() as u32,
        ];
        w.extend_from_slice(&self.free);
        w.extend(self.levels.iter().map(|&l| l as u32));
        w.extend_from_slice(&self.links0);
        for list in &self.upper {
            w.extend_from_slice(list);
        }
        let codes = self.space.codes().map_or(Vec::new(), Codes::to_bytes);
        w[HEAD_WORDS - 1] = codes.len() as u32;
        let mut out = bytemuck::cast_slice(&w).to_vec();
        out.extend_from_slice(&codes);
        out
    }

    /// A graph rebuilt from the parts [`Index::parts`] gave, without inserting a row.
    ///
    /// `own` is little-endian u32 words: the magic "HNSW", the layout version (2), `M`,
    /// `efConstruction`, keepPruned (0 or 1), the seed (low word first), the level
    /// generator's state (likewise), the slots `n`, the entry point (`u32::MAX` for
    /// none), the length `c` of the codes in bytes (not in version 1), the number of
    /// deleted slots then those slots (the free list, in order), `n` levels, `n` layer-0
    /// lists of `1 + 2M` words (a count, then links, then unused room), then for each
    /// slot with a level `l > 0`, in slot order, `l` lists of `1 + M` words; then `c`
    /// bytes of codes ([`Codes::to_bytes`]). `None` for anything inconsistent in the
    /// graph: wrong lengths or version, a link out of range or to a node without that
    /// layer, an entry point that is deleted or not on the top layer, or vacant rows
    /// that are not the deleted ones. Codes are a cache of the rows: codes that are
    /// damaged or not `quant`'s are built again from the rows.
    pub fn restore(dim: usize, metric: Metric, quant: Quantization, parts: Parts) -> Option<Self> {
        let (rows, own) = Rows::restore(dim, parts)?;
        let word = |i: usize| Some(u32::from_le_bytes(own.get(4 * i..4 * i + 4)?.try_into().ok()?));
        let (magic, version) = (word(0)?, word(1)?);
        if magic != MAGIC || !(1..=VERSION).contains(&version) {
            return None;
        }
        let code_bytes = if version == 1 {
            0
        } else {
            word(HEAD_WORDS - 1)? as usize
        };
        let (graph, codes) = own.split_at_checked(own.len().checked_sub(code_bytes)?)?;
        if !graph.len().is_multiple_of(4) {
            return None;
        }
        // Copied into u32s: the bytes need not be aligned for a cast in place.
        let mut words = vec![0u32; graph.len() / 4];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words).copy_from_slice(graph);
        if version == 1 {
            // The same head without the codes' length.
            words.insert(HEAD_WORDS - 1, 0);
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u32]> {
            let got = words.get(at..at.checked_add(n)?)?;
            at += n;
            Some(got)
        };
        let head = take(HEAD_WORDS + 1)?;
        let [_, _, m, ef_construction, keep_pruned, seed_lo, seed_hi, rng_lo, rng_hi, n, entry, _, free] =
            head.try_into().ok()?;
        let (m, n) = (m as usize, n as usize);
        if !(2..=u16::MAX as usize).contains(&m) || keep_pruned > 1 {
            return None;
        }
        if ef_construction == 0 || n != rows.slots() {
            return None;
        }
        let params = Params {
            m,
            ef_construction: ef_construction as usize,
            keep_pruned: keep_pruned == 1,
            seed: seed_lo as u64 | (seed_hi as u64) << 32,
        };
        let free = take(free as usize)?.to_vec();
        let mut deleted = vec![false; n];
        for &s in &free {
            if s as usize >= n || std::mem::replace(&mut deleted[s as usize], true) {
                return None;
            }
        }
        if (0..n).any(|s| deleted[s] != rows.is_vacant(s)) {
            return None;
        }
        let levels: Vec<u8> = take(n)?
            .iter()
            .map(|&l| (l as usize <= MAX_LEVEL).then_some(l as u8))
            .collect::<Option<_>>()?;
        let links0 = take(n.checked_mul(1 + 2 * m)?)?.to_vec();
        let mut upper = Vec::with_capacity(n);
        for &l in &levels {
            upper.push(take(l as usize * (1 + m))?.to_vec());
        }
        if at != words.len() {
            return None;
        }
        let entry = match entry {
            NO_ENTRY if rows.live() == 0 => None,
            e if (e as usize) < n && !deleted[e as usize] => Some(e),
            _ => return None,
        };
        if n > 0 && rows.live() == 0 {
            return None;
        }
        let top = entry.map_or(0, |e| levels[e as usize]);
        if (0..n).any(|s| !deleted[s] && levels[s] > top) {
            return None;
        }
        let codes = (!codes.is_empty())
            .then(|| Codes::from_bytes(codes, dim, metric).ok())
            .flatten();
        let space = Space::restore(metric, quant, codes, &rows);
        let graph = Hnsw {
            metric,
            params,
            rows,
            space,
            levels,
            deleted,
            links0,
            upper,
            entry,
            free,
            rng: rng_lo as u64 | (rng_hi as u64) << 32,
            visited: RefCell::default(),
            version: super::shared::new_version(),
            mirrored: None,
        };
        for s in 0..n as u32 {
            for lc in 0..=graph.levels[s as usize] as usize {
                let (zero, range) = graph.list_range(s, lc);
                let list = if zero {
                    &graph.links0[range]
                } else {
                    &graph.upper[s as usize][range]
                };
                let count = list[0] as usize;
                if count >= list.len()
                    || list[1..1 + count]
                        .iter()
                        .any(|&e| e as usize >= n || (graph.levels[e as usize] as usize) < lc)
                {
                    return None;
                }
            }
        }
        Some(graph)
    }
}
