//! Exact search against a brute-force oracle computed independently in f64.

use proptest::prelude::*;
use quiver::{Code, Database, Filter, Metric, Record, SearchOptions};
use serde_json::json;

/// Deterministic pseudo-random floats (xorshift), so failures reproduce.
fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.max(1);
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn oracle_score(metric: Metric, q: &[f32], v: &[f32]) -> f64 {
    let dot: f64 = q.iter().zip(v).map(|(a, b)| *a as f64 * *b as f64).sum();
    match metric {
        Metric::Dot => dot,
        Metric::Cosine => {
            let n = |x: &[f32]| x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            dot / (n(q) * n(v))
        }
        Metric::Euclidean => q
            .iter()
            .zip(v)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
    }
}

/// The oracle's top-k: every (id, score) sorted best first.
fn brute_force(metric: Metric, q: &[f32], rows: &[(String, Vec<f32>)], k: usize) -> Vec<(String, f64)> {
    let mut all: Vec<_> = rows
        .iter()
        .map(|(id, v)| (id.clone(), oracle_score(metric, q, v)))
        .collect();
    all.sort_by(|a, b| {
        let o = if metric.higher_is_closer() {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        o.then_with(|| a.0.cmp(&b.0))
    });
    all.truncate(k);
    all
}

fn fill(db: &mut Database, name: &str, dim: usize, n: usize, metric: Metric, seed: u64) -> Vec<(String, Vec<f32>)> {
    db.create_collection(name, dim, metric).unwrap();
    let mut r = rng(seed);
    let rows: Vec<(String, Vec<f32>)> = (0..n)
        .map(|i| (format!("v{i:05}"), (0..dim).map(|_| r()).collect()))
        .collect();
    let records: Vec<Record> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, v))| Record {
            id: id.clone(),
            vector: v,
            metadata: Some(json!({"parity": i % 2, "bucket": i % 7})),
            text: None,
        })
        .collect();
    db.upsert(name, records).unwrap();
    rows
}

/// Compares ids where scores are clearly apart; near-ties may order either way in f32.
fn assert_same_ranking(metric: Metric, got: &[(String, f32)], want: &[(String, f64)]) {
    assert_eq!(got.len(), want.len());
    for (i, ((gid, gs), (wid, ws))) in got.iter().zip(want).enumerate() {
        assert!(
            (*gs as f64 - ws).abs() <= 1e-4 * ws.abs().max(1.0),
            "{metric:?} rank {i}: score {gs} vs {ws}"
        );
        if gid != wid {
            let tie = (*gs as f64 - ws).abs() <= 1e-5 * ws.abs().max(1.0);
            assert!(tie, "{metric:?} rank {i}: {gid} vs {wid}");
        }
    }
}

#[test]
fn exact_search_equals_brute_force_for_every_metric() {
    for (m, metric) in [Metric::Cosine, Metric::Euclidean, Metric::Dot].into_iter().enumerate() {
        let mut db = Database::open_in_memory("site").unwrap();
        let rows = fill(&mut db, "c", 37, 500, metric, 7 + m as u64);
        let mut r = rng(99);
        for _ in 0..20 {
            let q: Vec<f32> = (0..37).map(|_| r()).collect();
            let got: Vec<_> = db
                .search(
                    "c",
                    &q,
                    &SearchOptions {
                        k: 10,
                        ..Default::default()
                    },
                )
                .unwrap()
                .into_iter()
                .map(|h| (h.id.to_owned(), h.score))
                .collect();
            assert_same_ranking(metric, &got, &brute_force(metric, &q, &rows, 10));
        }
    }
}

#[test]
fn filter_is_applied_during_the_scan_and_still_returns_k() {
    let mut db = Database::open_in_memory("site").unwrap();
    let rows = fill(&mut db, "c", 16, 700, Metric::Cosine, 3);
    let q = rows[0].1.clone();
    let filter = Filter::parse(&json!({"bucket": {"$in": [3]}, "parity": 1})).unwrap();
    let hits = db
        .search(
            "c",
            &q,
            &SearchOptions {
                k: 25,
                filter: Some(filter),
                threshold: None,
                ef: None,
                fetch: None,
            },
        )
        .unwrap();
    // bucket 3 and odd: i % 14 == 3, 50 such rows among 700; the 25 best are returned.
    assert_eq!(hits.len(), 25);
    let matching: Vec<_> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 14 == 3)
        .map(|(_, r)| r.clone())
        .collect();
    let want = brute_force(Metric::Cosine, &q, &matching, 25);
    let got: Vec<_> = hits.iter().map(|h| (h.id.to_owned(), h.score)).collect();
    assert_same_ranking(Metric::Cosine, &got, &want);
}

/// One row's nested metadata as plain fields, so the oracle reads these, not the JSON.
enum Repo {
    /// No `repo` key (but an array of objects under `tags`).
    Missing,
    /// `repo` is a string, not an object.
    NotObject,
    /// `{lang, stars?, owner?: {org}}`; `org` None is a present null.
    Object {
        lang: &'static str,
        stars: Option<u32>,
        owner: Option<Option<&'static str>>,
    },
}

#[test]
fn dotted_not_and_exists_filter_equals_brute_force() {
    let (dim, n) = (12, 400);
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection("c", dim, Metric::Cosine).unwrap();
    let mut r = rng(21);
    let langs = ["rust", "go", "js"];
    let orgs = [None, Some("acme"), Some("mozilla")];
    let mut rows = Vec::new();
    let mut meta = Vec::new();
    for i in 0..n {
        let repo = match i % 9 {
            0 => Repo::Missing,
            1 => Repo::NotObject,
            _ => Repo::Object {
                lang: langs[i % 3],
                stars: (i % 4 != 0).then_some((i * 7 % 50) as u32),
                owner: (i % 5 != 0).then_some(orgs[i % 3]),
            },
        };
        let json = match repo {
            Repo::Missing => json!({"tags": [{"lang": "go"}]}),
            Repo::NotObject => json!({"repo": "not an object"}),
            Repo::Object { lang, stars, owner } => {
                let mut o = json!({"lang": lang});
                if let Some(s) = stars {
                    o["stars"] = json!(s);
                }
                if let Some(org) = owner {
                    o["owner"] = json!({"org": org});
                }
                json!({"repo": o, "i": i})
            }
        };
        rows.push((format!("v{i:05}"), (0..dim).map(|_| r()).collect::<Vec<f32>>()));
        meta.push((repo, json));
    }
    let records: Vec<Record> = rows
        .iter()
        .zip(&meta)
        .map(|((id, v), (_, m))| Record {
            id: id.clone(),
            vector: v,
            metadata: Some(m.clone()),
            text: None,
        })
        .collect();
    db.upsert("c", records).unwrap();

    // Not in Go, has stars, and either no owner.org (owner missing) or at least 25 stars
    // (a missing or non-object repo fails "has stars").
    let filter = Filter::parse(&json!({
        "repo.lang": {"$not": {"$in": ["go"]}},
        "repo.stars": {"$exists": true},
        "$or": [
            {"repo.owner.org": {"$exists": false}},
            {"repo.stars": {"$not": {"$lt": 25}}},
        ],
    }))
    .unwrap();
    let oracle = |m: &Repo| match *m {
        Repo::Object {
            lang,
            stars: Some(stars),
            owner,
        } => lang != "go" && (owner.is_none() || stars >= 25),
        _ => false,
    };
    // A present null org counts as present: a $not without $exists lets missing keys in.
    let nulls = Filter::parse(&json!({
        "repo.owner.org": {"$exists": true, "$not": {"$ne": null}},
        "tags.lang": {"$exists": false},
    }))
    .unwrap();
    let nulls_oracle = |m: &Repo| matches!(m, Repo::Object { owner: Some(None), .. });
    let lonely = Filter::parse(&json!({"repo.lang": {"$not": {"$exists": true}}})).unwrap();
    let lonely_oracle = |m: &Repo| !matches!(m, Repo::Object { .. });

    let q = rows[3].1.clone();
    for (filter, oracle) in [
        (filter, &oracle as &dyn Fn(&Repo) -> bool),
        (nulls, &nulls_oracle),
        (lonely, &lonely_oracle),
    ] {
        let matching: Vec<_> = rows
            .iter()
            .zip(&meta)
            .filter(|(_, (m, _))| oracle(m))
            .map(|(row, _)| row.clone())
            .collect();
        assert!(matching.len() >= 20 && matching.len() < n / 2, "{}", matching.len());
        for k in [10, n] {
            let hits = db
                .search(
                    "c",
                    &q,
                    &SearchOptions {
                        k,
                        filter: Some(filter.clone()),
                        ..Default::default()
                    },
                )
                .unwrap();
            let got: Vec<_> = hits.iter().map(|h| (h.id.to_owned(), h.score)).collect();
            assert_same_ranking(Metric::Cosine, &got, &brute_force(Metric::Cosine, &q, &matching, k));
        }
    }
}

#[test]
fn threshold_keeps_only_close_enough_rows() {
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let mut db = Database::open_in_memory("site").unwrap();
        let rows = fill(&mut db, "c", 8, 300, metric, 11);
        let q = rows[5].1.clone();
        let all = brute_force(metric, &q, &rows, 300);
        let t = all[40].1 as f32;
        let hits = db
            .search(
                "c",
                &q,
                &SearchOptions {
                    k: 300,
                    filter: None,
                    threshold: Some(t),
                    ef: None,
                    fetch: None,
                },
            )
            .unwrap();
        let expected = all
            .iter()
            .filter(|(_, s)| {
                if metric.higher_is_closer() {
                    *s >= t as f64
                } else {
                    *s <= t as f64
                }
            })
            .count();
        assert!(
            (hits.len() as i64 - expected as i64).abs() <= 1,
            "{metric:?}: {} vs {expected}",
            hits.len()
        );
        assert!(hits.len() >= 40);
    }
}

#[test]
fn updates_and_deletes_are_seen_by_search_count_and_get() {
    let mut db = Database::open_in_memory("site").unwrap();
    let rows = fill(&mut db, "c", 4, 50, Metric::Euclidean, 5);
    assert_eq!(db.delete("c", &["v00003", "v00010", "nope"]).unwrap(), 2);
    assert_eq!(db.count("c").unwrap(), 48);
    assert!(db.get("c", "v00003").unwrap().is_none());
    let hits = db
        .search(
            "c",
            &rows[3].1,
            &SearchOptions {
                k: 50,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(hits.len(), 48);
    assert!(hits.iter().all(|h| h.id != "v00003" && h.id != "v00010"));
    let v = [9.0, 9.0, 9.0, 9.0];
    db.upsert(
        "c",
        vec![Record {
            id: "v00020".into(),
            vector: &v,
            metadata: None,
            text: Some("moved".into()),
        }],
    )
    .unwrap();
    let top = db
        .search(
            "c",
            &v,
            &SearchOptions {
                k: 1,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((top[0].id, top[0].score), ("v00020", 0.0));
    let stored = db.get("c", "v00020").unwrap().unwrap();
    assert_eq!(
        (stored.vector, stored.text.as_deref(), stored.metadata),
        (v.to_vec(), Some("moved"), None)
    );
    assert_eq!(db.count("c").unwrap(), 48);
    // Reviving a deleted id brings it back.
    db.upsert(
        "c",
        vec![Record {
            id: "v00003".into(),
            vector: &v,
            ..Default::default()
        }],
    )
    .unwrap();
    assert_eq!(db.count("c").unwrap(), 49);
}

#[test]
fn bad_input_is_rejected_with_a_code_naming_the_field_and_changes_nothing() {
    let mut db = Database::open_in_memory("s").unwrap();
    fill(&mut db, "c", 3, 10, Metric::Cosine, 1);
    let ok = [1.0f32, 0.0, 0.0];
    let short = [1.0f32, 0.0];
    let nan = [1.0f32, f32::NAN, 0.0];
    let inf = [f32::INFINITY, 0.0, 0.0];
    let zero = [0.0f32; 3];
    let big = json!({"blob": "x".repeat(70_000)});
    let rec = |v: &'static [f32]| Record {
        id: "new".into(),
        vector: v,
        ..Default::default()
    };
    let leak = |v: &[f32]| -> &'static [f32] { Box::leak(v.to_vec().into_boxed_slice()) };
    let cases: Vec<(Vec<Record>, Code, &str)> = vec![
        (
            vec![rec(leak(&ok)), rec(leak(&short))],
            Code::DimensionMismatch,
            "records[1].vector has 2 dimensions",
        ),
        (
            vec![rec(leak(&nan))],
            Code::InvalidVector,
            "records[0].vector[1] is NaN",
        ),
        (
            vec![rec(leak(&inf))],
            Code::InvalidVector,
            "records[0].vector[0] is inf",
        ),
        (vec![rec(leak(&[]))], Code::InvalidVector, "records[0].vector is empty"),
        (
            vec![rec(leak(&zero))],
            Code::InvalidVector,
            "records[0].vector is the zero vector",
        ),
        (
            vec![
                rec(leak(&ok)),
                Record {
                    metadata: Some(json!([1])),
                    ..rec(leak(&ok))
                },
            ],
            Code::InvalidMetadata,
            "records[1].metadata must be a JSON object",
        ),
        (
            vec![Record {
                metadata: Some(big),
                ..rec(leak(&ok))
            }],
            Code::InvalidMetadata,
            "records[0].metadata is 70011 bytes",
        ),
        (
            vec![Record {
                id: String::new(),
                ..rec(leak(&ok))
            }],
            Code::InvalidArgument,
            "records[0].id",
        ),
    ];
    for (records, code, msg) in cases {
        let e = db.upsert("c", records).unwrap_err();
        assert_eq!(e.code, code, "{}", e.message);
        assert!(e.message.starts_with(msg), "{} !~ {msg}", e.message);
        assert_eq!(db.count("c").unwrap(), 10);
        assert!(db.get("c", "new").unwrap().is_none());
    }
    let search = |db: &mut Database, q: &[f32], k: usize| {
        db.search(
            "c",
            q,
            &SearchOptions {
                k,
                ..Default::default()
            },
        )
        .map(|h| h.len())
    };
    assert_eq!(search(&mut db, &ok, 0).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(
        search(&mut db, &ok, 10_001).unwrap_err().message,
        "k: must be an integer from 1 to 10000, got 10001"
    );
    assert_eq!(search(&mut db, &short, 1).unwrap_err().code, Code::DimensionMismatch);
    assert_eq!(
        search(&mut db, &nan, 1).unwrap_err().message,
        "query[1] is NaN, not a finite number"
    );
    assert_eq!(search(&mut db, &ok, 10_000).unwrap(), 10);
    assert_eq!(db.collection("missing").unwrap_err().code, Code::NotFound);
    assert_eq!(
        db.create_collection("c", 4, Metric::Cosine).unwrap_err().code,
        Code::DimensionMismatch
    );
    assert_eq!(
        db.create_collection("c", 3, Metric::Dot).unwrap_err().code,
        Code::InvalidArgument
    );
    assert_eq!(
        db.create_collection("d", 0, Metric::Dot).unwrap_err().message,
        "dim: must be an integer from 1 to 65536, got 0"
    );
    assert_eq!(
        Metric::parse("manhattan", "metric").unwrap_err().code,
        Code::InvalidArgument
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sequence of upserts and deletes leaves search equal to brute force over
    /// the records that should be live.
    #[test]
    fn search_matches_brute_force_after_any_writes(
        dim in 1usize..40,
        ops in proptest::collection::vec((0u8..30, any::<bool>(), proptest::collection::vec(-100i16..100, 40)), 1..120),
        k in 1usize..20,
        metric in prop_oneof![Just(Metric::Dot), Just(Metric::Euclidean), Just(Metric::Cosine)],
    ) {
        let mut db = Database::open_in_memory("p").unwrap();
        db.create_collection("c", dim, metric).unwrap();
        let mut live: std::collections::BTreeMap<String, Vec<f32>> = Default::default();
        for (id, delete, raw) in &ops {
            let id = format!("id{id}");
            if *delete {
                db.delete("c", &[&id]).unwrap();
                live.remove(&id);
            } else {
                // Offset keeps cosine vectors non-zero.
                let v: Vec<f32> = raw[..dim].iter().map(|x| *x as f32 / 10.0 + 0.05).collect();
                db.upsert("c", vec![Record { id: id.clone(), vector: &v, ..Default::default() }]).unwrap();
                live.insert(id, v);
            }
        }
        prop_assert_eq!(db.count("c").unwrap(), live.len());
        let rows: Vec<_> = live.into_iter().collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin() + 0.1).collect();
        let got: Vec<_> = db.search("c", &q, &SearchOptions { k, ..Default::default() }).unwrap()
            .into_iter().map(|h| (h.id.to_owned(), h.score)).collect();
        assert_same_ranking(metric, &got, &brute_force(metric, &q, &rows, k));
    }
}

#[test]
fn search_many_answers_each_query_as_search_does() {
    for (m, metric) in [Metric::Cosine, Metric::Euclidean, Metric::Dot].into_iter().enumerate() {
        let mut db = Database::open_in_memory("site").unwrap();
        // 700 rows span three tiles of the batched scan, the last one partial.
        fill(&mut db, "c", 19, 700, metric, 3 + m as u64);
        let mut r = rng(5);
        let queries: Vec<f32> = (0..9 * 19).map(|_| r()).collect();
        let filter = Filter::parse(&json!({"bucket": {"$in": [1, 2, 3]}})).unwrap();
        for opts in [
            SearchOptions {
                k: 7,
                ..Default::default()
            },
            SearchOptions {
                k: 700,
                filter: Some(filter.clone()),
                ..Default::default()
            },
            SearchOptions {
                k: 50,
                threshold: Some(if metric == Metric::Euclidean { 3.0 } else { 0.2 }),
                ..Default::default()
            },
        ] {
            let flatten = |hits: Vec<quiver::index::Hit>| -> Vec<(String, f32)> {
                hits.into_iter().map(|h| (h.id.to_owned(), h.score)).collect()
            };
            let many: Vec<_> = db
                .search_many("c", &queries, &opts)
                .unwrap()
                .into_iter()
                .map(flatten)
                .collect();
            assert_eq!(many.len(), 9);
            for (i, q) in queries.chunks(19).enumerate() {
                let one = flatten(db.search("c", q, &opts).unwrap());
                assert!(!one.is_empty(), "{metric:?}: query {i} found nothing");
                assert_eq!(many[i], one, "{metric:?}: query {i}");
            }
        }
        let err = db
            .search_many("c", &queries[..20], &SearchOptions::default())
            .unwrap_err();
        assert_eq!(err.code, Code::DimensionMismatch);
        let mut bad = queries.clone();
        bad[19 * 4 + 2] = f32::NAN;
        let err = db.search_many("c", &bad, &SearchOptions::default()).unwrap_err();
        assert!(err.message.starts_with("queries[4][2]"), "{}", err.message);
    }
}

#[test]
fn staging_validates_and_writes_nothing_until_committed() {
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection("c", 3, Metric::Dot).unwrap();
    let good = [1.0, 2.0, 3.0];
    let record = |id: &str, vector: &'static [f32]| Record {
        id: id.into(),
        vector,
        ..Default::default()
    };
    let err = db
        .stage(
            "bad",
            "c",
            vec![record("a", &[1.0, 2.0, 3.0]), record("b", &[1.0, 2.0])],
        )
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.starts_with("records[1].vector")),
        (Code::DimensionMismatch, true)
    );
    assert!(db.staged_batches().unwrap().is_empty());
    db.stage("ok", "c", vec![record("a", &[1.0, 2.0, 3.0])]).unwrap();
    assert_eq!(db.count("c").unwrap(), 0);
    assert!(db.get("c", "a").unwrap().is_none());
    db.commit_staged("ok").unwrap();
    assert_eq!(db.count("c").unwrap(), 1);
    db.upsert(
        "c",
        vec![Record {
            id: "a".into(),
            vector: &good,
            ..Default::default()
        }],
    )
    .unwrap();
    assert_eq!(db.count("c").unwrap(), 1);
}

#[test]
fn ef_is_checked_and_exact_search_ignores_it() {
    let mut db = Database::open_in_memory("site").unwrap();
    let rows = fill(&mut db, "c", 8, 200, Metric::Cosine, 21);
    let q = rows[3].1.clone();
    let with = |ef| SearchOptions {
        k: 10,
        ef,
        ..Default::default()
    };
    let ids = |hits: Vec<quiver::index::Hit>| hits.iter().map(|h| (h.id.to_owned(), h.score)).collect::<Vec<_>>();
    let plain = ids(db.search("c", &q, &with(None)).unwrap());
    assert_eq!(ids(db.search("c", &q, &with(Some(1))).unwrap()), plain);
    assert_eq!(ids(db.search("c", &q, &with(Some(5000))).unwrap()), plain);
    for bad in [0, quiver::db::MAX_EF + 1] {
        let e = db.search("c", &q, &with(Some(bad))).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{}", e.message);
    }
}
