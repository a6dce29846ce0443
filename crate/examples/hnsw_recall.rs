//! Builds an HNSW graph over a real embedding set and prints its build time, and for
//! several efSearch its queries a second (one thread, one query at a time) and its
//! recall@10 against the set's exact top 100; and the same for exact search, as the
//! baseline.
//!
//! Usage: hnsw_recall [DIR] [DIM] [QUANT]; QUANT is `none` (the default) or `int8`, the
//! codes the graph is built and walked on; DIR holds base.f32 and queries.f32 (row-major
//! little-endian f32) and gt.i32 (100 exact neighbour row numbers a query, best first),
//! by default /work/shared/data/code-minilm-20k at 384 dimensions. Run it with
//! `cargo run -p quiver --release --example hnsw_recall`.

use quiver::index::flat::Flat;
use quiver::index::hnsw::{self, Hnsw, Params};
use quiver::index::{Batch, Index, Query};
use quiver::metric::Metric;
use quiver::quant::Quantization;
use quiver::vector::prepare;
use std::time::Instant;

#[path = "shared/data.rs"]
mod data;

fn main() {
    let data::Set {
        dim,
        base,
        queries,
        gt,
        n,
        nq,
        depth,
    } = data::load();
    let metric = Metric::Cosine;
    let params = Params::default();
    let quant = std::env::args()
        .nth(3)
        .map_or(Ok(Quantization::None), |q| Quantization::parse(&q, "QUANT"))
        .expect("QUANT is none or int8");
    println!(
        "{n} rows x {dim}, {nq} queries, M {} efConstruction {}, quantization {}",
        params.m,
        params.ef_construction,
        quant.as_str()
    );

    let mut index = Hnsw::new(dim, metric, params, quant);
    let mut flat = Flat::new(dim, metric, Quantization::None);
    let mut prepared = Vec::with_capacity(dim);
    let t0 = Instant::now();
    for (i, row) in base.chunks_exact(dim).enumerate() {
        prepare(metric, row, &mut prepared);
        index.upsert(&i.to_string(), &prepared, None);
    }
    let build = t0.elapsed().as_secs_f64();
    println!("build: {build:.2} s ({:.0} rows/s)", n as f64 / build);
    let (shared, shared_build) = build_shared(dim, metric, params, quant, &base);
    println!(
        "shared build, two threads, batches of {BATCH}: {shared_build:.2} s ({:.2}x one thread)",
        build / shared_build
    );
    for (i, row) in base.chunks_exact(dim).enumerate() {
        prepare(metric, row, &mut prepared);
        flat.upsert(&i.to_string(), &prepared, None);
    }

    let prepared_queries: Vec<Vec<f32>> = queries
        .chunks_exact(dim)
        .map(|q| {
            let mut p = Vec::new();
            prepare(metric, q, &mut p);
            p
        })
        .collect();
    let indexes: [(&str, &dyn Index); 7] = [
        ("hnsw ef  16", &index),
        ("hnsw ef  32", &index),
        ("hnsw ef  64", &index),
        ("hnsw ef 128", &index),
        ("shared ef 32", &shared),
        ("shared ef 64", &shared),
        ("flat (exact)", &flat),
    ];
    for ((name, index), ef) in indexes.into_iter().zip([16, 32, 64, 128, 32, 64, 0]) {
        let query = Query {
            k: 10,
            filter: None,
            threshold: None,
            ef: Some(ef).filter(|&ef| ef > 0),
            fetch: None,
        };
        let t0 = Instant::now();
        let answers: Vec<Vec<usize>> = prepared_queries
            .iter()
            .map(|q| {
                index.search_many(q, &query)[0]
                    .iter()
                    .map(|h| h.id.parse().unwrap())
                    .collect()
            })
            .collect();
        let secs = t0.elapsed().as_secs_f64();
        let hits: usize = answers
            .iter()
            .enumerate()
            .map(|(i, got)| {
                let want = &gt[i * depth..i * depth + 10];
                got.iter().filter(|&&g| want.contains(&(g as i32))).count()
            })
            .sum();
        println!(
            "{name:<12}: {:>7.0} queries/s, recall@10 {:.4}",
            nq as f64 / secs,
            hits as f64 / (nq * 10) as f64
        );
    }
}

/// Rows an insert call carries, as the browser benchmark's batches.
const BATCH: usize = 1000;

/// The same graph built in batches of [`BATCH`] with a helper on a second thread (as a
/// second worker helps in the browser); the graph and the seconds it took.
fn build_shared(dim: usize, metric: Metric, params: Params, quant: Quantization, base: &[f32]) -> (Hnsw, f64) {
    let batches = base.len().div_ceil(dim * BATCH);
    let (mut peer, mut theirs) = hnsw::pair();
    let helper = std::thread::spawn(move || {
        let mut mirror = None;
        for _ in 0..batches {
            hnsw::help(&mut mirror, "graph", &mut theirs);
        }
    });
    let mut index = Hnsw::new(dim, metric, params, quant);
    let mut prepared = Vec::with_capacity(dim);
    let t0 = Instant::now();
    for (b, rows) in base.chunks(dim * BATCH).enumerate() {
        let ids: Vec<String> = (0..rows.len() / dim).map(|i| (b * BATCH + i).to_string()).collect();
        let mut vectors = Vec::with_capacity(rows.len());
        for row in rows.chunks_exact(dim) {
            prepare(metric, row, &mut prepared);
            vectors.extend_from_slice(&prepared);
        }
        let metadata = vec![None; ids.len()];
        index
            .upsert_batch(
                Batch {
                    ids: &ids,
                    vectors: &vectors,
                    metadata,
                },
                Some(&mut peer),
                &mut || Ok(()),
            )
            .expect("no store to fail");
    }
    let secs = t0.elapsed().as_secs_f64();
    helper.join().expect("the helper thread");
    (index, secs)
}
