//! wasm `simd128` kernels: four `f32x4` accumulators over 16 floats a step.

use super::{reduce, LANES};
use core::arch::wasm32::*;

#[inline(always)]
fn load(s: &[f32], i: usize) -> v128 {
    debug_assert!(i + 4 <= s.len());
    // SAFETY: callers stay within `s`; wasm loads need no alignment.
    unsafe { v128_load(s.as_ptr().add(i) as *const v128) }
}

#[inline(always)]
fn lanes(acc: [v128; 4]) -> [f32; LANES] {
    let mut out = [0f32; LANES];
    for (j, v) in acc.iter().enumerate() {
        out[4 * j] = f32x4_extract_lane::<0>(*v);
        out[4 * j + 1] = f32x4_extract_lane::<1>(*v);
        out[4 * j + 2] = f32x4_extract_lane::<2>(*v);
        out[4 * j + 3] = f32x4_extract_lane::<3>(*v);
    }
    out
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n - n % LANES;
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i < body {
        for (j, s) in acc.iter_mut().enumerate() {
            *s = f32x4_add(*s, f32x4_mul(load(a, i + 4 * j), load(b, i + 4 * j)));
        }
        i += LANES;
    }
    let tail: f32 = a[body..n].iter().zip(&b[body..n]).map(|(x, y)| x * y).sum();
    reduce(lanes(acc)) + tail
}

pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n - n % LANES;
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i < body {
        for (j, s) in acc.iter_mut().enumerate() {
            let d = f32x4_sub(load(a, i + 4 * j), load(b, i + 4 * j));
            *s = f32x4_add(*s, f32x4_mul(d, d));
        }
        i += LANES;
    }
    let tail: f32 = a[body..n]
        .iter()
        .zip(&b[body..n])
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    reduce(lanes(acc)) + tail
}
