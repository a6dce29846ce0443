//! A database file written, closed and opened again through a named VFS (natively
//! "unix"; in the browser the OPFS pool): records, their order and app metadata survive.

mod common;

use common::Scratch;
use quiver::index::Kind;
use quiver::{Code, Database, Metric, Record};
use serde_json::json;

/// Records `r0`, `r1`, ... of `vectors`, with metadata on the even ones and text on
/// every third.
fn records(vectors: &[Vec<f32>]) -> Vec<Record<'_>> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            id: format!("r{i}"),
            vector: v,
            metadata: (i % 2 == 0).then(|| json!({"i": i})),
            text: (i % 3 == 0).then(|| format!("text {i}")),
        })
        .collect()
}

#[test]
fn rows_and_meta_survive_reopening_through_a_vfs() {
    let dir = Scratch::new("persist");
    let name = &dir.db();
    let vectors: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32, 1.0, -2.5]).collect();
    {
        let mut db = Database::open_with_vfs(name, "unix", "site-a").unwrap();
        db.create_collection("c", 3, Metric::Euclidean).unwrap();
        db.upsert("c", records(&vectors)).unwrap();
        db.delete("c", &["r7"]).unwrap();
        db.set_meta("layout", r#"{"workers":2}"#).unwrap();
    }
    let mut db = Database::open_with_vfs(name, "unix", "site-b").unwrap();
    assert_eq!(db.site(), "site-a", "the site is the file's, not the opener's");
    assert_eq!(db.meta("layout").unwrap().as_deref(), Some(r#"{"workers":2}"#));
    assert_eq!(db.meta("missing").unwrap(), None);
    let rows = db.rows("c").unwrap();
    assert_eq!(rows.len(), 49);
    for row in &rows {
        let i: usize = row.id[1..].parse().unwrap();
        assert_ne!(i, 7);
        assert_eq!(row.vector, vectors[i]);
        assert_eq!(row.metadata.is_some(), i.is_multiple_of(2), "{}", row.id);
        assert_eq!(row.text, i.is_multiple_of(3).then(|| format!("text {i}")));
    }
    assert_eq!(db.count("c").unwrap(), 49);
}

#[test]
fn a_database_round_trips_through_bytes_and_foreign_bytes_are_corrupt() {
    let mut db = Database::open_in_memory("site-a").unwrap();
    db.create_collection("c", 2, Metric::Dot).unwrap();
    let v = vec![vec![1.0f32, 2.0], vec![3.0, -4.5], vec![0.5, 0.25]];
    db.upsert("c", records(&v)).unwrap();
    let bytes = db.to_bytes().unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let mut copy = Database::from_bytes(&bytes, "site-b", true).unwrap();
    assert_eq!(copy.site(), "site-a");
    let rows = copy.rows("c").unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].vector, v[2]);
    assert_eq!(rows[2].metadata.as_deref(), Some(r#"{"i":2}"#));

    // In pieces, as an IndexedDB image comes back: read in short reads, chunk by chunk.
    struct Trickle<'a>(Vec<&'a [u8]>);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(chunk) = self.0.first_mut() else { return Ok(0) };
            let n = chunk.len().min(buf.len()).min(4093);
            buf[..n].copy_from_slice(&chunk[..n]);
            *chunk = &chunk[n..];
            if chunk.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }
    let third = bytes.len() / 3;
    let pieces = Trickle(vec![&bytes[..5], &bytes[5..third], &bytes[third..]]);
    let mut pieced = Database::from_reader(pieces, bytes.len(), "site-c", true).unwrap();
    assert_eq!(pieced.rows("c").unwrap(), rows);

    let code = |bytes: &[u8]| Database::from_bytes(bytes, "s", true).err().map(|e| e.code);
    assert_eq!(code(b"SQLite format"), Some(quiver::Code::CorruptDatabase));
    assert_eq!(code(b"not a database at all"), Some(quiver::Code::CorruptDatabase));
    // A b-tree page's header scribbled over.
    let mut damaged = bytes.clone();
    assert!(damaged.len() > 65536 + 512);
    damaged[65536..65536 + 512].fill(0xAB);
    assert_eq!(code(&damaged), Some(quiver::Code::CorruptDatabase));
    assert_eq!(code(&bytes[..bytes.len() / 2]), Some(quiver::Code::CorruptDatabase));
    // A sound SQLite file that is not quiver's.
    let mut other = rusqlite::Connection::open_in_memory().unwrap();
    other
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let foreign = other.serialize(rusqlite::MAIN_DB).unwrap().to_vec();
    assert_eq!(code(&foreign), Some(quiver::Code::CorruptDatabase));
}

#[test]
fn running_out_of_space_is_quota_exceeded_and_leaves_the_collection_as_it_was() {
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection("c", 64, Metric::Dot).unwrap();
    db.set_max_bytes(2 << 20).unwrap();
    let v: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let batch = |b: usize| -> Vec<Record> {
        (0..100)
            .map(|j| Record {
                id: format!("{b}-{j}"),
                vector: &v,
                ..Default::default()
            })
            .collect()
    };
    let mut b = 0;
    let err = loop {
        match db.upsert("c", batch(b)) {
            Ok(_) => b += 1,
            Err(e) => break e,
        }
        assert!(b < 1000, "the cap never bit");
    };
    assert_eq!(err.code, quiver::Code::QuotaExceeded, "{}", err.message);
    assert!(b > 0);
    assert_eq!(db.count("c").unwrap(), b * 100, "the failed batch left nothing behind");
    assert!(db.get("c", &format!("{b}-0")).unwrap().is_none());
    assert_eq!(db.store().integrity_check().unwrap(), "ok");
    // Room made, the same batch goes in.
    db.set_max_bytes(64 << 20).unwrap();
    db.upsert("c", batch(b)).unwrap();
    assert_eq!(db.count("c").unwrap(), (b + 1) * 100);
}

#[test]
fn many_collections_stay_correct_through_a_small_lru() {
    let mut db = Database::open_in_memory("site").unwrap();
    db.set_max_loaded(4);
    for c in 0..40 {
        db.create_collection(&format!("c{c}"), 2, Metric::Dot).unwrap();
        let v: Vec<[f32; 2]> = (0..5).map(|i| [c as f32, i as f32]).collect();
        let records = v
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                id: format!("{c}-{i}"),
                vector: v,
                ..Default::default()
            })
            .collect();
        db.upsert(&format!("c{c}"), records).unwrap();
        assert!(db.loaded() <= 4);
    }
    // Every collection, in an order that keeps evicting, answers from its own rows.
    for step in 0..200 {
        let c = (step * 17) % 40;
        let top = db
            .search(
                &format!("c{c}"),
                &[0.0, 1.0],
                &quiver::SearchOptions {
                    k: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(top[0].id, format!("{c}-4"));
        assert_eq!(db.count(&format!("c{c}")).unwrap(), 5);
        assert!(db.loaded() <= 4);
    }
    db.set_max_loaded(1);
    assert_eq!(db.loaded(), 1);
}

#[test]
fn a_dropped_collection_is_gone_and_its_name_free_again() {
    let mut db = Database::open_in_memory("site").unwrap();
    db.create_collection("c", 2, Metric::Dot).unwrap();
    db.create_collection("keep", 2, Metric::Dot).unwrap();
    let v = [1.0f32, 2.0];
    for name in ["c", "keep"] {
        db.upsert(
            name,
            vec![Record {
                id: "a".into(),
                vector: &v,
                ..Default::default()
            }],
        )
        .unwrap();
    }
    db.drop_collection("c").unwrap();
    assert_eq!(db.collection_names().unwrap(), ["keep"]);
    assert_eq!(db.count("c").unwrap_err().code, quiver::Code::NotFound);
    assert_eq!(db.drop_collection("c").unwrap_err().code, quiver::Code::NotFound);
    assert_eq!(db.count("keep").unwrap(), 1);
    // The name is free again, with other settings and no old rows.
    db.create_collection("c", 3, Metric::Euclidean).unwrap();
    assert_eq!(db.count("c").unwrap(), 0);
    assert_eq!(db.store().integrity_check().unwrap(), "ok");
}

/// The database file `name`, opened (or created) through SQLite's own file VFS.
fn on_disk(name: &str) -> Database {
    Database::open_with_vfs(name, "unix", "site").unwrap()
}

/// `n` points (i, -1): under Euclidean distance, row i is nearest to the query (i, -1).
fn on_a_line(n: usize) -> Vec<Vec<f32>> {
    (0..n).map(|i| vec![i as f32, -1.0]).collect()
}

#[test]
fn a_staged_batch_outlives_a_crash_and_is_then_written_once_or_dropped() {
    let dir = Scratch::new("staged");
    let name = &dir.db();
    let vectors = on_a_line(20);
    {
        let mut db = on_disk(name);
        db.create_collection("c", 2, Metric::Euclidean).unwrap();
        let mut keep = records(&vectors);
        let drop = keep.split_off(15);
        let keep = keep.split_off(5);
        db.upsert("c", records(&vectors[..5])).unwrap();
        // A bad record stages nothing of its batch.
        let mut bad = keep.clone();
        bad[3].vector = &[1.0];
        let err = db.stage("bad", "c", bad).unwrap_err();
        assert_eq!(err.code, quiver::Code::DimensionMismatch);
        assert!(err.message.contains("records[3].vector"), "{}", err.message);
        db.stage("keep", "c", keep).unwrap();
        db.stage("drop", "c", drop).unwrap();
        db.decide("keep").unwrap();
        // Staged is not written: neither searched nor counted.
        assert_eq!(db.count("c").unwrap(), 5);
        assert!(db.get("c", "r7").unwrap().is_none());
    }
    // As after a crash between the phases: what was staged and decided is still there.
    let mut db = on_disk(name);
    assert_eq!(db.staged_batches().unwrap(), ["drop", "keep"]);
    assert!(db.decided("keep").unwrap());
    assert!(!db.decided("drop").unwrap());
    let (collection, ids) = db.commit_staged("keep").unwrap().unwrap();
    assert_eq!(collection, "c");
    assert_eq!(ids, (5..15).map(|i| format!("r{i}")).collect::<Vec<_>>());
    assert_eq!(
        db.commit_staged("keep").unwrap(),
        None,
        "a second commit writes nothing"
    );
    db.discard_staged("drop").unwrap();
    assert_eq!(db.forget(None).unwrap(), 1);
    assert_eq!(db.forget(None).unwrap(), 0);
    assert!(db.staged_batches().unwrap().is_empty());
    assert!(!db.decided("keep").unwrap());
    assert_eq!(db.count("c").unwrap(), 15);
    // Written exactly as staged: vectors, metadata and text.
    let rows = db.rows("c").unwrap();
    assert_eq!(rows.len(), 15);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.id, format!("r{i}"));
        assert_eq!(row.vector, vectors[i]);
        assert_eq!(
            row.metadata.as_deref(),
            (i % 2 == 0).then(|| format!(r#"{{"i":{i}}}"#)).as_deref()
        );
        assert_eq!(row.text, (i % 3 == 0).then(|| format!("text {i}")));
    }
    let top = db
        .search("c", &[12.0, -1.0], &quiver::SearchOptions::default())
        .unwrap();
    assert_eq!(top[0].id, "r12", "the search copy has the committed rows");
    assert_eq!(db.store().integrity_check().unwrap(), "ok");
}

#[test]
fn a_staged_delete_outlives_a_crash_and_is_then_applied_once_or_dropped() {
    let dir = Scratch::new("staged-delete");
    let name = &dir.db();
    let vectors = on_a_line(10);
    {
        let mut db = on_disk(name);
        db.create_collection("c", 2, Metric::Euclidean).unwrap();
        db.upsert("c", records(&vectors)).unwrap();
        let err = db.stage_delete("none", "nope", &["r1"]).unwrap_err();
        assert_eq!(err.code, quiver::Code::NotFound);
        db.stage_delete("keep", "c", &["r1", "r2", "r-none"]).unwrap();
        db.stage_delete("drop", "c", &["r3"]).unwrap();
        db.decide("keep").unwrap();
        // Staged is not applied: every row is still there.
        assert_eq!(db.count("c").unwrap(), 10);
    }
    let mut db = on_disk(name);
    assert_eq!(db.staged_batches().unwrap(), ["drop", "keep"]);
    let (collection, ids) = db.commit_staged("keep").unwrap().unwrap();
    assert_eq!(
        (collection.as_str(), ids),
        ("c", vec!["r1".to_string(), "r2".into(), "r-none".into()])
    );
    assert_eq!(
        db.commit_staged("keep").unwrap(),
        None,
        "a second commit deletes nothing"
    );
    db.discard_staged("drop").unwrap();
    assert!(db.staged_batches().unwrap().is_empty());
    assert_eq!(db.count("c").unwrap(), 8);
    assert!(db.get("c", "r1").unwrap().is_none() && db.get("c", "r3").unwrap().is_some());
    let top = db.search("c", &[1.0, -1.0], &quiver::SearchOptions::default()).unwrap();
    assert_eq!(top[0].id, "r0", "the search copy has lost the deleted rows");
    assert_eq!(top[1].id, "r3");
    assert_eq!(db.store().integrity_check().unwrap(), "ok");
}

#[test]
fn a_collection_records_its_index_kind_and_one_unknown_here_is_refused() {
    let dir = Scratch::new("index-kind");
    let name = &dir.db();
    {
        let mut db = Database::open_with_vfs(name, "unix", "site").unwrap();
        assert_eq!(db.create_collection("c", 2, Metric::Dot).unwrap().index, Kind::Flat);
        db.create_collection("later", 2, Metric::Dot).unwrap();
    }
    let conn = rusqlite::Connection::open(name).unwrap();
    let kind: String = conn
        .query_row("SELECT index_kind FROM collections WHERE name = 'c'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "flat");
    // As a newer build that knows another kind would leave it.
    conn.execute("UPDATE collections SET index_kind = 'ivf' WHERE name = 'later'", [])
        .unwrap();
    drop(conn);
    let mut db = Database::open_with_vfs(name, "unix", "site").unwrap();
    assert_eq!(db.collection("c").unwrap().index, Kind::Flat);
    let err = db.collection("later").unwrap_err();
    assert_eq!(err.code, Code::UnsupportedVersion);
    assert!(err.message.contains("\"ivf\""), "{}", err.message);
}

#[test]
fn a_database_without_vectors_keeps_them_in_its_search_copies_only() {
    let mut db = Database::open_in_memory_without_vectors("site").unwrap();
    let vectors: Vec<Vec<f32>> = (0..20).map(|i| vec![i as f32, 1.0, -2.5]).collect();
    for name in ["a", "b"] {
        db.create_collection(name, 3, Metric::Euclidean).unwrap();
        db.upsert(name, records(&vectors)).unwrap();
    }
    // Staged rows keep their vectors until the commit hands them to the search copy.
    db.stage("batch/0", "a", records(&vectors[..1])).unwrap();
    db.commit_staged("batch/0").unwrap();
    // No collection may be evicted: its rows could not rebuild it.
    db.set_max_loaded(1);
    assert_eq!(db.loaded(), 2);
    for name in ["a", "b"] {
        let top = db
            .search(
                name,
                &[7.0, 1.0, -2.5],
                &quiver::SearchOptions {
                    k: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!((top[0].id, top[0].score), ("r7", 0.0));
        let got = db.get(name, "r4").unwrap().unwrap();
        assert!(got.vector.is_empty(), "SQLite kept a vector: {:?}", got.vector);
        assert_eq!(got.metadata.as_deref(), Some(r#"{"i":4}"#));
        assert!(db.rows(name).unwrap().iter().all(|r| r.vector.is_empty()));
        assert_eq!(db.count(name).unwrap(), 20);
    }
    // An ordinary database keeps them.
    let mut kept = Database::open_in_memory("site").unwrap();
    kept.create_collection("a", 3, Metric::Euclidean).unwrap();
    kept.upsert("a", records(&vectors)).unwrap();
    assert_eq!(kept.get("a", "r4").unwrap().unwrap().vector, vectors[4]);
}

#[test]
fn a_database_without_vectors_counts_its_search_copies_against_max_bytes() {
    let mut db = Database::open_in_memory_without_vectors("site").unwrap();
    db.set_max_bytes(1 << 20).unwrap();
    db.create_collection("c", 256, Metric::Dot).unwrap();
    let vectors: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32; 256]).collect();
    let mut written = 0;
    let error = loop {
        let batch = records(&vectors)
            .into_iter()
            .enumerate()
            .map(|(i, r)| Record {
                id: format!("{written}-{i}"),
                ..r
            })
            .collect();
        match db.upsert("c", batch) {
            Ok(_) => written += 100,
            Err(e) => break e,
        }
    };
    assert_eq!(error.code, Code::QuotaExceeded, "{error}");
    assert!(error.message.contains("maxBytes"), "{error}");
    // About a MiB of 1 KiB vectors, less SQLite's file; the failed batch wrote nothing.
    assert!((500..1024).contains(&written), "{written} rows fit");
    assert_eq!(db.count("c").unwrap(), written);
    let staged = db.stage("b/0", "c", records(&vectors));
    assert_eq!(staged.unwrap_err().code, Code::QuotaExceeded);
}
