//! The graph's own bytes: restored as it was, damaged ones refused, older versions opened.

use super::*;

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
