//! `y = x W^T + b` for a layer whose `W` is fixed, in 16-bit integers: `W` is quantized
//! once, at load, per output, and each call quantizes each row of `x`; the products
//! sum exactly in i32 and are scaled back to f32 with the bias.
//!
//! Why integers: simd128's `i32x4.dot_i16x8_s` does 8 multiply-adds in one instruction
//! where `f32x4` does 4 (4 fused, with relaxed SIMD), and x64 issues it as one
//! `pmaddwd`, so the same two cores run the layers, which hold almost all the work,
//! about twice as fast. Why 16 bits and not 8: per-row scales over BERT's outlier
//! dimensions leave 8-bit inputs too coarse for cosine 0.999 with the reference;
//! 11 to 12 bits are ample (see [`levels`]). Integer sums are exact, so the simd128
//! and plain builds give the same bits.
//!
//! Layout: `W` is packed into panels of 8 outputs; within a panel, for each pair of
//! inputs `(2i, 2i+1)`, the 8 outputs' two weights side by side (16 values), so one
//! splatted pair of inputs against two such vectors gives 8 outputs' partial sums.
//! The kernel takes 4 rows of `x` against one panel: 8 i32x4 accumulators, 2 weight
//! vectors and a splat, which fit x64's 16 vector registers. Rows are taken 32 at a
//! time, so a chunk of `x` stays in cache while every panel passes over it.

/// Outputs a panel holds.
pub const PANEL: usize = 8;
/// Rows of `x` a kernel call takes.
const ROWS: usize = 4;
/// Rows of `x` kept in cache while the panels pass over them.
const CHUNK: usize = 32;

/// A fully connected layer with its weights quantized and packed into panels.
pub struct Linear {
    panels: Vec<i16>,
    /// Per output: what one unit of its quantized weights is worth.
    scales: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    /// `inputs` rounded up to even: inputs are taken in pairs.
    padded: usize,
    outputs: usize,
    levels: f32,
}

/// The largest magnitude a quantized value takes for `inputs`-long dot products: the
/// largest with `inputs * levels^2` within i32, so no sum can overflow (2,364 for 384
/// inputs, 1,182 for 1,536).
fn levels(inputs: usize) -> f32 {
    (i32::MAX as f64 / inputs.max(1) as f64)
        .sqrt()
        .floor()
        .min(i16::MAX as f64) as f32
}

/// `values` to integers in `[-levels, levels]`, into `out`; what one unit is worth.
fn quantize(values: &[f32], levels: f32, out: &mut [i16]) -> f32 {
    // Compares rather than f32::max, which is a call per value on wasm32; and
    // through i32, which simd128 converts four at a time.
    let max = values.iter().fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    if max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let inv = levels / max;
    for (q, v) in out.iter_mut().zip(values) {
        *q = (v * inv).round_ties_even() as i32 as i16;
    }
    max / levels
}

impl Linear {
    /// From `weight` stored `[outputs x inputs]` (as PyTorch saves it) and `bias`;
    /// `outputs` must be a multiple of [`PANEL`].
    pub fn new(weight: &[f32], bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        assert!(outputs.is_multiple_of(PANEL) && weight.len() == inputs * outputs && bias.len() == outputs);
        let padded = inputs.next_multiple_of(2);
        let levels = levels(padded);
        let mut quantized = vec![0i16; outputs * padded];
        let scales = weight
            .chunks_exact(inputs)
            .zip(quantized.chunks_exact_mut(padded))
            .map(|(w, q)| quantize(w, levels, &mut q[..inputs]))
            .collect();
        let mut panels = Vec::with_capacity(quantized.len());
        for p in 0..outputs / PANEL {
            for pair in (0..padded).step_by(2) {
                for j in 0..PANEL {
                    let row = &quantized[(p * PANEL + j) * padded..];
                    panels.extend([row[pair], row[pair + 1]]);
                }
            }
        }
        Linear {
            panels,
            scales,
            bias,
            inputs,
            padded,
            outputs,
            levels,
        }
    }

    /// `rows` rows of `x` (each `inputs` wide) through the layer, into `y`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut Vec<f32>) {
        let (k, kp, n) = (self.inputs, self.padded, self.outputs);
        assert_eq!(x.len(), rows * k);
        let mut xq = vec![0i16; rows * kp];
        let row_scales: Vec<f32> = x
            .chunks_exact(k)
            .zip(xq.chunks_exact_mut(kp))
            .map(|(x, q)| quantize(x, self.levels, &mut q[..k]))
            .collect();
        y.clear();
        y.resize(rows * n, 0.0);
        for start in (0..rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(rows);
            for (p, panel) in self.panels.chunks_exact(kp * PANEL).enumerate() {
                let o = p * PANEL;
                let mut put = |r: usize, sums: &[i32; PANEL]| {
                    let out = &mut y[r * n + o..][..PANEL];
                    let scales = &self.scales[o..][..PANEL];
                    for (((out, s), w), b) in out.iter_mut().zip(sums).zip(scales).zip(&self.bias[o..]) {
                        *out = *s as f32 * (row_scales[r] * w) + b;
                    }
                };
                let mut r = start;
                while r + ROWS <= end {
                    let sums = kernel::<ROWS>(&xq[r * kp..(r + ROWS) * kp], kp, panel);
                    for (i, s) in sums.iter().enumerate() {
                        put(r + i, s);
                    }
                    r += ROWS;
                }
                for r in r..end {
                    let [s] = kernel::<1>(&xq[r * kp..(r + 1) * kp], kp, panel);
                    put(r, &s);
                }
            }
        }
    }
}

/// `R` rows of `x` (`R x k`, `k` even) times one panel: each row's 8 sums.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn kernel<const R: usize>(x: &[i16], k: usize, panel: &[i16]) -> [[i32; PANEL]; R] {
    let mut acc = [[0i32; PANEL]; R];
    for (pair, w) in panel.chunks_exact(2 * PANEL).enumerate() {
        for (r, a) in acc.iter_mut().enumerate() {
            let (x0, x1) = (x[r * k + 2 * pair] as i32, x[r * k + 2 * pair + 1] as i32);
            for (a, w) in a.iter_mut().zip(w.chunks_exact(2)) {
                *a += x0 * w[0] as i32 + x1 * w[1] as i32;
            }
        }
    }
    acc
}

/// The same with simd128: each row's pair of inputs splatted by one 32-bit load, and
/// `i32x4.dot_i16x8_s` against the panel's two vectors for that pair.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn kernel<const R: usize>(x: &[i16], k: usize, panel: &[i16]) -> [[i32; PANEL]; R] {
    use core::arch::wasm32::*;
    assert!(x.len() >= R * k && panel.len() == k * PANEL && k.is_multiple_of(2));
    // SAFETY: every load and store below is inside `x`, `panel` or `out`, by the
    // assert above; v128_load and v128_store need no alignment.
    unsafe {
        let mut acc = [[i32x4_splat(0); 2]; R];
        let (xp, wp) = (x.as_ptr(), panel.as_ptr());
        for pair in 0..k / 2 {
            let w0 = v128_load(wp.add(pair * 2 * PANEL) as *const v128);
            let w1 = v128_load(wp.add(pair * 2 * PANEL + PANEL) as *const v128);
            for (r, a) in acc.iter_mut().enumerate() {
                let v = v128_load32_splat(xp.add(r * k + 2 * pair) as *const u32);
                a[0] = i32x4_add(a[0], i32x4_dot_i16x8(v, w0));
                a[1] = i32x4_add(a[1], i32x4_dot_i16x8(v, w1));
            }
        }
        let mut out = [[0i32; PANEL]; R];
        for (o, a) in out.iter_mut().zip(&acc) {
            v128_store(o.as_mut_ptr() as *mut v128, a[0]);
            v128_store(o.as_mut_ptr().add(4) as *mut v128, a[1]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the rounding of 16-bit operands: the error of each of a product's terms is
    /// at most half a unit of the row's and the output's scale.
    #[test]
    fn matches_the_plain_product_for_every_row_count() {
        for (k, n) in [(19, 24), (384, 16), (1536, 8)] {
            let weight: Vec<f32> = (0..k * n).map(|i| ((i * 7919) % 113) as f32 / 50.0 - 1.0).collect();
            let bias: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
            let layer = Linear::new(&weight, bias.clone(), k, n);
            for rows in [0, 1, 3, 4, 5, 33, 70] {
                // One large input a row, as BERT's outlier dimensions are.
                let x: Vec<f32> = (0..rows * k)
                    .map(|i| {
                        if i % k == 3 {
                            20.0
                        } else {
                            ((i * 104_729) % 97) as f32 / 40.0 - 1.2
                        }
                    })
                    .collect();
                let mut y = vec![];
                layer.forward(&x, rows, &mut y);
                for r in 0..rows {
                    let row = &x[r * k..][..k];
                    for o in 0..n {
                        let w = &weight[o * k..][..k];
                        let want = bias[o] + row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>();
                        let unit =
                            |v: &[f32]| v.iter().fold(0f32, |m, v| m.max(v.abs())) / levels(k.next_multiple_of(2));
                        let (ux, uw) = (unit(row), unit(w));
                        let bound: f32 = row
                            .iter()
                            .zip(w)
                            .map(|(a, b)| (a.abs() * uw + b.abs() * ux) / 2.0 + ux * uw / 4.0)
                            .sum();
                        assert!(
                            (y[r * n + o] - want).abs() <= bound * 1.01 + 1e-4,
                            "{k} x {n}, rows {rows}: y[{r}][{o}] = {} not {want} (bound {bound})",
                            y[r * n + o]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_sum_can_overflow() {
        for k in [2, 384, 1536, 3072, 100_000] {
            let l = levels(k) as i64;
            assert!(k as i64 * l * l <= i32::MAX as i64 && l <= i16::MAX as i64, "{k}: {l}");
        }
        // The extreme: every input and weight at full magnitude, with the same sign.
        let k = 1536;
        let layer = Linear::new(&vec![-1.0; k * PANEL], vec![0.0; PANEL], k, PANEL);
        let mut y = vec![];
        layer.forward(&vec![-3.0; k], 1, &mut y);
        assert!(y.iter().all(|&v| (v - 3.0 * k as f32).abs() < 1e-2), "{y:?}");
    }
}
