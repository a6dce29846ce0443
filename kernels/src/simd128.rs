//! wasm `simd128` kernels: rows scored in pairs against one query, two `f32x4`
//! accumulators a row, eight floats a step.
//!
//! A scan is bound by loads: one row at a time, every product loads a query chunk and
//! a row chunk. A pair of rows shares the query's loads. The two rows must lie apart:
//! in V8 a pair of adjacent rows ran several times slower than one row at a time, a
//! pair of far rows faster (docs/BENCHMARKS.md). A lone row takes the same steps in
//! the same order, so a row's score does not depend on its pairing.

use core::arch::wasm32::*;

const STEP: usize = 8;

#[inline(always)]
fn load(s: &[f32], i: usize) -> v128 {
    debug_assert!(i + 4 <= s.len());
    // SAFETY: callers stay within `s`; wasm loads need no alignment.
    unsafe { v128_load(s.as_ptr().add(i) as *const v128) }
}

/// One row's score from its two accumulators and its scalar tail.
#[inline(always)]
fn finish(a: v128, b: v128, q: &[f32], row: &[f32], body: usize, scalar: &impl Fn(f32, f32) -> f32) -> f32 {
    let s = f32x4_add(a, b);
    let tail: f32 = q[body..].iter().zip(&row[body..]).map(|(x, y)| scalar(*x, *y)).sum();
    (f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<2>(s))
        + (f32x4_extract_lane::<1>(s) + f32x4_extract_lane::<3>(s))
        + tail
}

#[inline(always)]
fn one(q: &[f32], row: &[f32], term: impl Fn(v128, v128) -> v128, scalar: impl Fn(f32, f32) -> f32) -> f32 {
    let n = q.len().min(row.len());
    let body = n - n % STEP;
    let (mut a0, mut a1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let mut i = 0;
    while i < body {
        a0 = f32x4_add(a0, term(load(q, i), load(row, i)));
        a1 = f32x4_add(a1, term(load(q, i + 4), load(row, i + 4)));
        i += STEP;
    }
    finish(a0, a1, &q[..n], &row[..n], body, &scalar)
}

#[inline(always)]
fn pair(
    q: &[f32],
    [r, s]: [&[f32]; 2],
    term: impl Fn(v128, v128) -> v128,
    scalar: impl Fn(f32, f32) -> f32,
) -> [f32; 2] {
    let n = q.len();
    assert!(r.len() == n && s.len() == n, "rows and query differ in length");
    let body = n - n % STEP;
    let z = f32x4_splat(0.0);
    let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
    let mut step = |i: usize| {
        let (q0, q1) = (load(q, i), load(q, i + 4));
        a0 = f32x4_add(a0, term(q0, load(r, i)));
        a1 = f32x4_add(a1, term(q1, load(r, i + 4)));
        b0 = f32x4_add(b0, term(q0, load(s, i)));
        b1 = f32x4_add(b1, term(q1, load(s, i + 4)));
    };
    // Two steps an iteration, written out: the size-first levels do not unroll loops.
    let mut i = 0;
    while i + 2 * STEP <= body {
        step(i);
        step(i + STEP);
        i += 2 * STEP;
    }
    if i < body {
        step(i);
    }
    [finish(a0, a1, q, r, body, &scalar), finish(b0, b1, q, s, body, &scalar)]
}

#[inline(always)]
fn dot_term(x: v128, y: v128) -> v128 {
    f32x4_mul(x, y)
}

#[inline(always)]
fn l2_term(x: v128, y: v128) -> v128 {
    let d = f32x4_sub(x, y);
    f32x4_mul(d, d)
}

#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    one(a, b, dot_term, |x, y| x * y)
}

#[inline(always)]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    one(a, b, l2_term, |x, y| (x - y) * (x - y))
}

#[inline(always)]
pub fn dot_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    pair(q, rows, dot_term, |x, y| x * y)
}

#[inline(always)]
pub fn l2_squared_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    pair(q, rows, l2_term, |x, y| (x - y) * (x - y))
}

/// [`super::dot_codes_pair`]: [`dot_codes`] of two rows, sharing the weights' loads.
#[inline(always)]
pub fn dot_codes_pair(w: &[i16], [r, s]: [&[u8]; 2]) -> [i32; 2] {
    let n = w.len();
    assert!(r.len() == n && s.len() == n, "codes and weights differ in length");
    let body = n - n % 16;
    let z = i32x4_splat(0);
    let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
    let mut i = 0;
    while i < body {
        // SAFETY: as in dot_codes, for both rows.
        let (x, y, w0, w1) = unsafe {
            (
                v128_load(r.as_ptr().add(i) as *const v128),
                v128_load(s.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i + 8) as *const v128),
            )
        };
        a0 = i32x4_add(a0, i32x4_dot_i16x8(w0, u16x8_extend_low_u8x16(x)));
        a1 = i32x4_add(a1, i32x4_dot_i16x8(w1, u16x8_extend_high_u8x16(x)));
        b0 = i32x4_add(b0, i32x4_dot_i16x8(w0, u16x8_extend_low_u8x16(y)));
        b1 = i32x4_add(b1, i32x4_dot_i16x8(w1, u16x8_extend_high_u8x16(y)));
        i += 16;
    }
    [finish_codes(a0, a1, w, r, body), finish_codes(b0, b1, w, s, body)]
}

/// One row's integer dot from its two accumulators and its scalar tail.
#[inline(always)]
fn finish_codes(a: v128, b: v128, w: &[i16], c: &[u8], body: usize) -> i32 {
    let s = i32x4_add(a, b);
    let tail: i32 = w[body..]
        .iter()
        .zip(&c[body..])
        .map(|(&x, &y)| x as i32 * y as i32)
        .sum();
    i32x4_extract_lane::<0>(s)
        + i32x4_extract_lane::<1>(s)
        + i32x4_extract_lane::<2>(s)
        + i32x4_extract_lane::<3>(s)
        + tail
}

/// [`super::dot_codes`]: sixteen bytes a step, widened to two `i16x8` and multiplied
/// with the weights by `i32x4.dot_i16x8_s` (pairs of products summed into i32 lanes).
#[inline(always)]
pub fn dot_codes(w: &[i16], c: &[u8]) -> i32 {
    let n = w.len();
    assert!(c.len() == n, "codes and weights differ in length");
    let body = n - n % 16;
    let (mut a0, mut a1) = (i32x4_splat(0), i32x4_splat(0));
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= body <= n, the length of both slices; wasm loads need no
        // alignment.
        let (bytes, w0, w1) = unsafe {
            (
                v128_load(c.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i + 8) as *const v128),
            )
        };
        a0 = i32x4_add(a0, i32x4_dot_i16x8(w0, u16x8_extend_low_u8x16(bytes)));
        a1 = i32x4_add(a1, i32x4_dot_i16x8(w1, u16x8_extend_high_u8x16(bytes)));
        i += 16;
    }
    finish_codes(a0, a1, w, c, body)
}

/// The nibble tables as they are: a swizzle takes a `v128` of sixteen entries.
pub struct NibbleTables(Vec<[u8; 16]>);

impl NibbleTables {
    pub fn new(luts: &[[u8; 16]]) -> Self {
        NibbleTables(luts.to_vec())
    }
}

/// Pairs of nibble positions a u16 lane may sum before it could overflow: 256
/// lookups of at most 255.
const PAIRS_PER_U16: usize = 128;

/// The sixteen looked-up bytes are summed as eight u16 lanes, as Faiss's 4-bit fast
/// scan does: `even` adds each u16 whole (an even lane's byte plus 256 times the odd
/// lane's, wrapping), `odd` adds it shifted down (the odd lane's byte), and the even
/// lanes' sums are `even - (odd << 8)`, exact while they stay below 65,536. That is
/// three operations a lookup where widening each half took four, and V8 has no
/// single x64 instruction for widening a high half or for a byte shift.
///
/// Returns lanes 0-3, 4-7, 8-11 and 12-15, in order.
#[inline(always)]
fn nibble_sums(tables: &NibbleTables, block: &[u8]) -> [v128; 4] {
    let luts = &tables.0;
    let pairs = luts.len() / 2;
    assert!(
        block.len() == pairs * 16,
        "a block holds 16 codes of the tables' length"
    );
    let low = u8x16_splat(0x0f);
    let mut total = [u32x4_splat(0); 4];
    for start in (0..pairs).step_by(PAIRS_PER_U16) {
        let (mut even, mut odd) = (u16x8_splat(0), u16x8_splat(0));
        for p in start..pairs.min(start + PAIRS_PER_U16) {
            // SAFETY: p < pairs, so bytes 16p..16p + 16 lie in the block (asserted
            // above) and tables 2p and 2p + 1 in `luts`; wasm loads need no alignment.
            let (bytes, first, second) = unsafe {
                (
                    v128_load(block.as_ptr().add(16 * p) as *const v128),
                    v128_load(luts.as_ptr().add(2 * p) as *const v128),
                    v128_load(luts.as_ptr().add(2 * p + 1) as *const v128),
                )
            };
            let x = u8x16_swizzle(first, v128_and(bytes, low));
            let y = u8x16_swizzle(second, v128_and(u16x8_shr(bytes, 4), low));
            even = u16x8_add(even, u16x8_add(x, y));
            odd = u16x8_add(odd, u16x8_add(u16x8_shr(x, 8), u16x8_shr(y, 8)));
        }
        let even = u16x8_sub(even, u16x8_shl(odd, 8));
        let first = u16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(even, odd);
        let second = u16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(even, odd);
        total[0] = u32x4_add(total[0], u32x4_extend_low_u16x8(first));
        total[1] = u32x4_add(total[1], u32x4_extend_high_u16x8(first));
        total[2] = u32x4_add(total[2], u32x4_extend_low_u16x8(second));
        total[3] = u32x4_add(total[3], u32x4_extend_high_u16x8(second));
    }
    total
}

#[inline(always)]
pub fn nibble_keys(
    tables: &NibbleTables,
    block: &[u8],
    terms: &super::KeyTerms,
    [scale, err, add]: [&[f32; 16]; 3],
) -> ([f32; 16], [f32; 16]) {
    let [s0, s1, s2, s3] = nibble_sums(tables, block);
    let t = [
        f32x4_splat(terms.slope),
        f32x4_splat(terms.offset),
        f32x4_splat(terms.shift),
        f32x4_splat(terms.per_err),
        f32x4_splat(terms.per_scale),
    ];
    let (mut keys, mut bounds) = ([0f32; 16], [0f32; 16]);
    // Four calls, not a loop: at the size-first optimisation levels a loop stays a
    // loop, and its sums and terms go through memory.
    keys4(&t, s0, [scale, err, add], 0, [&mut keys, &mut bounds]);
    keys4(&t, s1, [scale, err, add], 4, [&mut keys, &mut bounds]);
    keys4(&t, s2, [scale, err, add], 8, [&mut keys, &mut bounds]);
    keys4(&t, s3, [scale, err, add], 12, [&mut keys, &mut bounds]);
    (keys, bounds)
}

/// [`super::KeyTerms::key`] of lanes `i..i + 4`, whose sums are `sums`, as its
/// operations in its order.
#[inline(always)]
fn keys4(
    &[slope, offset, shift, per_err, per_scale]: &[v128; 5],
    sums: v128,
    [scale, err, add]: [&[f32; 16]; 3],
    i: usize,
    [keys, bounds]: [&mut [f32; 16]; 2],
) {
    let (s, e, a) = (load(scale, i), load(err, i), load(add, i));
    let key = f32x4_add(
        f32x4_add(a, shift),
        f32x4_mul(s, f32x4_add(f32x4_mul(slope, f32x4_convert_u32x4(sums)), offset)),
    );
    let bound = f32x4_add(key, f32x4_add(f32x4_mul(per_err, e), f32x4_mul(per_scale, s)));
    // SAFETY: callers pass i <= 12, so lanes i..i + 4 lie in both arrays; wasm stores
    // need no alignment.
    unsafe {
        v128_store(keys.as_mut_ptr().add(i) as *mut v128, key);
        v128_store(bounds.as_mut_ptr().add(i) as *mut v128, bound);
    }
}

/// Four lanes a comparison, and one branch for the sixteen.
#[inline(always)]
pub fn any_above(keys: &[f32; super::NIBBLE_LANES], floor: f32) -> bool {
    let f = f32x4_splat(floor);
    let above = |i| f32x4_gt(load(keys, i), f);
    v128_any_true(v128_or(v128_or(above(0), above(4)), v128_or(above(8), above(12))))
}

/// Stages whose pairs lie four or more apart take four pairs a step; the first two
/// (pairs one and two apart) are the scalar form's.
pub fn fwht(y: &mut [f32], scale: f32) {
    let n = y.len();
    let mut h = 1;
    while h < n.min(4) {
        super::scalar::fwht_stage(y, h);
        h *= 2;
    }
    let p = y.as_mut_ptr();
    while h < n {
        for i in (0..n).step_by(2 * h) {
            for j in (i..i + h).step_by(4) {
                // SAFETY: h is a power of two from 4 below n, and n a power of two, so
                // j + h + 4 <= i + 2h <= n; wasm loads and stores need no alignment.
                unsafe {
                    let (a, b) = (p.add(j) as *mut v128, p.add(j + h) as *mut v128);
                    let (u, v) = (v128_load(a), v128_load(b));
                    v128_store(a, f32x4_add(u, v));
                    v128_store(b, f32x4_sub(u, v));
                }
            }
        }
        h *= 2;
    }
    let s = f32x4_splat(scale);
    let mut chunks = y.chunks_exact_mut(4);
    for c in &mut chunks {
        let p = c.as_mut_ptr() as *mut v128;
        // SAFETY: each chunk is four f32s, a v128's bytes.
        unsafe { v128_store(p, f32x4_mul(v128_load(p), s)) };
    }
    chunks.into_remainder().iter_mut().for_each(|x| *x *= scale);
}
