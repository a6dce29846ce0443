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
//! The query side: `⟨b, q'⟩` of the bits with the rotated query `q'`. RaBitQ quantizes
//! `q'` to 4 bits and sums bit-plane popcounts; here the query stays f32 and a row's
//! sum is read from a table of the 256 partial sums of each byte's 8 query values
//! (D/8 lookups a row): exact, so the only error is the code's, which the bound
//! covers; and natively twice as fast as the popcounts, as x86-64's baseline has no
//! popcount instruction (the `query_forms` test weighs the two; wasm has
//! `i64.popcnt`, so the popcounts may yet win there).

use super::{write_f32s, Reader};
use crate::error::Result;
use crate::kernels;
use crate::metric::Metric;

/// RaBitQ's confidence parameter: how many spreads of the estimator's error the bound
/// allows.
const EPS0: f32 = 3.0;
/// Rounds of sign flips and transforms in the rotation.
const ROUNDS: usize = 4;

pub struct Binary {
    metric: Metric,
    seed: u64,
    centroid: Vec<f32>,
    rotation: Rotation,
    /// Words a code.
    words: usize,
    bits: Vec<u64>,
    /// Per slot: `|r| / a`, the error bound's scale, the metric's constant.
    factors: Vec<[f32; 3]>,
}

/// A query rotated for the codes.
pub struct Query {
    /// Per byte of a code, the sum of the rotated query's values each of the 256
    /// patterns of that byte's bits selects.
    table: Vec<f32>,
    /// `Σ q'` and `1 / √D`, which turn a table sum into `⟨x̄, q'⟩`.
    sum: f32,
    inv_sqrt_d: f32,
    /// `|q - c|`, which scales each slot's error bound.
    norm: f32,
    /// The query's part of the metric's constant: `⟨c, q⟩` or `-|q - c|²`.
    add: f32,
    /// 1 for dot and cosine, 2 for Euclidean: how `⟨r, q - c⟩` enters the key.
    coef: f32,
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
            bits: Vec::new(),
            factors: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.factors.len()
    }

    pub fn bytes_per_slot(&self) -> usize {
        self.words * 8 + 12
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
        let at = self.bits.len();
        self.bits.resize(at + self.words, 0);
        let mut bits = vec![0u64; self.words];
        let f = self.encode(v, &mut bits);
        self.bits[at..].copy_from_slice(&bits);
        self.factors.push(f);
    }

    pub fn replace(&mut self, slot: usize, v: &[f32]) {
        let mut bits = vec![0u64; self.words];
        self.factors[slot] = self.encode(v, &mut bits);
        self.bits[slot * self.words..(slot + 1) * self.words].copy_from_slice(&bits);
    }

    pub fn swap_remove(&mut self, slot: usize) {
        let (w, last) = (self.words, self.len() - 1);
        if slot != last {
            self.bits.copy_within(last * w.., slot * w);
        }
        self.bits.truncate(last * w);
        self.factors.swap_remove(slot);
    }

    pub fn query(&self, q: &[f32]) -> Query {
        let y = self.rotated(q);
        let mut table = vec![0f32; y.len() / 8 * 256];
        for (t, vals) in table.chunks_exact_mut(256).zip(y.chunks_exact(8)) {
            // Each pattern is a smaller one plus its highest bit's value.
            for bit in 0..8 {
                let (lo, hi) = t.split_at_mut(1 << bit);
                for (h, l) in hi[..1 << bit].iter_mut().zip(lo.iter()) {
                    *h = l + vals[bit];
                }
            }
        }
        let d = y.len() as f32;
        let (norm2, add, coef) = {
            let qc: Vec<f32> = q.iter().zip(&self.centroid).map(|(x, c)| x - c).collect();
            let n2 = kernels::dot(&qc, &qc);
            match self.metric {
                Metric::Euclidean => (n2, -n2, 2.0),
                _ => (n2, kernels::dot(&self.centroid, q), 1.0),
            }
        };
        Query {
            table,
            sum: y.iter().sum(),
            inv_sqrt_d: 1.0 / d.sqrt(),
            norm: norm2.sqrt(),
            add,
            coef,
        }
    }

    /// The estimated key of `slot` and its upper bound.
    #[inline]
    pub fn key(&self, q: &Query, slot: usize) -> (f32, f32) {
        let code = &self.bits[slot * self.words..(slot + 1) * self.words];
        let picked = table_sum(&q.table, code);
        let x_q = (2.0 * picked - q.sum) * q.inv_sqrt_d;
        let [scale, err, add] = self.factors[slot];
        let key = add + q.add + q.coef * scale * x_q;
        (key, key + q.coef * err * q.norm)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed.to_le_bytes());
        write_f32s(out, &self.centroid);
        for w in &self.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
        write_f32s(out, bytemuck::cast_slice(&self.factors));
    }

    pub fn read(dim: usize, metric: Metric, n: usize, r: &mut Reader) -> Result<Self> {
        let seed = r.u64()?;
        let centroid = r.f32s(dim)?;
        let mut b = Self::with(dim, metric, seed, centroid);
        b.bits = r.u64s(n * b.words)?;
        b.factors = r.f32s(n * 3)?.chunks_exact(3).map(|f| [f[0], f[1], f[2]]).collect();
        Ok(b)
    }

    /// `⟨b, q'⟩` by RaBitQ's own route: the query quantized to 4 bits, bit-plane
    /// popcounts. Kept for the test that weighs it against the table.
    #[cfg(test)]
    pub fn popcount_form(&self, q: &[f32]) -> impl Fn(usize) -> f32 + '_ {
        let y = self.rotated(q);
        let lo = y.iter().fold(f32::INFINITY, |m, &x| m.min(x));
        let hi = y.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let delta = ((hi - lo) / 15.0).max(f32::MIN_POSITIVE);
        let mut planes = vec![0u64; 4 * self.words];
        for (i, &x) in y.iter().enumerate() {
            let u = ((x - lo) / delta).round() as u64;
            for (j, plane) in planes.chunks_exact_mut(self.words).enumerate() {
                plane[i / 64] |= ((u >> j) & 1) << (i % 64);
            }
        }
        move |slot| {
            let code = &self.bits[slot * self.words..(slot + 1) * self.words];
            let mut acc = 0u32;
            let mut ones = 0u32;
            for (w, &c) in code.iter().enumerate() {
                ones += c.count_ones();
                for j in 0..4 {
                    acc += (c & planes[j * self.words + w]).count_ones() << j;
                }
            }
            delta * acc as f32 + lo * ones as f32
        }
    }

    #[cfg(test)]
    pub fn table_form(&self, q: &[f32]) -> impl Fn(usize) -> f32 + '_ {
        let query = self.query(q);
        move |slot| table_sum(&query.table, &self.bits[slot * self.words..(slot + 1) * self.words])
    }
}

/// The sum of the query values a code's bits select: one table entry a byte.
#[inline(always)]
fn table_sum(table: &[f32], code: &[u64]) -> f32 {
    let mut acc = [0f32; 4];
    for (w, tables) in code.iter().zip(table.chunks_exact(8 * 256)) {
        let bytes = w.to_le_bytes();
        for (i, b) in bytes.iter().enumerate() {
            acc[i % 4] += tables[i * 256 + *b as usize];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
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
            fwht(&mut y[..self.block], scale);
            if self.block < self.d {
                y.iter_mut().zip(last).for_each(|(x, s)| *x *= s);
                let from = self.d - self.block;
                fwht(&mut y[from..], scale);
            }
        }
    }
}

/// In-place Walsh-Hadamard transform of a power-of-two length, times `scale`.
fn fwht(y: &mut [f32], scale: f32) {
    let n = y.len();
    let mut h = 1;
    while h < n {
        for i in (0..n).step_by(2 * h) {
            let (a, b) = y[i..i + 2 * h].split_at_mut(h);
            for (x, z) in a.iter_mut().zip(b.iter_mut()) {
                let (u, v) = (*x, *z);
                *x = u + v;
                *z = u - v;
            }
        }
        h *= 2;
    }
    y.iter_mut().for_each(|x| *x *= scale);
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
