//! The native baseline for `npm run bench`: the same core, compiled for this CPU,
//! inserting and searching the same data as the wasm builds do in the browser.
//!
//! Usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K REPEAT
//! Prints one JSON object: insert rate, per-query times and the result ids.

use quiver::{Database, Metric, Record, SearchOptions};
use std::time::Instant;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::with_capacity(bytes.len() / 4);
    quiver::store::read_f32(&bytes, &mut out);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, queries, dim, metric, k, repeat] = &args[..] else {
        panic!("usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K REPEAT");
    };
    let dim: usize = dim.parse().expect("DIM");
    let k: usize = k.parse().expect("K");
    let repeat: usize = repeat.parse().expect("REPEAT");
    let metric = Metric::parse(metric, "METRIC").expect("METRIC");
    let (base, queries) = (read_f32(base), read_f32(queries));

    let mut db = Database::open_in_memory("native").unwrap();
    db.create_collection("bench", dim, metric).unwrap();
    let ids: Vec<String> = (0..base.len() / dim).map(|i| i.to_string()).collect();
    let t0 = Instant::now();
    for (rows, chunk_ids) in base.chunks(1000 * dim).zip(ids.chunks(1000)) {
        let batch: Vec<Record> = rows
            .chunks_exact(dim)
            .zip(chunk_ids)
            .map(|(v, id)| Record {
                id: Some(id.clone()),
                vector: v,
                ..Default::default()
            })
            .collect();
        db.upsert("bench", batch).unwrap();
    }
    let insert_s = t0.elapsed().as_secs_f64();

    let opts = SearchOptions {
        k,
        ..Default::default()
    };
    let mut ms = Vec::new();
    let mut results = Vec::new();
    for r in 0..repeat {
        for q in queries.chunks_exact(dim) {
            let t = Instant::now();
            let hits = db.search("bench", q, &opts).unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            if r == 0 {
                results.push(hits.iter().map(|h| h.id.to_owned()).collect::<Vec<_>>());
            }
        }
    }
    let out = serde_json::json!({
        "insert_per_s": (base.len() / dim) as f64 / insert_s,
        "ms": ms,
        "results": results,
        "scan_bytes": db.scan_bytes("bench").unwrap(),
    });
    println!("{out}");
}
