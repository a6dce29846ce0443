//! The `Db` class: one database, each method converting its arguments, calling the
//! core and converting the answer.

use crate::args::{index_kind, integer, parse_json, quantization, records, search_options};
use crate::chunks::Chunks;
use crate::heap::reserve_heap;
use crate::helper::{JsPeer, Mailbox};
use crate::segment_files::{JsFiles, JsSegmentFiles};
use crate::to_js;
use quiver::index::Hit;
use quiver::store::Settings;
use quiver::sync::wire::{self, Message};
use quiver::sync::Op;
use quiver::{Code, Database, Error, Metric, Result, MAX_DIM};
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// The largest integer a JS number holds exactly, `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// An answer as a JS value: structs as plain objects, numbers as numbers. Answers
/// that travel on as bytes (search results, through the query ring) stay JSON text.
fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    Ok(value.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?)
}

/// Argument `field`, a JS array of strings.
fn strings(value: JsValue, field: &str) -> Result<Vec<String>, JsValue> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|_| to_js(Error::invalid(format!("{field}: must be an array of strings"))))
}

/// A collection as JS reads it: `{name, dim, metric, index, quantization}`, and
/// `count` where asked for.
#[derive(Serialize)]
struct CollectionOut<'a> {
    name: &'a str,
    dim: usize,
    metric: &'static str,
    index: &'static str,
    quantization: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}

impl<'a> CollectionOut<'a> {
    fn new(s: &'a Settings, count: Option<usize>) -> Self {
        CollectionOut {
            name: &s.name,
            dim: s.dim,
            metric: s.metric.as_str(),
            index: s.index.as_str(),
            quantization: s.quantization.as_str(),
            count,
        }
    }
}

/// What a write answers: how many records the collection holds after it. Not its ids:
/// the page settled them before sending, and a thousand strings made into JS values
/// cost a batch more than its JSON did.
fn written(db: &mut Database, collection: &str) -> Result<u32, JsValue> {
    db.count(collection).map(|n| n as u32).map_err(to_js)
}

/// A hit as JS reads it; the score widened to f64 as a JS number holds it.
#[derive(Serialize)]
struct HitOut<'a> {
    id: &'a str,
    score: f64,
    metadata: Option<&'a quiver::index::Metadata>,
}

/// Search hits as JS reads them: `[{id, score, metadata}]`, best first, as JSON text.
/// Written straight from the hits into bytes: building a `Value` (cloning each
/// metadata object) and writing it through `fmt::Write` took more of a small
/// search's time than its scan.
pub fn hits_json(hits: &[Hit]) -> String {
    let rows: Vec<HitOut> = hits
        .iter()
        .map(|h| HitOut {
            id: h.id,
            score: h.score.into(),
            metadata: h.metadata,
        })
        .collect();
    serde_json::to_string(&rows).expect("hits serialize")
}

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

    /// Opens an in-memory database that stores no vectors in SQLite, for a page that
    /// keeps every exact vector in its replica: `get` and `rows` answer empty vectors.
    #[wasm_bindgen(js_name = withoutVectors)]
    pub fn without_vectors(site: &str) -> Result<Db, JsValue> {
        Database::open_in_memory_without_vectors(site)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// Opens the persistent database `name` in the OPFS pool installed as `vfs` by
    /// `installOpfs`; `site` names this replica for sync when the file is new.
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
        let reader = Chunks::new(chunks);
        let len = reader.len();
        Database::from_reader(reader, len, site, verify)
            .map(|d| Db { inner: Some(d) })
            .map_err(to_js)
    }

    /// This database's site id: the one its file was created with.
    pub fn site(&mut self) -> Result<String, JsValue> {
        Ok(self.db()?.site().to_owned())
    }

    /// Keeps at most `n` collections' search copies in memory, least recently used out.
    #[wasm_bindgen(js_name = setMaxLoaded)]
    pub fn set_max_loaded(&mut self, n: f64) -> Result<(), JsValue> {
        let n = integer(n, "n", 1, u32::MAX.into()).map_err(to_js)?;
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
        let bytes = integer(bytes, "bytes", 1, MAX_SAFE_INTEGER).map_err(to_js)?;
        self.db()?.set_max_bytes(bytes).map_err(to_js)
    }

    /// The database as the bytes of a standalone SQLite file.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn image_bytes(&mut self) -> Result<Vec<u8>, JsValue> {
        self.db()?.to_bytes().map_err(to_js)
    }

    /// The database's file in `Uint8Array` pieces of `chunk` bytes, each copied once out
    /// of SQLite: an IndexedDB checkpoint, never whole in JS.
    #[wasm_bindgen(js_name = toChunks)]
    pub fn image_chunks(&mut self, chunk: f64) -> Result<js_sys::Array, JsValue> {
        let chunk = integer(chunk, "chunk", 1, u32::MAX.into()).map_err(to_js)?;
        let image = self.db()?.image().map_err(to_js)?;
        Ok(image.chunks(chunk as usize).map(js_sys::Uint8Array::from).collect())
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

    /// The keys of the collections that have a segment file.
    #[wasm_bindgen(js_name = segmentKeys)]
    pub fn segment_keys(&mut self) -> Result<JsValue, JsValue> {
        to_value(&self.db()?.segment_keys().map_err(to_js)?)
    }

    /// Collections whose segment is worth writing now, as `[[name, key], ...]`.
    #[wasm_bindgen(js_name = segmentsDue)]
    pub fn segments_due(&mut self) -> Result<JsValue, JsValue> {
        to_value(&self.db()?.segments_due())
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

    /// Creates a collection searched with `index` ("flat", "hnsw" or "auto"; flat when
    /// not given) on codes of `quantization` ("none", "int8" or "binary"; none when not
    /// given), or opens it if it exists with the same dim, metric and (when given)
    /// index and quantization; answers `{name, dim, metric, index, quantization}`.
    #[wasm_bindgen(js_name = createCollection)]
    pub fn create_collection(
        &mut self,
        name: &str,
        dim: f64,
        metric: &str,
        index: Option<String>,
        quantization: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let dim = integer(dim, "dim", 1, MAX_DIM as u64).map_err(to_js)?;
        let metric = Metric::parse(metric, "metric").map_err(to_js)?;
        let index = index.as_deref().map(index_kind).transpose().map_err(to_js)?;
        let quant = quantization
            .as_deref()
            .map(self::quantization)
            .transpose()
            .map_err(to_js)?;
        let settings = self
            .db()?
            .create_collection_with(name, dim as usize, metric, index, quant)
            .map_err(to_js)?;
        to_value(&CollectionOut::new(&settings, None))
    }

    /// Deletes a collection with all its records.
    #[wasm_bindgen(js_name = dropCollection)]
    pub fn drop_collection(&mut self, name: &str) -> Result<(), JsValue> {
        self.db()?.drop_collection(name).map_err(to_js)
    }

    /// Every collection with its record count: `[{name, dim, metric, count}]`.
    #[wasm_bindgen(js_name = collectionCounts)]
    pub fn collection_counts(&mut self) -> Result<JsValue, JsValue> {
        let counts = self.db()?.collection_counts().map_err(to_js)?;
        let list: Vec<_> = counts
            .iter()
            .map(|(s, count)| CollectionOut::new(s, Some(*count)))
            .collect();
        to_value(&list)
    }

    /// An existing collection's `{name, dim, metric}`, or `NOT_FOUND`.
    pub fn collection(&mut self, name: &str) -> Result<JsValue, JsValue> {
        let settings = self.db()?.collection(name).map_err(to_js)?;
        to_value(&CollectionOut::new(&settings, None))
    }

    /// The collections' names.
    pub fn collections(&mut self) -> Result<JsValue, JsValue> {
        to_value(&self.db()?.collection_names().map_err(to_js)?)
    }

    /// Upserts a batch. Vectors lie back to back in `vectors`, `lengths[i]` floats each;
    /// `ids` is a JSON array of strings (the page made any the caller left out); `metadata` and
    /// `texts`, when given, are JSON arrays of the same length. Columns rather than
    /// one array of objects: parsing a thousand small maps per batch showed up in
    /// profiles. With `helper`, another worker's [`crate::helper::Helper`] shares a
    /// graph's inserts through that mailbox. Returns how many records the
    /// collection holds after the write.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert(
        &mut self,
        collection: &str,
        ids: &str,
        vectors: &[f32],
        lengths: &[u32],
        metadata: Option<String>,
        texts: Option<String>,
        helper: Option<Mailbox>,
    ) -> Result<u32, JsValue> {
        let batch = records(ids, vectors, lengths, metadata, texts).map_err(to_js)?;
        reserve_heap(std::mem::size_of_val(vectors) * 3);
        let db = self.db()?;
        match helper {
            Some(mailbox) => db.upsert_helped(collection, batch, &mut JsPeer(&mailbox)),
            None => db.upsert(collection, batch),
        }
        .map_err(to_js)?;
        written(db, collection)
    }

    /// Validates a batch laid out as for [`Db::upsert`] and keeps it aside as `batch`,
    /// writing nothing yet: the first phase of a write that spans workers.
    #[allow(clippy::too_many_arguments)]
    pub fn stage(
        &mut self,
        batch: &str,
        collection: &str,
        ids: &str,
        vectors: &[f32],
        lengths: &[u32],
        metadata: Option<String>,
        texts: Option<String>,
    ) -> Result<(), JsValue> {
        let records = records(ids, vectors, lengths, metadata, texts).map_err(to_js)?;
        self.db()?.stage(batch, collection, records).map_err(to_js)
    }

    /// Checks a delete of `ids` (an array of strings) from `collection` and keeps it
    /// aside as `batch`, as [`Db::stage`] does for a write.
    #[wasm_bindgen(js_name = stageDelete)]
    pub fn stage_delete(&mut self, batch: &str, collection: &str, ids: JsValue) -> Result<(), JsValue> {
        let ids = strings(ids, "ids")?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.db()?.stage_delete(batch, collection, &refs).map_err(to_js)
    }

    /// Writes (or, for a staged delete, applies) staged batch `batch`; answers as
    /// [`Db::upsert`] does, or `undefined` if it is not staged here (written already).
    #[wasm_bindgen(js_name = commitStaged)]
    pub fn commit_staged(&mut self, batch: &str) -> Result<Option<u32>, JsValue> {
        let db = self.db()?;
        match db.commit_staged(batch).map_err(to_js)? {
            Some((collection, _)) => written(db, &collection).map(Some),
            None => Ok(None),
        }
    }

    /// The batches staged here.
    #[wasm_bindgen(js_name = stagedBatches)]
    pub fn staged_batches(&mut self) -> Result<JsValue, JsValue> {
        to_value(&self.db()?.staged_batches().map_err(to_js)?)
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
        Ok(hits_json(&hits))
    }

    /// The records whose text best matches `text` by BM25 (options `{k, filter}`):
    /// `[{id, score, metadata}]` best first, as JSON; `score` is BM25, higher better.
    #[wasm_bindgen(js_name = searchText)]
    pub fn search_text(&mut self, collection: &str, text: &str, options: &str) -> Result<String, JsValue> {
        let opts = search_options(options).map_err(to_js)?;
        let hits = self.db()?.search_text(collection, text, &opts).map_err(to_js)?;
        Ok(hits_json(&hits))
    }

    /// The collection's changes after local change `after` (at most `limit`), as sync
    /// ops: `{message: JSON array of ops each with its seq, vectors}` (see
    /// [`crate::messages::ops_to_json`]). A database that keeps no vectors in SQLite
    /// gives its upserts empty vectors (`dim` 0), for the page to fill from its replica.
    #[wasm_bindgen(js_name = opsSince)]
    pub fn ops_since(&mut self, collection: &str, after: f64, limit: f64) -> Result<js_sys::Object, JsValue> {
        let after = integer(after, "after", 0, i64::MAX as u64).map_err(to_js)?;
        let limit = integer(limit, "limit", 1, u32::MAX as u64).map_err(to_js)? as usize;
        let ops = self.db()?.ops_since(collection, after, limit).map_err(to_js)?;
        let (head, vectors) =
            crate::messages::ops_to_json(ops.iter().map(|(op, seq)| (op, Some(*seq)))).map_err(to_js)?;
        crate::functions::columns(&head, &vectors)
    }

    /// This site's changes after local change `after` (of at most `limit` read) as
    /// one Push frame numbered `batch`: `{frame, upto, count}`, `frame` null when none
    /// was this site's (see [`Database::push_frame`]). One call where reading the ops
    /// and encoding them took two; for a database that keeps its vectors.
    #[wasm_bindgen(js_name = pushFrame)]
    pub fn push_frame(
        &mut self,
        collection: &str,
        after: f64,
        limit: f64,
        batch: f64,
    ) -> Result<js_sys::Object, JsValue> {
        let after = integer(after, "after", 0, i64::MAX as u64).map_err(to_js)?;
        let limit = integer(limit, "limit", 1, u32::MAX as u64).map_err(to_js)? as usize;
        let batch = integer(batch, "batch", 0, MAX_SAFE_INTEGER).map_err(to_js)?;
        let (frame, upto, count) = self.db()?.push_frame(collection, after, limit, batch).map_err(to_js)?;
        let out = js_sys::Object::new();
        let frame = frame.map_or(JsValue::NULL, |f| js_sys::Uint8Array::from(&f[..]).into());
        js_sys::Reflect::set(&out, &"frame".into(), &frame)?;
        js_sys::Reflect::set(&out, &"upto".into(), &(upto as f64).into())?;
        js_sys::Reflect::set(&out, &"count".into(), &(count as u32).into())?;
        Ok(out)
    }

    /// Applies other sites' ops (`ops` a JSON array as [`Db::ops_since`] gives, their
    /// vectors back to back) where they win: `{applied, count}`, `applied` one byte a
    /// op (1 where it was applied), `count` the records the collection holds after, so
    /// the page needs no second call to learn it.
    #[wasm_bindgen(js_name = applyOps)]
    pub fn apply_ops(&mut self, collection: &str, ops: &str, vectors: &[f32]) -> Result<js_sys::Object, JsValue> {
        let head = parse_json(ops, "ops").map_err(to_js)?;
        let ops = crate::messages::ops_from_json(&head, vectors, "ops").map_err(to_js)?;
        let out = js_sys::Object::new();
        self.apply_into(collection, &ops, &out)?;
        Ok(out)
    }

    /// Decodes an Ops frame from the relay and applies its ops to `collection` as
    /// [`Db::apply_ops`] does: `{message, vectors}` as `decodeFrame` gives them, with
    /// `applied` and `count`. One call where decoding and applying took two, for a
    /// worker that holds the whole collection.
    #[wasm_bindgen(js_name = applyFrame)]
    pub fn apply_frame(&mut self, collection: &str, bytes: &[u8]) -> Result<js_sys::Object, JsValue> {
        let Message::Ops(ops) = wire::decode_frame(bytes).map_err(to_js)? else {
            return Err(to_js(Error::invalid("bytes: must be an Ops frame".to_owned())));
        };
        let (head, vectors) = crate::messages::ops_json(&ops).map_err(to_js)?;
        let out = crate::functions::columns(&head, &vectors)?;
        let ops: Vec<Op> = ops.ops.into_iter().map(|(op, _)| op).collect();
        self.apply_into(collection, &ops, &out)?;
        Ok(out)
    }

    /// Applies `ops` and sets `applied` and `count` on `out`.
    fn apply_into(&mut self, collection: &str, ops: &[Op], out: &js_sys::Object) -> Result<(), JsValue> {
        let db = self.db()?;
        let applied: Vec<u8> = db
            .apply_ops(collection, ops)
            .map_err(to_js)?
            .into_iter()
            .map(u8::from)
            .collect();
        js_sys::Reflect::set(out, &"applied".into(), &js_sys::Uint8Array::from(&applied[..]).into())?;
        js_sys::Reflect::set(out, &"count".into(), &written(db, collection)?.into())?;
        Ok(())
    }

    /// `search` with the hits' vectors, for MMR: `{hits: JSON, vectors: Float32Array}`,
    /// the vectors as the search copy holds them, back to back in the hits' order.
    pub fn candidates(&mut self, collection: &str, query: &[f32], options: &str) -> Result<js_sys::Object, JsValue> {
        let opts = search_options(options).map_err(to_js)?;
        let (hits, vectors) = self.db()?.candidates(collection, query, &opts).map_err(to_js)?;
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"hits".into(), &hits_json(&hits).into())?;
        js_sys::Reflect::set(
            &out,
            &"vectors".into(),
            &js_sys::Float32Array::from(&vectors[..]).into(),
        )?;
        Ok(out)
    }

    /// Searches for each query in `queries` (back to back) in one pass over the rows;
    /// returns one result list a query, each the JSON text `search` gives for it, so
    /// that a worker can answer several callers' searches with one call.
    #[wasm_bindgen(js_name = searchMany)]
    pub fn search_many(&mut self, collection: &str, queries: &[f32], options: &str) -> Result<Vec<String>, JsValue> {
        let opts = search_options(options).map_err(to_js)?;
        let lists = self.db()?.search_many(collection, queries, &opts).map_err(to_js)?;
        Ok(lists.iter().map(|hits| hits_json(hits)).collect())
    }

    /// The records of `ids` (an array of strings), or nulls, in order, as a JSON array:
    /// text, because it goes on to the page in a message either way and serde_json
    /// writes vectors and metadata in one pass.
    pub fn get(&mut self, collection: &str, ids: JsValue) -> Result<String, JsValue> {
        let ids = strings(ids, "ids")?;
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
        Ok(serde_json::to_string(&out).expect("values serialize"))
    }

    /// Deletes by id (an array of strings); returns how many existed.
    pub fn delete(&mut self, collection: &str, ids: JsValue) -> Result<u32, JsValue> {
        let ids = strings(ids, "ids")?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.db()?.delete(collection, &refs).map(|n| n as u32).map_err(to_js)
    }

    /// Removes ids (an array of strings) that moved with their stamps to another
    /// worker's file, leaving no tombstones (see [`Database::hand_over`]); returns how
    /// many records the collection holds after.
    #[wasm_bindgen(js_name = handOver)]
    pub fn hand_over(&mut self, collection: &str, ids: JsValue) -> Result<u32, JsValue> {
        let ids = strings(ids, "ids")?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let db = self.db()?;
        db.hand_over(collection, &refs).map_err(to_js)?;
        written(db, collection)
    }

    pub fn count(&mut self, collection: &str) -> Result<u32, JsValue> {
        self.db()?.count(collection).map(|n| n as u32).map_err(to_js)
    }

    /// `{count, vectorBytes, codeBytes, graphBytes}`: the records, and the bytes their
    /// f32 vectors, their quantized codes and the graph take in the search copy.
    pub fn stats(&mut self, collection: &str) -> Result<JsValue, JsValue> {
        let db = self.db()?;
        let count = db.count(collection).map_err(to_js)?;
        let sizes = db.sizes(collection).map_err(to_js)?;
        to_value(&json!({
            "count": count,
            "vectorBytes": sizes.vectors,
            "codeBytes": sizes.codes,
            "graphBytes": sizes.graph,
        }))
    }

    /// The ids of the collection's records.
    pub fn ids(&mut self, collection: &str) -> Result<JsValue, JsValue> {
        to_value(&self.db()?.ids(collection).map_err(to_js)?)
    }
}
