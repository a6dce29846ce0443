//! Measures quantized search on a real embedding set: for no codes, int8 and binary,
//! the bytes a vector takes, recall@10 after re-ranking a few depths of candidates,
//! and queries a second (one thread, one query at a time) of a scan over the codes plus
//! the re-rank, beside the exact f32 flat scan.
//!
//! Usage: quant_recall [DIR] [DIM]; DIR holds base.f32 and queries.f32 (row-major
//! little-endian f32) and gt.i32 (100 exact neighbour row numbers a query, best first),
//! by default /work/shared/data/code-minilm-20k at 384 dimensions. Run it with
//! `cargo run -p quiver --release --example quant_recall`.

use quiver::index::flat::Flat;
use quiver::index::{Id, Index, Query};
use quiver::metric::Metric;
use quiver::quant::{Codes, Estimate, Quantization};
use quiver::vector::prepare;
use std::time::Instant;

#[path = "shared/data.rs"]
mod data;

fn main() {
    let data::Set {
        dim,
        base,
        queries: raw_queries,
        gt,
        n,
        nq,
        depth,
    } = data::load();
    let metric = Metric::Cosine;
    let k = 10;
    println!("{n} rows x {dim}, {nq} queries, recall@{k}");

    let prep = |v: &[f32]| {
        let mut p = Vec::new();
        prepare(metric, v, &mut p);
        p
    };
    let rows: Vec<Vec<f32>> = base.chunks_exact(dim).map(prep).collect();
    let queries: Vec<Vec<f32>> = raw_queries.chunks_exact(dim).map(prep).collect();
    let ids: Vec<Id> = (0..n).map(|i| Id::from(i.to_string())).collect();
    let truth = |qi: usize| &gt[qi * depth..qi * depth + k];
    let recall_of = |found: &mut dyn FnMut(usize) -> Vec<u32>| {
        let hits: usize = (0..nq)
            .map(|qi| {
                let got = found(qi);
                truth(qi).iter().filter(|&&t| got.contains(&(t as u32))).count()
            })
            .sum();
        hits as f64 / (nq * k) as f64
    };

    let mut flat = Flat::new(dim, metric, Quantization::None);
    for (id, r) in ids.iter().zip(&rows) {
        flat.upsert(id, r, None);
    }
    let query = Query {
        k,
        filter: None,
        threshold: None,
        ef: None,
        fetch: None,
    };
    let t = Instant::now();
    let flat_recall = recall_of(&mut |qi| {
        flat.search_many(&queries[qi], &query)[0]
            .iter()
            .map(|h| h.id.parse().unwrap())
            .collect()
    });
    let flat_qps = nq as f64 / t.elapsed().as_secs_f64();
    println!(
        "none:   {:4} bytes/vector, recall {flat_recall:.4}, {flat_qps:7.0} q/s (exact f32 flat scan)",
        dim * 4
    );

    for quant in [Quantization::Int8, Quantization::Binary] {
        let t = Instant::now();
        let codes = Codes::build(quant, dim, metric, 1, rows.iter().map(|r| r.as_slice())).expect("a codec");
        let build = t.elapsed().as_secs_f64();
        let name = quant.as_str();
        println!(
            "{name}: {:4} bytes/vector ({:.1}x smaller), built in {build:.2} s",
            codes.bytes_per_slot(),
            (dim * 4) as f64 / codes.bytes_per_slot() as f64
        );
        let row = |s: usize| rows[s].as_slice();
        for mult in [1, 2, 4, 10, 20, 40] {
            let fetch = k * mult;
            let t = Instant::now();
            let r = recall_of(&mut |qi| {
                let q = &queries[qi];
                let coarse = codes.coarse_top(q, fetch);
                codes.rerank(q, &coarse, k, &ids, row).iter().map(|c| c.slot).collect()
            });
            let qps = nq as f64 / t.elapsed().as_secs_f64();
            // The same candidates re-ranked whole, to show what pruning by the bound costs.
            let unpruned = recall_of(&mut |qi| {
                let q = &queries[qi];
                let coarse: Vec<Estimate> = codes
                    .coarse_top(q, fetch)
                    .into_iter()
                    .map(|e| Estimate {
                        upper: f32::INFINITY,
                        ..e
                    })
                    .collect();
                codes.rerank(q, &coarse, k, &ids, row).iter().map(|c| c.slot).collect()
            });
            let default = if fetch == quant.default_fetch(k) {
                " (default)"
            } else {
                ""
            };
            println!(
                "  re-rank {fetch:4}: recall {r:.4} (without pruning {unpruned:.4}), {qps:7.0} q/s, {:.2}x flat{default}",
                qps / flat_qps
            );
        }
    }
}
