//! Portable kernels: independent accumulators, so the loop is bound by loads rather
//! than by the latency of one chain of additions.

/// Accumulators: eight in wasm, where one more spills V8's registers; sixteen natively,
/// which LLVM packs into four SSE registers (twice the speed of eight natively). Summed
/// in order at the end: a pairwise tree there undid that gain natively, and made no
/// difference in wasm.
const LANES: usize = if cfg!(target_arch = "wasm32") { 8 } else { 16 };

#[inline(always)]
fn fold(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| term(*x, *y))
        .sum();
    for (x, y) in ac.zip(bc) {
        // Fixed-size arrays let LLVM drop the bounds checks and keep lanes in registers.
        let (x, y): (&[f32; LANES], &[f32; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..LANES {
            acc[l] += term(x[l], y[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y| x * y)
}

pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y| (x - y) * (x - y))
}

// Rows one by one even in pairs: eight accumulators already fill V8's registers, so
// scoring two rows together would spill rather than save query loads.
pub fn dot_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    rows.map(|r| dot(q, r))
}

pub fn l2_squared_pair(q: &[f32], rows: [&[f32]; 2]) -> [f32; 2] {
    rows.map(|r| l2_squared(q, r))
}

pub fn dot_codes_pair(w: &[i16], rows: [&[u8]; 2]) -> [i32; 2] {
    rows.map(|c| dot_codes(w, c))
}

/// Integer dot product of a query's i16 weights with a row's byte codes, summed in i32
/// with the same accumulators as the f32 kernels: exact, so every form agrees.
pub fn dot_codes(w: &[i16], c: &[u8]) -> i32 {
    let mut acc = [0i32; LANES];
    let (wc, cc) = (w.chunks_exact(LANES), c.chunks_exact(LANES));
    let tail: i32 = wc
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(&x, &y)| x as i32 * y as i32)
        .sum();
    for (x, y) in wc.zip(cc) {
        let (x, y): (&[i16; LANES], &[u8; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..LANES {
            acc[l] += x[l] as i32 * y[l] as i32;
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// The nibble tables paired into byte tables: entry `b` of table `p` is the sum of
/// nibble tables `2p` and `2p + 1` at `b`'s low and high halves, so a code byte is one
/// lookup, not two.
pub struct NibbleTables(Vec<[u16; 256]>);

impl NibbleTables {
    pub fn new(luts: &[[u8; 16]]) -> Self {
        let pair =
            |p: &[[u8; 16]]| -> [u16; 256] { std::array::from_fn(|b| p[0][b & 15] as u16 + p[1][b >> 4] as u16) };
        NibbleTables(luts.chunks_exact(2).map(pair).collect())
    }
}

pub fn nibble_keys(
    tables: &NibbleTables,
    block: &[u8],
    terms: &super::KeyTerms,
    [scale, err, add]: [&[f32; super::NIBBLE_LANES]; 3],
) -> ([f32; super::NIBBLE_LANES], [f32; super::NIBBLE_LANES]) {
    let mut sums = [0u32; super::NIBBLE_LANES];
    for (table, bytes) in tables.0.iter().zip(block.chunks_exact(super::NIBBLE_LANES)) {
        for (o, &b) in sums.iter_mut().zip(bytes) {
            *o += table[b as usize] as u32;
        }
    }
    let (mut keys, mut bounds) = ([0f32; super::NIBBLE_LANES], [0f32; super::NIBBLE_LANES]);
    for l in 0..super::NIBBLE_LANES {
        (keys[l], bounds[l]) = terms.key(sums[l], scale[l], err[l], add[l]);
    }
    (keys, bounds)
}

#[inline(always)]
pub fn any_above(keys: &[f32; super::NIBBLE_LANES], floor: f32) -> bool {
    keys.iter().any(|&k| k > floor)
}

pub fn fwht(y: &mut [f32], scale: f32) {
    let mut h = 1;
    while h < y.len() {
        fwht_stage(y, h);
        h *= 2;
    }
    y.iter_mut().for_each(|x| *x *= scale);
}

/// One stage of [`fwht`]: each pair `h` apart becomes their sum and difference.
pub(super) fn fwht_stage(y: &mut [f32], h: usize) {
    for block in y.chunks_exact_mut(2 * h) {
        let (a, b) = block.split_at_mut(h);
        for (x, z) in a.iter_mut().zip(b.iter_mut()) {
            let (u, v) = (*x, *z);
            *x = u + v;
            *z = u - v;
        }
    }
}
