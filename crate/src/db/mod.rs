//! A database: the store plus, for each collection, its in-memory search copy.
//!
//! Every write is validated in full before anything is touched, committed to SQLite in
//! one transaction, and only then applied to the search copy, so a failed batch leaves
//! both exactly as they were.

mod loaded;
mod search;
mod stage;
mod sync;

use crate::error::{Code, Error, Result};
use crate::filter::Filter;
use crate::index::hnsw::Peer;
use crate::index::{Batch, Hit, Index, Kind, Metadata, Query};
use crate::metric::Metric;
use crate::quant::Quantization;
use crate::segment::{self, SegmentFiles};
use crate::store::{self, Row, Scanned, SegmentRecord, Settings, Store, Stored};
use crate::vector::{check_vector, prepare};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;

/// Largest metadata object accepted, serialised as JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Largest k a search accepts.
pub const MAX_K: usize = 10_000;
/// Largest vector dimension a collection accepts.
pub const MAX_DIM: usize = 65_536;
/// Longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Largest `ef` a search accepts: past the rows a collection holds it only costs memory.
pub const MAX_EF: usize = 100_000;
/// Most candidates a search fetches to rank again: a hybrid or MMR search's fetchK
/// (each comes back to the page, with its vector for MMR), a quantized search's
/// fetch (re-ranked on the full vectors; past it a plain scan reads less).
pub const MAX_FETCH_K: usize = 10_000;

/// A record to upsert. Its id is the caller's: quiver makes ids in one place, the page
/// (`js/ids.js`), which must know a record's id to route it to the worker it hashes to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record<'a> {
    pub id: String,
    pub vector: &'a [f32],
    pub metadata: Option<Value>,
    pub text: Option<String>,
}

/// Options of a search; `k` defaults to 10.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub k: usize,
    pub filter: Option<Filter>,
    /// Minimum score, or for Euclidean the maximum distance.
    pub threshold: Option<f32>,
    /// Candidates an approximate index keeps while searching (efSearch); `None` is the
    /// index's default. Exact search ignores it.
    pub ef: Option<usize>,
    /// Candidates a quantized collection re-ranks on the full vectors (at least `k`);
    /// `None` is [`Quantization::default_fetch`]. Without quantization it is ignored.
    pub fetch: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            k: 10,
            filter: None,
            threshold: None,
            ef: None,
            fetch: None,
        }
    }
}

/// A batch that passed validation: its ids and its metadata, parsed and serialised.
struct Valid {
    key: i64,
    metric: Metric,
    ids: Vec<String>,
    metas: Vec<Option<(Metadata, String)>>,
}

struct Collection {
    settings: Settings,
    index: Box<dyn Index>,
    /// When it was last used, on the database's use counter (for the LRU).
    used: u64,
    /// Rows changed since its segment was written (all of them without one): what a
    /// load would have to replay.
    dirty: usize,
}

/// Collections kept loaded at most, unless [`Database::set_max_loaded`] says otherwise.
pub const DEFAULT_MAX_LOADED: usize = 64;

/// Rows below which a collection has no segment: reading so few rows from SQLite is
/// already quick, and a file per small collection would cost a file handle each.
pub const SEGMENT_MIN_ROWS: usize = 4096;

pub struct Database {
    store: Store,
    /// The loaded search copies: an LRU over the collections in use, so that a database
    /// of many small collections (one per agent or task) holds only those in memory.
    collections: HashMap<String, Collection>,
    max_loaded: usize,
    uses: u64,
    /// Where segments are kept; without, collections always load from rows.
    segments: Option<Box<dyn SegmentFiles>>,
    /// The cap [`Database::set_max_bytes`] set.
    max_bytes: Option<u64>,
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::invalid(format!(
            "name: must be 1 to 256 bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

/// A validated batch's rows as the store writes them.
/// A batch as the store writes it: each record with its settled id and its metadata as
/// JSON text.
fn rows<'r>(records: &'r [Record], ids: &'r [String], json: &'r [Option<String>]) -> Vec<Row<'r>> {
    records
        .iter()
        .zip(ids)
        .zip(json)
        .map(|((r, id), m)| Row {
            id,
            vector: r.vector,
            metadata: m.as_deref(),
            text: r.text.as_deref(),
        })
        .collect()
}

impl Database {
    /// Opens a database held in memory; `site` names this replica for sync.
    pub fn open_in_memory(site: &str) -> Result<Database> {
        Self::from_connection(Connection::open_in_memory()?, site)
    }

    /// Opens a database held in memory that stores no vectors in SQLite, for a caller
    /// that keeps every exact vector itself (quiver's memory storage: the page's
    /// replica). Each vector is then held once here, in its search copy; [`Database::get`]
    /// and [`Database::rows`] answer with empty vectors, and no collection is evicted,
    /// since its rows could not rebuild it.
    pub fn open_in_memory_without_vectors(site: &str) -> Result<Database> {
        let mut db = Self::open_in_memory(site)?;
        db.store.drop_vectors();
        Ok(db)
    }

    /// Opens a database file (native only: in the browser storage is a VFS).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path, site: &str) -> Result<Database> {
        Self::from_connection(Connection::open(path)?, site)
    }

    /// Opens (creating it if missing) the database `name` through the SQLite VFS `vfs`:
    /// in the browser, a pool of OPFS files.
    pub fn open_with_vfs(name: &str, vfs: &str, site: &str) -> Result<Database> {
        let conn = Connection::open_with_flags_and_vfs(name, rusqlite::OpenFlags::default(), vfs)?;
        Self::from_connection(conn, site)
    }

    /// Opens, in memory, a copy of the database file `bytes` (an export). Anything but
    /// a sound SQLite file with quiver's tables is `CORRUPT_DATABASE`, and nothing else
    /// is touched. `verify: false` skips SQLite's integrity check, which reads every
    /// page: for images quiver wrote itself (IndexedDB storage), not for imports.
    pub fn from_bytes(bytes: &[u8], site: &str, verify: bool) -> Result<Database> {
        Self::from_reader(bytes, bytes.len(), site, verify)
    }

    /// [`Database::from_bytes`] over `len` bytes read from `reader` straight into
    /// SQLite's memory, so that an image held in pieces is copied once, never joined.
    pub fn from_reader(mut reader: impl Read, len: usize, site: &str, verify: bool) -> Result<Database> {
        let corrupt = |why: String| Error::new(Code::CorruptDatabase, format!("bytes: not a quiver database: {why}"));
        let mut header = [0u8; 16];
        if len < header.len() || reader.read_exact(&mut header).is_err() || &header != b"SQLite format 3\0" {
            return Err(corrupt("no SQLite header".into()));
        }
        let mut conn = Connection::open_in_memory()?;
        conn.deserialize_read_exact(rusqlite::MAIN_DB, header.chain(reader), len, false)
            .map_err(|e| corrupt(e.to_string()))?;
        if verify {
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|e| corrupt(e.to_string()))?;
            if check != "ok" {
                return Err(corrupt(check));
            }
        }
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('quiver_meta', 'collections', 'vectors')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| corrupt(e.to_string()))?;
        if tables != 3 {
            return Err(corrupt("quiver's tables are missing".into()));
        }
        Self::from_connection(conn, site)
    }

    /// Caps the database at about `bytes`: its file (see [`Store::set_max_bytes`]), and in
    /// a database that keeps no vectors in SQLite, its file and its search copies' vectors.
    pub fn set_max_bytes(&mut self, bytes: u64) -> Result<()> {
        self.max_bytes = Some(bytes);
        self.store.set_max_bytes(bytes)
    }

    /// `QUOTA_EXCEEDED` when a batch of `records` would take a database that keeps no
    /// vectors in SQLite past its cap; where SQLite keeps them, its page limit does this.
    fn check_room(&self, records: &[Record]) -> Result<()> {
        let Some(max) = self.max_bytes.filter(|_| !self.store.keeps_vectors()) else {
            return Ok(());
        };
        let held: usize = self.collections.values().map(|c| c.index.matrix_bytes()).sum();
        let adding: usize = records.iter().map(|r| std::mem::size_of_val(r.vector)).sum();
        let total = self.store.file_bytes()? + (held + adding) as u64;
        if total > max {
            return Err(Error::new(
                Code::QuotaExceeded,
                format!(
                    "storage: out of space: the batch would take the database to {total} bytes, past maxBytes {max}"
                ),
            ));
        }
        Ok(())
    }

    /// The database as the bytes of a standalone SQLite file, which the `sqlite3` CLI
    /// opens and [`Database::from_bytes`] reads back.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        self.store.to_bytes()
    }

    /// [`Database::to_bytes`] borrowed, not copied, where SQLite holds the file in its
    /// own memory (IndexedDB storage), for a checkpoint to store piece by piece.
    pub fn image(&mut self) -> Result<impl std::ops::Deref<Target = [u8]> + '_> {
        self.store.image()
    }

    fn from_connection(conn: Connection, site: &str) -> Result<Database> {
        Ok(Database {
            store: Store::open(conn, site)?,
            collections: HashMap::new(),
            max_loaded: DEFAULT_MAX_LOADED,
            uses: 0,
            segments: None,
            max_bytes: None,
        })
    }

    pub fn site(&self) -> &str {
        self.store.site()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The value an application (the JS coordinator) stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.store.meta(&format!("app.{key}"))
    }

    /// Stores `value` under `key`, durably, beside the data it describes.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.store.set_meta(&format!("app.{key}"), value)
    }

    /// Every live record of a collection as stored, in insertion order.
    pub fn rows(&mut self, name: &str) -> Result<Vec<Stored>> {
        let key = self.load(name)?.settings.key;
        let mut out = Vec::new();
        self.store.scan(key, |row| {
            let mut vector = Vec::new();
            store::read_f32(row.vector, &mut vector);
            out.push(Stored {
                id: row.id.to_owned(),
                vector,
                metadata: row.metadata.map(str::to_owned),
                text: row.text.map(str::to_owned),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Creates a collection searched exactly, or opens it when it exists with the same
    /// settings.
    pub fn create_collection(&mut self, name: &str, dim: usize, metric: Metric) -> Result<Settings> {
        self.create_collection_with(name, dim, metric, None, None)
    }

    /// [`Database::create_collection`] searched with `index` (exact without) on codes of
    /// `quantization` (none without); an existing collection keeps its own, and each,
    /// when given, must be the same. Only flat collections are quantized for now.
    pub fn create_collection_with(
        &mut self,
        name: &str,
        dim: usize,
        metric: Metric,
        index: Option<Kind>,
        quantization: Option<Quantization>,
    ) -> Result<Settings> {
        check_name(name)?;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::invalid(format!(
                "dim: must be an integer from 1 to {MAX_DIM}, got {dim}"
            )));
        }
        match self.store.settings(name)? {
            Some(s) if s.dim != dim => Err(Error::new(
                Code::DimensionMismatch,
                format!("dim: collection {name:?} exists with {} dimensions, not {dim}", s.dim),
            )),
            Some(s) if s.metric != metric => Err(Error::invalid(format!(
                "metric: collection {name:?} exists with metric {:?}, not {:?}",
                s.metric.as_str(),
                metric.as_str()
            ))),
            Some(s) if index.is_some_and(|i| i.as_str() != s.index.as_str()) => Err(Error::invalid(format!(
                "index: collection {name:?} exists with index {:?}, not {:?}",
                s.index.as_str(),
                index.map_or("", Kind::as_str)
            ))),
            Some(s) if quantization.is_some_and(|q| q != s.quantization) => Err(Error::invalid(format!(
                "quantization: collection {name:?} exists with quantization {:?}, not {:?}",
                s.quantization.as_str(),
                quantization.map_or("", Quantization::as_str)
            ))),
            Some(_) => self.load(name).map(|c| c.settings.clone()),
            None => {
                let index = index.unwrap_or(Kind::Flat);
                let quantization = quantization.unwrap_or(Quantization::None);
                index.check_quantization(quantization)?;
                let settings = self.store.create_collection(name, dim, metric, index, quantization)?;
                let index = settings.index.empty(dim, metric, quantization);
                self.keep(name, settings.clone(), index, 0);
                Ok(settings)
            }
        }
    }

    /// Deletes a collection with all its records; `NOT_FOUND` when there is none.
    pub fn drop_collection(&mut self, name: &str) -> Result<()> {
        let key = self.store.settings(name)?.map(|s| s.key);
        if !self.store.drop_collection(name)? {
            return Err(Error::new(
                Code::NotFound,
                format!("collection {name:?} does not exist"),
            ));
        }
        self.collections.remove(name);
        // Its record went with the collection; the file is only space now.
        if let (Some(files), Some(key)) = (self.segments.as_deref_mut(), key) {
            files.remove(key)?;
        }
        Ok(())
    }

    /// Opens an existing collection: `NOT_FOUND` when there is none of that name.
    pub fn collection(&mut self, name: &str) -> Result<Settings> {
        self.load(name).map(|c| c.settings.clone())
    }

    pub fn collection_names(&self) -> Result<Vec<String>> {
        self.store.collection_names()
    }

    /// Every collection's settings and number of live records, by name, without
    /// loading any: what listing a database of many shards needs.
    pub fn collection_counts(&self) -> Result<Vec<(Settings, usize)>> {
        self.store.collection_counts()
    }

    /// Inserts or replaces records, all in one transaction; returns their ids in order.
    pub fn upsert(&mut self, name: &str, records: Vec<Record>) -> Result<Vec<String>> {
        self.write(name, records, None, None)
    }

    /// [`Database::upsert`], with another worker running [`crate::index::hnsw::help`] at
    /// the other end of `helper` to share the graph's inserts; told to stop if it cannot.
    pub fn upsert_helped(&mut self, name: &str, records: Vec<Record>, helper: &mut dyn Peer) -> Result<Vec<String>> {
        self.write(name, records, None, Some(helper))
    }

    /// Validates and writes a batch, to SQLite (forgetting staged batch `staged` in the
    /// same transaction) and then to the search copy, with `helper` if there is one.
    fn write(
        &mut self,
        name: &str,
        mut records: Vec<Record>,
        staged: Option<&str>,
        helper: Option<&mut dyn Peer>,
    ) -> Result<Vec<String>> {
        let valid = self.validate(name, &mut records, |i| format!("records[{i}]"))?;
        // A staged batch had its room checked when staged.
        if staged.is_none() {
            self.check_room(&records)?;
        }
        let Valid {
            key,
            metric,
            ids,
            metas,
        } = valid;
        let (metadata, json): (Vec<_>, Vec<_>) = metas.into_iter().map(Option::unzip).unzip();
        let stored = rows(&records, &ids, &json);
        let mut vectors = Vec::with_capacity(records.iter().map(|r| r.vector.len()).sum());
        let mut prepared = Vec::with_capacity(records.first().map_or(0, |r| r.vector.len()));
        for r in &records {
            prepare(metric, r.vector, &mut prepared);
            vectors.extend_from_slice(&prepared);
        }
        let store = &mut self.store;
        let c = self.collections.get_mut(name).expect("validated above");
        c.index.reserve(records.len());
        let batch = Batch {
            ids: &ids,
            vectors: &vectors,
            metadata,
        };
        c.index
            .upsert_batch(batch, helper, &mut || store.write(key, &stored, staged))?;
        c.dirty += records.len();
        Ok(ids)
    }

    /// Checks every record of a batch and settles its ids and serialised metadata;
    /// touches nothing. `field(i)` names record i in an error.
    fn validate(&mut self, name: &str, records: &mut [Record], field: impl Fn(usize) -> String) -> Result<Valid> {
        let Settings { key, dim, metric, .. } = self.load(name)?.settings;
        let mut ids = Vec::with_capacity(records.len());
        let mut metas = Vec::with_capacity(records.len());
        for (i, r) in records.iter_mut().enumerate() {
            check_vector(r.vector, dim, metric, || format!("{}.vector", field(i)))?;
            if r.id.is_empty() || r.id.len() > MAX_ID_BYTES {
                return Err(Error::invalid(format!(
                    "{}.id: must be 1 to {MAX_ID_BYTES} bytes",
                    field(i)
                )));
            }
            ids.push(std::mem::take(&mut r.id));
            metas.push(match r.metadata.take() {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => {
                    let text = serde_json::to_string(&m).expect("a JSON object serialises");
                    if text.len() > MAX_METADATA_BYTES {
                        return Err(Error::new(
                            Code::InvalidMetadata,
                            format!(
                                "{}.metadata is {} bytes, over the {MAX_METADATA_BYTES} limit",
                                field(i),
                                text.len()
                            ),
                        ));
                    }
                    Some((m, text))
                }
                Some(_) => {
                    return Err(Error::new(
                        Code::InvalidMetadata,
                        format!("{}.metadata must be a JSON object", field(i)),
                    ))
                }
            });
        }
        Ok(Valid {
            key,
            metric,
            ids,
            metas,
        })
    }

    /// Deletes records by id; returns how many existed.
    pub fn delete(&mut self, name: &str, ids: &[&str]) -> Result<usize> {
        self.remove(name, ids, None)
    }

    /// Deletes `ids` from SQLite (forgetting staged batch `staged` in the same
    /// transaction) and then from the search copy.
    fn remove(&mut self, name: &str, ids: &[&str], staged: Option<&str>) -> Result<usize> {
        let key = self.load(name)?.settings.key;
        let n = self.store.delete(key, ids, staged)?;
        let c = self.collections.get_mut(name).expect("loaded above");
        c.dirty += n;
        let index = &mut c.index;
        for id in ids {
            index.remove(id);
        }
        Ok(n)
    }

    /// A record as stored, with its original (not normalised) vector.
    pub fn get(&mut self, name: &str, id: &str) -> Result<Option<Stored>> {
        let key = self.load(name)?.settings.key;
        self.store.get(key, id)
    }

    pub fn count(&mut self, name: &str) -> Result<usize> {
        Ok(self.load(name)?.index.len())
    }

    pub fn ids(&mut self, name: &str) -> Result<Vec<String>> {
        Ok(self.load(name)?.index.ids().map(str::to_owned).collect())
    }

    /// The bytes of the collection's search copy, by part.
    pub fn sizes(&mut self, name: &str) -> Result<Sizes> {
        let index = &self.load(name)?.index;
        Ok(Sizes {
            vectors: index.matrix_bytes(),
            codes: index.code_bytes(),
            graph: index.graph_bytes(),
        })
    }
}

/// The bytes a collection's search copy holds in memory, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The prepared vectors: what one exact scan reads.
    pub vectors: usize,
    /// The quantized codes: what a scan over them reads (0 when the collection is not
    /// quantized, or too small yet to keep codes).
    pub codes: usize,
    /// The graph's links (0 when it is searched by a scan).
    pub graph: usize,
}
