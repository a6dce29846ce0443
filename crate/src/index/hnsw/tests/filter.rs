//! Filtered search and the score threshold.

use super::*;

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
        let passing = passing(&filter, &base);
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
