//! The graph's tests: recall against brute force for every metric, churn, filters,
//! restore, reproducible builds.

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

#[test]
fn recall_at_10_is_high_for_every_metric() {
    let base = rows(3000, 1);
    let queries = clustered(100, 2);
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let h = build(metric, &base);
        let r = recall(&h, metric, &base, &queries, &query(10, None, None));
        assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
    }
}

#[test]
fn a_higher_ef_recalls_at_least_as_much() {
    let base = rows(3000, 3);
    let queries = clustered(100, 4);
    let h = build(Metric::Cosine, &base);
    let mut last = 0.0;
    for ef in [10, 20, 40, 80, 160] {
        let r = recall(&h, Metric::Cosine, &base, &queries, &query(10, None, Some(ef)));
        assert!(r >= last, "ef {ef}: recall {r} below {last}");
        last = r;
    }
    assert!(last >= 0.98, "ef 160: recall {last}");
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

#[test]
fn churn_keeps_slots_bounded_and_recall_high() {
    let metric = Metric::Euclidean;
    let n = 2000;
    let all = rows(n * 4, 5);
    let mut live: Vec<(String, Vec<f32>)> = all[..n].to_vec();
    let mut h = build(metric, &live);
    let mut next = n;
    let mut r = rng(6);
    for _ in 0..10 {
        // Delete a fifth, chosen at random, then insert as many new rows.
        delete_some(&mut h, &mut live, &mut r, n / 5);
        insert_some(&mut h, metric, &mut live, &all, &mut next, n / 5);
        assert_eq!(h.len(), n);
        assert!(h.slots() <= n * 3 / 2, "{} slots for {n} rows", h.slots());
    }
    assert!(!h.deleted[h.entry.unwrap() as usize]);
    let r = recall(&h, metric, &live, &clustered(100, 8), &query(10, None, None));
    assert!(r >= 0.9, "recall@10 after churn {r}");
}

#[test]
fn heavy_deletes_compact_the_graph_and_keep_recall() {
    // Delete half, insert 30%, delete a fifth, insert back to n.
    let metric = Metric::Cosine;
    let n = 2000;
    let all = rows(n * 2, 12);
    let mut live: Vec<(String, Vec<f32>)> = all[..n].to_vec();
    let mut h = build(metric, &live);
    let mut next = n;
    let mut r = rng(13);
    delete_some(&mut h, &mut live, &mut r, n / 2);
    assert!(h.slots() < n, "half deleted left {} slots: no compaction", h.slots());
    insert_some(&mut h, metric, &mut live, &all, &mut next, n * 3 / 10);
    let fifth = live.len() / 5;
    delete_some(&mut h, &mut live, &mut r, fifth);
    let missing = n - live.len();
    insert_some(&mut h, metric, &mut live, &all, &mut next, missing);
    assert_eq!(h.len(), n);
    assert!(h.slots() <= n * 3 / 2, "{} slots for {n} rows", h.slots());
    assert!(!h.deleted[h.entry.unwrap() as usize]);
    let r = recall(&h, metric, &live, &clustered(100, 8), &query(10, None, None));
    assert!(r >= 0.95, "recall@10 after heavy churn {r}");
}

#[test]
fn deleting_the_entry_point_chooses_another_and_the_last_row_empties_it() {
    let base = rows(300, 9);
    let mut h = build(Metric::Cosine, &base);
    for _ in 0..50 {
        let entry = h.entry.unwrap();
        let id = h.rows.ids()[entry as usize].to_string();
        assert!(h.remove(&id));
        let e = h.entry.unwrap() as usize;
        assert!(!h.deleted[e] && e != entry as usize);
        let top = h.levels[e];
        assert!((0..h.slots()).all(|s| h.deleted[s] || h.levels[s] <= top));
    }
    assert_eq!(h.len(), 250);
    let q = &base[299].1;
    assert!(base[..]
        .iter()
        .any(|(id, _)| ids(&h, Metric::Cosine, q, &query(1, None, None))[0] == *id));
    for (id, _) in &base {
        h.remove(id);
    }
    assert!(h.is_empty() && h.slots() == 0 && h.entry.is_none());
    assert!(ids(&h, Metric::Cosine, q, &query(5, None, None)).is_empty());
}

#[test]
fn an_update_moves_the_row() {
    let metric = Metric::Cosine;
    let base = rows(2000, 10);
    let mut h = build(metric, &base);
    // Move rows onto other rows' places: each must then be found first at its new one.
    for i in (0..2000).step_by(97) {
        let target = &base[(i + 1000) % 2000].1;
        let moved: Vec<f32> = target
            .iter()
            .enumerate()
            .map(|(j, x)| x + 0.02 * (j % 3) as f32)
            .collect();
        upsert(&mut h, metric, &base[i].0, &moved, None);
        assert_eq!(ids(&h, metric, &moved, &query(1, None, None))[0], base[i].0);
    }
    assert_eq!(h.len(), 2000);
    assert_eq!(h.slots(), 2000);
}

#[test]
fn a_selective_filter_returns_k_at_high_recall_and_an_empty_one_nothing() {
    let metric = Metric::Cosine;
    let base = rows(5000, 11);
    let h = build(metric, &base);
    let queries = clustered(50, 12);
    for (share, filter) in [
        (1, json!({ "n": { "$lt": 50 } })),
        (50, json!({ "n": { "$gte": 2500 } })),
    ] {
        let filter = Filter::parse(&filter).unwrap();
        let passing: Vec<_> = base
            .iter()
            .filter(|(id, _)| {
                filter.matches(Some(
                    json!({ "n": id[1..].parse::<u32>().unwrap() }).as_object().unwrap(),
                ))
            })
            .cloned()
            .collect();
        assert_eq!(passing.len(), 5000 * share / 100);
        let plan = h.plan(&filter);
        assert_eq!(plan, if share == 1 { Plan::Exact } else { Plan::Walk });
        let q = query(10, Some(&filter), None);
        for v in &queries {
            assert_eq!(ids(&h, metric, v, &q).len(), 10);
        }
        let r = recall(&h, metric, &passing, &queries, &q);
        assert!(r >= 0.95, "{share}% filter: recall@10 {r}");
    }
    let none = Filter::parse(&json!({ "n": { "$lt": 0 } })).unwrap();
    assert!(ids(&h, metric, &queries[0], &query(10, Some(&none), None)).is_empty());
}

#[test]
fn the_threshold_keeps_what_flat_keeps() {
    use crate::index::flat::Flat;
    let metric = Metric::Euclidean;
    let base = rows(1000, 13);
    let h = build(metric, &base);
    let mut f = Flat::new(DIM, metric, Quantization::None);
    for (id, v) in &base {
        let mut p = Vec::new();
        prepare(metric, v, &mut p);
        f.upsert(id, &p, None);
    }
    let mut p = Vec::new();
    prepare(metric, &clustered(1, 14)[0], &mut p);
    let all = f.search_many(&p, &query(1000, None, None)).remove(0);
    let threshold = all[20].score;
    let q = Query {
        threshold: Some(threshold),
        ..query(50, None, Some(1000))
    };
    let got: Vec<_> = h
        .search_many(&p, &q)
        .remove(0)
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect();
    let want: Vec<_> = f
        .search_many(&p, &q)
        .remove(0)
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect();
    assert_eq!(got, want);
    assert!(got.len() >= 21 && got.len() < 50);
}

#[test]
fn parts_restore_the_same_graph_and_damaged_ones_are_refused() {
    let metric = Metric::Dot;
    let base = rows(1500, 15);
    let mut h = build(metric, &base);
    for (id, _) in base.iter().step_by(7) {
        h.remove(id);
    }
    let Parts {
        blocks,
        ids,
        metadata,
        own,
    } = h.parts();
    let (blocks, ids, metadata, own) = (
        blocks.into_owned(),
        ids.into_owned(),
        metadata.into_owned(),
        own.into_owned(),
    );
    let restore = |own: Vec<u8>| {
        let parts = Parts {
            blocks: Cow::Borrowed(&blocks),
            ids: Cow::Borrowed(&ids),
            metadata: Cow::Borrowed(&metadata),
            own: Cow::Owned(own),
        };
        Hnsw::restore(DIM, metric, Quantization::None, parts)
    };
    let mut back = restore(own.clone()).expect("restores");
    let queries: Vec<f32> = clustered(30, 16).concat();
    let results = |h: &Hnsw| -> Vec<Vec<(String, f32)>> {
        h.search_many(&queries, &query(10, None, Some(40)))
            .into_iter()
            .map(|hits| hits.into_iter().map(|h| (h.id.to_owned(), h.score)).collect())
            .collect()
    };
    assert_eq!(results(&back), results(&h));
    assert_eq!(back.free, h.free);
    // Both go on the same way: the same slots reused, the same levels drawn.
    let more = clustered(300, 18);
    for (i, v) in more.iter().enumerate() {
        let id = format!("x{i}");
        upsert(&mut h, metric, &id, v, None);
        upsert(&mut back, metric, &id, v, None);
    }
    assert_eq!(results(&back), results(&h));
    assert_eq!(back.own_bytes(), h.own_bytes());

    // Damage: a link out of range, a count over capacity, a cut, a version.
    let words = |w: &[u32]| bytemuck::cast_slice::<u32, u8>(w).to_vec();
    let mut w: Vec<u32> = bytemuck::cast_slice(&own).to_vec();
    let links0_at = HEAD_WORDS + 1 + w[HEAD_WORDS] as usize + 1500;
    let mut bad = w.clone();
    bad[links0_at + 1] = 1500;
    assert!(restore(words(&bad)).is_none());
    let mut bad = w.clone();
    bad[links0_at] = 33;
    assert!(restore(words(&bad)).is_none());
    assert!(restore(own[..own.len() - 4].to_vec()).is_none());
    assert!(restore(own[..own.len() - 1].to_vec()).is_none());
    assert!(restore(Vec::new()).is_none());
    w[1] = 3;
    assert!(restore(words(&w)).is_none());
}

#[test]
fn builds_are_reproducible() {
    let base = rows(500, 17);
    let (a, b) = (build(Metric::Cosine, &base), build(Metric::Cosine, &base));
    assert_eq!(a.own_bytes(), b.own_bytes());
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

#[test]
fn an_int8_graph_recalls_what_an_f32_graph_does_on_real_embeddings_with_exact_scores() {
    let (base, queries) = minilm();
    let metric = Metric::Cosine;
    let dim = base[0].len();
    let rows: Vec<(String, Vec<f32>)> = base
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{i}"), v.clone()))
        .collect();
    let graphs = [Quantization::None, Quantization::Int8].map(|quant| {
        let mut h = Hnsw::new(dim, metric, Params::default(), quant);
        for (id, v) in &rows {
            upsert(&mut h, metric, id, v, None);
        }
        h
    });
    let [f32_graph, int8] = &graphs;
    assert_eq!(f32_graph.code_bytes(), 0);
    assert_eq!(int8.code_bytes(), 2000 * dim, "codes for every row once past 1,000");
    assert!(!int8.space.is_exact());
    for ef in [10, 20, 40, 80, 160] {
        let q = query(10, None, Some(ef));
        let [r32, r8] = [f32_graph, int8].map(|h| recall(h, metric, &rows, &queries, &q));
        println!("ef {ef}: recall@10 f32 graph {r32:.4}, int8 graph {r8:.4}");
        assert!(r8 >= r32 - 0.02, "ef {ef}: int8 {r8} against f32 {r32}");
        if ef >= 40 {
            assert!(r8 >= 0.97, "ef {ef}: int8 recall@10 {r8}");
        }
    }
    for q in &queries {
        assert_exact_scores(int8, metric, q, &query(10, None, None));
    }
}

#[test]
fn an_int8_graph_filters_churns_updates_and_restores_as_an_f32_one() {
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let n = 3000;
        let all = rows(n * 2, 21);
        let mut live: Vec<(String, Vec<f32>)> = all[..n].to_vec();
        let mut h = build_on(metric, Quantization::Int8, &live);
        assert!(!h.space.is_exact() && h.code_bytes() > 0);
        let queries = clustered(50, 22);
        let r = recall(&h, metric, &live, &queries, &query(10, None, None));
        assert!(r >= 0.95, "{metric:?}: recall@10 {r}");

        // A filter walks (half the rows) or scans exactly (1%), on codes or rows.
        for filter in [json!({ "n": { "$lt": 30 } }), json!({ "n": { "$gte": 1500 } })] {
            let filter = Filter::parse(&filter).unwrap();
            let passing: Vec<_> = live
                .iter()
                .filter(|(id, _)| {
                    filter.matches(Some(
                        json!({ "n": id[1..].parse::<u32>().unwrap() }).as_object().unwrap(),
                    ))
                })
                .cloned()
                .collect();
            let q = query(10, Some(&filter), None);
            let r = recall(&h, metric, &passing, &queries, &q);
            assert!(r >= 0.95, "{metric:?} {} passing: recall@10 {r}", passing.len());
            for v in queries.iter().take(10) {
                assert_exact_scores(&h, metric, v, &q);
            }
        }

        // Deletes, inserts into freed slots (codes replaced in place), an update.
        let mut next = n;
        let mut r = rng(23);
        delete_some(&mut h, &mut live, &mut r, n / 4);
        insert_some(&mut h, metric, &mut live, &all, &mut next, n / 4);
        let (moved_id, target) = (live[0].0.clone(), all[n * 2 - 1].1.clone());
        upsert(&mut h, metric, &moved_id, &target, None);
        live[0].1 = target.clone();
        assert_eq!(ids(&h, metric, &target, &query(1, None, None))[0], moved_id);
        assert_eq!(h.len(), n);
        assert_eq!(h.code_bytes(), h.slots() * h.space.codes().unwrap().bytes_per_slot());
        let r = recall(&h, metric, &live, &queries, &query(10, None, None));
        assert!(r >= 0.93, "{metric:?}: recall@10 after churn {r}");
        for v in &queries {
            assert_exact_scores(&h, metric, v, &query(10, None, None));
        }

        // The graph and its codes come back from their parts, and go on the same way.
        let mut back = Hnsw::restore(DIM, metric, Quantization::Int8, h.parts()).expect("restores");
        assert_eq!(back.own_bytes(), h.own_bytes());
        let batch: Vec<f32> = queries.concat();
        let flat = |h: &Hnsw| -> Vec<Vec<(String, f32)>> {
            h.search_many(&batch, &query(10, None, Some(40)))
                .into_iter()
                .map(|hits| hits.into_iter().map(|h| (h.id.to_owned(), h.score)).collect())
                .collect()
        };
        assert_eq!(flat(&back), flat(&h));
        for (i, (_, v)) in all.iter().take(200).enumerate() {
            let id = format!("y{i}");
            upsert(&mut h, metric, &id, v, None);
            upsert(&mut back, metric, &id, v, None);
        }
        assert_eq!(back.own_bytes(), h.own_bytes());

        // Codes are a cache: damaged, or of another quantization, they are built again
        // from the rows; a graph restored without quantization walks the rows.
        let own = h.parts().own.into_owned();
        let mut damaged = own.clone();
        let last = damaged.len() - 20;
        damaged[last] ^= 0x40;
        let with = |own: Vec<u8>, quant| {
            let parts = Parts {
                own: Cow::Owned(own),
                ..h.parts()
            };
            Hnsw::restore(DIM, metric, quant, parts).expect("restores")
        };
        let rebuilt = with(damaged, Quantization::Int8);
        assert_eq!(rebuilt.code_bytes(), h.code_bytes());
        let plain = with(own.clone(), Quantization::None);
        assert!(plain.space.is_exact() && plain.code_bytes() == 0);
        for g in [&rebuilt, &plain] {
            let r = recall(g, metric, &live, &queries, &query(10, None, None));
            assert!(r >= 0.93, "{metric:?}: recall@10 restored {r}");
            assert_exact_scores(g, metric, &queries[0], &query(10, None, None));
        }
    }
}

#[test]
fn a_graph_saved_by_version_1_still_opens() {
    let metric = Metric::Cosine;
    let base = rows(800, 24);
    let mut h = build(metric, &base);
    for (id, _) in base.iter().step_by(5) {
        h.remove(id);
    }
    // Version 1: the same words without the codes' length.
    let mut w: Vec<u32> = bytemuck::cast_slice(&h.parts().own).to_vec();
    assert_eq!(w[HEAD_WORDS - 1], 0, "no codes");
    w.remove(HEAD_WORDS - 1);
    w[1] = 1;
    let parts = Parts {
        own: Cow::Owned(bytemuck::cast_slice(&w).to_vec()),
        ..h.parts()
    };
    let back = Hnsw::restore(DIM, metric, Quantization::None, parts).expect("version 1 opens");
    assert_eq!(back.own_bytes(), h.own_bytes());
    let q = prepared(metric, &clustered(1, 25)[0]);
    assert_eq!(
        back.search_many(&q, &query(10, None, None)),
        h.search_many(&q, &query(10, None, None))
    );
}

fn prepared(metric: Metric, v: &[f32]) -> Vec<f32> {
    let mut p = Vec::new();
    prepare(metric, v, &mut p);
    p
}

mod shared;
