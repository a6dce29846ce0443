//! `y = x W^T + b` for a layer whose `W` is fixed: `W` is packed once, at load, into
//! panels of 8 outputs (`k x 8` floats each, contiguous), and the product runs over
//! blocks of 4 rows of `x` against one panel at a time.
//!
//! Why not a general sgemm: a 4 x 8 block keeps 8 accumulators, 2 weight vectors and a
//! broadcast input in registers, which V8 can hold in x64's 16 vector registers (an
//! 8 x 8 kernel's 16 accumulators spill), and weights packed at load are not packed
//! again on every call. Rows are taken 32 at a time, so that a chunk of `x` stays in
//! cache while every panel passes over it.

/// Outputs a panel holds.
pub const PANEL: usize = 8;
/// Rows of `x` a kernel call takes.
const ROWS: usize = 4;
/// Rows of `x` kept in cache while the panels pass over them.
const CHUNK: usize = 32;

/// A fully connected layer with its weights packed into panels.
pub struct Linear {
    panels: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// From `weight` stored `[outputs x inputs]` (as PyTorch saves it) and `bias`;
    /// `outputs` must be a multiple of [`PANEL`].
    pub fn new(weight: &[f32], bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        assert!(outputs.is_multiple_of(PANEL) && weight.len() == inputs * outputs && bias.len() == outputs);
        let mut panels = Vec::with_capacity(weight.len());
        for p in 0..outputs / PANEL {
            for k in 0..inputs {
                panels.extend((0..PANEL).map(|j| weight[(p * PANEL + j) * inputs + k]));
            }
        }
        Linear {
            panels,
            bias,
            inputs,
            outputs,
        }
    }

    /// `rows` rows of `x` (each `inputs` wide) through the layer, into `y`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut Vec<f32>) {
        let (k, n) = (self.inputs, self.outputs);
        assert_eq!(x.len(), rows * k);
        y.clear();
        y.resize(rows * n, 0.0);
        for start in (0..rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(rows);
            for (p, panel) in self.panels.chunks_exact(k * PANEL).enumerate() {
                let bias: &[f32; PANEL] = self.bias[p * PANEL..][..PANEL].try_into().unwrap();
                let mut r = start;
                while r + ROWS <= end {
                    let out = kernel::<ROWS>(&x[r * k..(r + ROWS) * k], k, panel, bias);
                    for (i, row) in out.iter().enumerate() {
                        y[(r + i) * n + p * PANEL..][..PANEL].copy_from_slice(row);
                    }
                    r += ROWS;
                }
                for r in r..end {
                    let [row] = kernel::<1>(&x[r * k..(r + 1) * k], k, panel, bias);
                    y[r * n + p * PANEL..][..PANEL].copy_from_slice(&row);
                }
            }
        }
    }
}

/// `R` rows of `x` (`R x k`) times one panel (`k x 8`), plus the bias.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn kernel<const R: usize>(x: &[f32], k: usize, panel: &[f32], bias: &[f32; PANEL]) -> [[f32; PANEL]; R] {
    let mut acc = [*bias; R];
    for (kk, w) in panel.chunks_exact(PANEL).enumerate() {
        for (r, a) in acc.iter_mut().enumerate() {
            let v = x[r * k + kk];
            for (a, w) in a.iter_mut().zip(w) {
                *a += v * w;
            }
        }
    }
    acc
}

/// The same with simd128: each row's 8 sums in two vectors, its input broadcast by a
/// splatting load; fused multiply-adds where relaxed SIMD is enabled.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn kernel<const R: usize>(x: &[f32], k: usize, panel: &[f32], bias: &[f32; PANEL]) -> [[f32; PANEL]; R] {
    use core::arch::wasm32::*;
    #[cfg(target_feature = "relaxed-simd")]
    let madd = |a: v128, b: v128, c: v128| f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    let madd = |a: v128, b: v128, c: v128| f32x4_add(f32x4_mul(a, b), c);
    assert!(x.len() >= R * k && panel.len() == k * PANEL);
    // SAFETY: every load and store below is inside `x`, `panel`, `bias` or `out`, by
    // the assert above; v128_load and v128_store need no alignment.
    unsafe {
        let b0 = v128_load(bias.as_ptr() as *const v128);
        let b1 = v128_load(bias.as_ptr().add(4) as *const v128);
        let mut acc = [[b0, b1]; R];
        let (xp, wp) = (x.as_ptr(), panel.as_ptr());
        for kk in 0..k {
            let w0 = v128_load(wp.add(kk * PANEL) as *const v128);
            let w1 = v128_load(wp.add(kk * PANEL + 4) as *const v128);
            for (r, a) in acc.iter_mut().enumerate() {
                let v = v128_load32_splat(xp.add(r * k + kk) as *const u32);
                a[0] = madd(v, w0, a[0]);
                a[1] = madd(v, w1, a[1]);
            }
        }
        let mut out = [[0f32; PANEL]; R];
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

    #[test]
    fn matches_the_plain_product_for_every_row_count() {
        let (k, n) = (19, 24);
        let weight: Vec<f32> = (0..k * n).map(|i| ((i * 7919) % 113) as f32 / 50.0 - 1.0).collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
        let layer = Linear::new(&weight, bias.clone(), k, n);
        for rows in [0, 1, 3, 4, 5, 33, 70] {
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 104_729) % 97) as f32 / 40.0 - 1.2)
                .collect();
            let mut y = vec![];
            layer.forward(&x, rows, &mut y);
            for r in 0..rows {
                for o in 0..n {
                    let want = bias[o] + (0..k).map(|i| x[r * k + i] * weight[o * k + i]).sum::<f32>();
                    assert!(
                        (y[r * n + o] - want).abs() < 1e-4,
                        "rows {rows}: y[{r}][{o}] = {} not {want}",
                        y[r * n + o]
                    );
                }
            }
        }
    }
}
