//! Keyword search (FTS5, BM25) over records' text, and the candidates MMR picks from.

mod common;

use common::Scratch;
use quiver::mmr;
use quiver::{Code, Database, Filter, Metric, Record, SearchOptions};
use serde_json::json;

fn record<'a>(id: &str, vector: &'a [f32], text: Option<&str>, metadata: serde_json::Value) -> Record<'a> {
    Record {
        id: id.into(),
        vector,
        metadata: Some(metadata),
        text: text.map(str::to_owned),
    }
}

fn text_ids(db: &mut Database, name: &str, words: &str, opts: &SearchOptions) -> Vec<String> {
    db.search_text(name, words, opts)
        .unwrap()
        .iter()
        .map(|h| h.id.to_owned())
        .collect()
}

fn k(k: usize) -> SearchOptions {
    SearchOptions {
        k,
        ..SearchOptions::default()
    }
}

/// BM25 as FTS5 computes it (k1 = 1.2, b = 0.75, an idf at or below zero taken as
/// 1e-6), over texts whose tokens are their whitespace-separated words.
fn bm25(texts: &[&str], doc: &str, query: &[&str]) -> f64 {
    let n = texts.len() as f64;
    let len = |t: &str| t.split_whitespace().count() as f64;
    let avg = texts.iter().map(|t| len(t)).sum::<f64>() / n;
    query
        .iter()
        .map(|q| {
            let holding = texts.iter().filter(|t| t.split_whitespace().any(|w| w == *q)).count() as f64;
            let idf = ((n - holding + 0.5) / (holding + 0.5)).ln();
            let idf = if idf <= 0.0 { 1e-6 } else { idf };
            let tf = doc.split_whitespace().filter(|w| w == q).count() as f64;
            idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(doc) / avg))
        })
        .sum()
}

#[test]
fn bm25_scores_are_the_hand_computed_ones_made_positive() {
    let mut db = Database::open_in_memory("s").unwrap();
    db.create_collection("c", 2, Metric::Dot).unwrap();
    let texts = [
        "apple banana apple",
        "banana cherry",
        "cherry date elderberry fig grape",
        "apple",
        "fig grape",
        "kiwi lemon mango",
    ];
    let v = [1.0, 0.0];
    let records: Vec<Record> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| record(&format!("d{i}"), &v, Some(t), json!({})))
        .collect();
    db.upsert("c", records).unwrap();
    // A record without text is not a document: it changes no statistic.
    db.upsert("c", vec![record("none", &v, None, json!({}))]).unwrap();
    let hits = db.search_text("c", "apple banana", &k(10)).unwrap();
    let mut want: Vec<(String, f64)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("d{i}"), bm25(&texts, t, &["apple", "banana"])))
        .filter(|(_, s)| *s > 0.0)
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(hits.len(), want.len());
    for (hit, (id, score)) in hits.iter().zip(&want) {
        assert_eq!(hit.id, id);
        assert!(
            (hit.score as f64 - score).abs() < 1e-5 * score.max(1.0),
            "{}: {} vs {score}",
            hit.id,
            hit.score
        );
        assert!(hit.score > 0.0);
    }
    assert_eq!(text_ids(&mut db, "c", "apple banana", &k(2)), ["d0", "d3"]);
}

#[test]
fn words_are_matched_as_words_whatever_they_hold() {
    let mut db = Database::open_in_memory("s").unwrap();
    db.create_collection("c", 2, Metric::Cosine).unwrap();
    let v = [1.0, 0.0];
    db.upsert(
        "c",
        vec![
            record("snake", &v, Some("fn parse_json(input: &str)"), json!({"lang": "rust"})),
            record("plain", &v, Some("parse the json input"), json!({"lang": "prose"})),
            record("accent", &v, Some("Un café crème à Zürich"), json!({"lang": "fr"})),
            record("path", &v, Some("see serde.json for details"), json!({"lang": "prose"})),
        ],
    )
    .unwrap();
    // snake_case stays one token: the identifier finds itself only.
    assert_eq!(text_ids(&mut db, "c", "parse_json", &k(10)), ["snake"]);
    assert_eq!(text_ids(&mut db, "c", "PARSE", &k(10)), ["plain"]);
    // Diacritics and case are folded both ways.
    assert_eq!(text_ids(&mut db, "c", "CAFE zurich", &k(10)), ["accent"]);
    assert_eq!(text_ids(&mut db, "c", "crème", &k(10)), ["accent"]);
    // A word holding punctuation is the phrase of its tokens.
    assert_eq!(text_ids(&mut db, "c", "serde.json", &k(10)), ["path"]);
    // FTS5's query syntax is not the user's: none of it is an error or an operator.
    for words in [
        "parse_json(",
        "\"json",
        "json*",
        "NOT json",
        "json AND",
        "lang:rust",
        "(",
        "-json",
        "^json",
    ] {
        let hits = db.search_text("c", words, &k(10));
        assert!(hits.is_ok(), "{words}: {:?}", hits.err());
    }
    assert_eq!(text_ids(&mut db, "c", "()  ...", &k(10)), Vec::<String>::new());
    // Equal scores go by id; the filter applies, and k counts the records that pass it.
    assert_eq!(text_ids(&mut db, "c", "input", &k(2)), ["plain", "snake"]);
    let rust = SearchOptions {
        k: 1,
        filter: Some(Filter::parse(&json!({"lang": "rust"})).unwrap()),
        ..SearchOptions::default()
    };
    assert_eq!(text_ids(&mut db, "c", "input", &rust), ["snake"]);
    for bad in ["", "   \n"] {
        let e = db.search_text("c", bad, &k(10)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.starts_with("text:"), "{}", e.message);
    }
    assert_eq!(
        db.search_text("c", "json", &k(0)).unwrap_err().code,
        Code::InvalidArgument
    );
    assert_eq!(db.search_text("nope", "json", &k(1)).unwrap_err().code, Code::NotFound);
}

/// Asserts that the keyword index of the database at `path` holds exactly what one
/// built afresh from its rows' texts holds: every token of every text at its place, and
/// one document a text. (FTS5's own `integrity-check` against the content table counts
/// every row a document, text or not, so it cannot judge an index of texts only.)
fn fts_in_step(path: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE fresh USING fts5(text, tokenize = \"unicode61 remove_diacritics 2 tokenchars '_'\");
         INSERT INTO fresh(rowid, text) SELECT rowid, text FROM vectors WHERE text IS NOT NULL;
         CREATE VIRTUAL TABLE kept_terms USING fts5vocab(vectors_fts, instance);
         CREATE VIRTUAL TABLE fresh_terms USING fts5vocab(fresh, instance);",
    )
    .unwrap();
    let all = |sql: &str| -> Vec<(String, i64, i64)> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    let kept = all("SELECT term, doc, offset FROM kept_terms ORDER BY doc, offset");
    assert!(!kept.is_empty());
    assert_eq!(
        kept,
        all("SELECT term, doc, offset FROM fresh_terms ORDER BY doc, offset")
    );
    let documents = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}_docsize"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(documents("vectors_fts"), documents("fresh"));
    conn.execute("INSERT INTO vectors_fts(vectors_fts) VALUES('integrity-check')", [])
        .unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn the_index_follows_updates_deletes_drops_and_staged_commits() {
    let dir = Scratch::new("fts-in-step");
    let path = dir.db();
    let v = [0.0, 1.0];
    {
        let mut db = Database::open(std::path::Path::new(&path), "s").unwrap();
        db.create_collection("c", 2, Metric::Euclidean).unwrap();
        db.create_collection("other", 2, Metric::Euclidean).unwrap();
        db.upsert(
            "c",
            vec![
                record("a", &v, Some("red fox"), json!({})),
                record("b", &v, Some("blue whale"), json!({})),
                record("c", &v, Some("red panda"), json!({})),
            ],
        )
        .unwrap();
        db.upsert("other", vec![record("x", &v, Some("red kite"), json!({}))])
            .unwrap();
        // Each collection finds its own rows only.
        assert_eq!(text_ids(&mut db, "c", "red", &k(10)).len(), 2);
        assert_eq!(text_ids(&mut db, "other", "red", &k(10)), ["x"]);

        // An update replaces the words; one without text removes them.
        db.upsert("c", vec![record("a", &v, Some("grey wolf"), json!({}))])
            .unwrap();
        db.upsert("c", vec![record("b", &v, None, json!({}))]).unwrap();
        assert_eq!(text_ids(&mut db, "c", "red fox whale", &k(10)), ["c"]);
        assert_eq!(text_ids(&mut db, "c", "wolf", &k(10)), ["a"]);

        // A tombstone keeps no text.
        db.delete("c", &["c"]).unwrap();
        assert_eq!(text_ids(&mut db, "c", "panda", &k(10)), Vec::<String>::new());

        // The two phases: nothing is found while staged, everything once committed.
        db.stage("batch-1", "c", vec![record("d", &v, Some("staged heron"), json!({}))])
            .unwrap();
        assert_eq!(text_ids(&mut db, "c", "heron", &k(10)), Vec::<String>::new());
        db.commit_staged("batch-1").unwrap();
        assert_eq!(text_ids(&mut db, "c", "heron", &k(10)), ["d"]);
        db.stage_delete("batch-2", "c", &["d"]).unwrap();
        db.commit_staged("batch-2").unwrap();
        assert_eq!(text_ids(&mut db, "c", "heron", &k(10)), Vec::<String>::new());

        // A dropped collection's words go with it, and a new one of its name starts empty.
        db.drop_collection("other").unwrap();
        db.create_collection("other", 2, Metric::Euclidean).unwrap();
        assert_eq!(text_ids(&mut db, "other", "kite", &k(10)), Vec::<String>::new());
    }
    fts_in_step(&path);
    // A reopened database finds what it found before.
    let mut db = Database::open(std::path::Path::new(&path), "s").unwrap();
    assert_eq!(text_ids(&mut db, "c", "wolf", &k(10)), ["a"]);
}

#[test]
fn candidates_carry_their_prepared_vectors_for_mmr() {
    let mut db = Database::open_in_memory("s").unwrap();
    db.create_collection("c", 2, Metric::Cosine).unwrap();
    let rows: Vec<[f32; 2]> = vec![[3.0, 0.0], [2.0, 0.1], [0.0, 5.0], [1.0, 1.0]];
    let records = rows
        .iter()
        .enumerate()
        .map(|(i, v)| record(&format!("r{i}"), v, None, json!({})))
        .collect();
    db.upsert("c", records).unwrap();
    let opts = k(4);
    let plain: Vec<String> = db
        .search("c", &[1.0, 0.0], &opts)
        .unwrap()
        .iter()
        .map(|h| h.id.to_owned())
        .collect();
    let (hits, vectors) = db.candidates("c", &[1.0, 0.0], &opts).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), plain);
    assert_eq!(vectors.len(), 8);
    // Unit length under cosine: the search copy's vectors, not the stored ones.
    assert_eq!(&vectors[..2], &[1.0, 0.0]);
    let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
    let top: Vec<usize> = (0..3).collect();
    assert_eq!(mmr::select(Metric::Cosine, &vectors, &scores, 3, 1.0).unwrap(), top);
    // Weighing diversity more, the near-duplicate of the best (r1) waits behind the
    // record least like it.
    let picked = mmr::select(Metric::Cosine, &vectors, &scores, 2, 0.3).unwrap();
    assert_eq!(picked.iter().map(|&i| hits[i].id).collect::<Vec<_>>(), ["r0", "r2"]);
}
