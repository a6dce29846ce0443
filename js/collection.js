// A collection of the public API: its records' writes, reads and searches, each
// checked here (validate.js) and handed to its database's engine.
import { QuiverError } from "./errors.js";
import { newRecordId } from "./ids.js";
import { invalid, toVector, metadataText, searchOptions, plainSearchOptions, textOptions, checkWords } from "./validate.js";
import { guard, cancellable } from "./cancel.js";

/** Ids given as one string or an array of strings, as an array. */
function idList(ids) {
  const list = Array.isArray(ids) ? ids : [ids];
  list.forEach((id, i) => {
    if (typeof id !== "string") throw invalid(`ids[${i}]: must be a string`);
  });
  return list;
}

export class Collection {
  #db;

  /** @internal use {@link Database#collection} */
  constructor(db, { name, dim, metric, index, quantization }) {
    this.#db = db;
    this.name = name;
    this.dim = dim;
    this.metric = metric;
    /** How it is searched: "flat", "hnsw" or "auto". */
    this.index = index;
    /** How its vectors are compressed for the scan: "none", "int8" or "binary". */
    this.quantization = quantization;
  }

  /**
   * Inserts or replaces records in one transaction: all are written, or none.
   * @returns {Promise<string[]>} the ids, generated where a record had none
   */
  async upsert(records) {
    const engine = this.#db._engine();
    if (!Array.isArray(records)) records = [records];
    const n = records.length;
    const rows = { ids: new Array(n), vectors: new Array(n), metadata: new Array(n), texts: new Array(n) };
    for (let i = 0; i < n; i++) {
      const r = records[i];
      if (r === null || typeof r !== "object") throw invalid(`records[${i}]: must be an object`);
      rows.vectors[i] = toVector(r.vector, `records[${i}].vector`);
      if (r.id !== undefined && typeof r.id !== "string") throw invalid(`records[${i}].id: must be a string`);
      rows.ids[i] = r.id ?? newRecordId(this.#db.site);
      if (r.text !== undefined && r.text !== null && typeof r.text !== "string") {
        throw invalid(`records[${i}].text: must be a string`);
      }
      rows.texts[i] = r.text ?? null;
      rows.metadata[i] = metadataText(r.metadata, i);
    }
    if (n === 0) return [];
    return engine.upsert(this.name, rows);
  }

  /**
   * The k records closest to `query`, best first: `[{id, score, metadata}]`.
   * `score` is the cosine similarity or dot product (higher is closer) or the
   * Euclidean distance (lower is closer); `threshold` bounds it the same way.
   * With `text` (and `hybrid: {weight, k, fetchK}`), the vector ranking is fused with
   * the BM25 ranking of the records' texts by reciprocal rank fusion, and `score` is
   * the fused score; with `mmr: {lambda, fetchK}`, k of the fetchK closest are picked
   * by maximal marginal relevance, keeping their scores.
   * `signal` (an AbortSignal) cancels it with ABORTED; after `timeout` ms it fails
   * with TIMEOUT.
   */
  search(query, options = {}) {
    return guard(() => {
      const engine = this.#db._engine();
      const opts = searchOptions(options);
      const q = toVector(query, "query");
      return cancellable((cancel) => engine.search(this.name, q, opts, cancel), options.signal, options.timeout);
    });
  }

  /**
   * The k records whose text best matches `text` (any of its words) by BM25, best
   * first: `[{id, score, metadata}]`, `score` being BM25 (positive, higher better).
   * Options: `k`, `filter`, `signal`, `timeout`.
   */
  searchText(text, options = {}) {
    return guard(() => {
      const engine = this.#db._engine();
      checkWords(text, "text");
      const opts = textOptions(options);
      return cancellable(() => engine.searchText(this.name, text, opts), options.signal, options.timeout);
    });
  }

  /**
   * Answers many queries in one call: one result list per query, in order. Each
   * worker scores a tile of its rows against every query while the tile is in cache,
   * so a batch costs far less than the same searches one by one.
   */
  searchMany(queries, options = {}) {
    return guard(() => {
      const engine = this.#db._engine();
      if (!Array.isArray(queries)) throw invalid("queries: must be an array of vectors");
      const opts = plainSearchOptions(options, "col.searchMany");
      if (queries.length === 0) return Promise.resolve([]);
      const packed = new Float32Array(queries.length * this.dim);
      queries.forEach((v, i) => {
        const q = toVector(v, `queries[${i}]`);
        if (q.length !== this.dim) {
          throw new QuiverError("DIMENSION_MISMATCH", `queries[${i}] has ${q.length} dimensions, the collection has ${this.dim}`);
        }
        packed.set(q, i * this.dim);
      });
      return cancellable((cancel) => engine.searchMany(this.name, packed, opts, cancel), options.signal, options.timeout);
    });
  }

  /** The record with this id (or each of these ids), or null where there is none. */
  async get(ids) {
    const engine = this.#db._engine();
    const found = await engine.get(this.name, idList(ids));
    return Array.isArray(ids) ? found : found[0];
  }

  /** Deletes by id (or ids); returns how many existed. */
  async delete(ids) {
    const engine = this.#db._engine();
    const list = idList(ids);
    if (list.length === 0) return 0;
    return engine.delete(this.name, list);
  }

  /** Number of live records. */
  async count() {
    return this.#db._engine().count(this.name);
  }

  /**
   * Its size in memory: `{count, vectorBytes, codeBytes}`, the records and the bytes
   * their f32 vectors and their quantized codes take (codeBytes is 0 without
   * quantization, and until a worker holds 1,000 of its records).
   */
  async stats() {
    return this.#db._engine().stats(this.name);
  }

  /** Ids of all live records. */
  async ids() {
    return this.#db._engine().ids(this.name);
  }

  /**
   * Keeps this collection in step with `room` on a quiver relay: pushes this site's
   * changes, applies the others' (last writer wins per id), and goes on across
   * disconnects. `{url, room, token, serverCertificateHashes?, websocketUrl?,
   * transport?: "auto"|"webtransport"|"websocket"}`; returns the session (see README).
   */
  sync(options) {
    return this.#db._sync(this.name, options);
  }
}
