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

/// BERT's GELU, the exact one: `x/2 (1 + erf(x/sqrt 2))`.
pub fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of each `width`-long row, in place.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
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
