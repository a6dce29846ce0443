// Where each collection lives in the pool: its home worker, whether it is spread over
// every worker, how many records each worker holds of it, and (for memory databases)
// the page's copy of each worker's rows. Also what moves rows between workers: spreading
// a collection that outgrew its home, reloading a restarted worker, undoing a batch.
import { QuiverError } from "./errors.js";
import { owner } from "./partitions.js";
import { Replica } from "./replica.js";
import { decisionOf } from "./two-phase.js";

/**
 * Collections below this many records live whole in one worker: searching them takes
 * less time than spreading a query over workers and merging (see the workers bench).
 */
export const PARTITION_THRESHOLD = 8192;

/**
 * The same for a collection with `index: "hnsw"`: a graph answers a query in a few
 * hundred distance computations, so spread over N workers a query walks N graphs for
 * little gain (20k real rows, two workers: 4,200 queries/s whole, 1,200 spread). Past
 * this, one worker's build time and memory weigh more.
 */
export const GRAPH_PARTITION_THRESHOLD = 262_144;

/**
 * The upsert message for rows given as columns (`metadata` as JSON texts); `flat`
 * receives the vectors back to back and is transferred with the message.
 */
export function upsertArgs(collection, { ids, vectors, metadata, texts }, flat) {
  const lengths = new Uint32Array(ids.length);
  let offset = 0;
  vectors.forEach((v, j) => {
    flat.set(v, offset);
    offset += lengths[j] = v.length;
  });
  return {
    collection,
    ids: JSON.stringify(ids),
    vectors: flat,
    lengths,
    metadata: `[${metadata.join(",")}]`,
    texts: texts.some((t) => t !== null) ? JSON.stringify(texts) : undefined,
  };
}

/** Records and tombstones moved from worker to worker in one call when a collection spreads. */
const MOVE_OPS = 4096;

/** Each sync op's vector (empty for a delete), out of theirs back to back. */
export function split(ops, vectors) {
  let at = 0;
  return ops.map((op) => {
    const dim = op.deleted ? 0 : op.dim;
    at += dim;
    return vectors.subarray(at - dim, at);
  });
}

/** Vectors back to back in one array, as the workers take a batch's. */
export function flatten(vectors) {
  const out = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
  vectors.reduce((offset, v) => (out.set(v, offset), offset + v.length), 0);
  return out;
}

/**
 * Placements kept at least, whatever the LRU of loaded collections: looking one up
 * again costs a message to its home worker.
 */
const MIN_KEPT = 1024;

export class Placements {
  /**
   * name -> {settings, home, partitioned, moving, counts: records per worker,
   * copy: one Replica per worker for memory databases, else null}. An LRU in Map
   * order: a database may hold 100,000 collections (one per agent or task), of which
   * only those in use are kept here. Spread ones and memory ones (whose replica is
   * their data) are never let go.
   */
  #map = new Map();
  /** Lookups under way, by name, so that concurrent uses share one. */
  #fetching = new Map();

  constructor(pool, storage, dbName, kept) {
    this.pool = pool;
    this.storage = storage;
    this.dbName = dbName;
    this.kept = Math.max(MIN_KEPT, kept);
  }

  /** The collection's placement if it is at hand, else undefined: no message is sent. */
  peek(name) {
    return this.#map.get(name);
  }

  /** The collection's placement (from its home worker if not at hand), or NOT_FOUND. */
  async get(name) {
    const c = this.#map.get(name);
    if (c) {
      this.#map.delete(name);
      this.#map.set(name, c);
      return c;
    }
    if (!this.#fetching.has(name)) {
      const home = owner(name, this.pool.size);
      const fetch = Promise.all([this.pool.call(home, "collection", { name }), this.pool.call(home, "count", { collection: name })])
        .then(([settings, count]) => this.#keep(name, this.#placement(settings, home, false, count)))
        .finally(() => this.#fetching.delete(name));
      this.#fetching.set(name, fetch);
    }
    return this.#fetching.get(name);
  }

  /** The collection's placement, or undefined when it does not exist. */
  find(name) {
    return this.get(name).catch((e) => (e.code === "NOT_FOUND" ? undefined : Promise.reject(e)));
  }

  /** Every collection's name, from every worker, sorted. */
  async names() {
    const lists = await this.pool.all("collections");
    return [...new Set(lists.flat())].sort();
  }

  /** The workers holding part of collection `c`. */
  owners(c) {
    return c.partitioned ? Array.from({ length: this.pool.size }, (_, i) => i) : [c.home];
  }

  /** The worker that owns `id` in collection `c`. */
  owner(c, id) {
    return c.partitioned ? owner(id, this.pool.size) : c.home;
  }

  /**
   * Creates a collection in its home worker (the one its name hashes to), or opens it
   * there with the same settings. Only a collection that outgrows its home reaches
   * the other workers, so creating one costs one worker one row.
   */
  async create(name, { dim, metric, index, quantization }) {
    const c = this.#map.get(name);
    if (c?.partitioned) {
      // Already spread: every worker holds it and judges the settings alike.
      await this.pool.call(c.home, "createCollection", { name, dim, metric, index, quantization });
      return c.settings;
    }
    const home = owner(name, this.pool.size);
    const settings = await this.pool.call(home, "createCollection", { name, dim, metric, index, quantization });
    if (!c) this.#keep(name, this.#placement(settings, home, false, await this.pool.call(home, "count", { collection: name })));
    return settings;
  }

  /**
   * Deletes a collection from every worker that has it, and forgets it. A spread one
   * in a persistent database is dropped as a decided batch is committed: worker 0
   * records the drop first, and a crash part-way is finished on reopen (or when the
   * worker that missed it restarts), so it is never left dropped in some workers only.
   */
  async drop(name) {
    const c = await this.get(name);
    const durable = c.partitioned && this.storage !== "memory";
    if (durable) await this.#setDrops([...(await this.#drops()), name]);
    // Forgotten first: a worker restarted meanwhile is not given it back.
    this.#map.delete(name);
    await Promise.all(this.owners(c).map((i) => this.#dropIn(i, name)));
    if (c.partitioned) await this.#saveLayout();
    if (durable) await this.#setDrops((await this.#drops()).filter((n) => n !== name));
  }

  /** Drops collection `name` in worker i (through `call`), if it is still there. */
  #dropIn(i, name, call = (...a) => this.pool.call(i, ...a)) {
    return call("dropCollection", { name }).catch((e) => (e.code === "NOT_FOUND" ? undefined : Promise.reject(e)));
  }

  /** The drops worker 0 has recorded and not yet seen finished. */
  async #drops() {
    return JSON.parse((await this.pool.call(0, "getMeta", { key: "drops" })) ?? "[]");
  }

  #setDrops(names) {
    return this.pool.call(0, "setMeta", { key: "drops", value: JSON.stringify(names) });
  }

  /** Adds a placement, letting go of the least recently used ones past the cap. */
  #keep(name, c) {
    this.#map.set(name, c);
    if (this.#map.size <= this.kept) return c;
    for (const [n, old] of this.#map) {
      if (this.#map.size <= this.kept) break;
      if (!old.copy && !old.partitioned && !old.moving) this.#map.delete(n);
    }
    return c;
  }

  /** A collection's placement: its home holds `count` records (and replicas in memory). */
  #placement(settings, home, partitioned, count = 0) {
    const size = this.pool.size;
    const copy = this.storage === "memory" ? Array.from({ length: size }, () => new Replica(settings.dim)) : null;
    const counts = new Array(size).fill(0);
    counts[home] = count;
    return { settings, home, partitioned, moving: false, counts, copy };
  }

  /**
   * The collections spread over the pool (or being spread), kept in worker 0's file:
   * a persistent database reopens with them where they were. The others need no
   * record: each lives in the worker its name hashes to.
   */
  async #saveLayout() {
    if (this.storage === "memory") return;
    const collections = {};
    for (const [name, c] of this.#map) {
      if (c.partitioned || c.moving) collections[name] = { home: c.home, partitioned: c.partitioned, moving: c.moving };
    }
    await this.pool.call(0, "setMeta", { key: "layout", value: JSON.stringify({ workers: this.pool.size, collections }) });
  }

  /**
   * Reads back a persistent database's layout, finishing what a crash cut short: a
   * batch that spanned workers (see {@link settle}) and a move.
   */
  async reopen() {
    if (this.storage === "memory") return;
    for (let w = 0; w < this.pool.size; w++) await this.settle(w);
    // Every staged part is settled now, so no decision is needed any more.
    await this.pool.call(0, "forget");
    const text = await this.pool.call(0, "getMeta", { key: "layout" });
    if (text === null) return;
    const layout = JSON.parse(text);
    // Drops a crash cut short were finished by the settles above.
    const drops = await this.#drops();
    for (const name of drops) delete layout.collections[name];
    if (layout.workers !== this.pool.size) {
      throw new QuiverError(
        "INVALID_ARGUMENT",
        `workers: database ${JSON.stringify(this.dbName)} is stored in ${layout.workers} partitions; open it with workers: ${layout.workers}`,
      );
    }
    for (const [name, { home, partitioned, moving }] of Object.entries(layout.collections)) {
      if (!partitioned && !moving) continue;
      const settings = await this.pool.call(home, "collection", { name });
      const c = this.#placement(settings, home, partitioned);
      c.counts = await Promise.all(c.counts.map((_, w) => this.pool.call(w, "count", { collection: name })));
      this.#map.set(name, c);
      if (moving) await this.spread(c);
    }
    if (drops.length) {
      await this.#saveLayout();
      await this.#setDrops([]);
    }
  }

  /**
   * Writes `rows` (`[id, vector, metadataJson, text]` entries) to worker i through
   * `call`, a transaction each 1,000, and keeps them in its replica.
   */
  async load(call, c, i, rows) {
    const dim = c.settings.dim;
    for (let start = 0; start < rows.length; start += 1000) {
      const part = rows.slice(start, start + 1000);
      const columns = { ids: part.map((r) => r[0]), vectors: part.map((r) => r[1]), metadata: part.map((r) => r[2]), texts: part.map((r) => r[3]) };
      const args = upsertArgs(c.settings.name, columns, new Float32Array(part.length * dim));
      const written = call("upsert", args, [args.vectors.buffer, args.lengths.buffer]);
      const first = c.copy?.[i].reserve(columns.vectors);
      c.counts[i] = await written;
      c.copy?.[i].publish(first, columns.ids, columns.metadata, columns.texts);
    }
  }

  /**
   * Puts rows `ids` of worker i back as its replica holds them (the state before an
   * unpublished batch): rewrites those it had, deletes the others.
   */
  async revert(c, i, ids) {
    const call = (...a) => this.pool.call(i, ...a);
    const had = ids.map((id) => c.copy[i].get(id)).filter((r) => r !== undefined);
    const fresh = ids.filter((id) => c.copy[i].get(id) === undefined);
    c.counts[i] -= await call("delete", { collection: c.settings.name, ids: fresh });
    await this.load(call, c, i, had);
  }

  /**
   * Worker w's rows of collection `c`, as the `rows` op gives them. A memory database's
   * worker keeps no vectors in SQLite, so there they are taken from its replica.
   */
  async rows(c, w) {
    const cols = await this.pool.call(w, "rows", { collection: c.settings.name });
    if (!c.copy) return cols;
    const dim = c.settings.dim;
    const ids = JSON.parse(cols.ids);
    const vectors = new Float32Array(ids.length * dim);
    ids.forEach((id, j) => vectors.set(c.copy[w].get(id)[1], j * dim));
    return { ...cols, vectors };
  }

  /**
   * Spreads a collection that outgrew one worker over all of them: hands each record
   * and tombstone its home does not own to its owner as a sync op, with its stamp
   * (version and site), then removes them from the home without tombstones. The move
   * is thus no change: nothing is pushed to other sites as new, and an edit made
   * elsewhere meanwhile wins or loses as it would have. The layout says "moving"
   * meanwhile, and until the last step the home still holds every row, so a crash at
   * any point is finished on the next open (applying an op twice changes nothing).
   */
  async spread(c) {
    const { name, dim, metric, index, quantization } = c.settings;
    c.moving = true;
    await this.#saveLayout();
    await Promise.all(this.owners({ partitioned: true }).map((i) => this.pool.call(i, "createCollection", { name, dim, metric, index, quantization })));
    const gone = [];
    for (let after = 0; ;) {
      const { ops, vectors, upto } = await this.ops(c, c.home, after, MOVE_OPS);
      if (upto === after) break;
      after = upto;
      const floats = split(ops, vectors);
      const moving = new Map();
      ops.forEach((op, j) => {
        const to = owner(op.id, this.pool.size);
        if (to === c.home) return;
        if (!moving.has(to)) moving.set(to, { ops: [], floats: [] });
        moving.get(to).ops.push(op);
        moving.get(to).floats.push(floats[j]);
        gone.push(op.id);
      });
      await Promise.all([...moving].map(([i, part]) => this.applyOps(c, i, part.ops, part.floats)));
    }
    c.counts[c.home] = await this.pool.call(c.home, "handOver", { collection: name, ids: gone });
    for (const id of gone) c.copy?.[c.home].delete(id);
    c.partitioned = true;
    c.moving = false;
    await this.#saveLayout();
  }

  /**
   * Worker w's changes to collection `c` after its local change `after`, at most
   * `limit`, every site's, as sync ops each with its `seq`: `{ ops, vectors, upto }`,
   * `upto` the cursor past them. A memory database's vectors come from its replica.
   */
  async ops(c, w, after, limit) {
    const out = await this.pool.call(w, "opsSince", { collection: c.settings.name, after, limit });
    const ops = JSON.parse(out.message);
    const upto = ops.length ? ops[ops.length - 1].seq : after;
    if (!c.copy) return { ops, vectors: out.vectors, upto };
    const floats = [];
    for (const op of ops.filter((op) => !op.deleted)) {
      const [, vector] = c.copy[w].get(op.id);
      floats.push(vector);
      op.dim = vector.length;
    }
    return { ops, vectors: flatten(floats), upto };
  }

  /**
   * Applies sync ops (op j's vector `floats[j]`) on worker w, each where it wins over
   * what the worker holds; returns the ids applied.
   */
  async applyOps(c, w, ops, floats) {
    const args = { collection: c.settings.name, ops: JSON.stringify(ops), vectors: flatten(floats) };
    return this.applied(c, w, ops, floats, await this.pool.call(w, "applyOps", args));
  }

  /**
   * Brings worker w's replica and count in step with its answer to applying `ops`
   * (`{applied, count}`, as applyOps and applyFrame give it); returns the ids applied.
   */
  applied(c, w, ops, floats, { applied, count }) {
    c.counts[w] = count;
    const ids = [];
    ops.forEach((op, j) => {
      if (!applied[j]) return;
      ids.push(op.id);
      if (!c.copy) return;
      if (op.deleted) c.copy[w].delete(op.id);
      else c.copy[w].publish(c.copy[w].reserve([floats[j]]), [op.id], [op.metadata === null ? "null" : JSON.stringify(op.metadata)], [op.text]);
    });
    return ids;
  }

  /**
   * Finishes the batches that spanned workers and are still staged in worker w (called
   * through `call`): each is committed if worker 0 recorded the decision to, else
   * dropped (presumed abort). Worker 0 decides before any part commits, so either way
   * every part of a batch ends alike. Drops of spread collections that worker 0
   * recorded are finished in worker w too.
   */
  async settle(w, call = (...a) => this.pool.call(w, ...a)) {
    const decider = w === 0 ? call : (...a) => this.pool.call(0, ...a);
    const drops = await decider("getMeta", { key: "drops" });
    for (const name of JSON.parse(drops ?? "[]")) await this.#dropIn(w, name, call);
    for (const batch of await call("stagedBatches")) {
      if (await decider("decided", { batch: decisionOf(batch) })) await call("commit", { batch });
      // An undecided part is invisible: if there is no room to drop it now (a full
      // IndexedDB quota), the next settle drops it.
      else await call("discard", { batch }).catch(() => {});
    }
  }

  /** Reloads worker i after a restart: its collections and its rows. */
  async restore(i, call) {
    // A persistent worker has reopened its own file, which holds all it had; only a
    // batch in flight when it died may be left to settle.
    if (this.storage !== "memory") return this.settle(i, call);
    for (const c of this.#map.values()) {
      if (!this.owners(c).includes(i)) continue;
      const { name, dim, metric, index, quantization } = c.settings;
      await call("createCollection", { name, dim, metric, index, quantization });
      const rows = [...c.copy[i].entries()];
      c.copy[i] = new Replica(dim);
      await this.load(call, c, i, rows);
    }
  }
}
