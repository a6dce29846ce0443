//! Distance kernels over f32 slices (and int8 codes), in a `simd128` and a portable scalar form.
//!
//! A crate of their own, not a module of the core, so that a wasm build can optimise
//! them for speed and the rest of the store for its download's size: Cargo sets
//! optimisation levels per crate, and the portable kernels' loops run fast only at
//! full optimisation (Cargo.toml's `wasm-plain` profile). The scalar form's entry
//! points are not `#[inline]` for that reason: an inline function is compiled in the
//! crate that calls it, at that crate's level.
//!
//! The build is chosen at compile time by `-C target-feature=+simd128`. Each form is
//! shaped for what the engine runs fastest (measured in Chromium with
//! `npm run bench`): the simd128 form scores rows in pairs with two `f32x4`
//! accumulators each, the scalar form one row at a time with eight scalars (one more
//! already spills registers in V8; natively, sixteen). Their sums differ only by
//! rounding (tests bound it at 1e-5 relative).

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use scalar as active;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128 as active;

/// Which kernel form this build runs: `"simd128"` or `"scalar"`.
pub const BUILD: &str = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "simd128"
} else {
    "scalar"
};

/// Dot product of two equal-length slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    active::dot(a, b)
}

/// Squared Euclidean distance of two equal-length slices.
#[inline(always)]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    active::l2_squared(a, b)
}

/// The dot products of `q` with two rows of its length, equal bit for bit to [`dot`]
/// of each: a scan takes rows in pairs to share the query's loads.
#[inline(always)]
pub fn dot_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    active::dot_pair(q, rows)
}

/// [`l2_squared`] of `q` with two rows, as [`dot_pair`] is to [`dot`].
#[inline(always)]
pub fn l2_squared_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    active::l2_squared_pair(q, rows)
}

/// Dot product of a query's i16 weights with a row's byte codes (int8 quantization's
/// key, in `quiver::quant`), exact in i32: the weights are bounded so that no sum can
/// overflow at the dimension they were made for.
#[inline(always)]
pub fn dot_codes(w: &[i16], codes: &[u8]) -> i32 {
    debug_assert_eq!(w.len(), codes.len());
    active::dot_codes(w, codes)
}

/// [`dot_codes`] of two rows, equal to it for each: a graph walk takes a node's
/// neighbours in pairs to share the weights' loads.
#[inline(always)]
pub fn dot_codes_pair(w: &[i16], rows: [&[u8]; 2]) -> [i32; 2] {
    active::dot_codes_pair(w, rows)
}

/// Codes a [`nibble_keys`] block holds: one a byte lane of a `v128`.
pub const NIBBLE_LANES: usize = 16;

/// A query's 4-bit lookup tables (for each nibble position of a code, a byte for each
/// of the 16 nibble values), prepared as this build's [`nibble_keys`] reads them.
pub use active::NibbleTables;

/// What turns a code's sum of nibble table entries into binary quantization's key
/// and bound (in `quiver::quant`): the same for every slot of one query.
#[derive(Clone, Copy)]
pub struct KeyTerms {
    pub slope: f32,
    pub offset: f32,
    pub shift: f32,
    pub per_err: f32,
    pub per_scale: f32,
}

impl KeyTerms {
    /// One slot's key, `add + shift + scale · (slope · sum + offset)`, and its bound,
    /// the key plus `per_err · err + per_scale · scale`. [`nibble_keys`] gives the same,
    /// bit for bit: the same operations in the same order, lane by lane.
    #[inline(always)]
    pub fn key(&self, sum: u32, scale: f32, err: f32, add: f32) -> (f32, f32) {
        let key = (add + self.shift) + scale * (self.slope * sum as f32 + self.offset);
        (key, key + (self.per_err * err + self.per_scale * scale))
    }
}

/// Binary quantization's scan of a block of [`NIBBLE_LANES`] codes laid out by nibble
/// pairs (byte `p * NIBBLE_LANES + l` holds lane `l`'s nibbles `2p` in its low half
/// and `2p + 1` in its high half): each lane's sum of its nibbles' table entries,
/// made by [`KeyTerms::key`] with the lane's factors into its key and bound. Returns
/// the keys, then the bounds. The sums are exact in integers, so both forms agree.
///
/// In simd128 a swizzle looks up sixteen codes at once, and the keys are computed
/// four lanes a vector, written out: the compiler vectorises such loops only at full
/// optimisation, and a wasm build optimised for size left them scalar (its scan 15%
/// slower in Chromium).
#[inline(always)]
pub fn nibble_keys(
    tables: &NibbleTables,
    block: &[u8],
    terms: &KeyTerms,
    [scale, err, add]: [&[f32; NIBBLE_LANES]; 3],
) -> ([f32; NIBBLE_LANES], [f32; NIBBLE_LANES]) {
    active::nibble_keys(tables, block, terms, [scale, err, add])
}

/// Whether any of a block's keys is above `floor`: a scan skips a block with none, so
/// its lanes are not looked at one by one.
#[inline(always)]
pub fn any_above(keys: &[f32; NIBBLE_LANES], floor: f32) -> bool {
    active::any_above(keys, floor)
}

/// In-place Walsh-Hadamard transform of a power-of-two length, times `scale`: binary
/// quantization's rotation (in `quiver::quant`). Both forms add, subtract and scale the
/// same pairs, so they agree bit for bit.
#[inline]
pub fn fwht(y: &mut [f32], scale: f32) {
    debug_assert!(y.len().is_power_of_two());
    active::fwht(y, scale)
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
