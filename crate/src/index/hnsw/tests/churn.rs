//! Deletes, updates and reinserts: slots stay bounded, recall stays high, the entry point moves.

use super::*;

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
