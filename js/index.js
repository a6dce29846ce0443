// quiver's public API and the coordinator of its workers. The page holds only this
// async layer; the store, the vectors and the math live in a pool of module workers,
// each running the wasm core over its own partition of every large collection.
import { QuiverError, codes } from "./errors.js";
import { Pool, canShare } from "./pool.js";
import { compareIds, mergeTopK } from "./partitions.js";
import { Placements, upsertArgs } from "./placement.js";
import { canShareTabs, claim, Leader, Follower } from "./tabs.js";

export { QuiverError, codes };

const BUILDS = { auto: "auto", simd128: "simd128", simd: "simd128", scalar: "scalar" };
const STORAGES = ["memory", "opfs", "idb", "auto"];


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

/** A record's metadata as JSON text ("null" for none). */
function metadataText(m, i) {
  if (m === undefined || m === null) return "null";
  const text = json(m, "INVALID_METADATA", `records[${i}].metadata`);
  if (text === undefined) throw new QuiverError("INVALID_METADATA", `records[${i}].metadata must be a JSON object`);
  return text;
}

/**
 * A scan of at most this many floats takes a worker a few microseconds, less than
 * waking the page asynchronously: the page polls for its answer instead.
 */
const QUICK_SCAN = 16384;

/** 64 random bits in hex: names a site, and with it a generated id. */
const randomHex = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

/** Default pool size: one worker a core, at most 8. */
const defaultWorkers = () => Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, 8));

/**
 * Collections below this many records live whole in one worker: searching them takes
 * less time than spreading a query over workers and merging (see the workers bench).
 */
export const PARTITION_THRESHOLD = 8192;

/**
 * Opens a database served by a pool of workers.
 * @param {{name?: string, build?: "auto"|"simd128"|"scalar", storage?: "memory"|"opfs"|"idb"|"auto",
 *   workers?: number, partitionThreshold?: number, maxBytes?: number,
 *   loadedCollections?: number}} [options]
 */
export async function open(options = {}) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { name = "default", build = "auto", workers = defaultWorkers(), partitionThreshold = PARTITION_THRESHOLD, maxBytes, loadedCollections = 64 } = options;
  checkName(name, "name");
  if (!(build in BUILDS)) throw invalid(`build: must be "auto", "simd128" or "scalar", got ${JSON.stringify(build)}`);
  if (!STORAGES.includes(options.storage ?? "memory")) throw invalid(`storage: must be "memory", "opfs", "idb" or "auto", got ${JSON.stringify(options.storage)}`);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw invalid(`workers: must be an integer from 1 to 64, got ${JSON.stringify(workers)}`);
  }
  if (!Number.isInteger(loadedCollections) || loadedCollections < 1 || loadedCollections > 2 ** 31) {
    throw invalid(`loadedCollections: must be a positive integer, got ${JSON.stringify(loadedCollections)}`);
  }
  if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
    throw invalid(`maxBytes: must be a positive integer, got ${JSON.stringify(maxBytes)}`);
  }
  if (!Number.isInteger(partitionThreshold) || partitionThreshold < 0) {
    throw invalid(`partitionThreshold: must be a non-negative integer, got ${JSON.stringify(partitionThreshold)}`);
  }
  const storage = options.storage ?? "memory";
  const site = randomHex();
  const db = new Database(name, site, partitionThreshold, storage, loadedCollections);
  const restore = (i, call) => db._restore(i, call);
  // The cap is shared evenly: each worker's file gets its part.
  const maxBytesEach = maxBytes && Math.floor(maxBytes / workers);
  const start = async () => {
    const pool = new Pool({ size: workers, build: BUILDS[build], db: name, site, storage, maxBytes: maxBytesEach, loaded: loadedCollections, ring: canShare(), restore });
    try {
      const build = await pool.start();
      // The workers resolve "auto": only they can tell whether OPFS sync handles exist.
      db.storage = pool.storage;
      db._start(pool, build);
      await db._reopen();
    } catch (e) {
      await pool.close();
      throw e;
    }
  };
  if (storage === "memory") {
    await start();
    return db;
  }
  // Ask the browser not to evict the data under storage pressure; it may say no.
  navigator.storage?.persist?.().catch(() => {});
  if (canShareTabs()) await db._share(start);
  else await start();
  return db;
}

/** What another tab may call on the leading tab's collections. */
const FORWARDED = ["upsert", "search", "searchMany", "get", "delete", "count", "ids"];

export class Database {
  #pool = null;
  #closed = false;
  /** In a tab that does not lead a shared database: where its calls go. */
  #remote = null;
  #leader = null;
  #release = null;
  #abandon = null;
  #released = null;
  #writes = Promise.resolve();
  /** Where each collection lives; see placement.js. */
  #placements = null;

  /** @internal use {@link open} */
  constructor(name, site, partitionThreshold, storage, loadedCollections) {
    this.name = name;
    this.site = site;
    this.partitionThreshold = partitionThreshold;
    this.loadedCollections = loadedCollections;
    /** Where the data lives: "memory", "opfs" or "idb" ("auto" resolved). */
    this.storage = storage;
  }

  /** @internal */
  _start(pool, build) {
    this.#pool = pool;
    this.#placements = new Placements(pool, this.storage, this.name, this.loadedCollections * 4);
    /** The kernels in use: "simd128" or "scalar". */
    this.build = build;
    /** How many workers serve this database. */
    this.workers = pool.size;
  }

  /** @internal the pool, for benchmarks and tests. */
  get _pool() {
    return this.#pool;
  }

  /** @internal where each collection lives. */
  get _placements() {
    return this.#placements;
  }

  /** @internal reads back a persistent database's layout. */
  _reopen() {
    return this.#placements.reopen();
  }

  /** @internal reloads worker i after a restart. */
  _restore(i, call) {
    return this.#placements.restore(i, call);
  }

  /** @internal the leading tab, when another tab leads this database. */
  get _remote() {
    return this.#remote;
  }

  /**
   * @internal leads the database if no other tab does (running `start`), else follows
   * the tab that does, and takes over when it goes.
   */
  async _share(start) {
    const until = new Promise((r) => (this.#release = r));
    const abandon = new AbortController();
    this.#abandon = abandon;
    const lead = async () => {
      const pending = this.#remote?.takePending() ?? [];
      this.#remote?.close();
      try {
        await start();
      } catch (e) {
        // This tab cannot take over (its options do not fit the stored database).
        for (const p of pending) p.reject(e);
        this.#closed = true;
        throw e;
      }
      this.#leader = new Leader(this.name, (target, method, args) => this.#dispatch(target, method, args));
      this.#remote = null;
      for (const p of pending) this.#dispatch(p.message.target, p.message.method, p.message.args).then(p.resolve, p.reject);
    };
    const { leads, released } = claim(this.name, lead, until, abandon.signal);
    this.#released = released;
    if (await leads) return;
    this.#remote = new Follower(this.name);
    ({ build: this.build, workers: this.workers } = await this.#remote.call("db", "info"));
  }

  /** Runs another tab's call on this, the leading tab. */
  async #dispatch(target, method, args) {
    if (target === "db") {
      if (method === "info") return { build: this.build, workers: this.workers };
      if (method === "collection") {
        const { name, dim, metric } = await this.collection(...args);
        return { name, dim, metric };
      }
      if (["collections", "dropCollection", "shards", "search", "export", "import", "integrityCheck"].includes(method)) return this[method](...args);
    } else if (typeof target?.collection === "string" && FORWARDED.includes(method)) {
      return (await this.collection(target.collection))[method](...args);
    }
    throw invalid(`method: ${JSON.stringify(method)} cannot be called from another tab`);
  }

  #open() {
    if (this.#closed) throw new QuiverError("CLOSED", `database ${JSON.stringify(this.name)} is closed`);
  }

  /**
   * @internal runs `fn` after every earlier write: writes touch several workers, and
   * one at a time keeps their parts of a batch from interleaving.
   */
  _write(fn) {
    const run = this.#writes.then(() => {
      this.#open();
      return fn();
    });
    this.#writes = run.catch(() => {});
    return run;
  }

  /** @internal throws CLOSED once the database is closed. */
  _check() {
    this.#open();
  }

  /** @internal the collection's placement, or NOT_FOUND. */
  async _placement(name) {
    this.#open();
    return this.#placements.get(name);
  }

  /**
   * Opens a collection. With `options`, creates it when missing (and checks that an
   * existing one has the same dim and metric); without, it must exist (NOT_FOUND).
   */
  async collection(name, options) {
    this.#open();
    checkName(name, "name");
    if (this.#remote) return new Collection(this, await this.#remote.call("db", "collection", options === undefined ? [name] : [name, options]));
    if (options === undefined) return new Collection(this, (await this._placement(name)).settings);
    if (options === null || typeof options !== "object") throw invalid("options: must be an object");
    const { dim, metric = "cosine" } = options;
    if (!Number.isInteger(dim)) throw invalid(`dim: must be an integer, got ${JSON.stringify(dim)}`);
    if (typeof metric !== "string") throw invalid("metric: must be a string");
    const settings = await this._write(() => this.#placements.create(name, dim < 0 ? 0 : dim, metric));
    return new Collection(this, settings);
  }

  /** Deletes a collection and all its records; NOT_FOUND when there is none. */
  async dropCollection(name) {
    this.#open();
    checkName(name, "name");
    if (this.#remote) return this.#remote.call("db", "dropCollection", [name]);
    await this._write(() => this.#placements.drop(name));
  }

  /** Names of the collections in this database. */
  async collections() {
    this.#open();
    if (this.#remote) return this.#remote.call("db", "collections");
    return this.#placements.names();
  }

  /**
   * A shard: one of many small collections a database holds, one per agent or task
   * (up to ~100,000; only those in use are kept in memory, see `loadedCollections`).
   * It is a collection, named by its id, with the collection API; `options` create it.
   * @param {string} id
   * @param {{dim: number, metric?: "cosine"|"euclidean"|"dot"}} [options]
   */
  shard(id, options) {
    return this.collection(id, options);
  }

  /** Deletes a shard and its records; NOT_FOUND when there is none. */
  dropShard(id) {
    return this.dropCollection(id);
  }

  /**
   * Every shard (collection) with its size, without loading any:
   * `[{id, dim, metric, count, bytes}]` sorted by id; `bytes` is what its vectors take.
   */
  async shards() {
    this.#open();
    if (this.#remote) return this.#remote.call("db", "shards");
    const byName = new Map();
    for (const text of await this.#pool.all("collectionCounts")) {
      for (const { name, dim, metric, count } of JSON.parse(text)) {
        const s = byName.get(name) ?? { id: name, dim, metric, count: 0, bytes: 0 };
        s.count += count;
        s.bytes = s.count * dim * 4;
        byName.set(name, s);
      }
    }
    return [...byName.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  /**
   * Searches several shards at once: the k closest records among all of them, best
   * first, each hit naming its `shard`. The shards must share dim and metric.
   * Options as for {@link Collection#search}.
   * @param {string[]} shards
   */
  search(shards, query, options = {}) {
    try {
      this.#open();
      if (!Array.isArray(shards) || shards.length === 0) throw invalid("shards: must be a non-empty array of shard ids");
      shards.forEach((id, i) => checkName(id, `shards[${i}]`));
      const { k, text } = searchOptions(options);
      const q = toVector(query, "query");
      const { signal, timeout } = options;
      if (this.#remote) return cancellable(() => this.#remote.call("db", "search", [shards, q, { k, filter: options.filter, threshold: options.threshold }]), signal, timeout);
      return cancellable(() => this.#searchShards(shards, q, k, text), signal, timeout);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #searchShards(shards, q, k, options) {
    const placed = await Promise.all(shards.map((id) => this._placement(id)));
    const { dim, metric } = placed[0].settings;
    placed.forEach(({ settings }, i) => {
      if (settings.dim !== dim) throw new QuiverError("DIMENSION_MISMATCH", `shards[${i}]: shard ${JSON.stringify(shards[i])} has ${settings.dim} dimensions, shards[0] has ${dim}`);
      if (settings.metric !== metric) throw invalid(`shards[${i}]: shard ${JSON.stringify(shards[i])} uses metric ${settings.metric}, shards[0] uses ${metric}`);
    });
    if (q.length !== dim) throw new QuiverError("DIMENSION_MISMATCH", `query has ${q.length} dimensions, the shards have ${dim}`);
    // One request a worker, naming every shard it holds part of.
    const perWorker = new Map();
    placed.forEach((c, i) => {
      for (const w of this.#placements.owners(c)) {
        if (!perWorker.has(w)) perWorker.set(w, new Set());
        perWorker.get(w).add(shards[i]);
      }
    });
    const lists = await Promise.all(
      [...perWorker].map(async ([w, set]) => {
        const names = [...set];
        const found = await this.#pool.call(w, "searchShards", { names, query: q, options });
        return found.map((list, j) => JSON.parse(list).map((hit) => ({ ...hit, shard: names[j] })));
      }),
    );
    return mergeTopK(lists.flat(), k, metric !== "euclidean");
  }

  /**
   * The database, or the named collections of it, as the bytes of one standalone
   * SQLite file: a backup to keep, to move to another browser (`import`), or to open
   * in the `sqlite3` CLI. A one-worker database exports its file as is; a partitioned
   * one is gathered from every worker into one file.
   * @param {{collections?: string[]}} [options]
   */
  async export(options = {}) {
    this.#open();
    if (this.#remote) return this.#remote.call("db", "export", [options]);
    if (options === null || typeof options !== "object") throw invalid("options: must be an object");
    const { collections } = options;
    if (collections !== undefined && !(Array.isArray(collections) && collections.every((n) => typeof n === "string"))) {
      throw invalid("collections: must be an array of collection names");
    }
    const names = collections ?? (await this.#placements.names());
    const chosen = await Promise.all(names.map((n) => this._placement(n)));
    return this._write(async () => {
      if (this.#pool.size === 1 && collections === undefined) return this.#pool.call(0, "toBytes");
      const gathered = await Promise.all(
        chosen.map(async (c) => {
          const { name, dim, metric } = c.settings;
          const parts = await Promise.all(this.#placements.owners(c).map((w) => this.#pool.call(w, "rows", { collection: name })));
          return { name, dim, metric, parts };
        }),
      );
      return this.#pool.call(0, "buildExport", { site: this.site, collections: gathered });
    });
  }

  /**
   * Adds what an exported file holds: its collections are created where missing and
   * its records upserted (replacing any with the same id). A file that is not a quiver
   * database fails with CORRUPT_DATABASE, and one whose collection clashes with an
   * existing one (another dim or metric) fails before anything is written.
   * @param {Uint8Array | ArrayBuffer | Blob} data
   * @returns {Promise<{collections: string[], records: number}>}
   */
  async import(data) {
    this.#open();
    let bytes;
    if (data instanceof Uint8Array) bytes = data.slice();
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data.slice(0));
    else if (typeof Blob === "function" && data instanceof Blob) bytes = new Uint8Array(await data.arrayBuffer());
    else throw invalid("data: must be a Uint8Array, an ArrayBuffer or a Blob");
    if (this.#remote) return this.#remote.call("db", "import", [bytes]);
    const found = await this.#pool.call(0, "readExport", { site: this.site, bytes }, [bytes.buffer]);
    for (const { settings } of found) {
      const existing = (await this.#placements.find(settings.name))?.settings;
      if (existing && existing.dim !== settings.dim) {
        throw new QuiverError("DIMENSION_MISMATCH", `data: collection ${JSON.stringify(settings.name)} has ${settings.dim} dimensions in the file, ${existing.dim} here`);
      }
      if (existing && existing.metric !== settings.metric) {
        throw invalid(`data: collection ${JSON.stringify(settings.name)} uses metric ${settings.metric}, here ${existing.metric}`);
      }
    }
    let records = 0;
    for (const { settings, ids, vectors, metadata, texts } of found) {
      const col = await this.collection(settings.name, { dim: settings.dim, metric: settings.metric });
      const idList = JSON.parse(ids);
      const metaList = JSON.parse(metadata);
      const textList = JSON.parse(texts);
      const dim = settings.dim;
      for (let start = 0; start < idList.length; start += 1000) {
        const batch = [];
        for (let j = start; j < Math.min(idList.length, start + 1000); j++) {
          batch.push({ id: idList[j], vector: vectors.subarray(j * dim, (j + 1) * dim), metadata: metaList[j], text: textList[j] });
        }
        await col.upsert(batch);
      }
      records += idList.length;
    }
    return { collections: found.map((f) => f.settings.name), records };
  }

  /**
   * Runs SQLite's integrity check on every worker's file: "ok" when all are sound,
   * else each report, prefixed with its worker.
   */
  async integrityCheck() {
    this.#open();
    if (this.#remote) return this.#remote.call("db", "integrityCheck");
    const reports = await this.#pool.all("integrityCheck");
    const bad = reports.map((r, i) => (r === "ok" ? null : `worker ${i}: ${r}`)).filter(Boolean);
    return bad.length ? bad.join("\n") : "ok";
  }

  /**
   * Closes the database and stops its workers; later calls fail with CLOSED. A tab
   * that leads a shared database hands the lead to another tab that has it open.
   */
  async close() {
    if (this.#closed) return;
    this.#abandon?.abort();
    if (this.#remote) {
      this.#closed = true;
      this.#remote.close();
      await this.#released;
      return;
    }
    await this.#writes;
    this.#closed = true;
    this.#leader?.close();
    await this.#pool?.close();
    this.#release?.();
    // Let the next open, here or in another tab, find the lock free.
    await this.#released;
  }

}

/** Turns a failed part's "records[j]" into the caller's index. */
function renumber(err, indices) {
  if (err instanceof QuiverError) {
    err.message = err.message.replace(/^records\[(\d+)\]/, (m, j) => `records[${indices[+j]}]`);
  }
  return err;
}

/**
 * Runs `start(cancel)` (which registers withdrawal functions in `cancel`) and rejects
 * with ABORTED when `signal` fires or TIMEOUT after `timeout` ms, withdrawing the work.
 */
function cancellable(start, signal, timeout) {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid("signal: must be an AbortSignal");
  if (timeout !== undefined && !(typeof timeout === "number" && timeout > 0)) {
    throw invalid(`timeout: must be a positive number of milliseconds, got ${JSON.stringify(timeout)}`);
  }
  if (signal?.aborted) return Promise.reject(new QuiverError("ABORTED", "the search was aborted"));
  const cancel = [];
  const work = start(cancel);
  if (!signal && timeout === undefined) return work;
  return new Promise((resolve, reject) => {
    let timer;
    const stop = (err) => {
      cancel.forEach((f) => f());
      reject(err);
    };
    const onAbort = () => stop(new QuiverError("ABORTED", "the search was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout !== undefined) timer = setTimeout(() => stop(new QuiverError("TIMEOUT", `the search took over ${timeout} ms`)), timeout);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    work.then((v) => (done(), resolve(v)), (e) => (done(), reject(e)));
  });
}

/** Search options as the core reads them, checked for what JSON cannot carry. */
function searchOptions(options) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { k = 10, filter, threshold } = options;
  if (!Number.isInteger(k)) throw invalid(`k: must be an integer from 1 to 10000, got ${k}`);
  if (threshold !== undefined && typeof threshold !== "number") throw invalid("threshold: must be a number");
  if (threshold !== undefined && !Number.isFinite(threshold)) throw invalid("threshold: must be a finite number");
  return { k, text: json({ k, filter, threshold }, "INVALID_ARGUMENT", "filter") };
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

  /**
   * Inserts or replaces records in one transaction: all are written, or none.
   * @returns {Promise<string[]>} the ids, generated where a record had none
   */
  async upsert(records) {
    const remote = this.#remote();
    const c = remote ? null : await this.#db._placement(this.name);
    if (!Array.isArray(records)) records = [records];
    const n = records.length;
    const vectors = new Array(n);
    const ids = new Array(n);
    const metadata = new Array(n);
    const texts = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = records[i];
      if (r === null || typeof r !== "object") throw invalid(`records[${i}]: must be an object`);
      vectors[i] = toVector(r.vector, `records[${i}].vector`);
      if (r.id !== undefined && typeof r.id !== "string") throw invalid(`records[${i}].id: must be a string`);
      ids[i] = r.id ?? `${this.#db.site}-${randomHex()}`;
      if (r.text !== undefined && r.text !== null && typeof r.text !== "string") {
        throw invalid(`records[${i}].text: must be a string`);
      }
      texts[i] = r.text ?? null;
      metadata[i] = metadataText(r.metadata, i);
    }
    if (n === 0) return [];
    if (remote) {
      const settled = ids.map((id, i) => ({ id, vector: vectors[i], metadata: records[i].metadata ?? null, text: texts[i] }));
      return remote.call({ collection: this.name }, "upsert", [settled]);
    }
    return this.#db._write(async () => {
      const pool = this.#db._pool;
      if (!c.partitioned && pool.size > 1 && c.counts[c.home] + n > this.#db.partitionThreshold) {
        await this.#db._placements.spread(c);
      }
      const batches = [...this.#byOwner(c, ids)].map(([w, indices]) => {
        const pick = (column) => indices.map((i) => column[i]);
        const rows = { ids: pick(ids), vectors: pick(vectors), metadata: pick(metadata), texts: pick(texts) };
        const total = rows.vectors.reduce((sum, v) => sum + v.length, 0);
        return { w, indices, rows, args: upsertArgs(this.name, rows, pool.floats(w, total)) };
      });
      const send = (b, op, extra) => pool.call(b.w, op, { ...b.args, ...extra }, [b.args.vectors.buffer, b.args.lengths.buffer]);
      // Into the replica while the workers write (fresh replica memory costs page
      // faults: off the critical path, inserts ran 10-20% faster); live once committed.
      const copy = () => batches.forEach((b) => (b.first = c.copy?.[b.w].reserve(b.rows.vectors)));
      let counts;
      if (batches.length === 1) {
        const written = send(batches[0], "upsert");
        copy();
        counts = [JSON.parse(await written.catch((e) => Promise.reject(renumber(e, batches[0].indices)))).count];
      } else {
        counts = await this.#twoPhase(c, batches, send, copy);
      }
      batches.forEach((b, j) => (c.counts[b.w] = counts[j]));
      for (const { w, rows, first } of batches) c.copy?.[w].publish(first, rows.ids, rows.metadata, rows.texts);
      return ids;
    });
  }

  /**
   * Writes a batch (of records, or of deletes) that spans workers in two phases:
   * every worker checks and stages its part (`send(b, "stage", ...)`), then all
   * commit. A persistent database records the decision in worker 0 between the
   * phases, so that a part a crash leaves staged is committed (or, with no decision,
   * dropped) when its worker restarts or the database reopens: no partial batch
   * either way. `whileCommitting` runs once the commits are sent. Resolves with
   * each part's worker's new count.
   */
  async #twoPhase(c, batches, send, whileCommitting) {
    const pool = this.#db._pool;
    const name = this.name;
    const batch = randomHex();
    const durable = this.#db.storage !== "memory";
    const everywhere = (op) => Promise.allSettled(batches.map((b) => pool.call(b.w, op, { batch })));
    const checked = await Promise.allSettled(batches.map((b) => send(b, "stage", { batch })));
    const failed = checked.findIndex((r) => r.status === "rejected");
    if (failed >= 0) {
      await everywhere("discard");
      throw renumber(checked[failed].reason, batches[failed].indices);
    }
    if (durable) {
      // The commit point. If worker 0 died deciding, its restart tells whether it did.
      const decided = await pool.call(0, "decide", { batch }).then(
        () => true,
        () => pool.call(0, "decided", { batch }),
      );
      if (!decided) {
        await everywhere("discard");
        throw new QuiverError("WORKER_LOST", "a store worker stopped before the batch was committed; nothing of it was written");
      }
    }
    const committing = everywhere("commit");
    whileCommitting();
    const committed = await committing;
    const lost = committed.findIndex((r) => r.status === "rejected");
    if (lost >= 0 && !durable) {
      // Put back what the others had before, from the replica.
      const done = batches.filter((_, j) => committed[j].status === "fulfilled");
      await Promise.all(done.map((b) => this.#db._placements.revert(c, b.w, b.rows.ids)));
      throw committed[lost].reason;
    }
    // The batch is decided: a part whose commit failed is settled again (after its
    // worker's restart, which settles it too); if that fails as well (out of space),
    // the call fails and the part stays staged, to be written on the next reopen.
    const counts = await Promise.all(
      batches.map(async (b, j) => {
        if (committed[j].status === "rejected") await this.#db._placements.settle(b.w);
        const value = committed[j].value;
        return value ? JSON.parse(value).count : pool.call(b.w, "count", { collection: name });
      }),
    );
    if (durable) pool.call(0, "forget", { batch }).catch(() => {});
    return counts;
  }

  /**
   * The k records closest to `query`, best first: `[{id, score, metadata}]`.
   * `score` is the cosine similarity or dot product (higher is closer) or the
   * Euclidean distance (lower is closer); `threshold` bounds it the same way.
   * `signal` (an AbortSignal) cancels it with ABORTED; after `timeout` ms it fails
   * with TIMEOUT.
   */
  search(query, options = {}) {
    try {
      const remote = this.#remote();
      const { k, text } = searchOptions(options);
      const q = toVector(query, "query");
      if (remote) return this.#forward(remote, "search", q, options);
      return cancellable((cancel) => this.#searchOwners("search", q, text, cancel).then((lists) => mergeTopK(lists, k, this.metric !== "euclidean")), options.signal, options.timeout);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Answers many queries in one call: one result list per query, in order. Each
   * worker scores a tile of its rows against every query while the tile is in cache,
   * so a batch costs far less than the same searches one by one.
   */
  searchMany(queries, options = {}) {
    try {
      const remote = this.#remote();
      if (!Array.isArray(queries)) throw invalid("queries: must be an array of vectors");
      const { k, text } = searchOptions(options);
      if (queries.length === 0) return Promise.resolve([]);
      const packed = new Float32Array(queries.length * this.dim);
      queries.forEach((v, i) => {
        const q = toVector(v, `queries[${i}]`);
        if (q.length !== this.dim) {
          throw new QuiverError("DIMENSION_MISMATCH", `queries[${i}] has ${q.length} dimensions, the collection has ${this.dim}`);
        }
        packed.set(q, i * this.dim);
      });
      if (remote) return this.#forward(remote, "searchMany", queries.map((_, i) => packed.subarray(i * this.dim, (i + 1) * this.dim)), options);
      const merge = (perWorker) => queries.map((_, q) => mergeTopK(perWorker.map((lists) => lists[q]), k, this.metric !== "euclidean"));
      return cancellable((cancel) => this.#searchOwners("searchMany", packed, text, cancel).then(merge), options.signal, options.timeout);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The leading tab, when another tab leads this database (checks it is open). */
  #remote() {
    this.#db._check();
    return this.#db._remote;
  }

  /** Sends a search to the leading tab; the signal and timeout act here. */
  #forward(remote, method, queries, { k, filter, threshold, signal, timeout }) {
    return cancellable(() => remote.call({ collection: this.name }, method, [queries, { k, filter, threshold }]), signal, timeout);
  }

  /** Runs a search op on every worker that owns part of the collection. */
  async #searchOwners(op, floats, options, cancel) {
    const c = await this.#db._placement(this.name);
    const pool = this.#db._pool;
    const request = { collection: this.name, options };
    const owners = this.#db._placements.owners(c);
    // Only a lone owner is polled for: polling one would hold back the others' requests.
    const quick = owners.length === 1 && c.counts[owners[0]] * floats.length <= QUICK_SCAN;
    return Promise.all(pool.searchAll(owners, op, floats, request, cancel, quick).map((p) => p.then(JSON.parse)));
  }

  /** The record with this id (or each of these ids), or null where there is none. */
  async get(ids) {
    const remote = this.#remote();
    const c = remote ? null : await this.#db._placement(this.name);
    const many = Array.isArray(ids);
    const list = many ? ids : [ids];
    list.forEach((id, i) => {
      if (typeof id !== "string") throw invalid(`ids[${i}]: must be a string`);
    });
    if (remote) return remote.call({ collection: this.name }, "get", [ids]);
    const found = new Array(list.length);
    await Promise.all(
      [...this.#byOwner(c, list)].map(async ([w, indices]) => {
        const part = JSON.parse(await this.#db._pool.call(w, "get", { collection: this.name, ids: JSON.stringify(indices.map((i) => list[i])) }));
        part.forEach((r, j) => (found[indices[j]] = r && { ...r, vector: Float32Array.from(r.vector) }));
      }),
    );
    return many ? found : found[0];
  }

  /** Indices of `ids` grouped by the worker that owns each. */
  #byOwner(c, ids) {
    const parts = new Map();
    ids.forEach((id, i) => {
      const w = this.#db._placements.owner(c, id);
      if (!parts.has(w)) parts.set(w, []);
      parts.get(w).push(i);
    });
    return parts;
  }

  /** Deletes by id (or ids); returns how many existed. */
  async delete(ids) {
    const remote = this.#remote();
    const c = remote ? null : await this.#db._placement(this.name);
    const list = Array.isArray(ids) ? ids : [ids];
    list.forEach((id, i) => {
      if (typeof id !== "string") throw invalid(`ids[${i}]: must be a string`);
    });
    if (remote) return remote.call({ collection: this.name }, "delete", [list]);
    if (list.length === 0) return 0;
    return this.#db._write(async () => {
      const batches = [...this.#byOwner(c, list)].map(([w, indices]) => {
        const ids = indices.map((i) => list[i]);
        return { w, indices, rows: { ids }, args: { collection: this.name, ids: JSON.stringify(ids) } };
      });
      const before = batches.map((b) => c.counts[b.w]);
      let counts;
      if (batches.length === 1) {
        const [b] = batches;
        counts = [before[0] - (await this.#db._pool.call(b.w, "delete", b.args))];
      } else {
        // All or nothing across workers, as a batch of writes is.
        const send = (b, op, extra) => this.#db._pool.call(b.w, op === "stage" ? "stageDelete" : op, { ...b.args, ...extra });
        counts = await this.#twoPhase(c, batches, send, () => {});
      }
      batches.forEach((b, j) => {
        c.counts[b.w] = counts[j];
        for (const id of b.rows.ids) c.copy?.[b.w].delete(id);
      });
      return batches.reduce((sum, _, j) => sum + before[j] - counts[j], 0);
    });
  }

  /** Number of live records. */
  async count() {
    const remote = this.#remote();
    if (remote) return remote.call({ collection: this.name }, "count");
    const c = await this.#db._placement(this.name);
    const counts = await Promise.all(this.#db._placements.owners(c).map((w) => this.#db._pool.call(w, "count", { collection: this.name })));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Ids of all live records. */
  async ids() {
    const remote = this.#remote();
    if (remote) return remote.call({ collection: this.name }, "ids");
    const c = await this.#db._placement(this.name);
    const lists = await Promise.all(this.#db._placements.owners(c).map((w) => this.#db._pool.call(w, "ids", { collection: this.name })));
    return lists.flatMap((text) => JSON.parse(text));
  }
}
