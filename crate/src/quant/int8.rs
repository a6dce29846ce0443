//! Scalar quantization: one byte a dimension, on ranges learnt per dimension.
//!
//! Per-dimension min/max rather than one symmetric scale for all dimensions: a unit
//! embedding's dimensions do not share one range. In 20,000 MiniLM code embeddings the
//! median dimension spans 0.32, the widest 0.43, while a symmetric scale must cover
//! ±0.26 (0.52) for every dimension, and two dimensions are always near zero: a
//! per-dimension step is about 1.6x finer for the typical dimension, so its rounding
//! error is too. The price is two f32s a dimension for the collection, and a clamp for
//! later rows outside the learnt range, which [`super::Codes::stale`] bounds by asking
//! for a rebuild once the rows have doubled.
//!
//! The distance is asymmetric in what is stored (rows as bytes) but integer in what is
//! computed: the query, scaled per dimension once, is rounded to i8 on its own largest
//! value, and a row's key is an integer dot product of those with its bytes, summed in
//! i32 (the shape simd128's `i32x4_dot_i16x8` computes eight products at a time, and
//! which LLVM vectorises natively). Keeping the query f32 instead converts every byte to
//! a float: natively that scan took twice as long for a third of the error, and the
//! error left is far below what re-ranking 4k candidates absorbs (the `query_forms`
//! test weighs the two).

use super::{write_f32s, Reader};
use crate::error::Result;
use crate::metric::Metric;

pub struct Int8 {
    dim: usize,
    metric: Metric,
    /// Per dimension, the value of code 0 and the step between codes.
    lo: Vec<f32>,
    step: Vec<f32>,
    /// `1 / step`, or 0 for a dimension that held one value (every code 0).
    inv: Vec<f32>,
    codes: Vec<u8>,
    /// Each slot's squared norm, exact, for Euclidean only.
    norms: Vec<f32>,
}

/// A query scaled for the codes and rounded to i8.
pub struct Query {
    /// `q[d] * step[d] / scale`, rounded: within ±127, held as i16 for the products.
    w: Vec<i16>,
    scale: f32,
    /// `q · lo`: the part of every row's dot product its codes do not carry.
    base: f32,
    /// `|q|²`, for Euclidean.
    qq: f32,
}

impl Int8 {
    pub fn train<'r>(dim: usize, metric: Metric, rows: impl Iterator<Item = &'r [f32]>) -> Self {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for row in rows {
            for ((l, h), &x) in lo.iter_mut().zip(&mut hi).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        // With no rows yet, the range of a unit vector's values; stale() asks for a
        // rebuild at the first row.
        if lo[0] > hi[0] {
            lo.fill(-1.0);
            hi.fill(1.0);
        }
        let step: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| (h - l) / 255.0).collect();
        Self::with(dim, metric, lo, step)
    }

    fn with(dim: usize, metric: Metric, lo: Vec<f32>, step: Vec<f32>) -> Self {
        let inv = step.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 }).collect();
        Int8 {
            dim,
            metric,
            lo,
            step,
            inv,
            codes: Vec::new(),
            norms: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.codes.len() / self.dim
    }

    pub fn bytes_per_slot(&self) -> usize {
        self.dim + if self.metric == Metric::Euclidean { 4 } else { 0 }
    }

    pub fn push(&mut self, v: &[f32]) {
        let at = self.codes.len();
        self.codes.resize(at + self.dim, 0);
        encode(&self.lo, &self.inv, v, &mut self.codes[at..]);
        if self.metric == Metric::Euclidean {
            self.norms.push(crate::kernels::dot(v, v));
        }
    }

    pub fn replace(&mut self, slot: usize, v: &[f32]) {
        encode(
            &self.lo,
            &self.inv,
            v,
            &mut self.codes[slot * self.dim..(slot + 1) * self.dim],
        );
        if self.metric == Metric::Euclidean {
            self.norms[slot] = crate::kernels::dot(v, v);
        }
    }

    pub fn swap_remove(&mut self, slot: usize) {
        let (dim, last) = (self.dim, self.len() - 1);
        if slot != last {
            self.codes.copy_within(last * dim.., slot * dim);
        }
        self.codes.truncate(last * dim);
        if self.metric == Metric::Euclidean {
            self.norms.swap_remove(slot);
        }
    }

    /// A graph prepares a query for every node it links, so this is two passes with no
    /// allocation but the weights', and rounds without `f32::round` (a library call
    /// on baseline x86-64 and in wasm).
    pub fn query(&self, q: &[f32]) -> Query {
        // A comparison, not `f32::max`, whose NaN rule wasm's `f32.max` lacks: LLVM
        // makes that a call to `fmaxf` a dimension (3% of a build). The rows are finite.
        let top = q
            .iter()
            .zip(&self.step)
            .map(|(x, s)| (x * s).abs())
            .fold(0f32, |m, v| if v > m { v } else { m });
        let scale = if top > 0.0 { top / 127.0 } else { 1.0 };
        let inv = 1.0 / scale;
        Query {
            // Half away from zero, as f32::round; the sum stays within ±127.5, so the
            // saturating conversion to i32 is exact and the cast to i16 loses nothing.
            w: q.iter()
                .zip(&self.step)
                .map(|(x, s)| {
                    let v = x * s * inv;
                    (v + 0.5f32.copysign(v)) as i32 as i16
                })
                .collect(),
            scale,
            base: crate::kernels::dot(q, &self.lo),
            qq: if self.metric == Metric::Euclidean {
                crate::kernels::dot(q, q)
            } else {
                0.0
            },
        }
    }

    #[inline(always)]
    pub fn code(&self, slot: usize) -> &[u8] {
        &self.codes[slot * self.dim..(slot + 1) * self.dim]
    }

    #[inline]
    pub fn key(&self, q: &Query, slot: usize) -> f32 {
        let dot = q.base + q.scale * crate::kernels::dot_codes(&q.w, self.code(slot)) as f32;
        match self.metric {
            Metric::Euclidean => -(self.norms[slot] - 2.0 * dot + q.qq),
            _ => dot,
        }
    }

    /// [`Int8::key`] of two slots, sharing the query's loads.
    #[inline]
    pub fn key_pair(&self, q: &Query, [a, b]: [usize; 2]) -> [f32; 2] {
        let dots = crate::kernels::dot_codes_pair(&q.w, [self.code(a), self.code(b)]);
        let mut keys = [0.0; 2];
        for ((key, dot), slot) in keys.iter_mut().zip(dots).zip([a, b]) {
            let dot = q.base + q.scale * dot as f32;
            *key = match self.metric {
                Metric::Euclidean => -(self.norms[slot] - 2.0 * dot + q.qq),
                _ => dot,
            };
        }
        keys
    }

    /// The key with the query kept f32: the alternative the module doc weighs, kept
    /// for the test that compares them.
    #[cfg(test)]
    pub fn key_f32(&self, q: &[f32]) -> impl Fn(usize) -> f32 + '_ {
        let w: Vec<f32> = q.iter().zip(&self.step).map(|(x, s)| x * s).collect();
        let (base, qq) = (crate::kernels::dot(q, &self.lo), crate::kernels::dot(q, q));
        move |slot| {
            let dot = base + dot_u8(&w, self.code(slot));
            match self.metric {
                Metric::Euclidean => -(self.norms[slot] - 2.0 * dot + qq),
                _ => dot,
            }
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        write_f32s(out, &self.lo);
        write_f32s(out, &self.step);
        out.extend_from_slice(&self.codes);
        write_f32s(out, &self.norms);
    }

    pub fn read(dim: usize, metric: Metric, n: usize, r: &mut Reader) -> Result<Self> {
        let lo = r.f32s(dim)?;
        let step = r.f32s(dim)?;
        let mut int8 = Self::with(dim, metric, lo, step);
        int8.codes = r.take(n * dim)?.to_vec();
        int8.norms = r.f32s(if metric == Metric::Euclidean { n } else { 0 })?;
        Ok(int8)
    }
}

/// Codes of `v`: the nearest level, values outside the learnt range clamped to it.
fn encode(lo: &[f32], inv: &[f32], v: &[f32], out: &mut [u8]) {
    for (((c, &x), &l), &i) in out.iter_mut().zip(v).zip(lo).zip(inv) {
        *c = ((x - l) * i).round().clamp(0.0, 255.0) as u8;
    }
}

/// Accumulators, as the f32 kernels keep (kernels/src/scalar.rs).
#[cfg(test)]
const LANES: usize = if cfg!(target_arch = "wasm32") { 8 } else { 16 };

#[cfg(test)]
#[inline(always)]
fn dot_u8(w: &[f32], c: &[u8]) -> f32 {
    let mut acc = [0f32; LANES];
    let (wc, cc) = (w.chunks_exact(LANES), c.chunks_exact(LANES));
    let tail: f32 = wc
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(x, &y)| x * y as f32)
        .sum();
    for (x, y) in wc.zip(cc) {
        let (x, y): (&[f32; LANES], &[u8; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..LANES {
            acc[l] += x[l] * y[l] as f32;
        }
    }
    acc.iter().sum::<f32>() + tail
}
