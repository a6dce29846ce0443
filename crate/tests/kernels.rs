//! The portable kernels against an f64 reference (the simd128 ones are compared with
//! these in wasm by tests/node/kernels.test.mjs: both builds must agree).

use quiver::kernels;
use quiver::Metric;

fn reference(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let l2: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let scale: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
    (dot, l2, scale)
}

#[test]
fn kernels_match_f64_reference_on_odd_dimensions_and_zero_vectors() {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut r = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    for dim in [1, 3, 15, 16, 17, 383, 384, 1536] {
        let a: Vec<f32> = (0..dim).map(|_| r()).collect();
        let b: Vec<f32> = (0..dim).map(|_| r()).collect();
        let (dot, l2, scale) = reference(&a, &b);
        // Error bound relative to the sum of magnitudes: cancellation cannot inflate it.
        assert!(
            (kernels::dot(&a, &b) as f64 - dot).abs() <= 1e-5 * scale.max(1e-30),
            "dot d={dim}"
        );
        assert!(
            (kernels::l2_squared(&a, &b) as f64 - l2).abs() <= 1e-5 * l2.max(1e-30),
            "l2 d={dim}"
        );
        let zero = vec![0.0; dim];
        assert_eq!(kernels::dot(&a, &zero), 0.0);
        assert_eq!(kernels::cosine(&a, &zero), 0.0);
        assert_eq!(kernels::cosine(&zero, &zero), 0.0);
        assert!((kernels::cosine(&a, &a) - 1.0).abs() < 1e-6);
        assert!((Metric::Euclidean.distance(&a, &zero) as f64 - reference(&a, &a).0.sqrt()).abs() < 1e-4);
    }
}
