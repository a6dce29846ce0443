//! The graph's tests, by topic: `recall` against brute force for every metric,
//! `churn`, `filter`, `bytes` (restore), `int8` (a walk on codes), `shared` (a build
//! on two workers). Here: the data and helpers they share.

use super::persist::HEAD_WORDS;
use super::*;
use crate::error::{Code, Error};
use crate::quant::Quantization;
use crate::vector::prepare;
use serde_json::json;

const DIM: usize = 32;

/// Deterministic floats in [-1, 1) (xorshift), so failures reproduce.
fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.max(1);
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `n` raw vectors around 40 centres, with norms spread over [0.5, 1.5] so that dot
/// and Euclidean rank differently from cosine.
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    let mut centres = rng(7);
    let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..DIM).map(|_| centres()).collect()).collect();
    (0..n)
        .map(|_| {
            let c = &centres[((r() + 1.0) * 20.0) as usize % 40];
            let scale = 1.0 + r() * 0.5;
            c.iter().map(|x| (x + 0.35 * r()) * scale).collect()
        })
        .collect()
}

/// The oracle: every row scored in f64 from the raw vectors, best first, ties by id.
fn brute_force(metric: Metric, q: &[f32], rows: &[(String, Vec<f32>)], k: usize) -> Vec<String> {
    let score = |v: &[f32]| {
        let dot: f64 = q.iter().zip(v).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |x: &[f32]| x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        match metric {
            Metric::Dot => dot,
            Metric::Cosine => dot / (norm(q) * norm(v)),
            // Negated so that larger is closer, as for the others.
            Metric::Euclidean => -q
                .iter()
                .zip(v)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>(),
        }
    };
    let mut all: Vec<(f64, &str)> = rows.iter().map(|(id, v)| (score(v), id.as_str())).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    all.into_iter().take(k).map(|(_, id)| id.to_owned()).collect()
}

fn params() -> Params {
    Params {
        ef_construction: 100,
        ..Params::default()
    }
}

fn rows(n: usize, seed: u64) -> Vec<(String, Vec<f32>)> {
    clustered(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("r{i:05}"), v))
        .collect()
}

fn upsert(h: &mut Hnsw, metric: Metric, id: &str, v: &[f32], metadata: Option<Metadata>) {
    let mut p = Vec::new();
    prepare(metric, v, &mut p);
    h.upsert(id, &p, metadata);
}

fn build(metric: Metric, rows: &[(String, Vec<f32>)]) -> Hnsw {
    build_on(metric, Quantization::None, rows)
}

fn build_on(metric: Metric, quant: Quantization, rows: &[(String, Vec<f32>)]) -> Hnsw {
    let mut h = Hnsw::new(DIM, metric, params(), quant);
    for (id, v) in rows {
        upsert(
            &mut h,
            metric,
            id,
            v,
            Some(
                json!({ "n": id[1..].parse::<u32>().unwrap() })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        );
    }
    h
}

fn query(k: usize, filter: Option<&Filter>, ef: Option<usize>) -> Query<'_> {
    Query {
        filter,
        ef,
        ..Query::nearest(k)
    }
}

fn ids(h: &Hnsw, metric: Metric, q: &[f32], query: &Query) -> Vec<String> {
    let mut p = Vec::new();
    prepare(metric, q, &mut p);
    h.search_many(&p, query)[0]
        .iter()
        .map(|hit| hit.id.to_owned())
        .collect()
}

/// Mean recall@k of `h` against the oracle over `queries`, among the rows `truth`.
fn recall(h: &Hnsw, metric: Metric, truth: &[(String, Vec<f32>)], queries: &[Vec<f32>], query: &Query) -> f64 {
    let mut hit = 0;
    for q in queries {
        let want = brute_force(metric, q, truth, query.k);
        let got = ids(h, metric, q, query);
        hit += got.iter().filter(|id| want.contains(id)).count();
    }
    hit as f64 / (queries.len() * query.k) as f64
}

/// Deletes `count` random rows of `live` from `h`.
fn delete_some(h: &mut Hnsw, live: &mut Vec<(String, Vec<f32>)>, r: &mut impl FnMut() -> f32, count: usize) {
    for _ in 0..count {
        let i = ((r() + 1.0) / 2.0 * live.len() as f32) as usize % live.len();
        assert!(h.remove(&live.swap_remove(i).0));
    }
}

/// Inserts the next `count` rows of `all` (from row `*next` on) into `h` and `live`.
fn insert_some(
    h: &mut Hnsw,
    metric: Metric,
    live: &mut Vec<(String, Vec<f32>)>,
    all: &[(String, Vec<f32>)],
    next: &mut usize,
    count: usize,
) {
    for _ in 0..count {
        let (id, v) = (format!("n{:05}", *next), all[*next].1.clone());
        upsert(h, metric, &id, &v, None);
        live.push((id, v));
        *next += 1;
    }
}

/// The committed real embeddings (tests/fixtures/minilm-2k): 2,000 rows and 64 queries
/// of 384 dimensions, unit length.
fn minilm() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/minilm-2k");
    let read = |name: &str| -> Vec<Vec<f32>> {
        let bytes = std::fs::read(format!("{dir}/{name}")).expect("the fixture");
        let all: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        all.chunks_exact(384).map(<[f32]>::to_vec).collect()
    };
    (read("base.f32"), read("queries.f32"))
}

/// Every hit of `h` for the prepared `q` with its score as an exact scan gives it, bit for
/// bit: the scores of a walk on codes are re-ranked ones.
fn assert_exact_scores(h: &Hnsw, metric: Metric, q: &[f32], query: &Query) {
    let mut p = Vec::new();
    prepare(metric, q, &mut p);
    for hit in &h.search_many(&p, query)[0] {
        let slot = h.rows.slot(hit.id).unwrap();
        let key = h.space.exact(&h.rows, &p, slot);
        let sign = if metric.higher_is_closer() { 1.0 } else { -1.0 };
        assert_eq!(hit.score, metric.public_score(sign * key), "{metric:?} {}", hit.id);
    }
}

/// The rows of `rows` (ids `r<n>`, metadata `{"n": n}` as [`rows`] makes them) that
/// `filter` passes: a filtered search's brute-force truth.
fn passing(filter: &Filter, rows: &[(String, Vec<f32>)]) -> Vec<(String, Vec<f32>)> {
    rows.iter()
        .filter(|(id, _)| {
            filter.matches(Some(
                json!({ "n": id[1..].parse::<u32>().unwrap() }).as_object().unwrap(),
            ))
        })
        .cloned()
        .collect()
}

fn prepared(metric: Metric, v: &[f32]) -> Vec<f32> {
    let mut p = Vec::new();
    prepare(metric, v, &mut p);
    p
}

mod bytes;
mod churn;
mod filter;
mod int8;
mod recall;
mod shared;
