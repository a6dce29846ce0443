use super::*;
use crate::index::flat::Flat;
use crate::index::{Index, Query as IndexQuery};
use crate::vector::prepare;

/// Xorshift, seeded: the same data every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-7), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// `n` rows and `nq` queries in clusters around shared centres, prepared for `metric`
/// (unit length for cosine; for the others, lengths spread over 0.5..1.5 and an offset
/// common to all, as embeddings have).
fn clustered(n: usize, nq: usize, dim: usize, metric: Metric, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Rng(seed);
    let offset: Vec<f32> = (0..dim).map(|_| rng.normal() * 0.5).collect();
    let centres: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..dim).map(|d| offset[d] + rng.normal()).collect())
        .collect();
    let draw = |rng: &mut Rng| {
        let c = &centres[rng.next() as usize % centres.len()];
        let mut v: Vec<f32> = c.iter().map(|x| x + rng.normal() * 0.6).collect();
        let n = crate::kernels::norm(&v);
        let len = if metric == Metric::Cosine {
            1.0
        } else {
            0.5 + rng.unit()
        };
        v.iter_mut().for_each(|x| *x *= len / n);
        let mut out = Vec::new();
        prepare(metric, &v, &mut out);
        out
    };
    let rows = (0..n).map(|_| draw(&mut rng)).collect();
    let queries = (0..nq).map(|_| draw(&mut rng)).collect();
    (rows, queries)
}

fn exact_key(metric: Metric, q: &[f32], r: &[f32]) -> f32 {
    match metric {
        Metric::Euclidean => -crate::kernels::l2_squared(q, r),
        _ => crate::kernels::dot(q, r),
    }
}

/// The brute-force oracle: every row's exact key, best first, ties by id.
fn oracle(metric: Metric, rows: &[Vec<f32>], ids: &[Id], q: &[f32], k: usize) -> Vec<Candidate> {
    let mut top = TopK::new(k, ids);
    for (slot, r) in rows.iter().enumerate() {
        top.push(Candidate {
            key: exact_key(metric, q, r),
            slot: slot as u32,
        });
    }
    top.into_sorted()
}

fn ids(n: usize) -> Vec<Id> {
    (0..n).map(|i| Id::from(format!("{i:06}"))).collect()
}

fn build(quant: Quantization, metric: Metric, rows: &[Vec<f32>]) -> Codes {
    Codes::build(quant, rows[0].len(), metric, 7, rows.iter().map(|r| r.as_slice())).expect("a codec")
}

fn search(codes: &Codes, rows: &[Vec<f32>], ids: &[Id], q: &[f32], k: usize, fetch: usize) -> Vec<Candidate> {
    let coarse = codes.coarse_top(q, fetch);
    codes.rerank(q, &coarse, k, ids, |s| rows[s].as_slice())
}

/// Mean recall@k of searches with `fetch` candidates against the oracle.
fn recall(quant: Quantization, metric: Metric, dim: usize, k: usize, fetch: usize) -> f64 {
    let (rows, queries) = clustered(2000, 40, dim, metric, 11);
    let ids = ids(rows.len());
    let codes = build(quant, metric, &rows);
    let mut found = 0;
    for q in &queries {
        let want: Vec<u32> = oracle(metric, &rows, &ids, q, k).iter().map(|c| c.slot).collect();
        let got = search(&codes, &rows, &ids, q, k, fetch);
        found += got.iter().filter(|c| want.contains(&c.slot)).count();
    }
    found as f64 / (queries.len() * k) as f64
}

#[test]
fn quantization_names_round_trip_and_an_unknown_one_is_a_newer_version() {
    for q in [Quantization::None, Quantization::Int8, Quantization::Binary] {
        assert_eq!(Quantization::parse(q.as_str(), "settings").unwrap(), q);
    }
    let e = Quantization::parse("pq", "settings.quantization").unwrap_err();
    assert_eq!(e.code, Code::UnsupportedVersion);
    assert!(e.message.contains("settings.quantization"));
    assert!(Codes::build(Quantization::None, 4, Metric::Dot, 0, std::iter::empty()).is_none());
}

#[test]
fn int8_keeps_recall_at_10_above_0_99_with_4k_candidates_in_a_byte_a_dimension() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let r = recall(
            Quantization::Int8,
            metric,
            128,
            10,
            Quantization::Int8.default_fetch(10),
        );
        assert!(r >= 0.99, "{metric:?}: recall {r}");
    }
    let (rows, _) = clustered(100, 0, 128, Metric::Cosine, 3);
    let codes = build(Quantization::Int8, Metric::Cosine, &rows);
    assert_eq!(codes.bytes(), 100 * 128);
    let codes = build(Quantization::Int8, Metric::Euclidean, &rows);
    assert_eq!(codes.bytes(), 100 * (128 + 4), "a norm a row for Euclidean");
}

#[test]
fn binary_keeps_recall_at_10_above_0_95_with_10k_candidates_in_a_bit_a_dimension() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let r = recall(
            Quantization::Binary,
            metric,
            128,
            10,
            Quantization::Binary.default_fetch(10),
        );
        assert!(r >= 0.95, "{metric:?}: recall {r}");
    }
    let (rows, _) = clustered(100, 0, 384, Metric::Cosine, 3);
    let codes = build(Quantization::Binary, Metric::Cosine, &rows);
    assert_eq!(codes.bytes_per_slot(), 384 / 8 + 12);
    assert_eq!(codes.bytes(), 100 * (48 + 12));
    // A dimension that is not whole words is padded to them.
    let (rows, _) = clustered(10, 0, 100, Metric::Cosine, 3);
    assert_eq!(
        build(Quantization::Binary, Metric::Cosine, &rows).bytes_per_slot(),
        16 + 12
    );
}

#[test]
fn every_metric_with_every_candidate_matches_the_brute_force_oracle() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let (rows, queries) = clustered(300, 10, 48, metric, 5);
            let ids = ids(rows.len());
            let codes = build(quant, metric, &rows);
            for q in &queries {
                let got = search(&codes, &rows, &ids, q, 10, rows.len());
                assert_eq!(got, oracle(metric, &rows, &ids, q, 10), "{quant:?} {metric:?}");
            }
        }
    }
}

#[test]
fn reranked_scores_are_the_exact_scan_s_bit_for_bit() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let (rows, queries) = clustered(500, 10, 64, metric, 9);
            let ids = ids(rows.len());
            let codes = build(quant, metric, &rows);
            let mut flat = Flat::new(64, metric, Quantization::None);
            for (id, r) in ids.iter().zip(&rows) {
                flat.upsert(id, r, None);
            }
            let query = IndexQuery {
                k: 10,
                filter: None,
                threshold: None,
                ef: None,
                fetch: None,
            };
            let sign = if metric.higher_is_closer() { 1.0 } else { -1.0 };
            for q in &queries {
                let exact = &flat.search_many(q, &query)[0];
                for c in search(&codes, &rows, &ids, q, 10, quant.default_fetch(10)) {
                    let score = metric.public_score(sign * c.key);
                    assert_eq!(c.key.to_bits(), exact_key(metric, q, &rows[c.slot as usize]).to_bits());
                    if let Some(hit) = exact.iter().find(|h| h.id == &*ids[c.slot as usize]) {
                        assert_eq!(hit.score.to_bits(), score.to_bits(), "{quant:?} {metric:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn binary_estimates_stay_within_their_bound() {
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let (rows, queries) = clustered(1000, 10, 128, metric, 21);
        let codes = build(Quantization::Binary, metric, &rows);
        let (mut over, mut total, mut err) = (0, 0, 0f64);
        for q in &queries {
            let est = codes.estimator(q);
            for (slot, r) in rows.iter().enumerate() {
                let (key, upper) = est.estimate(slot);
                let exact = exact_key(metric, q, r);
                over += (exact > upper) as usize;
                total += 1;
                err += (key - exact) as f64;
            }
        }
        // The bound is ε0 spreads of the estimator's error, so a one-sided Gaussian
        // tail's share lies above it.
        assert!(over * 100 <= total, "{metric:?}: {over} of {total} above the bound");
        // Unbiased: the errors' mean is small beside the keys' spread.
        assert!(
            (err / total as f64).abs() < 0.02,
            "{metric:?}: mean error {}",
            err / total as f64
        );
    }
}

#[test]
fn the_rotation_is_orthogonal_and_reproducible() {
    for d in [64, 128, 384, 448] {
        let mut rng = Rng(d as u64);
        let x: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let z: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let (mut rx, mut rz) = (x.clone(), z.clone());
        binary::rotate_for_test(d, 42, &mut rx);
        binary::rotate_for_test(d, 42, &mut rz);
        let dot = |a: &[f32], b: &[f32]| crate::kernels::dot(a, b);
        assert!((dot(&rx, &rz) - dot(&x, &z)).abs() < 1e-3 * d as f32, "{d}");
        assert!((dot(&rx, &rx) / dot(&x, &x) - 1.0).abs() < 1e-4, "{d}");
        let mut again = x.clone();
        binary::rotate_for_test(d, 42, &mut again);
        assert_eq!(again, rx);
        // Mixed: a basis vector's mass is spread over most coordinates.
        let mut e = vec![0f32; d];
        e[d - 1] = 1.0;
        binary::rotate_for_test(d, 42, &mut e);
        let spread = e.iter().filter(|x| x.abs() > 0.1 / (d as f32).sqrt()).count();
        assert!(spread * 10 >= d * 8, "{d}: {spread}");
    }
}

#[test]
fn push_replace_and_remove_follow_the_rows_slots() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let (initial, extra) = clustered(50, 30, 64, metric, 13);
            let mut codes = build(quant, metric, &initial);
            let mut mirror = initial.clone();
            let mut extra = extra.into_iter();
            for step in 0..60 {
                match step % 3 {
                    0 => {
                        let v = extra.next().unwrap_or_else(|| initial[step].clone());
                        codes.push(&v);
                        mirror.push(v);
                    }
                    1 => {
                        let slot = (step * 7) % mirror.len();
                        mirror[slot] = initial[(step * 3) % initial.len()].clone();
                        codes.replace(slot as u32, &mirror[slot]);
                    }
                    _ => {
                        let slot = (step * 5) % mirror.len();
                        mirror.swap_remove(slot);
                        codes.remove(slot as u32);
                    }
                }
            }
            assert_eq!(codes.len(), mirror.len());
            let q = &initial[0];
            let est = codes.estimator(q);
            for (slot, v) in mirror.iter().enumerate() {
                // The same row coded afresh with the same parameters scores the same.
                let mut fresh = build(quant, metric, &initial);
                fresh.push(v);
                let want = fresh.estimator(q).estimate(initial.len());
                assert_eq!(est.estimate(slot), want, "{quant:?} {metric:?} slot {slot}");
            }
        }
    }
}

#[test]
fn codes_round_trip_through_bytes_and_damaged_bytes_are_refused() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let (rows, queries) = clustered(40, 2, 72, metric, 17);
            let codes = build(quant, metric, &rows);
            let bytes = codes.to_bytes();
            let back = Codes::from_bytes(&bytes, 72, metric).unwrap();
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.coarse_top(&queries[0], 10), codes.coarse_top(&queries[0], 10));
            assert!(!back.stale());

            for at in (0..bytes.len()).step_by(7) {
                let mut bad = bytes.clone();
                bad[at] ^= 0x10;
                let e = Codes::from_bytes(&bad, 72, metric)
                    .err()
                    .expect("a flipped bit is found");
                assert_eq!(e.code, Code::Storage, "byte {at}");
            }
            for len in [0, 10, bytes.len() - 1] {
                assert_eq!(
                    Codes::from_bytes(&bytes[..len], 72, metric).err().unwrap().code,
                    Code::Storage
                );
            }
            let other = if metric == Metric::Dot {
                Metric::Cosine
            } else {
                Metric::Dot
            };
            assert!(Codes::from_bytes(&bytes, 72, other).is_err());
            assert!(Codes::from_bytes(&bytes, 73, metric).is_err());

            // A newer format, checksummed as it would be: refused as such.
            let mut newer = bytes[..bytes.len() - 8].to_vec();
            newer[4] = VERSION + 1;
            let sum = xxh3_64(&newer);
            newer.extend_from_slice(&sum.to_le_bytes());
            let e = Codes::from_bytes(&newer, 72, metric).err().unwrap();
            assert_eq!(e.code, Code::UnsupportedVersion);
        }
    }
}

#[test]
fn stale_once_the_rows_double() {
    let (rows, _) = clustered(20, 0, 16, Metric::Dot, 1);
    let mut codes = build(Quantization::Int8, Metric::Dot, &rows[..10]);
    assert!(!codes.stale());
    for r in &rows[10..19] {
        codes.push(r);
    }
    assert!(!codes.stale());
    codes.push(&rows[19]);
    assert!(codes.stale());
    let empty = Codes::build(Quantization::Binary, 16, Metric::Dot, 0, std::iter::empty()).unwrap();
    let mut empty = empty;
    assert!(empty.is_empty() && !empty.stale());
    empty.push(&rows[0]);
    assert!(empty.stale(), "codes learnt from no rows are stale at the first");
}

#[test]
fn coarse_top_where_skips_what_keep_refuses() {
    let (rows, queries) = clustered(200, 1, 32, Metric::Cosine, 2);
    let codes = build(Quantization::Int8, Metric::Cosine, &rows);
    let all = codes.coarse_top(&queries[0], 200);
    let even = codes.coarse_top_where(&queries[0], 20, |s| s % 2 == 0);
    let want: Vec<Estimate> = all.into_iter().filter(|e| e.slot % 2 == 0).take(20).collect();
    assert_eq!(even, want);
}

#[test]
fn coarse_top_is_the_best_estimates_of_every_slot() {
    // Enough slots that the shortlist is cut several times and the binary scan skips
    // blocks below its floor; sizes that leave a last block part full.
    for (quant, n, fetch) in [
        (Quantization::Binary, 3_001, 40),
        (Quantization::Binary, 517, 7),
        (Quantization::Int8, 1_203, 25),
    ] {
        let (rows, queries) = clustered(n, 3, 64, Metric::Cosine, 17);
        let codes = build(quant, Metric::Cosine, &rows);
        for q in &queries {
            let prepared = codes.prepare(q);
            let mut all: Vec<Estimate> = (0..n)
                .map(|slot| {
                    let (key, upper) = codes.estimate(&prepared, slot);
                    Estimate {
                        slot: slot as u32,
                        key,
                        upper,
                    }
                })
                .collect();
            all.sort_unstable_by(|a, b| b.key.total_cmp(&a.key).then(a.slot.cmp(&b.slot)));
            all.truncate(fetch);
            assert_eq!(codes.coarse_top(q, fetch), all, "{quant:?}, {n} slots");
        }
    }
}

/// Weighs the query forms each codec could take (run with `--release -- --ignored
/// --nocapture`): int8 with an f32 or an i8 query; binary with a table of byte sums or
/// RaBitQ's 4-bit query and bit-plane popcounts. Prints time and error; asserts nothing.
#[test]
#[ignore]
fn query_forms() {
    use std::hint::black_box;
    use std::time::Instant;
    let metric = Metric::Cosine;
    let (rows, queries) = clustered(20000, 20, 384, metric, 4);
    let codes = build(Quantization::Int8, metric, &rows);
    let Codec::Int8(c) = &codes.codec else { unreachable!() };
    let (mut ef, mut ei) = (0f64, 0f64);
    let (mut tf, mut ti) = (0f64, 0f64);
    for q in &queries {
        let t = Instant::now();
        let fq = c.key_f32(q);
        let kf: Vec<f32> = (0..rows.len()).map(|s| black_box(fq(s))).collect();
        tf += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let iq = c.query(q);
        let ki: Vec<f32> = (0..rows.len()).map(|s| black_box(c.key(&iq, s))).collect();
        ti += t.elapsed().as_secs_f64();
        for (s, r) in rows.iter().enumerate() {
            let e = exact_key(metric, q, r);
            ef += ((kf[s] - e) as f64).abs();
            ei += ((ki[s] - e) as f64).abs();
        }
    }
    let per = |t: f64| t / queries.len() as f64 * 1e3;
    let n = (rows.len() * queries.len()) as f64;
    println!("int8 f32 query: {:.3} ms/scan, mean |err| {:.2e}", per(tf), ef / n);
    println!("int8 i8 query:  {:.3} ms/scan, mean |err| {:.2e}", per(ti), ei / n);

    let codes = build(Quantization::Binary, metric, &rows);
    let Codec::Binary(b) = &codes.codec else { unreachable!() };
    let (mut tt, mut ts, mut diff) = (0f64, 0f64, 0f64);
    for q in &queries {
        let t = Instant::now();
        let (exact, _, _) = b.query_forms(q);
        let se: Vec<f32> = (0..rows.len()).map(|s| black_box(exact(s))).collect();
        tt += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let bq = b.query(q);
        let mut sk = vec![0f32; rows.len()];
        b.scan(&bq, |s, key, _| {
            sk[s] = black_box(key);
            f32::NEG_INFINITY
        });
        ts += t.elapsed().as_secs_f64();
        let (_, tables, _) = b.query_forms(q);
        diff += se
            .iter()
            .enumerate()
            .map(|(s, &e)| (e - tables(s)).abs() as f64)
            .sum::<f64>();
    }
    println!("binary exact <b,q'> by bits: {:.3} ms/scan", per(tt));
    println!(
        "binary nibble-table scan:    {:.3} ms/scan, mean |<b,q'> rounding| {:.2e}",
        per(ts),
        diff / n
    );
}

#[test]
fn binary_tables_round_a_code_s_sum_within_their_slack_and_the_scan_agrees_with_one_slot() {
    for (dim, metric) in [(384, Metric::Cosine), (100, Metric::Euclidean), (1536, Metric::Dot)] {
        let (rows, queries) = clustered(300, 4, dim, metric, 31);
        let codes = build(Quantization::Binary, metric, &rows);
        let Codec::Binary(b) = &codes.codec else { unreachable!() };
        for q in &queries {
            let (exact, tables, slack) = b.query_forms(q);
            let worst = (0..rows.len())
                .map(|s| (exact(s) - tables(s)).abs())
                .fold(0f32, f32::max);
            // The slack is half a step a nibble; float sums add a little.
            assert!(
                worst <= slack * 1.001 + 1e-5,
                "dim {dim}: {worst} against slack {slack}"
            );
            let bq = b.query(q);
            let mut scanned = Vec::new();
            b.scan(&bq, |s, key, bound| {
                scanned.push((s, key, bound));
                f32::NEG_INFINITY
            });
            let one: Vec<_> = (0..rows.len()).map(|s| (s, b.key(&bq, s).0, b.key(&bq, s).1)).collect();
            assert_eq!(scanned, one, "dim {dim}");
        }
    }
}

#[test]
fn the_code_kernels_are_the_exact_integer_dot_at_every_length() {
    let mut r = Rng(99);
    for dim in (1..=40).chain([383, 384, 1536]) {
        let w: Vec<i16> = (0..dim).map(|_| (r.next() % 255) as i16 - 127).collect();
        let c: Vec<u8> = (0..dim).map(|_| r.next() as u8).collect();
        let want: i64 = w.iter().zip(&c).map(|(&x, &y)| x as i64 * y as i64).sum();
        assert_eq!(crate::kernels::dot_codes(&w, &c) as i64, want, "dim {dim}");
        let d: Vec<u8> = c.iter().rev().copied().collect();
        let pair = crate::kernels::dot_codes_pair(&w, [&c, &d]);
        assert_eq!(
            pair,
            [&c, &d].map(|r| crate::kernels::dot_codes(&w, r)),
            "dim {dim}: the pair form"
        );
        // The extremes: every product at its largest, of either sign.
        for x in [127i16, -127] {
            let w = vec![x; dim];
            let c = vec![255u8; dim];
            assert_eq!(crate::kernels::dot_codes(&w, &c) as i64, x as i64 * 255 * dim as i64);
        }
    }
}
