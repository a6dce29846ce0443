// quiver's public API: `open()`, and the Database and Collection it gives. The page
// holds only this async layer: it checks every argument (validate.js), then hands the
// call to the database's coordinator, which runs in this tab (coordinator.js) or, for
// a tab that does not lead a database shared between tabs, in the tab that does
// (tabs.js). The store, the vectors and the math live in the workers.
import { QuiverError, codes } from "./errors.js";
import { Pool, canShare } from "./pool.js";
import { Coordinator } from "./coordinator.js";
import { canShareTabs, claim, Leader, Follower, remote } from "./tabs.js";
import { limits } from "./protocol.js";
import { newSite } from "./ids.js";
import { invalid, checkName, checkInteger, checkIndex, checkQuantization, toVector, plainSearchOptions, syncOptions } from "./validate.js";
import { Sync } from "./sync/session.js";
import { Collection } from "./collection.js";
import { guard, cancellable } from "./cancel.js";

export { QuiverError, codes, limits, Collection };

const BUILDS = { auto: "auto", simd128: "simd128", simd: "simd128", scalar: "scalar" };
const STORAGES = ["memory", "opfs", "idb", "auto"];

/** Default pool size: one worker a core, at most 8. */
const defaultWorkers = () => Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, 8));

/**
 * Opens a database served by a pool of workers.
 * @param {{name?: string, build?: "auto"|"simd128"|"scalar", storage?: "memory"|"opfs"|"idb"|"auto",
 *   workers?: number, partitionThreshold?: number, maxBytes?: number,
 *   loadedCollections?: number}} [options]
 */
export async function open(options = {}) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { name = "default", build = "auto", workers = defaultWorkers(), partitionThreshold, maxBytes, loadedCollections = 64 } = options;
  checkName(name, "name");
  if (!(build in BUILDS)) throw invalid(`build: must be "auto", "simd128" or "scalar", got ${JSON.stringify(build)}`);
  if (!STORAGES.includes(options.storage ?? "memory"))
    throw invalid(`storage: must be "memory", "opfs", "idb" or "auto", got ${JSON.stringify(options.storage)}`);
  checkInteger(workers, "workers", 1, 64);
  checkInteger(loadedCollections, "loadedCollections", 1, 2 ** 31);
  if (maxBytes !== undefined) checkInteger(maxBytes, "maxBytes", 1, Number.MAX_SAFE_INTEGER);
  if (partitionThreshold !== undefined) checkInteger(partitionThreshold, "partitionThreshold", 0, Number.MAX_SAFE_INTEGER);
  const storage = options.storage ?? "memory";
  const db = new Database(name);
  // The cap is shared evenly: each worker's file gets its part.
  const maxBytesEach = maxBytes && Math.floor(maxBytes / workers);
  const start = async () => {
    const restore = (i, call) => coordinator.placements.restore(i, call);
    // Each file keeps the site id it was created with; a new one takes this.
    const pool = new Pool({
      size: workers,
      build: BUILDS[build],
      db: name,
      site: newSite(),
      storage,
      maxBytes: maxBytesEach,
      loaded: loadedCollections,
      ring: canShare(),
      restore,
    });
    let coordinator;
    try {
      await pool.start();
      // The workers resolve "auto": only they can tell whether OPFS sync handles exist.
      const site = await pool.call(0, "site");
      coordinator = new Coordinator(pool, { name, site, storage: pool.storage, partitionThreshold, loadedCollections });
      await coordinator.placements.reopen();
    } catch (e) {
      await pool.close();
      throw e;
    }
    return coordinator;
  };
  if (storage === "memory") {
    db._lead(await start());
    return db;
  }
  // Ask the browser not to evict the data under storage pressure; it may say no.
  navigator.storage?.persist?.().catch(() => {});
  if (canShareTabs()) await db._share(start);
  else db._lead(await start());
  return db;
}

export class Database {
  /** Where calls go: this tab's coordinator, or the leading tab's (see tabs.js). */
  #engine = null;
  #syncs = new Set();
  /** This tab's coordinator, when it leads. */
  #coordinator = null;
  #closed = false;
  #follower = null;
  #leader = null;
  #release = null;
  #abandon = null;
  #released = null;

  /** @internal use {@link open} */
  constructor(name) {
    this.name = name;
  }

  /** @internal makes this tab's coordinator the one calls go to. */
  _lead(coordinator) {
    this.#coordinator = coordinator;
    this.#engine = coordinator;
    this.#describe(coordinator.info());
  }

  #describe({ build, workers, storage, site }) {
    /** The kernels in use: "simd128" or "scalar". */
    this.build = build;
    /** How many workers serve this database. */
    this.workers = workers;
    /** Where the data lives: "memory", "opfs" or "idb" ("auto" resolved). */
    this.storage = storage;
    /** This database's site id, created with its files and kept with them. */
    this.site = site;
  }

  /** @internal the pool, for benchmarks and tests. */
  get _pool() {
    return this.#coordinator?.pool ?? null;
  }

  /** @internal where each collection lives. */
  get _placements() {
    return this.#coordinator?.placements ?? null;
  }

  /** @internal the collection's placement, or NOT_FOUND. */
  _placement(name) {
    return this.#coordinator.placements.get(name);
  }

  /** @internal the leading tab, when another tab leads this database. */
  get _remote() {
    return this.#follower;
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
      const pending = this.#follower?.takePending() ?? [];
      this.#follower?.close();
      let coordinator;
      try {
        coordinator = await start();
      } catch (e) {
        // This tab cannot take over (its options do not fit the stored database).
        for (const p of pending) p.reject(e);
        this.#closed = true;
        throw e;
      }
      this._lead(coordinator);
      this.#leader = new Leader(this.name, coordinator);
      this.#follower = null;
      for (const p of pending) this.#leader.dispatch(p.message.method, p.message.args).then(p.resolve, p.reject);
    };
    const { leads, released } = claim(this.name, lead, until, abandon.signal);
    this.#released = released;
    if (await leads) return;
    this.#follower = new Follower(this.name);
    this.#engine = remote(this.#follower);
    this.#describe(await this.#engine.info());
  }

  /** @internal where calls go; throws CLOSED once the database is closed. */
  _engine() {
    if (this.#closed) throw new QuiverError("CLOSED", `database ${JSON.stringify(this.name)} is closed`);
    return this.#engine;
  }

  /**
   * Opens a collection. With `options`, creates it when missing (and checks that an
   * existing one has the same dim and metric, and index when given); without, it must
   * exist (NOT_FOUND). `index`: "flat" (exact, the default), "hnsw" (a graph:
   * approximate, fast at any size) or "auto" (exact until a worker holds 20,000 of its
   * records, then a graph). `quantization`: "none" (the default), "int8" (any index:
   * a flat scan or a graph walk over 8-bit codes) or "binary" (flat only): searches
   * read compressed codes, then re-rank the best candidates on the full vectors, so
   * scores stay exact.
   * @param {string} name
   * @param {{dim: number, metric?: "cosine"|"euclidean"|"dot", index?: "flat"|"hnsw"|"auto", quantization?: "none"|"int8"|"binary"}} [options]
   */
  async collection(name, options) {
    const engine = this._engine();
    checkName(name, "name");
    if (options !== undefined) {
      if (options === null || typeof options !== "object") throw invalid("options: must be an object");
      const { dim, metric = "cosine", index, quantization } = options;
      checkInteger(dim, "dim", 1, limits.maxDim);
      if (typeof metric !== "string") throw invalid("metric: must be a string");
      if (index !== undefined) checkIndex(index);
      if (quantization !== undefined) checkQuantization(quantization);
      options = { dim, metric, index, quantization };
    }
    return new Collection(this, await engine.collection(name, options));
  }

  /** Deletes a collection and all its records; NOT_FOUND when there is none. */
  async dropCollection(name) {
    const engine = this._engine();
    checkName(name, "name");
    await engine.dropCollection(name);
  }

  /** Names of the collections in this database, sorted. */
  async collections() {
    return this._engine().collections();
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
    return this._engine().shards();
  }

  /**
   * Searches several shards at once: the k closest records among all of them, best
   * first, each hit naming its `shard`. The shards must share dim and metric.
   * Options as for {@link Collection#search}, but for `text`, `hybrid` and `mmr`.
   * @param {string[]} shards
   */
  search(shards, query, options = {}) {
    return guard(() => {
      const engine = this._engine();
      if (!Array.isArray(shards) || shards.length === 0) throw invalid("shards: must be a non-empty array of shard ids");
      shards.forEach((id, i) => checkName(id, `shards[${i}]`));
      const opts = plainSearchOptions(options, "db.search");
      const q = toVector(query, "query");
      return cancellable(() => engine.searchShards(shards, q, opts), options.signal, options.timeout);
    });
  }

  /**
   * The database, or the named collections of it, as the bytes of one standalone
   * SQLite file: a backup to keep, to move to another browser (`import`), or to open
   * in the `sqlite3` CLI. A one-worker database exports its file as is; a partitioned
   * one is gathered from every worker into one file.
   * @param {{collections?: string[]}} [options]
   */
  async export(options = {}) {
    const engine = this._engine();
    if (options === null || typeof options !== "object") throw invalid("options: must be an object");
    const { collections } = options;
    if (collections !== undefined && !(Array.isArray(collections) && collections.every((n) => typeof n === "string"))) {
      throw invalid("collections: must be an array of collection names");
    }
    return engine.export(collections);
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
    const engine = this._engine();
    let bytes;
    if (data instanceof Uint8Array) bytes = data.slice();
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data.slice(0));
    else if (typeof Blob === "function" && data instanceof Blob) bytes = new Uint8Array(await data.arrayBuffer());
    else throw invalid("data: must be a Uint8Array, an ArrayBuffer or a Blob");
    return engine.import(bytes);
  }

  /**
   * Runs SQLite's integrity check on every worker's file: "ok" when all are sound,
   * else each report, prefixed with its worker.
   */
  async integrityCheck() {
    return this._engine().integrityCheck();
  }

  /**
   * Keeps collection (or shard) `options.collection` in step with a room on a quiver
   * relay: see {@link Collection#sync}.
   */
  sync(options) {
    const o = optionsWithCollection(options);
    return this.#startSync(o.collection, o);
  }

  /** @internal */
  _sync(name, options) {
    return this.#startSync(name, options);
  }

  #startSync(name, options) {
    const engine = this._engine();
    const checked = syncOptions(options);
    if (!(engine instanceof Coordinator)) {
      throw invalid("sync: another tab opened this database first and runs its workers; start the sync there");
    }
    const session = new Sync(engine, name, checked);
    this.#syncs.add(session);
    session.addEventListener("status", () => session.status === "closed" && this.#syncs.delete(session));
    return session;
  }

  /**
   * Closes the database and stops its workers; later calls fail with CLOSED. A tab
   * that leads a shared database hands the lead to another tab that has it open.
   */
  async close() {
    if (this.#closed) return;
    this.#abandon?.abort();
    if (this.#follower) {
      this.#closed = true;
      this.#follower.close();
      await this.#released;
      return;
    }
    for (const session of this.#syncs) session.close();
    await this.#coordinator?.settled();
    this.#closed = true;
    this.#leader?.close();
    await this.#coordinator?.close();
    this.#release?.();
    // Let the next open, here or in another tab, find the lock free.
    await this.#released;
  }
}

/** `options` with a `collection` name, checked, and the rest as given. */
function optionsWithCollection(options) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  checkName(options.collection, "collection");
  const { collection, ...rest } = options;
  return { collection, ...rest };
}
