// The coordinator of a database whose workers run in this tab: it knows where each
// collection lives (placement.js), sends each call to the workers that hold its part,
// and merges their answers. Arguments arrive checked by the public API (index.js);
// a tab that does not lead a shared database reaches the leading tab's coordinator
// through tabs.js, with the same methods and arguments.
import { QuiverError } from "./errors.js";
import { compareIds, fuseRanks, mergeTopK } from "./partitions.js";
import { GRAPH_PARTITION_THRESHOLD, PARTITION_THRESHOLD, Placements, upsertArgs } from "./placement.js";
import { twoPhase, renumber } from "./two-phase.js";
import { invalid } from "./validate.js";
import { canShare } from "./pool.js";
import { closeSide, mailboxBuffer } from "./mailbox.js";

/** Rows an upsert needs for a second worker to help with a graph's inserts: the core's
 * MIN_SHARED_BATCH, below which it tells the helper to stop at once. */
const HELPED_BATCH_ROWS = 64;

/** Whether an upsert of `rows` rows to collection `c` is one a second worker helps with, where there is one. */
const helped = (c, rows) => c.settings.index === "hnsw" && rows >= HELPED_BATCH_ROWS;

/**
 * A scan of at most this many floats takes a worker a few microseconds, less than
 * waking the page asynchronously: the page polls for its answer instead. So does a
 * graph's search, which visits a few thousand rows whatever the collection's size.
 */
const QUICK_SCAN = 16384;

export class Coordinator {
  /** The last write not confined to one collection (see {@link write}). */
  #writes = Promise.resolve();
  /** Per collection, the last write confined to it since then. */
  #confined = new Map();
  /** Writes not confined to one collection, queued or running. */
  #unconfined = 0;
  #listeners = new Set();

  /**
   * @param {import("./pool.js").Pool} pool started, its databases open
   * @param {{name: string, site: string, storage: string, partitionThreshold?: number, loadedCollections: number}} options
   *   `partitionThreshold`: when set, for every collection; else each index kind's default.
   */
  constructor(pool, { name, site, storage, partitionThreshold, loadedCollections }) {
    this.pool = pool;
    /** This database's site id (for sync): the one its files keep. */
    this.site = site;
    this.name = name;
    this.storage = storage;
    this.partitionThreshold = partitionThreshold;
    this.placements = new Placements(pool, storage, name, loadedCollections * 4);
  }

  /** What another tab needs to know of the database it opened. */
  info() {
    return { build: this.pool.build, workers: this.pool.size, storage: this.storage, site: this.site };
  }

  /**
   * Runs `fn` after the writes it could interleave with. A write confined to one
   * collection in one worker (`collection` named, see {@link #alone}) waits for the
   * earlier writes to that collection and for the last one not so confined; any other
   * write (several workers, a spread, an import) waits for every earlier write, so that
   * the parts of two batches never interleave. Writes to collections in different
   * workers (many small shards) thus run side by side, and the worker of each commits
   * them in the order they were sent. An IndexedDB database's writes are never
   * confined: a worker acknowledges each once its log record lands, and a record that
   * fails reopens the database from the log, which a second write in flight must not meet.
   */
  write(fn, collection) {
    if (this.storage === "idb") collection = undefined;
    const before = collection === undefined ? [this.#writes, ...this.#confined.values()] : [this.#writes, this.#confined.get(collection)];
    const run = Promise.all(before).then(fn);
    const done = run.then(
      () => {},
      () => {},
    );
    if (collection === undefined) {
      this.#writes = done;
      this.#confined.clear();
      this.#unconfined += 1;
      done.then(() => (this.#unconfined -= 1));
    } else {
      this.#confined.set(collection, done);
      done.then(() => this.#confined.get(collection) === done && this.#confined.delete(collection));
    }
    return run;
  }

  /**
   * `name` if a write of `rows` new rows to collection `name` stays in one worker, in one
   * transaction: no write that may spread a collection is under way, its placement is
   * at hand, it is not spread, the rows queued for it so far leave it within its home,
   * and no second worker is asked to help with a graph's inserts. Else undefined: the
   * write waits for every other.
   */
  #alone(name, rows = 0) {
    const c = this.placements.peek(name);
    if (this.#unconfined > 0 || !c || c.partitioned || c.moving) return undefined;
    if (this.pool.size === 1) return name;
    if (helped(c, rows)) return undefined;
    return c.counts[c.home] + (c.queued ?? 0) + rows <= this.#threshold(c) ? name : undefined;
  }

  /** Records collection `c` holds at most in one worker before it spreads over the pool. */
  #threshold(c) {
    return this.partitionThreshold ?? (c.settings.index === "hnsw" ? GRAPH_PARTITION_THRESHOLD : PARTITION_THRESHOLD);
  }

  /**
   * Calls `fn(collection)` after each upsert or delete this tab's workers commit (a
   * sync session pushes on it); returns what stops it.
   */
  onWrite(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #wrote(name) {
    for (const fn of this.#listeners) fn(name);
  }

  /** Resolves once every write begun so far has ended. */
  settled() {
    return Promise.all([this.#writes, ...this.#confined.values()]).then(() => {});
  }

  /** Opens a collection's settings; with `options` ({dim, metric, index?, quantization?}) creates it if missing. */
  async collection(name, options) {
    if (options === undefined) return (await this.placements.get(name)).settings;
    return this.write(() => this.placements.create(name, options), name);
  }

  dropCollection(name) {
    return this.write(() => this.placements.drop(name), this.#alone(name));
  }

  collections() {
    return this.placements.names();
  }

  async shards() {
    const byName = new Map();
    for (const list of await this.pool.all("collectionCounts")) {
      for (const { name, dim, metric, count } of list) {
        const s = byName.get(name) ?? { id: name, dim, metric, count: 0, bytes: 0 };
        s.count += count;
        s.bytes = s.count * dim * 4;
        byName.set(name, s);
      }
    }
    return [...byName.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  /** The k closest records among several collections, each hit naming its `shard`. */
  async searchShards(shards, q, { k, text }) {
    const placed = await Promise.all(shards.map((id) => this.placements.get(id)));
    const { dim, metric } = placed[0].settings;
    placed.forEach(({ settings }, i) => {
      if (settings.dim !== dim)
        throw new QuiverError("DIMENSION_MISMATCH", `shards[${i}]: shard ${JSON.stringify(shards[i])} has ${settings.dim} dimensions, shards[0] has ${dim}`);
      if (settings.metric !== metric)
        throw invalid(`shards[${i}]: shard ${JSON.stringify(shards[i])} uses metric ${settings.metric}, shards[0] uses ${metric}`);
    });
    if (q.length !== dim) throw new QuiverError("DIMENSION_MISMATCH", `query has ${q.length} dimensions, the shards have ${dim}`);
    // One request a worker, naming every shard it holds part of.
    const perWorker = new Map();
    placed.forEach((c, i) => {
      for (const w of this.placements.owners(c)) {
        if (!perWorker.has(w)) perWorker.set(w, new Set());
        perWorker.get(w).add(shards[i]);
      }
    });
    const lists = await Promise.all(
      [...perWorker].map(async ([w, set]) => {
        const names = [...set];
        const found = await this.pool.call(w, "searchShards", { names, query: q, options: text });
        return found.map((list, j) => JSON.parse(list).map((hit) => ({ ...hit, shard: names[j] })));
      }),
    );
    return mergeTopK(lists.flat(), k, metric !== "euclidean");
  }

  /** The database (or the named collections) as the bytes of one SQLite file. */
  async export(collections) {
    const names = collections ?? (await this.placements.names());
    const chosen = await Promise.all(names.map((n) => this.placements.get(n)));
    return this.write(async () => {
      // A memory database's file holds no vectors: its replica does.
      if (this.pool.size === 1 && collections === undefined && this.storage !== "memory") return this.pool.call(0, "toBytes");
      const gathered = await Promise.all(
        chosen.map(async (c) => {
          const { name, dim, metric, index, quantization } = c.settings;
          const parts = await Promise.all(this.placements.owners(c).map((w) => this.placements.rows(c, w)));
          return { name, dim, metric, index, quantization, parts };
        }),
      );
      return this.pool.call(0, "buildExport", { site: this.site, collections: gathered });
    });
  }

  /**
   * Adds an exported file's collections and records, all or nothing: every record of
   * every collection is one batch written in two phases (two-phase.js), and the
   * collections it created are dropped again if it fails. See Database#import.
   */
  async import(bytes) {
    const found = await this.pool.call(0, "readExport", { site: this.site, bytes }, [bytes.buffer]);
    for (const { settings } of found) {
      const existing = (await this.placements.find(settings.name))?.settings;
      if (existing && existing.dim !== settings.dim) {
        throw new QuiverError(
          "DIMENSION_MISMATCH",
          `data: collection ${JSON.stringify(settings.name)} has ${settings.dim} dimensions in the file, ${existing.dim} here`,
        );
      }
      if (existing && existing.metric !== settings.metric) {
        throw invalid(`data: collection ${JSON.stringify(settings.name)} uses metric ${settings.metric}, here ${existing.metric}`);
      }
    }
    return this.write(async () => {
      const created = [];
      let records = 0;
      try {
        const parts = [];
        for (const { settings, ids, vectors, metadata, texts } of found) {
          const { name, dim } = settings;
          if (!(await this.placements.find(name))) {
            await this.placements.create(name, settings);
            created.push(name);
          }
          const rows = { ids: JSON.parse(ids), vectors: [], metadata: JSON.parse(metadata).map((m) => JSON.stringify(m)), texts: JSON.parse(texts) };
          for (let j = 0; j < rows.ids.length; j++) rows.vectors.push(vectors.subarray(j * dim, (j + 1) * dim));
          records += rows.ids.length;
          if (rows.ids.length > 0) parts.push(...(await this.#parts(await this.placements.get(name), rows, true)));
        }
        if (parts.length > 0) await this.#write(parts, true);
      } catch (e) {
        for (const name of created) await this.placements.drop(name).catch(() => {});
        throw e;
      }
      return { collections: found.map((f) => f.settings.name), records };
    });
  }

  async integrityCheck() {
    const reports = await this.pool.all("integrityCheck");
    const bad = reports.map((r, i) => (r === "ok" ? null : `worker ${i}: ${r}`)).filter(Boolean);
    return bad.length ? bad.join("\n") : "ok";
  }

  /**
   * Writes rows given as columns (ids settled, metadata as JSON texts) to the workers
   * that own them: one transaction if one worker does, else in two phases.
   */
  upsert(name, rows) {
    const alone = this.#alone(name, rows.ids.length);
    const queued = alone && this.placements.peek(name);
    if (queued) queued.queued = (queued.queued ?? 0) + rows.ids.length;
    return this.write(async () => {
      await this.#write(await this.#parts(await this.placements.get(name), rows, !alone), false);
      this.#wrote(name);
      return rows.ids;
    }, alone).finally(() => queued && (queued.queued -= rows.ids.length));
  }

  /**
   * Rows of collection `c` split into one part a worker that owns some, each with its
   * upsert message; spreads `c` over the pool first if the rows make it outgrow its home
   * and the write may (`mayGrow`: it waits for every other; if not, the next write does).
   */
  async #parts(c, rows, mayGrow) {
    const pool = this.pool;
    if (mayGrow && !c.partitioned && pool.size > 1 && c.counts[c.home] + rows.ids.length > this.#threshold(c)) {
      await this.placements.spread(c);
    }
    return [...this.#byOwner(c, rows.ids)].map(([w, indices]) => {
      const pick = (column) => indices.map((i) => column[i]);
      const part = { ids: pick(rows.ids), vectors: pick(rows.vectors), metadata: pick(rows.metadata), texts: pick(rows.texts) };
      const total = part.vectors.reduce((sum, v) => sum + v.length, 0);
      return { w, c, indices, rows: part, args: upsertArgs(c.settings.name, part, pool.floats(w, total)) };
    });
  }

  /**
   * Another worker to share the graph inserts of upsert part `p` (crate/src/index/hnsw/
   * shared.rs), with the mailbox they talk through and the key of the copy it keeps of
   * the graph (which names the owner's incarnation), or null: only an `index: "hnsw"`
   * collection on one worker of several, a batch of HELPED_BATCH_ROWS or more, and a
   * page that can share memory.
   */
  #helper(p) {
    const pool = this.pool;
    if (p.c.partitioned || pool.size < 2 || !canShare() || !helped(p.c, p.rows.ids.length)) return null;
    const w = (p.w + 1) % pool.size;
    return { w, key: `${p.w}/${pool.incarnation(p.w)}/${p.c.settings.name}`, mailbox: mailboxBuffer() };
  }

  /** Writes upsert parts: a lone one in one call (unless `twoPhase`), else in two phases. */
  async #write(parts, alwaysTwoPhase) {
    const pool = this.pool;
    const send = (p, op, extra) => pool.call(p.w, op, { ...p.args, ...extra }, [p.args.vectors.buffer, p.args.lengths.buffer]);
    // Into the replica while the workers write, so its page faults on fresh memory
    // are off the insert's critical path; live once committed.
    const copy = () => parts.forEach((p) => (p.first = p.c.copy?.[p.w].reserve(p.rows.vectors)));
    let counts;
    if (parts.length === 1 && !alwaysTwoPhase) {
      const helper = this.#helper(parts[0]);
      const written = send(parts[0], "upsert", helper && { helper: helper.mailbox });
      if (helper) {
        // A side whose worker died cannot say it is done: the page says it for it.
        pool.call(helper.w, "help", helper).catch(() => closeSide(helper.mailbox, 1));
        written.catch(() => closeSide(helper.mailbox, 0));
      }
      copy();
      counts = [await written.catch((e) => Promise.reject(renumber(e, parts[0].indices)))];
    } else {
      counts = await twoPhase(this, parts, send, copy);
    }
    parts.forEach((p, j) => (p.c.counts[p.w] = counts[j]));
    for (const { w, c, rows, first } of parts) c.copy?.[w].publish(first, rows.ids, rows.metadata, rows.texts);
  }

  /** Deletes ids from the workers that own them; returns how many existed. */
  delete(name, list) {
    return this.write(async () => {
      const c = await this.placements.get(name);
      const batches = [...this.#byOwner(c, list)].map(([w, indices]) => {
        const ids = indices.map((i) => list[i]);
        return { w, c, indices, rows: { ids }, args: { collection: name, ids } };
      });
      const before = batches.map((b) => c.counts[b.w]);
      let counts;
      if (batches.length === 1) {
        const [b] = batches;
        counts = [before[0] - (await this.pool.call(b.w, "delete", b.args))];
      } else {
        // All or nothing across workers, as a batch of writes is.
        const send = (b, op, extra) => this.pool.call(b.w, op === "stage" ? "stageDelete" : op, { ...b.args, ...extra });
        counts = await twoPhase(this, batches, send, () => {});
      }
      batches.forEach((b, j) => {
        c.counts[b.w] = counts[j];
        for (const id of b.rows.ids) c.copy?.[b.w].delete(id);
      });
      this.#wrote(name);
      return batches.reduce((sum, _, j) => sum + before[j] - counts[j], 0);
    }, this.#alone(name));
  }

  /**
   * The k closest records to `q`, merged over the collection's workers; fused with a
   * keyword ranking when `opts.hybrid` says so, picked for diversity when `opts.mmr` does.
   */
  async search(name, q, opts, cancel = []) {
    const c = await this.placements.get(name);
    if (opts.hybrid) return this.#hybrid(c, q, opts, cancel);
    if (opts.mmr) return this.#mmr(c, q, opts);
    const lists = await this.#searchOwners(c, "search", q, opts.text, cancel);
    return mergeTopK(lists, opts.k, c.settings.metric !== "euclidean");
  }

  /**
   * The k records whose text best matches `words` by BM25, merged over the
   * collection's workers. Each worker scores with its own file's term statistics.
   */
  async searchText(name, words, { k, text }) {
    const c = await this.placements.get(name);
    return mergeTopK(await this.#textOwners(c, words, text), k, true);
  }

  #textOwners(c, words, options) {
    const request = { collection: c.settings.name, text: words, options };
    return Promise.all(this.placements.owners(c).map((w) => this.pool.call(w, "searchText", request).then(JSON.parse)));
  }

  /**
   * Hybrid search: every owner's top fetchK by vector and by BM25, each ranking merged
   * over the whole collection first, so that ranks are the collection's, and fused here
   * by their ranks (fuseRanks): fusing per worker would rank each worker's best first.
   */
  async #hybrid(c, q, { k, hybrid }, cancel) {
    const { words, weight, rrfK, fetchK, vector, keyword } = hybrid;
    const [byVector, byText] = await Promise.all([this.#searchOwners(c, "search", q, vector, cancel), this.#textOwners(c, words, keyword)]);
    return fuseRanks(mergeTopK(byVector, fetchK, c.settings.metric !== "euclidean"), mergeTopK(byText, fetchK, true), { k, weight, rrfK });
  }

  /**
   * MMR: every owner's fetchK nearest with their vectors, merged into the collection's
   * fetchK nearest, then picked from by one worker's core (MMR is not decomposable:
   * picking per worker would keep near-duplicates held by different workers).
   */
  async #mmr(c, q, { k, mmr }) {
    const { name, dim, metric } = c.settings;
    const owners = this.placements.owners(c);
    const parts = await Promise.all(owners.map((w) => this.pool.call(w, "candidates", { collection: name, query: q, options: mmr.candidates })));
    const lists = parts.map(({ hits, vectors }) => JSON.parse(hits).map((hit, j) => ({ ...hit, vector: vectors.subarray(j * dim, (j + 1) * dim) })));
    const merged = mergeTopK(lists, mmr.fetchK, metric !== "euclidean");
    if (merged.length === 0) return [];
    const vectors = new Float32Array(merged.length * dim);
    merged.forEach((hit, j) => vectors.set(hit.vector, j * dim));
    const scores = Float32Array.from(merged, (hit) => hit.score);
    const picks = await this.pool.call(owners[0], "mmr", { metric, vectors, scores, k, lambda: mmr.lambda }, [vectors.buffer, scores.buffer]);
    return Array.from(picks, (i) => {
      const { vector: _vector, ...hit } = merged[i];
      return hit;
    });
  }

  /** One result list per query of `packed` (the queries back to back). */
  async searchMany(name, packed, { k, text }, cancel = []) {
    const c = await this.placements.get(name);
    const perWorker = await this.#searchOwners(c, "searchMany", packed, text, cancel);
    const n = packed.length / c.settings.dim;
    return Array.from({ length: n }, (_, q) =>
      mergeTopK(
        perWorker.map((lists) => lists[q]),
        k,
        c.settings.metric !== "euclidean",
      ),
    );
  }

  /** Runs a search op on every worker that owns part of collection `c`. */
  #searchOwners(c, op, floats, options, cancel) {
    const request = { collection: c.settings.name, options };
    const owners = this.placements.owners(c);
    // Only a lone owner is polled for: polling one would hold back the others' requests.
    const quick = owners.length === 1 && (c.settings.index === "hnsw" || c.counts[owners[0]] * floats.length <= QUICK_SCAN);
    return Promise.all(this.pool.searchAll(owners, op, floats, request, cancel, quick).map((p) => p.then(JSON.parse)));
  }

  /**
   * The records with these ids, or null where there is none, in order. A memory
   * database's vectors come from its replica (its workers keep none in SQLite), so
   * there it runs between writes, when worker and replica agree.
   */
  async get(name, list) {
    const c = await this.placements.get(name);
    const read = async () => {
      const found = new Array(list.length);
      await Promise.all(
        [...this.#byOwner(c, list)].map(async ([w, indices]) => {
          const part = JSON.parse(await this.pool.call(w, "get", { collection: name, ids: indices.map((i) => list[i]) }));
          part.forEach((r, j) => (found[indices[j]] = r && { ...r, vector: Float32Array.from(c.copy?.[w].get(r.id)[1] ?? r.vector) }));
        }),
      );
      return found;
    };
    return c.copy ? this.write(read, this.#alone(name)) : read();
  }

  async count(name) {
    const c = await this.placements.get(name);
    const counts = await Promise.all(this.placements.owners(c).map((w) => this.pool.call(w, "count", { collection: name })));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** `{count, vectorBytes, codeBytes, graphBytes}` summed over the workers that hold part of it. */
  async stats(name) {
    const c = await this.placements.get(name);
    const parts = await Promise.all(this.placements.owners(c).map((w) => this.pool.call(w, "stats", { collection: name })));
    return parts.reduce((a, b) => Object.fromEntries(Object.keys(a).map((key) => [key, a[key] + b[key]])));
  }

  async ids(name) {
    const c = await this.placements.get(name);
    const lists = await Promise.all(this.placements.owners(c).map((w) => this.pool.call(w, "ids", { collection: name })));
    return lists.flat();
  }

  /** Indices of `ids` grouped by the worker that owns each. */
  #byOwner(c, ids) {
    const parts = new Map();
    ids.forEach((id, i) => {
      const w = this.placements.owner(c, id);
      if (!parts.has(w)) parts.set(w, []);
      parts.get(w).push(i);
    });
    return parts;
  }

  /** Waits for the writes under way, then stops the workers. */
  async close() {
    await this.settled();
    await this.pool.close();
  }
}
