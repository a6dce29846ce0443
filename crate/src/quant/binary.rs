//! One bit a dimension, after RaBitQ (Gao & Long, SIGMOD 2024).
//!
//! A row `o_r` is centred on the collection's centroid `c`, rotated by a random
//! orthogonal `T`, and kept as the signs of the rotated vector, packed 64 to a word,
//! with three factors. For `r = o_r - c` and `o = r / |r|`, the code stands for the
//! unit vector `x̄ = (2b - 1) / √D` in rotated space, and RaBitQ's estimator of
//! `⟨o, q⟩` is `⟨x̄, Tq⟩ / ⟨x̄, To⟩`: unbiased, with an error whose spread is
//! `√(1 - a²) / a / √(D - 1)` (`a = ⟨x̄, To⟩`, paper §3.2); the bound allows `ε0 = 3` of
//! those, which under 1% of estimates exceed (the test measures it). The paper's 1.9
//! (about 3% exceed, a Gaussian's one-sided tail) cost recall here: on 384-d MiniLM
//! embeddings, re-ranking 200 candidates pruned by it found 0.997 of the top 10, by
//! ε0 = 3 0.9994, unpruned 0.9998. Every metric's key is then an affine function of
//! `⟨r, q_r - c⟩`, which is `|r| / a · ⟨x̄, T(q_r - c)⟩`:
//! dot and cosine `⟨r, q - c⟩ + ⟨r, c⟩ + ⟨c, q⟩`, Euclidean
//! `-(|r|² + |q - c|² - 2⟨r, q - c⟩)`. So a slot keeps `|r| / a`, the bound's
//! `|r| √(1 - a²) / a · ε0 / √(D - 1)`, and its metric's constant (`⟨r, c⟩` or `-|r|²`):
//! D/8 bytes and 12 more a row.
//!
//! The rotation is structured, not a dense D x D matrix: rounds of random sign flips
//! and a fast Walsh-Hadamard transform, each orthogonal. D is the dimension rounded up
//! to whole words; when that is not a power of two (384), each round transforms the
//! first and the last power-of-two block (256 of 384), which overlap, so every
//! coordinate mixes with every other within two rounds. The signs come from a seed, so
//! a rebuild reproduces the codes.
//!
//! The query side: `⟨b, q'⟩` of the bits with the rotated query `q'`, as RaBitQ's
//! fast scan does it. For each nibble (4 bits) of a code, a table of 16 bytes gives
//! the sum of the values of `q'` that each nibble value selects, less the table's
//! least, in steps of one width for all tables, rounded; a code's sum is the sum of
//! its nibbles' entries, which [`kernels::nibble_keys`] takes for 16 codes at once
//! (a swizzle looks up 16 bytes an instruction). So the codes are kept in blocks of
//! 16, byte `p` of every code of a block side by side. The rounding moves a sum by at
//! most half a step a nibble; the bound adds that to the code's error. In Chromium
//! this scanned 10k codes of 384 bits several times faster than the exact form it
//! replaced, a table of each byte's 256 sums in f32 (48 lookups a code).

use super::{write_f32s, Reader};
use crate::error::Result;
use crate::kernels;
use crate::metric::Metric;

/// RaBitQ's confidence parameter: how many spreads of the estimator's error the bound
/// allows.
const EPS0: f32 = 3.0;
/// Rounds of sign flips and transforms in the rotation.
const ROUNDS: usize = 4;

/// Codes a block holds: one [`kernels::nibble_keys`].
const LANES: usize = kernels::NIBBLE_LANES;

pub struct Binary {
    metric: Metric,
    seed: u64,
    centroid: Vec<f32>,
    rotation: Rotation,
    /// Words a code.
    words: usize,
    /// The codes by blocks of [`LANES`] slots: in block `b`, byte `p * LANES + l` is
    /// byte `p` (little-endian) of slot `b * LANES + l`'s code. A last block's unused
    /// lanes are zero.
    blocks: Vec<u8>,
    /// Per block of [`LANES`] slots, as the codes are: each slot's factors.
    factors: Vec<Factors>,
    /// Slots held.
    slots: usize,
}

/// A block's factors, each for all its lanes side by side, so that a block's keys are
/// computed a vector at a time: per slot `|r| / a`, the error bound's scale, the
/// metric's constant. A last block's unused lanes are zero.
#[derive(Clone, Copy, Default)]
struct Factors {
    scale: [f32; LANES],
    err: [f32; LANES],
    add: [f32; LANES],
}

impl Factors {
    fn get(&self, lane: usize) -> [f32; 3] {
        [self.scale[lane], self.err[lane], self.add[lane]]
    }

    fn set(&mut self, lane: usize, [scale, err, add]: [f32; 3]) {
        (self.scale[lane], self.err[lane], self.add[lane]) = (scale, err, add);
    }
}

/// A query rotated for the codes.
pub struct Query {
    /// Per nibble of a code, the sum of the rotated query's values each of the 16
    /// nibble values selects, less the least of them, in steps, rounded.
    luts: Vec<[u8; 16]>,
    tables: kernels::NibbleTables,
    /// What turns a slot's sum of table entries, with its factors, into its key and
    /// bound (see [`Binary::query`]).
    terms: kernels::KeyTerms,
}

/// A rotated query's nibble tables ([`Query::luts`]) and how a code's sum of their
/// entries maps back: `step · entries + base`, within `slack` (half a step a nibble).
struct Tables {
    luts: Vec<[u8; 16]>,
    step: f32,
    base: f32,
    slack: f32,
}

impl Tables {
    fn new(y: &[f32]) -> Self {
        // A nibble's table picks a subset of its four values, so its least entry is the
        // sum of the negative ones and its width the sum of their magnitudes: no entry
        // needs scanning for them. Comparisons, not `f32::min`, which wasm builds call
        // `fminf` for.
        let least = |vals: &[f32]| vals.iter().map(|&v| if v < 0.0 { v } else { 0.0 }).sum::<f32>();
        let width = y
            .chunks_exact(4)
            .map(|vals| vals.iter().map(|v| v.abs()).sum::<f32>())
            .fold(0f32, |w, x| if x > w { x } else { w });
        let step = if width > 0.0 { width / 255.0 } else { f32::MIN_POSITIVE };
        let per_step = 1.0 / step;
        let mut base = 0.0;
        let luts = y
            .chunks_exact(4)
            .map(|vals| {
                let low = least(vals);
                base += low;
                // Each nibble value's sum is a smaller one's plus its highest bit's value.
                let mut t = [0f32; 16];
                for v in 1..16usize {
                    let top = usize::BITS - 1 - v.leading_zeros();
                    t[v] = t[v & !(1 << top)] + vals[top as usize];
                }
                // Rounded by adding a half and truncating (`f32::round` is a library call
                // on baseline x86-64); a sum a rounding below the least saturates to 0.
                t.map(|x| (((x - low) * per_step + 0.5) as u32).min(255) as u8)
            })
            .collect();
        Tables {
            luts,
            step,
            base,
            slack: (y.len() / 4) as f32 * step / 2.0,
        }
    }
}

/// The sum of a code's nibbles' entries in `luts`, one code at a time, as
/// [`kernels::nibble_keys`] sums each code of a block.
fn entries(luts: &[[u8; 16]], bytes: impl Iterator<Item = u8>) -> u32 {
    bytes
        .enumerate()
        .map(|(p, byte)| luts[2 * p][(byte & 15) as usize] as u32 + luts[2 * p + 1][(byte >> 4) as usize] as u32)
        .sum()
}

impl Binary {
    pub fn train<'r>(dim: usize, metric: Metric, seed: u64, rows: impl Iterator<Item = &'r [f32]>) -> Self {
        let mut sum = vec![0f64; dim];
        let mut n = 0usize;
        for row in rows {
            sum.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
            n += 1;
        }
        let centroid = sum.iter().map(|s| (s / n.max(1) as f64) as f32).collect();
        Self::with(dim, metric, seed, centroid)
    }

    fn with(dim: usize, metric: Metric, seed: u64, centroid: Vec<f32>) -> Self {
        let padded = dim.div_ceil(64) * 64;
        Binary {
            metric,
            seed,
            centroid,
            rotation: Rotation::new(padded, seed),
            words: padded / 64,
            blocks: Vec::new(),
            factors: Vec::new(),
            slots: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots
    }

    pub fn bytes_per_slot(&self) -> usize {
        self.code_bytes() + 12
    }

    fn code_bytes(&self) -> usize {
        self.words * 8
    }

    /// Where byte `p` of `slot`'s code lies in `blocks`.
    fn at(&self, slot: usize, p: usize) -> usize {
        (slot / LANES) * LANES * self.code_bytes() + p * LANES + slot % LANES
    }

    fn set_code(&mut self, slot: usize, bits: &[u64]) {
        for (p, byte) in bits.iter().flat_map(|w| w.to_le_bytes()).enumerate() {
            let at = self.at(slot, p);
            self.blocks[at] = byte;
        }
    }

    /// `slot`'s code as words, as [`Binary::encode`] made it.
    fn code(&self, slot: usize) -> Vec<u64> {
        let bytes: Vec<u8> = (0..self.code_bytes()).map(|p| self.blocks[self.at(slot, p)]).collect();
        bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect()
    }

    /// `v - c`, padded with zeros and rotated.
    fn rotated(&self, v: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; self.words * 64];
        y.iter_mut()
            .zip(v.iter().zip(&self.centroid))
            .for_each(|(y, (x, c))| *y = x - c);
        self.rotation.apply(&mut y);
        y
    }

    fn encode(&self, v: &[f32], bits: &mut [u64]) -> [f32; 3] {
        let r: Vec<f32> = v.iter().zip(&self.centroid).map(|(x, c)| x - c).collect();
        let rr = kernels::dot(&r, &r);
        let add = match self.metric {
            Metric::Euclidean => -rr,
            _ => kernels::dot(&r, &self.centroid),
        };
        let norm = rr.sqrt();
        bits.fill(0);
        if norm == 0.0 {
            // The centroid itself: the constant alone is its exact key's row part.
            return [0.0, 0.0, add];
        }
        let y = self.rotated(v);
        for (i, &x) in y.iter().enumerate() {
            bits[i / 64] |= ((x > 0.0) as u64) << (i % 64);
        }
        let d = y.len() as f32;
        let a = (y.iter().map(|x| x.abs()).sum::<f32>() / (norm * d.sqrt())).min(1.0);
        let err = norm * (1.0 - a * a).max(0.0).sqrt() / a * EPS0 / (d - 1.0).sqrt();
        [norm / a, err, add]
    }

    pub fn push(&mut self, v: &[f32]) {
        let slot = self.len();
        if slot.is_multiple_of(LANES) {
            self.blocks.resize(self.blocks.len() + LANES * self.code_bytes(), 0);
            self.factors.push(Factors::default());
        }
        self.slots += 1;
        self.replace(slot, v);
    }

    pub fn replace(&mut self, slot: usize, v: &[f32]) {
        let mut bits = vec![0u64; self.words];
        let f = self.encode(v, &mut bits);
        self.factors[slot / LANES].set(slot % LANES, f);
        self.set_code(slot, &bits);
    }

    pub fn swap_remove(&mut self, slot: usize) {
        let last = self.len() - 1;
        if slot != last {
            let code = self.code(last);
            self.set_code(slot, &code);
            let f = self.factors[last / LANES].get(last % LANES);
            self.factors[slot / LANES].set(slot % LANES, f);
        }
        self.set_code(last, &vec![0; self.words]);
        self.factors[last / LANES].set(last % LANES, [0.0; 3]);
        if last.is_multiple_of(LANES) {
            self.blocks.truncate(self.blocks.len() - LANES * self.code_bytes());
            self.factors.pop();
        }
        self.slots -= 1;
    }

    pub fn query(&self, q: &[f32]) -> Query {
        let y = self.rotated(q);
        let Tables {
            luts,
            step,
            base,
            slack,
        } = Tables::new(&y);
        let inv_sqrt_d = 1.0 / (y.len() as f32).sqrt();
        // `|q - c|²`, whose root scales each slot's error bound; the query's part of
        // the metric's constant, `⟨c, q⟩` or `-|q - c|²`; and how `⟨r, q - c⟩` enters
        // the key, once for dot and cosine and twice for Euclidean.
        let (norm2, shift, coef) = {
            let qc: Vec<f32> = q.iter().zip(&self.centroid).map(|(x, c)| x - c).collect();
            let n2 = kernels::dot(&qc, &qc);
            match self.metric {
                Metric::Euclidean => (n2, -n2, 2.0),
                _ => (n2, kernels::dot(&self.centroid, q), 1.0),
            }
        };
        // A code's sum `step · entries + base` makes `⟨x̄, q'⟩ = (2 · sum - Σ q') / √D`;
        // a slot's key is `add + shift + coef · scale · ⟨x̄, q'⟩`, and its bound adds
        // the code's error and the tables' rounding carried through `⟨x̄, q'⟩`.
        let sum: f32 = y.iter().sum();
        Query {
            tables: kernels::NibbleTables::new(&luts),
            luts,
            terms: kernels::KeyTerms {
                slope: coef * 2.0 * step * inv_sqrt_d,
                offset: coef * (2.0 * base - sum) * inv_sqrt_d,
                shift,
                per_err: coef * norm2.sqrt(),
                per_scale: coef * 2.0 * slack * inv_sqrt_d,
            },
        }
    }

    /// `slot`'s code's bytes, in order.
    fn bytes(&self, slot: usize) -> impl Iterator<Item = u8> + '_ {
        (0..self.code_bytes()).map(move |p| self.blocks[self.at(slot, p)])
    }

    /// [`Binary::scan`]'s estimate of one slot: its approximate key and the bound on
    /// its exact key.
    pub fn key(&self, q: &Query, slot: usize) -> (f32, f32) {
        let [scale, err, add] = self.factors[slot / LANES].get(slot % LANES);
        q.terms.key(entries(&q.luts, self.bytes(slot)), scale, err, add)
    }

    /// Calls `f(slot, key, bound)` for the slots, in order, with its approximate key and
    /// the bound on its exact key, sixteen codes a kernel call. `f` returns the key a
    /// later slot must beat to matter to it (a shortlist's floor; `-inf` for every
    /// slot): a block of sixteen with no key above it is skipped whole.
    pub fn scan(&self, q: &Query, mut f: impl FnMut(usize, f32, f32) -> f32) {
        let block_bytes = LANES * self.code_bytes();
        let mut floor = f32::NEG_INFINITY;
        for (b, (block, factors)) in self.blocks.chunks_exact(block_bytes).zip(&self.factors).enumerate() {
            let first = b * LANES;
            let (keys, bounds) =
                kernels::nibble_keys(&q.tables, block, &q.terms, [&factors.scale, &factors.err, &factors.add]);
            if !kernels::any_above(&keys, floor) {
                continue;
            }
            for lane in 0..LANES.min(self.len() - first) {
                floor = f(first + lane, keys[lane], bounds[lane]);
            }
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed.to_le_bytes());
        write_f32s(out, &self.centroid);
        for slot in 0..self.len() {
            for w in self.code(slot) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        let factors: Vec<[f32; 3]> = (0..self.len())
            .map(|s| self.factors[s / LANES].get(s % LANES))
            .collect();
        write_f32s(out, bytemuck::cast_slice(&factors));
    }

    pub fn read(dim: usize, metric: Metric, n: usize, r: &mut Reader) -> Result<Self> {
        let seed = r.u64()?;
        let centroid = r.f32s(dim)?;
        let mut b = Self::with(dim, metric, seed, centroid);
        let bits = r.u64s(n * b.words)?;
        b.blocks = vec![0; n.div_ceil(LANES) * LANES * b.code_bytes()];
        for (slot, code) in bits.chunks_exact(b.words).enumerate() {
            b.set_code(slot, code);
        }
        b.factors = vec![Factors::default(); n.div_ceil(LANES)];
        for (slot, f) in r.f32s(n * 3)?.chunks_exact(3).enumerate() {
            b.factors[slot / LANES].set(slot % LANES, [f[0], f[1], f[2]]);
        }
        b.slots = n;
        Ok(b)
    }

    /// `⟨b, q'⟩` of `slot`'s code two ways: exactly, from the rotated query, and from
    /// the tables the scan reads: for the tests to weigh the rounding against its
    /// allowance, [`Tables::slack`] (returned too).
    #[cfg(test)]
    pub fn query_forms(&self, q: &[f32]) -> (impl Fn(usize) -> f32 + '_, impl Fn(usize) -> f32 + '_, f32) {
        let y = self.rotated(q);
        let t = Tables::new(&y);
        let slack = t.slack;
        let exact = move |slot: usize| {
            let code = self.code(slot);
            (0..y.len())
                .filter(|&i| code[i / 64] >> (i % 64) & 1 == 1)
                .map(|i| y[i])
                .sum()
        };
        let tables = move |slot: usize| t.step * entries(&t.luts, self.bytes(slot)) as f32 + t.base;
        (exact, tables, slack)
    }
}

/// A random orthogonal transform of `d` coordinates (a multiple of 64): rounds of sign
/// flips and normalized Walsh-Hadamard transforms, seeded.
struct Rotation {
    d: usize,
    /// The largest power of two not above `d`: the block a transform covers.
    block: usize,
    /// Per round, `d` signs before the first block's transform and `d` before the
    /// last's.
    signs: Vec<f32>,
}

impl Rotation {
    fn new(d: usize, seed: u64) -> Self {
        let block = 1 << (usize::BITS - 1 - d.leading_zeros());
        let mut state = seed;
        let signs = (0..ROUNDS * 2 * d)
            .map(|_| if splitmix64(&mut state) & 1 == 0 { 1.0 } else { -1.0 })
            .collect();
        Rotation { d, block, signs }
    }

    fn apply(&self, y: &mut [f32]) {
        debug_assert_eq!(y.len(), self.d);
        let scale = 1.0 / (self.block as f32).sqrt();
        for round in self.signs.chunks_exact(2 * self.d) {
            let (first, last) = round.split_at(self.d);
            y.iter_mut().zip(first).for_each(|(x, s)| *x *= s);
            kernels::fwht(&mut y[..self.block], scale);
            if self.block < self.d {
                y.iter_mut().zip(last).for_each(|(x, s)| *x *= s);
                let from = self.d - self.block;
                kernels::fwht(&mut y[from..], scale);
            }
        }
    }
}

/// SplitMix64: a seeded stream of well-mixed words, the same on every platform.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
pub fn rotate_for_test(d: usize, seed: u64, y: &mut [f32]) {
    Rotation::new(d, seed).apply(y);
}
