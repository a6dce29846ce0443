//! Quantized flat collections through the database: the scores they return are the
//! exact collection's, their recall@10 is close to it, filters and thresholds hold over
//! the re-ranked rows, updates and deletes keep the codes in step, and bad settings or
//! `fetch` values are refused.

use quiver::index::{hnsw, Kind};
use quiver::quant::Quantization;
use quiver::{Code, Database, Filter, Metric, Record, SearchOptions};
use serde_json::json;
use std::collections::HashMap;

const DIM: usize = 96;
const ROWS: usize = 4_000;
const CLUSTERS: usize = 40;
const K: usize = 10;

/// Floats in [-1, 1) from a seed (xorshift), so failures reproduce.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next()).collect()
    }
}

/// Points around `CLUSTERS` centres, as embeddings gather by topic: row `i` belongs to
/// centre `i % CLUSTERS`.
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let centres = Noise(7).vector(CLUSTERS * DIM);
    let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n)
        .map(|i| {
            let c = &centres[(i % CLUSTERS) * DIM..(i % CLUSTERS + 1) * DIM];
            c.iter().map(|x| x + noise.next()).collect()
        })
        .collect()
}

fn upsert(db: &mut Database, name: &str, rows: &[(String, Vec<f32>)]) {
    let records = rows
        .iter()
        .enumerate()
        .map(|(i, (id, v))| Record {
            id: id.clone(),
            vector: v,
            metadata: Some(json!({"tag": i / CLUSTERS % 4})),
            text: None,
        })
        .collect();
    db.upsert(name, records).unwrap();
}

/// A database holding the same rows in "exact" and in "q", quantized by `quant`.
fn pair(quant: Quantization, metric: Metric) -> (Database, Vec<(String, Vec<f32>)>) {
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection("exact", DIM, metric).unwrap();
    let settings = db.create_collection_with("q", DIM, metric, None, Some(quant)).unwrap();
    assert_eq!(settings.quantization, quant);
    let rows: Vec<(String, Vec<f32>)> = clustered(ROWS, 1)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("r{i}"), v))
        .collect();
    upsert(&mut db, "exact", &rows);
    upsert(&mut db, "q", &rows);
    (db, rows)
}

fn hits(db: &mut Database, name: &str, q: &[f32], opts: &SearchOptions) -> Vec<(String, f32)> {
    db.search(name, q, opts)
        .unwrap()
        .iter()
        .map(|h| (h.id.to_owned(), h.score))
        .collect()
}

/// Recall@k of "q" against "exact" over `queries`, asserting on the way that every
/// hit of "q" carries the exact score (that of the same row in an exact search of
/// all rows) and that "q" keeps to `opts` as the exact search does.
fn recall(db: &mut Database, queries: &[Vec<f32>], opts: &SearchOptions) -> f64 {
    let all = SearchOptions {
        k: ROWS,
        filter: opts.filter.clone(),
        ..Default::default()
    };
    let mut found = 0;
    let mut wanted = 0;
    for q in queries {
        let exact = hits(db, "exact", q, opts);
        let got = hits(db, "q", q, opts);
        let scores: HashMap<String, f32> = hits(db, "exact", q, &all).into_iter().collect();
        for (id, score) in &got {
            assert_eq!(scores.get(id), Some(score), "{id}: not the exact score, or not a match");
        }
        assert!(got.len() <= exact.len());
        wanted += exact.len();
        found += got.iter().filter(|h| exact.iter().any(|e| e.0 == h.0)).count();
    }
    found as f64 / wanted as f64
}

fn queries() -> Vec<Vec<f32>> {
    clustered(60, 2)
}

#[test]
fn quantized_search_returns_exact_scores_at_high_recall() {
    for metric in [Metric::Cosine, Metric::Euclidean] {
        for (quant, floor) in [(Quantization::Int8, 0.97), (Quantization::Binary, 0.95)] {
            let (mut db, _) = pair(quant, metric);
            let opts = SearchOptions {
                k: K,
                ..Default::default()
            };
            let r = recall(&mut db, &queries(), &opts);
            println!("{metric:?} {quant:?}: recall@{K} {r:.4}");
            assert!(r >= floor, "{metric:?} {quant:?}: recall@{K} {r} under {floor}");
            let (vectors, codes) = (db.sizes("q").unwrap().vectors, db.sizes("q").unwrap().codes);
            assert_eq!(vectors, ROWS * DIM * 4);
            assert!(codes > 0 && codes * 3 < vectors, "{quant:?}: {codes} code bytes");
            assert_eq!(db.sizes("exact").unwrap().codes, 0);
            // Re-ranking every row is the exact search.
            let every = SearchOptions {
                k: K,
                fetch: Some(ROWS),
                ..Default::default()
            };
            let q = &queries()[0];
            assert_eq!(hits(&mut db, "q", q, &every), hits(&mut db, "exact", q, &opts));
        }
    }
}

#[test]
fn filters_and_thresholds_hold_over_the_reranked_rows() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        let (mut db, _) = pair(quant, Metric::Cosine);
        let filtered = SearchOptions {
            k: K,
            filter: Some(Filter::parse(&json!({"tag": 1})).unwrap()),
            ..Default::default()
        };
        let r = recall(&mut db, &queries(), &filtered);
        println!("{quant:?} filtered: recall@{K} {r:.4}");
        assert!(r >= 0.95, "{quant:?}: filtered recall@{K} {r}");
        let q = &queries()[3];
        let floor = hits(&mut db, "exact", q, &SearchOptions::default())[4].1;
        let above = SearchOptions {
            k: 50,
            threshold: Some(floor),
            ..Default::default()
        };
        let got = hits(&mut db, "q", q, &above);
        assert!(
            !got.is_empty() && got.len() <= 5 && got.iter().all(|h| h.1 >= floor),
            "{got:?}"
        );
    }
}

#[test]
fn updates_and_deletes_keep_the_codes_in_step() {
    for quant in [Quantization::Int8, Quantization::Binary] {
        let (mut db, rows) = pair(quant, Metric::Cosine);
        let gone: Vec<&str> = rows.iter().step_by(3).map(|r| r.0.as_str()).collect();
        let moved: Vec<(String, Vec<f32>)> = rows
            .iter()
            .skip(1)
            .step_by(3)
            .zip(clustered(ROWS, 3))
            .map(|(r, v)| (r.0.clone(), v))
            .collect();
        for name in ["exact", "q"] {
            assert_eq!(db.delete(name, &gone).unwrap(), gone.len());
            upsert(&mut db, name, &moved);
        }
        assert_eq!(db.count("q").unwrap(), ROWS - gone.len());
        let per_row = db.sizes("q").unwrap().codes / db.count("q").unwrap();
        assert_eq!(db.sizes("q").unwrap().codes, per_row * db.count("q").unwrap());
        let opts = SearchOptions {
            k: K,
            ..Default::default()
        };
        let r = recall(&mut db, &queries(), &opts);
        println!("{quant:?} after updates: recall@{K} {r:.4}");
        assert!(r >= 0.95, "{quant:?}: recall@{K} after updates {r}");
        // A moved row is found where it went, a deleted one nowhere.
        for (id, v) in moved.iter().take(20) {
            assert_eq!(&hits(&mut db, "q", v, &opts)[0].0, id);
        }
        for (id, v) in rows.iter().step_by(3).take(20) {
            assert!(
                hits(&mut db, "q", v, &opts).iter().all(|h| &h.0 != id),
                "{id} was deleted"
            );
        }
    }
}

#[test]
fn the_setting_and_fetch_are_checked_and_change_nothing() {
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection_with("q", 4, Metric::Cosine, None, Some(Quantization::Int8))
        .unwrap();
    let again = db.create_collection_with("q", 4, Metric::Cosine, None, None).unwrap();
    assert_eq!(again.quantization, Quantization::Int8);
    let e = db
        .create_collection_with("q", 4, Metric::Cosine, None, Some(Quantization::Binary))
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert_eq!(
        e.message,
        r#"quantization: collection "q" exists with quantization "int8", not "binary""#
    );
    for index in [Kind::Hnsw(hnsw::Params::default()), Kind::Auto(hnsw::Params::default())] {
        let e = db
            .create_collection_with("g", 4, Metric::Cosine, Some(index), Some(Quantization::Binary))
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(
            e.message,
            format!(
                r#"quantization: index "{}" takes "none" or "int8", not "binary" (only flat scans binary codes)"#,
                index.as_str()
            )
        );
    }
    assert_eq!(db.collection_names().unwrap(), ["q"]);
    let graph = db
        .create_collection_with("g", 4, Metric::Cosine, Some(Kind::Hnsw(hnsw::Params::default())), None)
        .unwrap();
    assert_eq!(graph.quantization, Quantization::None);
    for fetch in [0, quiver::MAX_FETCH_K + 1] {
        let opts = SearchOptions {
            fetch: Some(fetch),
            ..Default::default()
        };
        let e = db.search("q", &[1.0, 0.0, 0.0, 0.0], &opts).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(
            e.message,
            format!("fetch: must be an integer from 1 to 10000, got {fetch}")
        );
    }
    let listed = db.collection_counts().unwrap();
    assert_eq!(listed[1].0.quantization, Quantization::Int8);
}
