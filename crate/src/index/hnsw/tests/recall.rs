//! Recall against brute force for every metric, and builds that reproduce.

use super::*;

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

#[test]
fn builds_are_reproducible() {
    let base = rows(500, 17);
    let (a, b) = (build(Metric::Cosine, &base), build(Metric::Cosine, &base));
    assert_eq!(a.own_bytes(), b.own_bytes());
}
