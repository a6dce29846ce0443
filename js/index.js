// quiver's public API. The page holds only this thin async layer; the store, the
// vectors and the math live in a module worker running the wasm core.
import { QuiverError, codes } from "./errors.js";
import { WorkerClient } from "./client.js";

export { QuiverError, codes };

const BUILDS = { auto: "auto", simd128: "simd128", simd: "simd128", scalar: "scalar" };

const invalid = (message) => new QuiverError("INVALID_ARGUMENT", message);

function checkName(name, field) {
  if (typeof name !== "string" || name.length === 0) throw invalid(`${field}: must be a non-empty string`);
}

/** A vector as a Float32Array: typed arrays are converted, arrays must hold numbers. */
function toVector(v, field) {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== "number") throw new QuiverError("INVALID_VECTOR", `${field}[${i}] must be a number`);
    }
    return Float32Array.from(v);
  }
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
    return Float32Array.from(v);
  }
  throw new QuiverError("INVALID_VECTOR", `${field} must be a Float32Array or an array of numbers`);
}

function json(value, code, field) {
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw new QuiverError(code, `${field} is not JSON-serialisable: ${e.message}`);
  }
}

/** Serialises a batch's metadata in one call; only on failure looks for the culprit. */
function metadataJson(list) {
  try {
    return JSON.stringify(list);
  } catch {
    list.forEach((m, i) => json(m, "INVALID_METADATA", `records[${i}].metadata`));
    throw new QuiverError("INVALID_METADATA", "metadata is not JSON-serialisable");
  }
}

/**
 * Opens a database in its own worker.
 * @param {{name?: string, build?: "auto"|"simd128"|"scalar"}} [options]
 */
export async function open(options = {}) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { name = "default", build = "auto" } = options;
  checkName(name, "name");
  if (!(build in BUILDS)) throw invalid(`build: must be "auto", "simd128" or "scalar", got ${JSON.stringify(build)}`);
  const client = new WorkerClient();
  try {
    const chosen = await client.call("init", { build: BUILDS[build] });
    const site = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    await client.call("open", { db: name, site });
    return new Database(client, name, chosen);
  } catch (e) {
    client.terminate();
    throw e;
  }
}

export class Database {
  #client;
  #closed = false;

  /** @internal use {@link open} */
  constructor(client, name, build) {
    this.#client = client;
    this.name = name;
    /** The kernels in use: "simd128" or "scalar". */
    this.build = build;
  }

  /** @internal sends one request to the worker that owns this database. */
  _call(op, args = {}, transfer = []) {
    if (this.#closed) return Promise.reject(new QuiverError("CLOSED", `database ${JSON.stringify(this.name)} is closed`));
    return this.#client.call(op, { db: this.name, ...args }, transfer);
  }

  /** @internal a Float32Array to fill and transfer, recycled from earlier batches. */
  _floats(length) {
    return this.#client.floats(length);
  }

  /**
   * Opens a collection. With `options`, creates it when missing (and checks that an
   * existing one has the same dim and metric); without, it must exist (NOT_FOUND).
   */
  async collection(name, options) {
    checkName(name, "name");
    let settings;
    if (options === undefined) {
      settings = await this._call("collection", { name });
    } else {
      if (options === null || typeof options !== "object") throw invalid("options: must be an object");
      const { dim, metric = "cosine" } = options;
      if (!Number.isInteger(dim)) throw invalid(`dim: must be an integer, got ${JSON.stringify(dim)}`);
      if (typeof metric !== "string") throw invalid("metric: must be a string");
      settings = await this._call("createCollection", { name, dim: dim < 0 ? 0 : dim, metric });
    }
    return new Collection(this, JSON.parse(settings));
  }

  /** Names of the collections in this database. */
  async collections() {
    return JSON.parse(await this._call("collections"));
  }

  /** Closes the database and stops its worker. Later calls fail with CLOSED. */
  async close() {
    if (this.#closed) return;
    await this._call("close").catch(() => {});
    this.#closed = true;
    this.#client.terminate();
  }
}

export class Collection {
  #db;

  /** @internal use {@link Database#collection} */
  constructor(db, { name, dim, metric }) {
    this.#db = db;
    this.name = name;
    this.dim = dim;
    this.metric = metric;
  }

  #call(op, args, transfer) {
    return this.#db._call(op, { collection: this.name, ...args }, transfer);
  }

  /**
   * Inserts or replaces records in one transaction: all are written, or none.
   * @returns {Promise<string[]>} the ids, generated where a record had none
   */
  async upsert(records) {
    if (!Array.isArray(records)) records = [records];
    const n = records.length;
    const lengths = new Uint32Array(n);
    const vectors = new Array(n);
    const ids = new Array(n);
    let metadata = null;
    let texts = null;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const r = records[i];
      if (r === null || typeof r !== "object") throw invalid(`records[${i}]: must be an object`);
      const v = toVector(r.vector, `records[${i}].vector`);
      vectors[i] = v;
      lengths[i] = v.length;
      total += v.length;
      if (r.id !== undefined && typeof r.id !== "string") throw invalid(`records[${i}].id: must be a string`);
      ids[i] = r.id ?? null;
      if (r.text !== undefined && r.text !== null) {
        if (typeof r.text !== "string") throw invalid(`records[${i}].text: must be a string`);
        (texts ??= new Array(n).fill(null))[i] = r.text;
      }
      if (r.metadata !== undefined && r.metadata !== null) (metadata ??= new Array(n).fill(null))[i] = r.metadata;
    }
    if (n === 0) return [];
    const flat = this.#db._floats(total);
    for (let i = 0, off = 0; i < n; off += vectors[i].length, i++) flat.set(vectors[i], off);
    const args = { ids: JSON.stringify(ids), vectors: flat, lengths, metadata: metadata && metadataJson(metadata), texts: texts && JSON.stringify(texts) };
    return JSON.parse(await this.#call("upsert", args, [flat.buffer, lengths.buffer]));
  }

  /**
   * The k records closest to `query`, best first: `[{id, score, metadata}]`.
   * `score` is the cosine similarity or dot product (higher is closer) or the
   * Euclidean distance (lower is closer); `threshold` bounds it the same way.
   */
  async search(query, options = {}) {
    if (options === null || typeof options !== "object") throw invalid("options: must be an object");
    const { k = 10, filter, threshold } = options;
    if (!Number.isInteger(k)) throw invalid(`k: must be an integer from 1 to 10000, got ${k}`);
    if (threshold !== undefined && typeof threshold !== "number") throw invalid("threshold: must be a number");
    if (threshold !== undefined && !Number.isFinite(threshold)) throw invalid("threshold: must be a finite number");
    const q = Float32Array.from(toVector(query, "query"));
    const opts = json({ k, filter, threshold }, "INVALID_ARGUMENT", "filter");
    return JSON.parse(await this.#call("search", { query: q, options: opts }, [q.buffer]));
  }

  /** The record with this id (or each of these ids), or null where there is none. */
  async get(ids) {
    const many = Array.isArray(ids);
    const list = many ? ids : [ids];
    list.forEach((id, i) => {
      if (typeof id !== "string") throw invalid(`ids[${i}]: must be a string`);
    });
    const found = JSON.parse(await this.#call("get", { ids: JSON.stringify(list) })).map(
      (r) => r && { ...r, vector: Float32Array.from(r.vector) },
    );
    return many ? found : found[0];
  }

  /** Deletes by id (or ids); returns how many existed. */
  async delete(ids) {
    const list = Array.isArray(ids) ? ids : [ids];
    list.forEach((id, i) => {
      if (typeof id !== "string") throw invalid(`ids[${i}]: must be a string`);
    });
    return this.#call("delete", { ids: JSON.stringify(list) });
  }

  /** Number of live records. */
  async count() {
    return this.#call("count");
  }

  /** Ids of all live records. */
  async ids() {
    return JSON.parse(await this.#call("ids"));
  }
}
