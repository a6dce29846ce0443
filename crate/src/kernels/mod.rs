//! Distance kernels over f32 slices, in a `simd128` and a portable scalar form.
//!
//! Both forms accumulate in the same 16 lanes (four `f32x4` accumulators, or sixteen
//! scalars laid out the same way) and reduce them in the same order, so the two wasm
//! builds return bit-identical scores: a result never depends on which build loaded.
//! The build is chosen at compile time by `-C target-feature=+simd128`.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128 as active;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use scalar as active;

/// Accumulator lanes shared by both kernel forms.
pub const LANES: usize = 16;

/// Which kernel form this build runs: `"simd128"` or `"scalar"`.
pub const BUILD: &str = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "simd128"
} else {
    "scalar"
};

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    active::dot(a, b)
}

/// Squared Euclidean distance of two equal-length slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    active::l2_squared(a, b)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Cosine similarity; 0 when either side is the zero vector, which has no direction.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let denom = norm(a) * norm(b);
    if denom == 0.0 {
        0.0
    } else {
        dot(a, b) / denom
    }
}

/// Folds the 16 lanes into one sum, in the order both kernel forms share.
#[inline(always)]
pub(crate) fn reduce(acc: [f32; LANES]) -> f32 {
    let mut v = [0f32; 4];
    for (l, v) in v.iter_mut().enumerate() {
        *v = (acc[l] + acc[4 + l]) + (acc[8 + l] + acc[12 + l]);
    }
    (v[0] + v[1]) + (v[2] + v[3])
}
