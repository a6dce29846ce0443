//! A vector on its way in: checked once (length, finite values, a direction for
//! cosine), then prepared for the search copy, or as a query for the scan.

use crate::error::{Code, Error, Result};
use crate::metric::Metric;

/// Checks a vector's length and values; `field` names it in the error (built only
/// on failure: this runs once per inserted row).
pub fn check_vector(v: &[f32], dim: usize, metric: Metric, field: impl Fn() -> String) -> Result<()> {
    if v.is_empty() {
        return Err(Error::new(Code::InvalidVector, format!("{} is empty", field())));
    }
    if v.len() != dim {
        return Err(Error::new(
            Code::DimensionMismatch,
            format!("{} has {} dimensions, the collection has {dim}", field(), v.len()),
        ));
    }
    // One pass without early exits, which the compiler vectorises: this runs on every
    // row written. Only a bad vector is looked at again, to name the bad value.
    let (finite, nonzero) = v
        .iter()
        .fold((true, false), |(f, z), x| (f & x.is_finite(), z | (*x != 0.0)));
    if !finite {
        let i = v.iter().position(|x| !x.is_finite()).expect("a value is not finite");
        return Err(Error::new(
            Code::InvalidVector,
            format!("{}[{i}] is {}, not a finite number", field(), v[i]),
        ));
    }
    if metric == Metric::Cosine && !nonzero {
        return Err(Error::new(
            Code::InvalidVector,
            format!("{} is the zero vector, which has no cosine", field()),
        ));
    }
    Ok(())
}

/// Prepares a vector for the search copy (and a query for the scan): cosine rows are
/// kept unit-length, and components below a billionth of the largest are flushed to
/// zero. Those change no score beyond f32 rounding, but a product of two of them is
/// subnormal, which x86 computes in microcode at ~100x the cost: MiniLM embeddings
/// carry a dimension that is always ~1e-33, and it halved the scan's speed.
///
/// Passes over `v` that each vectorise: the norm, the largest magnitude (the largest bit
/// pattern with the sign cleared: for finite floats those order as the magnitudes do,
/// and integers reduce without the float rules that keep a `max` scalar), then the
/// scaled and flushed copy. The largest prepared magnitude is the largest raw one
/// divided by the norm, exactly: division by a positive number keeps the order of
/// values, rounding included.
pub fn prepare(metric: Metric, v: &[f32], out: &mut Vec<f32>) {
    let n = if metric == Metric::Cosine {
        crate::kernels::norm(v)
    } else {
        1.0
    };
    let largest = f32::from_bits(v.iter().fold(0, |m, x| m.max(x.to_bits() & 0x7fff_ffff))) / n;
    let floor = largest * 1e-9;
    out.clear();
    out.extend(v.iter().map(|x| {
        let y = x / n;
        if y.abs() < floor {
            0.0
        } else {
            y
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prepare` as it reads plainly: normalise, then flush against the largest value.
    fn reference(metric: Metric, v: &[f32]) -> Vec<f32> {
        let mut out = v.to_vec();
        if metric == Metric::Cosine {
            let n = crate::kernels::norm(v);
            out.iter_mut().for_each(|x| *x /= n);
        }
        let floor = out.iter().fold(0f32, |m, x| m.max(x.abs())) * 1e-9;
        out.iter_mut().filter(|x| x.abs() < floor).for_each(|x| *x = 0.0);
        out
    }

    #[test]
    fn prepare_is_bit_for_bit_the_plain_reading() {
        let mut s = 7u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let mut out = Vec::new();
        for round in 0..500 {
            let dim = 1 + (next() % 700) as usize;
            // Magnitudes over 80 orders, subnormals and negative zeros among them.
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    let x = f32::from_bits(next() & 0x807f_ffff | ((next() % 200) << 23));
                    if next() % 9 == 0 {
                        -0.0
                    } else {
                        x
                    }
                })
                .collect();
            for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
                if metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
                    continue;
                }
                prepare(metric, &v, &mut out);
                let want = reference(metric, &v);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out), bits(&want), "round {round}, {metric:?}");
            }
        }
    }
}
