//! The arithmetic of a transformer layer over row-major f32 matrices, but for the
//! linear layers' products (`gemm`).
//!
//! Attention's products go to `matrixmultiply`'s sgemm, whose strides let one call read
//! one head's columns, or them transposed, in place. On wasm32 its simd128 kernel is
//! compiled only when the build enables simd128 (chosen at compile time, not at run
//! time), so the plain wasm build runs its portable kernel and holds no SIMD
//! instruction.

/// Layer normalisation of each row, then scale and shift.
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    pub fn forward(&self, x: &mut [f32]) {
        let width = self.weight.len();
        for row in x.chunks_exact_mut(width) {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// BERT's GELU, the exact one: `x/2 (1 + erf(x/sqrt 2))`, by [`erfc`]: `x - x/2 erfc(z)`
/// for `x >= 0` and `x/2 erfc(z)` below, where `z = |x|/sqrt 2`.
pub fn gelu(x: &mut [f32]) {
    for v in x {
        let half = 0.5 * *v * erfc(v.abs() * std::f32::consts::FRAC_1_SQRT_2);
        *v = if *v >= 0.0 { *v - half } else { half };
    }
}

/// `erfc(z)` for `z >= 0`, within 1.2e-7 relative (Numerical Recipes' Chebyshev fit,
/// 6.2.2); branch-free, like [`exp`], so that a loop of it becomes SIMD.
#[allow(clippy::excessive_precision)] // the coefficients as published
fn erfc(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = [
        0.170_872_77,
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_68,
        -1.265_512_23,
    ]
    .iter()
    .fold(0.0, |acc, c| acc * t + c);
    t * exp(-z * z + p)
}

/// `e^x` within 2 ulp for `-87 <= x <= 88`, and `e^-87` (1.6e-38) below:
/// `2^n e^r` with `|r| <= ln 2 / 2` and `e^r` by its Taylor series to `r^6`.
///
/// Why not `f32::exp`: on wasm32 that is a call to libm per value; this is plain
/// arithmetic and bit moves, which a loop over a slice vectorizes.
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = if x < -87.0 { -87.0 } else { x };
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let e = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0]
        .iter()
        .fold(0.0, |acc, c| acc * r + c);
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Softmax of each `width`-long row, in place.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        // Compares rather than f32::max, which is a call per value on wasm32.
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / sum(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The sum of `x` in 8 running sums, which SIMD can keep (one running sum cannot be
/// split without changing its rounding, so a compiler keeps it scalar).
pub fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// `c = alpha a b`, where each of a (`m x k`), b (`k x n`) and c (`m x n`) is
/// a strided view `(slice, row stride, column stride)` starting at the slice's first
/// element.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    c: (&mut [f32], usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(m == 0 || k == 0 || last(m, k, a.1, a.2) < a.0.len());
    assert!(k == 0 || n == 0 || last(k, n, b.1, b.2) < b.0.len());
    assert!(m == 0 || n == 0 || last(m, n, c.1, c.2) < c.0.len());
    // SAFETY: the asserts above keep every element the views address inside their slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.0.as_ptr(),
            a.1 as isize,
            a.2 as isize,
            b.0.as_ptr(),
            b.1 as isize,
            b.2 as isize,
            0.0,
            c.0.as_mut_ptr(),
            c.1 as isize,
            c.2 as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp() {
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            let err = ((exp(x) as f64 - want) / want).abs();
            assert!(err < 2.5e-7, "exp({x}) = {} not {want}", exp(x));
        }
        assert!(exp(-1000.0) < 1e-37 && exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn gelu_matches_the_exact_one() {
        let xs: Vec<f32> = (0..=40_000).map(|i| -10.0 + 20.0 * i as f32 / 40_000.0).collect();
        let mut ys = xs.clone();
        gelu(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let x64 = *x as f64;
            let want = 0.5 * x64 * (1.0 + libm::erf(x64 / std::f64::consts::SQRT_2));
            assert!(
                (*y as f64 - want).abs() <= 1e-6 * x64.abs().max(1.0),
                "gelu({x}) = {y} not {want}"
            );
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_in_order() {
        let mut x = vec![1.0, 2.0, 3.0, -50.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        softmax_rows(&mut x, 5);
        let want = |row: &[f64]| {
            let s: f64 = row.iter().map(|v| v.exp()).sum();
            row.iter().map(|v| v.exp() / s).collect::<Vec<_>>()
        };
        let expected = [want(&[1.0, 2.0, 3.0, -50.0, 0.5]), want(&[0.5; 5])].concat();
        for (got, want) in x.iter().zip(&expected) {
            assert!((*got as f64 - want).abs() < 1e-6, "{x:?}");
        }
    }
}
