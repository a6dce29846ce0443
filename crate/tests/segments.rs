//! Segments (a collection's search copy as one file) and schema versions: a database
//! loaded through its segments answers exactly as one loaded from its rows, a damaged
//! segment costs time but no data, and older schemas are migrated, newer refused.

mod common;

use common::Scratch;
use quiver::quant::Quantization;
use quiver::segment::SegmentFiles;
use quiver::{Code, Database, Metric, Record, Result, SearchOptions};
use serde_json::json;
use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Segment files in a directory, counting the bytes read through them.
struct DirFiles {
    dir: PathBuf,
    read: Rc<Cell<u64>>,
}

impl DirFiles {
    fn file(&self, key: i64) -> std::io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(format!("{key}.seg")))
    }
}

fn io(e: std::io::Error) -> quiver::Error {
    quiver::Error::new(Code::Storage, e.to_string())
}

impl SegmentFiles for DirFiles {
    fn read(&mut self, key: i64, at: u64, buf: &mut [u8]) -> Result<()> {
        self.file(key).and_then(|f| f.read_exact_at(buf, at)).map_err(io)?;
        self.read.set(self.read.get() + buf.len() as u64);
        Ok(())
    }
    fn write(&mut self, key: i64, at: u64, buf: &[u8]) -> Result<()> {
        self.file(key).and_then(|f| f.write_all_at(buf, at)).map_err(io)
    }
    fn flush(&mut self, key: i64, len: u64) -> Result<()> {
        self.file(key)
            .and_then(|f| f.set_len(len).and_then(|_| f.sync_all()))
            .map_err(io)
    }
    fn remove(&mut self, key: i64) -> Result<()> {
        std::fs::remove_file(self.dir.join(format!("{key}.seg"))).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(io(e)),
        })
    }
}

fn open(dir: &Path, db: &str) -> (Database, Rc<Cell<u64>>) {
    let mut d = Database::open_with_vfs(db, "unix", "site").unwrap();
    let read = Rc::new(Cell::new(0));
    d.set_segment_files(Box::new(DirFiles {
        dir: dir.to_owned(),
        read: read.clone(),
    }));
    (d, read)
}

/// A pseudo-random vector, the same for the same seed.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

const DIM: usize = 16;
const ROWS: usize = quiver::db::SEGMENT_MIN_ROWS + 904;

fn fill(db: &mut Database, ids: impl Iterator<Item = usize>) {
    let vectors: Vec<(usize, Vec<f32>)> = ids.map(|i| (i, vector(i as u64, DIM))).collect();
    let records = vectors
        .iter()
        .map(|(i, v)| Record {
            id: format!("r{i}"),
            vector: v,
            metadata: (i % 3 == 0).then(|| json!({"i": i, "tag": format!("t{}", i % 5)})),
            text: None,
        })
        .collect();
    db.upsert("c", records).unwrap();
}

/// Every row's nearest neighbours, ids and scores, for a few queries.
fn answers(db: &mut Database) -> Vec<Vec<(String, f32, Option<String>)>> {
    (0..8)
        .map(|q| {
            let opts = SearchOptions {
                k: 20,
                ..Default::default()
            };
            db.search("c", &vector(1_000_000 + q, DIM), &opts)
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h.id.to_owned(),
                        h.score,
                        h.metadata.map(|m| serde_json::to_string(m).unwrap()),
                    )
                })
                .collect()
        })
        .collect()
}

/// A database in a fresh directory, with segment files, holding collection "c" of
/// `ROWS` rows.
fn filled(tag: &str, metric: Metric) -> (Scratch, Database) {
    let dir = Scratch::new(tag);
    let (mut db, _) = open(&dir.0, &dir.db());
    db.create_collection("c", DIM, metric).unwrap();
    fill(&mut db, 0..ROWS);
    (dir, db)
}

#[test]
fn a_collection_loads_from_its_segment_plus_the_changes_since() {
    let (dir, mut db) = filled("segments", Metric::Cosine);
    assert_eq!(db.segments_due(), vec![("c".to_owned(), 1)]);
    db.write_segment("c").unwrap();
    assert!(db.segments_due().is_empty());
    // Changes after the segment: replaced rows, new rows, deletes.
    fill(
        &mut db,
        (0..ROWS).step_by(97).map(|i| i + ROWS / 2).chain(ROWS..ROWS + 50),
    );
    db.upsert(
        "c",
        vec![Record {
            id: "r5".into(),
            vector: &vector(77, DIM),
            metadata: Some(json!({"new": true})),
            text: None,
        }],
    )
    .unwrap();
    assert_eq!(db.delete("c", &["r1", "r2", "r4000", "r-none"]).unwrap(), 3);
    let expected = answers(&mut db);
    let count = db.count("c").unwrap();
    drop(db);

    let (mut db, read) = open(&dir.0, &dir.db());
    assert_eq!(db.segment_keys().unwrap(), vec![1]);
    assert_eq!(answers(&mut db), expected);
    assert_eq!(db.count("c").unwrap(), count);
    assert!(
        read.get() >= (ROWS * DIM * 4) as u64,
        "the vectors came from the segment: {} bytes read",
        read.get()
    );
    assert_eq!(
        db.get("c", "r5").unwrap().unwrap().metadata.as_deref(),
        Some(r#"{"new":true}"#)
    );

    // The same data without segment files: loaded from the rows, the same answers.
    let mut plain = Database::open_with_vfs(&dir.db(), "unix", "site").unwrap();
    assert_eq!(answers(&mut plain), expected);
}

#[test]
fn rows_handed_over_leave_no_change_to_push_and_do_not_come_back_from_the_segment() {
    let (dir, mut db) = filled("segments-hand-over", Metric::Cosine);
    db.delete("c", &["r7"]).unwrap();
    db.write_segment("c").unwrap();
    let cursor = db.store().seq();
    // A tenth of the ids move to another file (with their stamps, as sync ops), r7's
    // tombstone among them.
    let moving: Vec<String> = (0..ROWS).filter(|i| i % 10 == 7).map(|i| format!("r{i}")).collect();
    let ids: Vec<&str> = moving.iter().map(String::as_str).collect();
    assert_eq!(db.hand_over("c", &ids).unwrap(), moving.len() - 1);
    let left = ROWS - moving.len();
    assert_eq!(db.count("c").unwrap(), left);
    assert!(db.ops_since("c", cursor, 10).unwrap().is_empty(), "no op to push");
    assert!(db
        .ops_since("c", 0, usize::MAX)
        .unwrap()
        .iter()
        .all(|(op, _)| op.id != "r7"));
    let expected = answers(&mut db);
    assert!(expected.iter().flatten().all(|(id, _, _)| !ids.contains(&id.as_str())));
    assert_eq!(
        db.segments_due(),
        vec![("c".to_owned(), 1)],
        "the segment is rewritten whole"
    );
    drop(db);

    // Reopened before the segment was rewritten: loaded from the rows, without them.
    let (mut db, _) = open(&dir.0, &dir.db());
    assert!(db.segment_keys().unwrap().is_empty());
    assert_eq!(answers(&mut db), expected);
    assert_eq!(db.count("c").unwrap(), left);
}

#[test]
fn a_damaged_or_stale_segment_costs_time_not_data() {
    let (dir, mut db) = filled("segments-damaged", Metric::Euclidean);
    db.write_segment("c").unwrap();
    let expected = answers(&mut db);
    drop(db);
    let seg = dir.0.join("1.seg");
    let original = std::fs::read(&seg).unwrap();
    // A stale file (the header of another change), then a torn one (cut short).
    let mut bytes = original.clone();
    bytes[16] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (mut db, _) = open(&dir.0, &dir.db());
    assert_eq!(answers(&mut db), expected);
    drop(db);
    std::fs::write(&seg, &original[..original.len() / 2]).unwrap();
    let (mut db, _) = open(&dir.0, &dir.db());
    assert_eq!(answers(&mut db), expected);
    // Dropping the collection removes its file with its record.
    db.drop_collection("c").unwrap();
    assert!(!seg.exists());
    assert!(db.segment_keys().unwrap().is_empty());
}

#[test]
fn a_quantized_collection_keeps_its_codes_in_its_segment_and_rebuilds_them_when_damaged() {
    let dir = Scratch::new("segments-quantized");
    let (mut db, _) = open(&dir.0, &dir.db());
    db.create_collection_with("c", DIM, Metric::Cosine, None, Some(Quantization::Int8))
        .unwrap();
    fill(&mut db, 0..ROWS);
    let codes = db.sizes("c").unwrap().codes;
    assert!(codes > 0);
    db.write_segment("c").unwrap();
    let expected = answers(&mut db);
    drop(db);
    let seg = dir.0.join("1.seg");
    let original = std::fs::read(&seg).unwrap();
    assert!(
        original.len() > HEADER + ROWS * DIM * 4 + codes,
        "the codes follow the rows"
    );

    let (mut db, read) = open(&dir.0, &dir.db());
    assert_eq!(answers(&mut db), expected);
    assert_eq!(read.get(), original.len() as u64, "all of it came from the segment");
    assert_eq!(db.sizes("c").unwrap().codes, codes);
    assert!(db.segments_due().is_empty());
    drop(db);
    // A flipped byte in the codes, at the end of the file: the rows answer, their
    // codes built anew alike.
    let mut bytes = original.clone();
    bytes[original.len() - 100] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let (mut db, _) = open(&dir.0, &dir.db());
    assert_eq!(answers(&mut db), expected);
    assert_eq!(db.sizes("c").unwrap().codes, codes);
    assert_eq!(db.segments_due(), vec![("c".to_owned(), 1)]);
}

/// Bytes in a segment's header, before the vectors.
const HEADER: usize = 64;

#[test]
fn a_flipped_byte_anywhere_in_a_segment_is_caught_and_the_rows_answer_instead() {
    let (dir, mut db) = filled("segments-flipped", Metric::Cosine);
    db.write_segment("c").unwrap();
    let expected = answers(&mut db);
    drop(db);
    let seg = dir.0.join("1.seg");
    let original = std::fs::read(&seg).unwrap();
    let vectors_end = HEADER + ROWS * DIM * 4;
    assert!(original.len() > vectors_end, "ids and metadata follow the vectors");
    // Whole, the segment is read and trusted: nothing is left to rewrite.
    let (mut db, _) = open(&dir.0, &dir.db());
    assert_eq!(answers(&mut db), expected);
    assert!(db.segments_due().is_empty());
    drop(db);
    // Every byte of the header (byte 7 is the format version, so this is also what a
    // segment of another version meets), one in the vectors, one in the ids and metadata.
    let flips = (0..HEADER).chain([HEADER + ROWS * DIM * 2 + 1, (vectors_end + original.len()) / 2]);
    for at in flips {
        let mut bytes = original.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&seg, &bytes).unwrap();
        let (mut db, _) = open(&dir.0, &dir.db());
        assert_eq!(answers(&mut db), expected, "byte {at} flipped");
        // Loaded from its rows: all of them count as changed since the segment, so it
        // is due to be written again.
        assert_eq!(db.segments_due(), vec![("c".to_owned(), 1)], "byte {at} flipped");
    }
}

/// The schema quiver 0.1 wrote (user_version 1), as a fixture for migration.
const SCHEMA_V1: &str = "
PRAGMA page_size = 65536;
CREATE TABLE quiver_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE collections(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL,
    metric TEXT NOT NULL, index_kind TEXT NOT NULL DEFAULT 'flat', quantization TEXT NOT NULL DEFAULT 'none') STRICT;
CREATE TABLE vectors(rowid INTEGER PRIMARY KEY, collection INTEGER NOT NULL REFERENCES collections(id),
    id TEXT NOT NULL, vector BLOB NOT NULL, metadata TEXT, text TEXT, version INTEGER NOT NULL,
    site TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, UNIQUE(collection, id)) STRICT;
INSERT INTO quiver_meta VALUES('site', 'old-site'), ('clock', '3');
INSERT INTO collections(id, name, dim, metric) VALUES(1, 'c', 2, 'dot');
INSERT INTO vectors(collection, id, vector, metadata, text, version, site, deleted) VALUES
    (1, 'a', x'0000803f00000000', '{\"k\":1}', 'alpha', 1, 'old-site', 0),
    (1, 'b', x'000000000000803f', NULL, NULL, 2, 'old-site', 0),
    (1, 'gone', x'', NULL, NULL, 3, 'old-site', 1);
PRAGMA user_version = 1;
";

#[test]
fn an_older_schema_is_migrated_and_a_newer_one_refused_untouched() {
    let dir = Scratch::new("migrate");
    rusqlite::Connection::open(dir.db())
        .unwrap()
        .execute_batch(SCHEMA_V1)
        .unwrap();
    let (mut db, _) = open(&dir.0, &dir.db());
    assert_eq!(db.site(), "old-site");
    assert_eq!(db.ids("c").unwrap(), vec!["a", "b"]);
    let got = db.get("c", "a").unwrap().unwrap();
    assert_eq!(
        (got.vector, got.metadata.as_deref(), got.text.as_deref()),
        (vec![1.0, 0.0], Some(r#"{"k":1}"#), Some("alpha"))
    );
    // Writes after the migration continue the change order past the old rows.
    db.upsert(
        "c",
        vec![Record {
            id: "c".into(),
            vector: &[0.5, 0.5],
            metadata: None,
            text: None,
        }],
    )
    .unwrap();
    let hits: Vec<String> = db
        .search("c", &[1.0, 0.1], &SearchOptions::default())
        .unwrap()
        .iter()
        .map(|h| h.id.to_owned())
        .collect();
    assert_eq!(hits, ["a", "c", "b"]);
    // The keyword index was built from the rows already there.
    let found = db.search_text("c", "ALPHA", &SearchOptions::default()).unwrap();
    assert_eq!(found.iter().map(|h| h.id).collect::<Vec<_>>(), ["a"]);
    drop(db);
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, quiver::store::SCHEMA_VERSION);
    let seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM vectors ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    // Indexed from the one row with a text: rows without are no documents.
    conn.execute("INSERT INTO vectors_fts(vectors_fts) VALUES('integrity-check')", [])
        .unwrap();
    let documents: i64 = conn
        .query_row("SELECT count(*) FROM vectors_fts_docsize", [], |r| r.get(0))
        .unwrap();
    assert_eq!(documents, 1);

    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let before = std::fs::read(dir.db()).unwrap();
    let err = Database::open_with_vfs(&dir.db(), "unix", "site").err().unwrap();
    assert_eq!(err.code, Code::UnsupportedVersion);
    assert!(err.message.contains("99"), "{}", err.message);
    assert_eq!(
        std::fs::read(dir.db()).unwrap(),
        before,
        "a newer database is left as it was"
    );
}

#[test]
fn an_hnsw_collection_loads_its_graph_from_its_segment() {
    use quiver::index::{hnsw::Params, Kind};
    let dir = Scratch::new("segments-hnsw");
    let (mut db, _) = open(&dir.0, &dir.db());
    let kind = Kind::Hnsw(Params::default());
    assert_eq!(
        db.create_collection_with("c", DIM, Metric::Euclidean, Some(kind), None)
            .unwrap()
            .index,
        kind
    );
    fill(&mut db, 0..ROWS);
    db.write_segment("c").unwrap();
    // Changes after the segment, replayed over the restored graph in the same order.
    fill(&mut db, (0..ROWS).step_by(97).chain(ROWS..ROWS + 50));
    assert_eq!(db.delete("c", &["r1", "r2", "r4000"]).unwrap(), 3);
    let expected = answers(&mut db);
    drop(db);

    let (mut db, read) = open(&dir.0, &dir.db());
    assert_eq!(db.collection("c").unwrap().index, kind);
    assert_eq!(answers(&mut db), expected);
    assert!(read.get() >= (ROWS * DIM * 4) as u64, "the graph came from the segment");
    drop(db);

    // Without segment files the graph is built again from the rows: another graph,
    // nearly the same answers.
    let mut plain = Database::open_with_vfs(&dir.db(), "unix", "site").unwrap();
    let again = answers(&mut plain);
    let same: usize = again
        .iter()
        .zip(&expected)
        .map(|(a, e)| a.iter().filter(|hit| e.iter().any(|x| x.0 == hit.0)).count())
        .sum();
    assert!(same * 100 >= 95 * 8 * 20, "{same} of {} answers alike", 8 * 20);
}
