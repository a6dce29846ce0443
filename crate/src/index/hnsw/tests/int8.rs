//! A graph walked on int8 codes against one on f32 rows, on real embeddings.

use super::*;

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
            let passing = passing(&filter, &live);
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
