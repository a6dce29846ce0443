//! The native baseline for `npm run bench`: the same core, compiled for this CPU,
//! inserting and searching the same data as the wasm builds do in the browser.
//!
//! Usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K REPEAT [THREADS]
//! Prints one JSON object: insert rate, per-query times and the result ids. With
//! THREADS > 1 it also splits the rows over that many threads, each with its own
//! database, and times both layouts a round of queries at a time, turn about, so the
//! two see the same machine: the ratio is what more cores give this scan natively,
//! the ceiling a pool of workers in the browser is measured against.

use quiver::{Database, Metric, Record, SearchOptions};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::with_capacity(bytes.len() / 4);
    quiver::store::read_f32(&bytes, &mut out);
    out
}

/// A memory database holding rows `first..` of `base` (ids are row numbers), loaded in
/// batches of 1,000; returns it and the seconds the inserts took.
fn load(base: &[f32], first: usize, dim: usize, metric: Metric) -> (Database, f64) {
    let mut db = Database::open_in_memory("native").unwrap();
    db.create_collection("bench", dim, metric).unwrap();
    let t0 = Instant::now();
    for (b, rows) in base.chunks(1000 * dim).enumerate() {
        let ids: Vec<String> = (0..rows.len() / dim)
            .map(|i| (first + b * 1000 + i).to_string())
            .collect();
        let batch: Vec<Record> = rows
            .chunks_exact(dim)
            .zip(&ids)
            .map(|(v, id)| Record {
                id: Some(id.clone()),
                vector: v,
                ..Default::default()
            })
            .collect();
        db.upsert("bench", batch).unwrap();
    }
    (db, t0.elapsed().as_secs_f64())
}

/// One search's hits as (id, score).
fn hits(db: &mut Database, q: &[f32], opts: &SearchOptions) -> Vec<(String, f32)> {
    let hits = db.search("bench", q, opts).unwrap();
    hits.iter().map(|h| (h.id.to_owned(), h.score)).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, queries, dim, metric, k, repeat, threads) = match &args[..] {
        [_, b, q, d, m, k, r] => (b, q, d, m, k, r, "1"),
        [_, b, q, d, m, k, r, t] => (b, q, d, m, k, r, t.as_str()),
        _ => panic!("usage: native_search BASE.f32 QUERIES.f32 DIM METRIC K REPEAT [THREADS]"),
    };
    let dim: usize = dim.parse().expect("DIM");
    let k: usize = k.parse().expect("K");
    let repeat: usize = repeat.parse().expect("REPEAT");
    let threads: usize = threads.parse().expect("THREADS");
    let metric = Metric::parse(metric, "METRIC").expect("METRIC");
    let (base, queries) = (read_f32(base), read_f32(queries));
    let opts = SearchOptions {
        k,
        ..Default::default()
    };
    let (mut db, insert_s) = load(&base, 0, dim, metric);
    let rows = base.len() / dim;
    let part = rows.div_ceil(threads);

    let mut ms = Vec::new();
    let mut results = Vec::new();
    let mut pool_ms = Vec::new();
    let mut pool_results = Vec::new();
    // Workers wait at `start` for the next query (None ends them), search their part,
    // leave their hits in `merged` and meet the main thread at `done`.
    let start = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let query: Mutex<Option<Vec<f32>>> = Mutex::new(None);
    let merged: Mutex<Vec<(String, f32)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        if threads > 1 {
            for t in 0..threads {
                let (start, done, query, merged, opts) = (&start, &done, &query, &merged, &opts);
                let rows = &base[(t * part * dim).min(base.len())..((t + 1) * part * dim).min(base.len())];
                s.spawn(move || {
                    let (mut db, _) = load(rows, t * part, dim, metric);
                    loop {
                        start.wait();
                        let Some(q) = query.lock().unwrap().clone() else { return };
                        let found = hits(&mut db, &q, opts);
                        merged.lock().unwrap().extend(found);
                        done.wait();
                    }
                });
            }
        }
        for r in 0..repeat {
            for q in queries.chunks_exact(dim) {
                let t = Instant::now();
                let found = hits(&mut db, q, &opts);
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if r == 0 {
                    results.push(found.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
                }
            }
            if threads == 1 {
                continue;
            }
            for q in queries.chunks_exact(dim) {
                *query.lock().unwrap() = Some(q.to_vec());
                let t = Instant::now();
                start.wait();
                done.wait();
                let mut found = std::mem::take(&mut *merged.lock().unwrap());
                found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                found.truncate(k);
                pool_ms.push(t.elapsed().as_secs_f64() * 1e3);
                if r == 0 {
                    pool_results.push(found.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
                }
            }
        }
        if threads > 1 {
            *query.lock().unwrap() = None;
            start.wait();
        }
    });
    let mut out = serde_json::json!({
        "insert_per_s": rows as f64 / insert_s,
        "ms": ms,
        "results": results,
        "scan_bytes": db.scan_bytes("bench").unwrap(),
    });
    if threads > 1 {
        out["pool_ms"] = pool_ms.into();
        out["pool_results"] = pool_results.into();
    }
    println!("{out}");
}
