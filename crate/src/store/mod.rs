//! The durable truth: one SQLite database holding collections and their vectors.
//!
//! Every row carries what sync needs later (Lamport version, site id, tombstone), so
//! a delete leaves a tombstone rather than removing the row.

mod stage;
mod sync;
mod text;

use crate::error::{Code, Error, Result};
use crate::index::Kind;
use crate::metric::Metric;
use crate::quant::Quantization;
use rusqlite::{params, Connection, OptionalExtension};

#[cfg(not(target_endian = "little"))]
compile_error!("vectors are stored as little-endian f32 and cast in place");

/// Bytes of SQLite page cache a database keeps at most.
pub const PAGE_CACHE_BYTES: usize = 4 << 20;

/// The schema this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// The first schema. A new database starts from it and takes every migration, so
/// each table is declared once, in the step that brought it.
const SCHEMA_V1: &str = "
CREATE TABLE quiver_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE collections(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    dim INTEGER NOT NULL,
    metric TEXT NOT NULL,
    index_kind TEXT NOT NULL DEFAULT 'flat',
    quantization TEXT NOT NULL DEFAULT 'none'
) STRICT;
CREATE TABLE vectors(
    rowid INTEGER PRIMARY KEY,
    collection INTEGER NOT NULL REFERENCES collections(id),
    id TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT,
    text TEXT,
    version INTEGER NOT NULL,
    site TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE(collection, id)
) STRICT;
";

/// What brings a database of version `n` to `n + 1`, at index `n - 1`.
const MIGRATIONS: &[&str] = &[
    // 1 -> 2: `seq` orders local changes (unlike `version`, which sync will take from
    // other sites), so a collection's segment can be brought up to date by replaying
    // the rows changed after it.
    "ALTER TABLE vectors ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
     UPDATE vectors SET seq = rowid;
     INSERT OR REPLACE INTO quiver_meta VALUES('seq', (SELECT ifnull(max(rowid), 0) FROM vectors));
     CREATE INDEX vectors_by_seq ON vectors(collection, seq);
     CREATE TABLE segments(
         collection INTEGER PRIMARY KEY REFERENCES collections(id),
         seq INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     ) STRICT;",
    // 2 -> 3: writes that span workers commit in two phases. Each part is first kept
    // aside in `staged`; the coordinating database records in `committed` that a batch
    // is to be applied everywhere; a part left staged by a crash is applied on reopen
    // if its batch is recorded there, and dropped if not.
    "CREATE TABLE staged(
         batch TEXT NOT NULL,
         collection TEXT NOT NULL,
         id TEXT NOT NULL,
         vector BLOB NOT NULL,
         metadata TEXT,
         text TEXT
     ) STRICT;
     CREATE INDEX staged_by_batch ON staged(batch);
     CREATE TABLE committed(batch TEXT PRIMARY KEY) STRICT;",
    // 3 -> 4: keyword search. An external-content FTS5 index over `vectors.text`, keyed
    // by its rowid, so each text is stored once; triggers keep it in step with every
    // change to the rows (writes, staged commits, tombstones, which clear the text,
    // and dropped collections), and the last statement indexes the rows a database
    // already has. Only rows with a text are documents (not FTS5's `rebuild`, which
    // takes every row): a row without one, or a tombstone, would count towards the
    // number and average length of texts that BM25 weighs terms by.
    // `unicode61` folds case; `remove_diacritics 2` lets "cafe" find "café" (and, unlike
    // 1, also strips marks from letters composed with several); `tokenchars '_'` keeps
    // snake_case identifiers one token, so `parse_json` finds itself and not every text
    // saying "parse" or "json". Other punctuation separates: `a.b` is `a` then `b`.
    "CREATE VIRTUAL TABLE vectors_fts USING fts5(
         text, content = 'vectors', content_rowid = 'rowid',
         tokenize = \"unicode61 remove_diacritics 2 tokenchars '_'\"
     );
     CREATE TRIGGER vectors_fts_insert AFTER INSERT ON vectors WHEN new.text IS NOT NULL BEGIN
         INSERT INTO vectors_fts(rowid, text) VALUES(new.rowid, new.text);
     END;
     CREATE TRIGGER vectors_fts_delete AFTER DELETE ON vectors WHEN old.text IS NOT NULL BEGIN
         INSERT INTO vectors_fts(vectors_fts, rowid, text) VALUES('delete', old.rowid, old.text);
     END;
     CREATE TRIGGER vectors_fts_update AFTER UPDATE OF text ON vectors BEGIN
         INSERT INTO vectors_fts(vectors_fts, rowid, text)
             SELECT 'delete', old.rowid, old.text WHERE old.text IS NOT NULL;
         INSERT INTO vectors_fts(rowid, text) SELECT new.rowid, new.text WHERE new.text IS NOT NULL;
     END;
     INSERT INTO vectors_fts(rowid, text) SELECT rowid, text FROM vectors WHERE text IS NOT NULL;",
];

/// A collection's settings as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub key: i64,
    pub name: String,
    pub dim: usize,
    pub metric: Metric,
    /// The index it is searched with.
    pub index: Kind,
    /// How that index compresses the vectors it scans.
    pub quantization: Quantization,
}

/// One row to write: the vector as given (not normalised) and metadata as JSON text.
pub struct Row<'a> {
    pub id: &'a str,
    pub vector: &'a [f32],
    pub metadata: Option<&'a str>,
    pub text: Option<&'a str>,
}

/// A stored, live row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: Option<String>,
    pub text: Option<String>,
}

/// A live row as [`Store::scan`] reads it, borrowed from SQLite's row buffer.
pub struct Scanned<'a> {
    pub id: &'a str,
    /// Little-endian f32s.
    pub vector: &'a [u8],
    pub metadata: Option<&'a str>,
    pub text: Option<&'a str>,
}

/// Where a collection's segment stands: written at change `seq`, `bytes` long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentRecord {
    pub seq: u64,
    pub bytes: u64,
}

/// A row changed after some point of the local change order, as replay reads it.
pub struct Changed<'a> {
    pub id: &'a str,
    /// `None` when the row was deleted.
    pub row: Option<Scanned<'a>>,
}

pub struct Store {
    conn: Connection,
    site: String,
    clock: u64,
    /// The local change counter: the `seq` the last written row was given.
    seq: u64,
    /// Whether rows keep their vectors; see [`Store::drop_vectors`].
    keeps_vectors: bool,
}

/// Decodes a vector BLOB into `out`.
pub fn read_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
}

impl Store {
    /// Opens (creating or migrating) the schema on `conn`. `site` names this replica
    /// unless the database already has a site id of its own.
    pub fn open(conn: Connection, site: &str) -> Result<Store> {
        let mut version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::new(
                Code::UnsupportedVersion,
                format!("database: schema version {version} is newer than this build's {SCHEMA_VERSION}; open it with a newer quiver"),
            ));
        }
        if version == 0 {
            // 8 KiB pages: a 1.5 KB vector row fits several to a page, and a small shard
            // stays a few pages; large collections load from their segments, not page
            // by page. Must precede the first table.
            conn.execute_batch("PRAGMA page_size = 8192")?;
            let steps = MIGRATIONS.join("\n");
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA_V1} {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
            version = SCHEMA_VERSION;
        }
        // Each step in its own transaction: a crash leaves the database at a version.
        for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
            conn.execute_batch(&format!("BEGIN; {step} PRAGMA user_version = {}; COMMIT;", from + 2))?;
        }
        // Keep the rollback journal between transactions, zeroed, instead of deleting
        // it: in the OPFS pool, creating and deleting a file each flush a slot header,
        // and a small commit (a new shard) was paying for both.
        conn.query_row("PRAGMA journal_mode = PERSIST", [], |_| Ok(()))?;
        // A fixed page cache (the wasm build's default is 16 MiB a connection): large
        // collections load from their segments, not through the cache, and a worker
        // serving many shards should not grow by more than its LRU holds.
        conn.execute_batch(&format!("PRAGMA cache_size = -{}", PAGE_CACHE_BYTES / 1024))?;
        conn.execute("INSERT OR IGNORE INTO quiver_meta VALUES('site', ?1)", [site])?;
        for counter in ["clock", "seq"] {
            conn.execute("INSERT OR IGNORE INTO quiver_meta VALUES(?1, '0')", [counter])?;
        }
        let get = |key: &str| -> Result<String> {
            Ok(conn.query_row("SELECT value FROM quiver_meta WHERE key = ?1", [key], |r| r.get(0))?)
        };
        let counter = |key: &str| -> Result<u64> {
            get(key)?
                .parse()
                .map_err(|_| Error::new(Code::Storage, format!("quiver_meta.{key} is not a number")))
        };
        let site = get("site")?;
        let (clock, seq) = (counter("clock")?, counter("seq")?);
        Ok(Store {
            conn,
            site,
            clock,
            seq,
            keeps_vectors: true,
        })
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    /// Stops storing vectors in the rows written from now on (they are stored empty),
    /// for a caller that keeps every exact vector itself: a database in memory whose
    /// page holds a replica would otherwise hold each vector a third time. Staged rows
    /// keep theirs until committed, since the commit gives them to the search copy.
    pub fn drop_vectors(&mut self) {
        self.keeps_vectors = false;
    }

    /// Whether rows keep their vectors (see [`Store::drop_vectors`]).
    pub fn keeps_vectors(&self) -> bool {
        self.keeps_vectors
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM quiver_meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO quiver_meta VALUES(?1, ?2)", [key, value])?;
        Ok(())
    }

    /// The Lamport clock: the version the last write was stamped with.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    pub fn settings(&self, name: &str) -> Result<Option<Settings>> {
        self.conn
            .query_row(
                "SELECT id, dim, metric, index_kind, quantization FROM collections WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?
            .map(|(key, dim, metric, index, quantization)| {
                Ok(Settings {
                    key,
                    name: name.to_owned(),
                    dim: dim as usize,
                    metric: Metric::parse(&metric, "collections.metric")?,
                    index: Kind::parse(&index, "collections.index_kind")?,
                    quantization: Quantization::parse(&quantization, "collections.quantization")?,
                })
            })
            .transpose()
    }

    pub fn collection_names(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT name FROM collections ORDER BY name")?;
        let names = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// Every collection's settings with its number of live rows, by name. Counting
    /// visits each row's record (not its vector), once for all collections.
    pub fn collection_counts(&self) -> Result<Vec<(Settings, usize)>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.name, c.dim, c.metric, c.index_kind, c.quantization, ifnull(n.rows, 0) FROM collections c
             LEFT JOIN (SELECT collection, count(*) AS rows FROM vectors WHERE deleted = 0 GROUP BY collection) n
             ON n.collection = c.id ORDER BY c.name",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let settings = Settings {
                key: r.get(0)?,
                name: r.get(1)?,
                dim: r.get::<_, i64>(2)? as usize,
                metric: Metric::parse(r.get_ref(3)?.as_str()?, "collections.metric")?,
                index: Kind::parse(r.get_ref(4)?.as_str()?, "collections.index_kind")?,
                quantization: Quantization::parse(r.get_ref(5)?.as_str()?, "collections.quantization")?,
            };
            out.push((settings, r.get::<_, i64>(6)? as usize));
        }
        Ok(out)
    }

    /// Deletes a collection and all its rows, in one transaction; returns whether it
    /// existed. (No tombstones: a dropped collection is gone, not a change to sync.)
    pub fn drop_collection(&mut self, name: &str) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let key: Option<i64> = tx
            .query_row("SELECT id FROM collections WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        if let Some(key) = key {
            tx.execute("DELETE FROM vectors WHERE collection = ?1", [key])?;
            tx.execute("DELETE FROM segments WHERE collection = ?1", [key])?;
            tx.execute("DELETE FROM collections WHERE id = ?1", [key])?;
        }
        tx.commit()?;
        Ok(key.is_some())
    }

    pub fn create_collection(
        &self,
        name: &str,
        dim: usize,
        metric: Metric,
        index: Kind,
        quantization: Quantization,
    ) -> Result<Settings> {
        self.conn.execute(
            "INSERT INTO collections(name, dim, metric, index_kind, quantization) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![name, dim as i64, metric.as_str(), index.as_str(), quantization.as_str()],
        )?;
        Ok(Settings {
            key: self.conn.last_insert_rowid(),
            name: name.to_owned(),
            dim,
            metric,
            index,
            quantization,
        })
    }

    /// Writes all rows in one transaction: all of them, or on error none. With
    /// `staged`, the same transaction forgets that staged batch (see [`Store::stage`]).
    pub fn write(&mut self, collection: i64, rows: &[Row], staged: Option<&str>) -> Result<()> {
        let tx = self.conn.transaction()?;
        if let Some(batch) = staged {
            tx.execute("DELETE FROM staged WHERE batch = ?1", [batch])?;
        }
        let (mut clock, mut seq) = (self.clock, self.seq);
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO vectors(collection, id, vector, metadata, text, version, site, deleted, seq)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
                 ON CONFLICT(collection, id) DO UPDATE SET vector = excluded.vector,
                   metadata = excluded.metadata, text = excluded.text, version = excluded.version,
                   site = excluded.site, deleted = 0, seq = excluded.seq",
            )?;
            for row in rows {
                clock += 1;
                seq += 1;
                let vector: &[f32] = if self.keeps_vectors { row.vector } else { &[] };
                stmt.execute(params![
                    collection,
                    row.id,
                    bytemuck::cast_slice::<f32, u8>(vector),
                    row.metadata,
                    row.text,
                    clock as i64,
                    self.site,
                    seq as i64
                ])?;
            }
        }
        Self::set_counters(&tx, clock, seq)?;
        tx.commit()?;
        (self.clock, self.seq) = (clock, seq);
        Ok(())
    }

    /// Tombstones the live rows among `ids`; returns how many there were. With
    /// `staged`, the same transaction forgets that staged batch, as [`Store::write`] does.
    pub fn delete(&mut self, collection: i64, ids: &[&str], staged: Option<&str>) -> Result<usize> {
        let tx = self.conn.transaction()?;
        if let Some(batch) = staged {
            tx.execute("DELETE FROM staged WHERE batch = ?1", [batch])?;
        }
        let (mut clock, mut seq) = (self.clock, self.seq);
        let mut deleted = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE vectors SET deleted = 1, vector = x'', metadata = NULL, text = NULL, version = ?3, site = ?4, seq = ?5
                 WHERE collection = ?1 AND id = ?2 AND deleted = 0",
            )?;
            for id in ids {
                let n = stmt.execute(params![collection, id, (clock + 1) as i64, self.site, (seq + 1) as i64])?;
                if n > 0 {
                    clock += 1;
                    seq += 1;
                    deleted += n;
                }
            }
        }
        Self::set_counters(&tx, clock, seq)?;
        tx.commit()?;
        (self.clock, self.seq) = (clock, seq);
        Ok(deleted)
    }

    fn set_counters(conn: &Connection, clock: u64, seq: u64) -> Result<()> {
        let mut stmt = conn.prepare_cached("UPDATE quiver_meta SET value = ?2 WHERE key = ?1")?;
        stmt.execute(["clock", &clock.to_string()])?;
        stmt.execute(["seq", &seq.to_string()])?;
        Ok(())
    }

    /// The local change counter: the `seq` of the last written row.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Streams the rows of a collection changed after change `seq`, oldest first:
    /// what a segment written at `seq` lacks.
    pub fn changes_since(&self, collection: i64, seq: u64, mut each: impl FnMut(Changed) -> Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, deleted, vector, metadata, text FROM vectors WHERE collection = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![collection, seq as i64])?;
        while let Some(r) = rows.next()? {
            let id = r.get_ref(0)?.as_str()?;
            let row = match r.get::<_, i64>(1)? {
                0 => Some(Scanned {
                    id,
                    vector: r.get_ref(2)?.as_blob()?,
                    metadata: r.get_ref(3)?.as_str_or_null()?,
                    text: r.get_ref(4)?.as_str_or_null()?,
                }),
                _ => None,
            };
            each(Changed { id, row })?;
        }
        Ok(())
    }

    /// The collection's segment, if one was written and recorded.
    pub fn segment(&self, collection: i64) -> Result<Option<SegmentRecord>> {
        Ok(self
            .conn
            .prepare_cached("SELECT seq, bytes FROM segments WHERE collection = ?1")?
            .query_row([collection], |r| {
                Ok(SegmentRecord {
                    seq: r.get::<_, i64>(0)? as u64,
                    bytes: r.get::<_, i64>(1)? as u64,
                })
            })
            .optional()?)
    }

    /// Records (or with `None` forgets) the collection's segment. Forget it before
    /// rewriting the file and record it once the file is flushed: a crash between
    /// leaves no record, never one that points at a torn file.
    pub fn set_segment(&mut self, collection: i64, record: Option<SegmentRecord>) -> Result<()> {
        match record {
            None => self
                .conn
                .execute("DELETE FROM segments WHERE collection = ?1", [collection])?,
            Some(r) => self.conn.execute(
                "INSERT OR REPLACE INTO segments VALUES(?1, ?2, ?3)",
                params![collection, r.seq as i64, r.bytes as i64],
            )?,
        };
        Ok(())
    }

    /// The collections that have a recorded segment.
    pub fn segment_keys(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT collection FROM segments ORDER BY collection")?;
        let keys = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(keys)
    }

    pub fn get(&self, collection: i64, id: &str) -> Result<Option<Stored>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT vector, metadata, text FROM vectors WHERE collection = ?1 AND id = ?2 AND deleted = 0",
        )?;
        let row = stmt
            .query_row(params![collection, id], |r| {
                let mut vector = Vec::new();
                read_f32(r.get_ref(0)?.as_blob()?, &mut vector);
                Ok(Stored {
                    id: id.to_owned(),
                    vector,
                    metadata: r.get(1)?,
                    text: r.get(2)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// Streams every live row of a collection in insertion order: id, vector, metadata.
    pub fn scan(&self, collection: i64, mut each: impl FnMut(Scanned) -> Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT id, vector, metadata, text FROM vectors WHERE collection = ?1 AND deleted = 0 ORDER BY rowid",
        )?;
        let mut rows = stmt.query([collection])?;
        while let Some(r) = rows.next()? {
            each(Scanned {
                id: r.get_ref(0)?.as_str()?,
                vector: r.get_ref(1)?.as_blob()?,
                metadata: r.get_ref(2)?.as_str_or_null()?,
                text: r.get_ref(3)?.as_str_or_null()?,
            })?;
        }
        Ok(())
    }

    /// Caps the file at about `bytes` (never below its current size): a write that
    /// would grow it further fails with `QUOTA_EXCEEDED`, as running out of quota does.
    pub fn set_max_bytes(&mut self, bytes: u64) -> Result<()> {
        let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.conn.query_row(
            &format!("PRAGMA max_page_count = {}", (bytes / page as u64).max(1)),
            [],
            |_| Ok(()),
        )?;
        Ok(())
    }

    /// The file's size: its pages, in use or free.
    pub fn file_bytes(&self) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        Ok(bytes as u64)
    }

    /// The database as the bytes of a standalone SQLite file.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        Ok(self.image()?.to_vec())
    }

    /// The database's file image, borrowed from SQLite's own memory where it lives
    /// there (a database opened from bytes), else copied once.
    pub fn image(&mut self) -> Result<rusqlite::serialize::Data<'_>> {
        Ok(self.conn.serialize(rusqlite::MAIN_DB)?)
    }

    /// Runs `PRAGMA integrity_check`; `"ok"` when the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::new(Code::Storage, e.to_string())
    }
}
