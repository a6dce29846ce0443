//! The wasm-bindgen surface: turns JS arguments into core calls and core results into
//! JSON text, which the worker posts on unchanged. No logic lives here.

use crate::db::{Database, Record, SearchOptions};
use crate::error::{Code, Error, Result};
use crate::filter::Filter;
use crate::index::Hit;
use crate::metric::Metric;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}

/// Reads JS `Uint8Array`s one after another, copying from each straight into the
/// caller's buffer.
struct Chunks {
    chunks: Vec<js_sys::Uint8Array>,
    next: usize,
    offset: u32,
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.get(self.next) {
            let left = chunk.length() - self.offset;
            if left == 0 {
                self.next += 1;
                self.offset = 0;
                continue;
            }
            let n = left.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
            chunk
                .subarray(self.offset, self.offset + n)
                .copy_to(&mut buf[..n as usize]);
            self.offset += n;
            return Ok(n as usize);
        }
        Ok(0)
    }
}

fn parse_json(text: &str, field: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::invalid(format!("{field}: not valid JSON: {e}")))
}

fn string_list(text: &str, field: &str) -> Result<Vec<String>> {
    let v = parse_json(text, field)?;
    let items = v
        .as_array()
        .ok_or_else(|| Error::invalid(format!("{field}: must be an array of strings")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid(format!("{field}[{i}]: must be a string")))
        })
        .collect()
}

fn settings_json(s: crate::store::Settings) -> String {
    json!({"name": s.name, "dim": s.dim, "metric": s.metric.as_str()}).to_string()
}

/// Search options from their JSON form: `{"k": 10, "filter": {...}, "threshold": 0.5}`.
fn search_options(text: &str) -> Result<SearchOptions> {
    let v = parse_json(text, "options")?;
    let mut opts = SearchOptions::default();
    if let Some(k) = v.get("k").filter(|k| !k.is_null()) {
        opts.k = k
            .as_u64()
            .map(|k| k.min(usize::MAX as u64) as usize)
            .or_else(|| k.as_i64().map(|_| 0))
            .ok_or_else(|| Error::invalid(format!("k: must be an integer from 1 to {}, got {k}", crate::MAX_K)))?;
    }
    if let Some(f) = v.get("filter").filter(|f| !f.is_null()) {
        opts.filter = Some(Filter::parse(f)?);
    }
    if let Some(t) = v.get("threshold").filter(|t| !t.is_null()) {
        opts.threshold = Some(
            t.as_f64()
                .ok_or_else(|| Error::invalid("threshold: must be a number"))? as f32,
        );
    }
    Ok(opts)
}

/// A batch from its columns, as [`Db::upsert`] takes them.
/// What a write answers: `{ids, count}` (the collection's count after it), as JSON.
fn written(db: &mut Database, collection: &str, ids: Vec<String>) -> Result<String, JsValue> {
    let count = db.count(collection).map_err(to_js)?;
    Ok(json!({"ids": ids, "count": count}).to_string())
}

fn records<'a>(
    ids: &str,
    vectors: &'a [f32],
    lengths: &[u32],
    metadata: Option<String>,
    texts: Option<String>,
) -> Result<Vec<Record<'a>>> {
    let n = lengths.len();
    let column = |text: Option<&str>, field: &str| -> Result<Vec<Value>> {
        let Some(text) = text else {
            return Ok(vec![Value::Null; n]);
        };
        match parse_json(text, field)? {
            Value::Array(v) if v.len() == n => Ok(v),
            _ => Err(Error::invalid(format!("{field}: must be an array of {n} entries"))),
        }
    };
    let ids = column(Some(ids), "ids")?;
    let texts = column(texts.as_deref(), "texts")?;
    let metadata = column(metadata.as_deref(), "metadata")?;
    if lengths.iter().map(|&l| l as usize).sum::<usize>() != vectors.len() {
        return Err(Error::invalid("vectors: lengths do not add up"));
    }
    let string = |v: Value, i: usize, key: &str| -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(Error::invalid(format!("records[{i}].{key}: must be a string"))),
        }
    };
    let mut offset = 0;
    let mut batch = Vec::with_capacity(n);
    for (i, (((id, text), metadata), &len)) in ids.into_iter().zip(texts).zip(metadata).zip(lengths).enumerate() {
        let vector = &vectors[offset..offset + len as usize];
        offset += len as usize;
        batch.push(Record {
            id: string(id, i, "id")?,
            vector,
            metadata: Some(metadata),
            text: string(text, i, "text")?,
        });
    }
    Ok(batch)
}

fn hits_json(hits: &[Hit]) -> Value {
    Value::Array(
        hits.iter()
            .map(|h| json!({"id": h.id, "score": h.score, "metadata": h.metadata}))
            .collect(),
    )
}

/// Grows the wasm heap once for a batch (SQLite's pages and the search copy take about
/// twice the vectors' size) instead of letting the allocator grow it 64 KiB at a time,
/// and when it must grow, by half its size more: each `memory.grow` is a call into the
/// engine that cost 1-4 ms at a few hundred MiB in Node 20 (less in Chromium 156), so a
/// bulk load grows the heap a dozen times instead of once a batch. Pages grown and
/// not yet written cost no physical memory. Freed at once, the blocks stay in the
/// allocator's free pool; if the engine refuses the extra, the write asks for what it
/// needs itself.
fn reserve_heap(bytes: usize) {
    let pages = || core::arch::wasm32::memory_size::<0>();
    let before = pages();
    let _ = Vec::<u8>::new().try_reserve_exact(bytes);
    if pages() > before {
        let _ = Vec::<u8>::new().try_reserve_exact(before * PAGE_BYTES / 2);
    }
}

/// The size of a wasm memory page.
const PAGE_BYTES: usize = 64 * 1024;

/// One database, owned by the worker that created it.
#[wasm_bindgen]
pub struct Db {
    inner: Option<Database>,
}

#[wasm_bindgen]
impl Db {
    /// Opens an in-memory database; `site` names this replica for sync.
    #[wasm_bindgen(constructor)]
    pub fn new(site: &str) -> Result<Db, JsValue> {
        Database::open_in_memory(site)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// Opens the persistent database `name` in the OPFS pool installed as `vfs` by
    /// [`install_opfs`]; `site` names this replica for sync when the file is new.
    #[wasm_bindgen(js_name = openPersistent)]
    pub fn open_persistent(name: &str, vfs: &str, site: &str) -> Result<Db, JsValue> {
        Database::open_with_vfs(name, vfs, site)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// Opens, in memory, a copy of an exported database file: `CORRUPT_DATABASE` when
    /// the bytes are not one (`verify` adds SQLite's integrity check of every page).
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8], site: &str, verify: bool) -> Result<Db, JsValue> {
        Database::from_bytes(bytes, site, verify)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// `fromBytes` over an image in pieces (an array of `Uint8Array`s), each copied once
    /// into SQLite's memory: an IndexedDB image is never joined in JS nor copied twice.
    #[wasm_bindgen(js_name = fromChunks)]
    pub fn from_chunks(chunks: js_sys::Array, site: &str, verify: bool) -> Result<Db, JsValue> {
        let chunks: Vec<js_sys::Uint8Array> = chunks.iter().map(js_sys::Uint8Array::from).collect();
        let len = chunks.iter().map(|c| c.length() as usize).sum();
        let reader = Chunks {
            chunks,
            next: 0,
            offset: 0,
        };
        Database::from_reader(reader, len, site, verify)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// Keeps at most `n` collections' search copies in memory, least recently used out.
    #[wasm_bindgen(js_name = setMaxLoaded)]
    pub fn set_max_loaded(&mut self, n: u32) -> Result<(), JsValue> {
        self.db()?.set_max_loaded(n as usize);
        Ok(())
    }

    /// How many collections have their search copy in memory.
    pub fn loaded(&mut self) -> Result<u32, JsValue> {
        Ok(self.db()?.loaded() as u32)
    }

    /// Caps the database file at about `bytes`: growing past it is `QUOTA_EXCEEDED`.
    #[wasm_bindgen(js_name = setMaxBytes)]
    pub fn set_max_bytes(&mut self, bytes: f64) -> Result<(), JsValue> {
        self.db()?.set_max_bytes(bytes as u64).map_err(to_js)
    }

    /// The database as the bytes of a standalone SQLite file.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&mut self) -> Result<Vec<u8>, JsValue> {
        self.db()?.to_bytes().map_err(to_js)
    }

    /// The database's file in `Uint8Array` pieces of `chunk` bytes, each copied once out
    /// of SQLite: an IndexedDB checkpoint, never whole in JS.
    #[wasm_bindgen(js_name = toChunks)]
    pub fn image_chunks(&mut self, chunk: usize) -> Result<js_sys::Array, JsValue> {
        let image = self.db()?.image().map_err(to_js)?;
        Ok(image.chunks(chunk.max(1)).map(js_sys::Uint8Array::from).collect())
    }

    /// `"ok"` when SQLite's `PRAGMA integrity_check` finds the file sound, else its report.
    #[wasm_bindgen(js_name = integrityCheck)]
    pub fn integrity_check(&mut self) -> Result<String, JsValue> {
        self.db()?.store().integrity_check().map_err(to_js)
    }

    /// The application value stored under `key`, or undefined.
    #[wasm_bindgen(js_name = getMeta)]
    pub fn get_meta(&mut self, key: &str) -> Result<Option<String>, JsValue> {
        self.db()?.meta(key).map_err(to_js)
    }

    /// Stores an application value under `key`, in the database file.
    #[wasm_bindgen(js_name = setMeta)]
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), JsValue> {
        self.db()?.set_meta(key, value).map_err(to_js)
    }

    /// Every live record of a collection, as the columns [`Db::upsert`] takes:
    /// `{ids, vectors: Float32Array, metadata, texts}` (ids, metadata and texts JSON).
    pub fn rows(&mut self, collection: &str) -> Result<js_sys::Object, JsValue> {
        let rows = self.db()?.rows(collection).map_err(to_js)?;
        let mut vectors = Vec::with_capacity(rows.iter().map(|r| r.vector.len()).sum());
        rows.iter().for_each(|r| vectors.extend_from_slice(&r.vector));
        let metadata = rows
            .iter()
            .map(|r| r.metadata.as_deref().unwrap_or("null"))
            .collect::<Vec<_>>()
            .join(",");
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(drop);
        set(
            "ids",
            json!(rows.iter().map(|r| &r.id).collect::<Vec<_>>()).to_string().into(),
        )?;
        set("vectors", js_sys::Float32Array::from(&vectors[..]).into())?;
        set("metadata", format!("[{metadata}]").into())?;
        set(
            "texts",
            json!(rows.iter().map(|r| &r.text).collect::<Vec<_>>())
                .to_string()
                .into(),
        )?;
        Ok(out)
    }

    fn db(&mut self) -> Result<&mut Database, JsValue> {
        self.inner
            .as_mut()
            .ok_or_else(|| to_js(Error::new(Code::Closed, "the database is closed")))
    }

    /// Keeps collections' segments in `files` (see workers/segment-files.js), whose
    /// handles for [`Db::segment_keys`] must be open.
    #[wasm_bindgen(js_name = setSegmentFiles)]
    pub fn set_segment_files(&mut self, files: JsSegmentFiles) -> Result<(), JsValue> {
        self.db()?.set_segment_files(Box::new(JsFiles(files)));
        Ok(())
    }

    /// The keys of the collections that have a segment file, as a JSON array.
    #[wasm_bindgen(js_name = segmentKeys)]
    pub fn segment_keys(&mut self) -> Result<String, JsValue> {
        self.db()?.segment_keys().map(|k| json!(k).to_string()).map_err(to_js)
    }

    /// Collections whose segment is worth writing now, as JSON `[[name, key], ...]`.
    #[wasm_bindgen(js_name = segmentsDue)]
    pub fn segments_due(&mut self) -> Result<String, JsValue> {
        Ok(json!(self.db()?.segments_due()).to_string())
    }

    /// Writes a collection's segment; the handle for its key must be open.
    #[wasm_bindgen(js_name = writeSegment)]
    pub fn write_segment(&mut self, name: &str) -> Result<(), JsValue> {
        self.db()?.write_segment(name).map_err(to_js)
    }

    /// Closes the database; later calls fail with `CLOSED`.
    pub fn close(&mut self) {
        self.inner = None;
    }

    #[wasm_bindgen(js_name = createCollection)]
    pub fn create_collection(&mut self, name: &str, dim: u32, metric: &str) -> Result<String, JsValue> {
        let metric = Metric::parse(metric, "metric").map_err(to_js)?;
        self.db()?
            .create_collection(name, dim as usize, metric)
            .map(settings_json)
            .map_err(to_js)
    }

    /// Deletes a collection with all its records.
    #[wasm_bindgen(js_name = dropCollection)]
    pub fn drop_collection(&mut self, name: &str) -> Result<(), JsValue> {
        self.db()?.drop_collection(name).map_err(to_js)
    }

    /// Every collection with its record count, as JSON `[{name, dim, metric, count}]`.
    #[wasm_bindgen(js_name = collectionCounts)]
    pub fn collection_counts(&mut self) -> Result<String, JsValue> {
        let counts = self.db()?.collection_counts().map_err(to_js)?;
        let list: Vec<Value> = counts
            .into_iter()
            .map(|(s, count)| json!({"name": s.name, "dim": s.dim, "metric": s.metric.as_str(), "count": count}))
            .collect();
        Ok(Value::Array(list).to_string())
    }

    pub fn collection(&mut self, name: &str) -> Result<String, JsValue> {
        self.db()?.collection(name).map(settings_json).map_err(to_js)
    }

    pub fn collections(&mut self) -> Result<String, JsValue> {
        self.db()?
            .collection_names()
            .map(|n| json!(n).to_string())
            .map_err(to_js)
    }

    /// Upserts a batch. Vectors lie back to back in `vectors`, `lengths[i]` floats each;
    /// `ids` is a JSON array of strings or nulls (null: generate one); `metadata` and
    /// `texts`, when given, are JSON arrays of the same length. Columns rather than
    /// one array of objects: parsing a thousand small maps per batch showed up in
    /// profiles. Returns `{"ids": [...], "count": n}`: the ids, and how many records the
    /// collection holds after the write.
    pub fn upsert(
        &mut self,
        collection: &str,
        ids: &str,
        vectors: &[f32],
        lengths: &[u32],
        metadata: Option<String>,
        texts: Option<String>,
    ) -> Result<String, JsValue> {
        let batch = records(ids, vectors, lengths, metadata, texts).map_err(to_js)?;
        reserve_heap(std::mem::size_of_val(vectors) * 3);
        let db = self.db()?;
        let ids = db.upsert(collection, batch).map_err(to_js)?;
        written(db, collection, ids)
    }

    /// Validates a batch laid out as for [`Db::upsert`], writing nothing, and given a
    /// `batch` id keeps it aside durably as that batch: the first phase of a write
    /// that spans workers. (A memory database's worker holds the batch itself.)
    #[allow(clippy::too_many_arguments)]
    pub fn stage(
        &mut self,
        batch: Option<String>,
        collection: &str,
        ids: &str,
        vectors: &[f32],
        lengths: &[u32],
        metadata: Option<String>,
        texts: Option<String>,
    ) -> Result<(), JsValue> {
        let records = records(ids, vectors, lengths, metadata, texts).map_err(to_js)?;
        let db = self.db()?;
        match batch {
            Some(batch) => db.stage(&batch, collection, records),
            None => db.check_upsert(collection, records),
        }
        .map_err(to_js)
    }

    /// Checks a delete of `ids` (a JSON array) from `collection`, and given a `batch`
    /// id keeps it aside durably as that batch, as [`Db::stage`] does for a write.
    #[wasm_bindgen(js_name = stageDelete)]
    pub fn stage_delete(&mut self, batch: Option<String>, collection: &str, ids: &str) -> Result<(), JsValue> {
        let ids = string_list(ids, "ids").map_err(to_js)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let db = self.db()?;
        match batch {
            Some(batch) => db.stage_delete(&batch, collection, &refs),
            None => db.count(collection).map(drop),
        }
        .map_err(to_js)
    }

    /// Writes (or, for a staged delete, applies) staged batch `batch`; answers as
    /// [`Db::upsert`] does, or `undefined` if it is not staged here (written already).
    #[wasm_bindgen(js_name = commitStaged)]
    pub fn commit_staged(&mut self, batch: &str) -> Result<Option<String>, JsValue> {
        let db = self.db()?;
        match db.commit_staged(batch).map_err(to_js)? {
            Some((collection, ids)) => written(db, &collection, ids).map(Some),
            None => Ok(None),
        }
    }

    /// The batches staged here, as a JSON array.
    #[wasm_bindgen(js_name = stagedBatches)]
    pub fn staged_batches(&mut self) -> Result<String, JsValue> {
        Ok(json!(self.db()?.staged_batches().map_err(to_js)?).to_string())
    }

    #[wasm_bindgen(js_name = discardStaged)]
    pub fn discard_staged(&mut self, batch: &str) -> Result<(), JsValue> {
        self.db()?.discard_staged(batch).map_err(to_js)
    }

    /// Records that batch `batch` commits (this database coordinates it).
    pub fn decide(&mut self, batch: &str) -> Result<(), JsValue> {
        self.db()?.decide(batch).map_err(to_js)
    }

    pub fn decided(&mut self, batch: &str) -> Result<bool, JsValue> {
        self.db()?.decided(batch).map_err(to_js)
    }

    /// Forgets the decision on `batch`, or on every batch without one; returns how
    /// many decisions there were.
    pub fn forget(&mut self, batch: Option<String>) -> Result<u32, JsValue> {
        Ok(self.db()?.forget(batch.as_deref()).map_err(to_js)? as u32)
    }

    /// Returns `[{id, score, metadata}]` best first, as JSON.
    pub fn search(&mut self, collection: &str, query: &[f32], options: &str) -> Result<String, JsValue> {
        let opts = search_options(options).map_err(to_js)?;
        let hits = self.db()?.search(collection, query, &opts).map_err(to_js)?;
        Ok(hits_json(&hits).to_string())
    }

    /// Searches for each query in `queries` (back to back) in one pass over the rows;
    /// returns a JSON array with one result list per query.
    #[wasm_bindgen(js_name = searchMany)]
    pub fn search_many(&mut self, collection: &str, queries: &[f32], options: &str) -> Result<String, JsValue> {
        let opts = search_options(options).map_err(to_js)?;
        let lists = self.db()?.search_many(collection, queries, &opts).map_err(to_js)?;
        Ok(Value::Array(lists.iter().map(|hits| hits_json(hits)).collect()).to_string())
    }

    /// `ids` is a JSON array; returns a JSON array of records or nulls, in order.
    pub fn get(&mut self, collection: &str, ids: &str) -> Result<String, JsValue> {
        let ids = string_list(ids, "ids").map_err(to_js)?;
        let db = self.db()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(match db.get(collection, id).map_err(to_js)? {
                None => Value::Null,
                Some(s) => {
                    let metadata = match s.metadata {
                        Some(m) => parse_json(&m, "metadata").map_err(to_js)?,
                        None => Value::Null,
                    };
                    json!({"id": s.id, "vector": s.vector, "metadata": metadata, "text": s.text})
                }
            });
        }
        Ok(Value::Array(out).to_string())
    }

    /// Deletes by id (a JSON array); returns how many existed.
    pub fn delete(&mut self, collection: &str, ids: &str) -> Result<u32, JsValue> {
        let ids = string_list(ids, "ids").map_err(to_js)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.db()?.delete(collection, &refs).map(|n| n as u32).map_err(to_js)
    }

    pub fn count(&mut self, collection: &str) -> Result<u32, JsValue> {
        self.db()?.count(collection).map(|n| n as u32).map_err(to_js)
    }

    pub fn ids(&mut self, collection: &str) -> Result<String, JsValue> {
        self.db()?.ids(collection).map(|v| json!(v).to_string()).map_err(to_js)
    }

    /// Bytes one exact scan of the collection reads (for GB/s figures).
    #[wasm_bindgen(js_name = scanBytes)]
    pub fn scan_bytes(&mut self, collection: &str) -> Result<f64, JsValue> {
        self.db()?.scan_bytes(collection).map(|n| n as f64).map_err(to_js)
    }
}

/// The score of `a` against `b` under `metric`, as a search reports it.
#[wasm_bindgen]
pub fn distance(metric: &str, a: &[f32], b: &[f32]) -> Result<f32, JsValue> {
    let m = Metric::parse(metric, "metric").map_err(to_js)?;
    if a.len() != b.len() {
        return Err(to_js(Error::new(
            Code::DimensionMismatch,
            format!("b has {} dimensions, a has {}", b.len(), a.len()),
        )));
    }
    Ok(m.distance(a, b))
}

/// Installs an OPFS pool of files as the SQLite VFS `vfs`, kept in the OPFS directory
/// `directory` (one worker a directory: the pool holds its files exclusively).
#[wasm_bindgen(js_name = installOpfs)]
pub async fn install_opfs(vfs: String, directory: String) -> Result<(), JsValue> {
    use sqlite_wasm_vfs::sahpool::{install, OpfsSAHPoolCfgBuilder};
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(&vfs)
        .directory(&directory)
        .build();
    let pool = install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
        .await
        .map_err(|e| {
            to_js(Error::new(
                Code::Storage,
                format!("storage: OPFS is not available here: {e}"),
            ))
        })?;
    OPFS_POOLS.with(|p| p.borrow_mut().insert(vfs, pool));
    Ok(())
}

/// Lets go of the OPFS files of the pool installed as `vfs`, so that another worker
/// can open them at once (a worker's handles are otherwise freed only some time after
/// it ends). Every database opened through it must be closed first.
#[wasm_bindgen(js_name = uninstallOpfs)]
pub fn uninstall_opfs(vfs: &str) -> Result<(), JsValue> {
    let Some(pool) = OPFS_POOLS.with(|p| p.borrow_mut().remove(vfs)) else {
        return Ok(());
    };
    // SAFETY: the worker calls this only after closing the database that used the VFS.
    unsafe { pool.uninstall() }.map_err(|e| to_js(Error::new(Code::Storage, format!("storage: {e}"))))
}

#[wasm_bindgen]
extern "C" {
    /// A worker's segment files: `read(key, at, view)`, `write(key, at, view)`,
    /// `flush(key, length)`, `remove(key)`, each synchronous.
    pub type JsSegmentFiles;
    #[wasm_bindgen(method, catch)]
    fn read(this: &JsSegmentFiles, key: f64, at: f64, into: &js_sys::Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn write(this: &JsSegmentFiles, key: f64, at: f64, from: &js_sys::Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn flush(this: &JsSegmentFiles, key: f64, length: f64) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn remove(this: &JsSegmentFiles, key: f64) -> Result<(), JsValue>;
}

/// [`SegmentFiles`](crate::segment::SegmentFiles) over the worker's JS object. Reads
/// land straight in wasm memory: a view is made over the destination and filled there.
struct JsFiles(JsSegmentFiles);

fn storage_error(e: JsValue) -> Error {
    let message = js_sys::Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string());
    Error::new(
        Code::Storage,
        format!("segment file: {}", message.unwrap_or_else(|| format!("{e:?}"))),
    )
}

impl crate::segment::SegmentFiles for JsFiles {
    fn read(&mut self, key: i64, at: u64, buf: &mut [u8]) -> Result<()> {
        // SAFETY: nothing allocates between making the view and the call that fills it.
        let view = unsafe { js_sys::Uint8Array::view_mut_raw(buf.as_mut_ptr(), buf.len()) };
        self.0.read(key as f64, at as f64, &view).map_err(storage_error)
    }
    fn write(&mut self, key: i64, at: u64, buf: &[u8]) -> Result<()> {
        // SAFETY: as for read.
        let view = unsafe { js_sys::Uint8Array::view(buf) };
        self.0.write(key as f64, at as f64, &view).map_err(storage_error)
    }
    fn flush(&mut self, key: i64, len: u64) -> Result<()> {
        self.0.flush(key as f64, len as f64).map_err(storage_error)
    }
    fn remove(&mut self, key: i64) -> Result<()> {
        self.0.remove(key as f64).map_err(storage_error)
    }
}

thread_local! {
    /// The OPFS pools this worker has installed, by VFS name.
    static OPFS_POOLS: std::cell::RefCell<std::collections::HashMap<String, sqlite_wasm_vfs::sahpool::OpfsSAHPoolUtil>> =
        Default::default();
}

/// Which kernels this build runs: `"simd128"` or `"scalar"`.
#[wasm_bindgen]
pub fn build() -> String {
    crate::kernels::BUILD.to_owned()
}
