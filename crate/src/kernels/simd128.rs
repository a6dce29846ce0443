//! wasm `simd128` kernels: four `f32x4` accumulators, sixteen floats a step.
//!
//! One row at a time: scoring two or four rows a pass (to share query loads) ran
//! several times slower in V8, which spilled the extra accumulators.

use core::arch::wasm32::*;

const STEP: usize = 16;

#[inline(always)]
fn load(s: &[f32], i: usize) -> v128 {
    debug_assert!(i + 4 <= s.len());
    // SAFETY: callers stay within `s`; wasm loads need no alignment.
    unsafe { v128_load(s.as_ptr().add(i) as *const v128) }
}

#[inline(always)]
fn fold(a: &[f32], b: &[f32], term: impl Fn(v128, v128) -> v128, scalar: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let body = n - n % STEP;
    let z = f32x4_splat(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    let mut i = 0;
    while i < body {
        s0 = f32x4_add(s0, term(load(a, i), load(b, i)));
        s1 = f32x4_add(s1, term(load(a, i + 4), load(b, i + 4)));
        s2 = f32x4_add(s2, term(load(a, i + 8), load(b, i + 8)));
        s3 = f32x4_add(s3, term(load(a, i + 12), load(b, i + 12)));
        i += STEP;
    }
    let s = f32x4_add(f32x4_add(s0, s2), f32x4_add(s1, s3));
    let tail: f32 = a[body..n].iter().zip(&b[body..n]).map(|(x, y)| scalar(*x, *y)).sum();
    (f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<2>(s))
        + (f32x4_extract_lane::<1>(s) + f32x4_extract_lane::<3>(s))
        + tail
}

#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y| f32x4_mul(x, y), |x, y| x * y)
}

#[inline(always)]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold(
        a,
        b,
        |x, y| {
            let d = f32x4_sub(x, y);
            f32x4_mul(d, d)
        },
        |x, y| (x - y) * (x - y),
    )
}
