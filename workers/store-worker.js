// The store's thread: one wasm instance that owns the databases opened through it.
//
// Requests arrive as {id, op, ...args} and are answered with {id, ok, value} or
// {id, ok: false, error: {code, message}}. Results that the core returns as JSON text
// travel as text and are parsed on the page, so they are serialised once.
import * as simdBuild from "../pkg/simd/quiver.js";
import * as scalarBuild from "../pkg/scalar/quiver.js";
import { simd as hasSimd } from "../js/vendor/wasm-feature-detect.js";
import { Ring, YIELDS, READY, BUSY, SLOTS, OK, FAILED } from "../js/ring.js";
import { SegmentFiles } from "./segment-files.js";
import { IdbLog, CHUNK } from "./idb-log.js";

// Both builds are imported statically so bundlers need no code splitting in workers;
// only the chosen one's wasm is fetched.
const builds = {
  simd128: { glue: simdBuild, wasm: () => new URL("../pkg/simd/quiver_bg.wasm", import.meta.url) },
  scalar: { glue: scalarBuild, wasm: () => new URL("../pkg/scalar/quiver_bg.wasm", import.meta.url) },
};

let core = null;
// The instance's exports (its memory, for the shards bench).
let wasm = null;
const dbs = new Map();
// The OPFS pool (VFS name) each persistent database was opened through.
const pools = new Map();
// Each persistent database's segment files.
const segments = new Map();
// Each IndexedDB-backed database's log, and how to open it again from there.
const logs = new Map();
// Log this many bytes of writes (or records) and the next quiet moment writes an image.
const LOG_BYTES = 32 << 20;
const LOG_RECORDS = 1000;
// Whether a segment may have fallen due since the last checkpoint.
let mayCheckpoint = false;
// How long the worker waits without requests before it writes due segments.
const QUIET_MS = 250;
let quietTimer = 0;
// The query ring, once the page has sent one, and how many of the page's messages
// this worker has handled (the page counts the ones it posted, in the ring's header).
let ring = null;
let handled = 0;
// Batches of memory databases checked and held for the second phase of a write that
// spans workers, by "<db>/<batch>".
const staged = new Map();
// The vector buffer to hand back with the reply, for the page to refill.
let handBack = null;
// Other buffers the reply carries (results the page keeps).
let outgoing = [];

function fail(code, message) {
  return Object.assign(new Error(message), { code });
}

function handle(name) {
  const db = dbs.get(name);
  if (!db) throw fail("CLOSED", `database ${JSON.stringify(name)} is closed`);
  return db;
}

const ops = {
  async init({ build, lock }) {
    // Hold a lock for as long as this worker lives: the page asks for the same lock,
    // and is granted it only when this worker is gone, however it went.
    if (lock && self.navigator.locks) {
      await new Promise((held) => self.navigator.locks.request(lock, () => (held(), new Promise(() => {}))));
    }
    const chosen = build === "auto" ? ((await hasSimd()) ? "simd128" : "scalar") : build;
    const b = builds[chosen];
    if (!b) throw fail("INVALID_ARGUMENT", `build: unknown build ${JSON.stringify(build)}`);
    wasm = await b.glue.default({ module_or_path: b.wasm() });
    core = b.glue;
    return core.build();
  },
  // Opens a database; returns where it lives, "auto" resolved: OPFS where this worker
  // has sync access handles, else IndexedDB.
  async open({ db, site, storage, directory, maxBytes, loaded }) {
    if (dbs.has(db)) throw fail("INVALID_ARGUMENT", `name: database ${JSON.stringify(db)} is already open`);
    if (storage === "auto") {
      const opfs = typeof navigator.storage?.getDirectory === "function" && "createSyncAccessHandle" in (self.FileSystemFileHandle?.prototype ?? {});
      storage = opfs ? "opfs" : "idb";
    }
    if (storage === "opfs") {
      const vfs = `quiver-${db}`;
      await withRetries(() => core.installOpfs(vfs, directory));
      const d = core.Db.openPersistent("/quiver.sqlite", vfs, site);
      dbs.set(db, d);
      pools.set(db, vfs);
      const files = await SegmentFiles.at(`${directory}-segments`);
      await withRetries(() => files.keep(JSON.parse(d.segmentKeys())));
      d.setSegmentFiles(files);
      segments.set(db, files);
    } else if (storage === "idb") {
      const log = await IdbLog.open(directory);
      logs.set(db, { log, site });
      dbs.set(db, await fromLog(log, site));
    } else {
      dbs.set(db, new core.Db(site));
    }
    if (maxBytes) dbs.get(db).setMaxBytes(maxBytes);
    if (loaded) dbs.get(db).setMaxLoaded(loaded);
    return storage;
  },
  async close({ db }) {
    await checkpoint(db, true);
    logs.get(db)?.log.close();
    logs.delete(db);
    dbs.get(db)?.free();
    dbs.delete(db);
    segments.get(db)?.close();
    segments.delete(db);
    if (pools.has(db)) core.uninstallOpfs(pools.get(db));
    pools.delete(db);
  },

  createCollection: (args) => logged(args.db, "createCollection", args, WRITES.createCollection(handle(args.db), args)),
  site: ({ db }) => handle(db).site(),
  collection: ({ db, name }) => handle(db).collection(name),
  dropCollection: (args) => logged(args.db, "dropCollection", args, WRITES.dropCollection(handle(args.db), args)),
  collections: ({ db }) => handle(db).collections(),
  collectionCounts: ({ db }) => handle(db).collectionCounts(),
  // Searches each named collection: one result list (JSON text) each.
  searchShards: ({ db, names, query, options }) => names.map((name) => handle(db).search(name, query, options)),
  upsert: (args) => logged(args.db, "upsert", args, WRITES.upsert(handle(args.db), args)),
  search: ({ db, collection, query, options }) => handle(db).search(collection, query, options),
  searchMany: ({ db, collection, queries, options }) => handle(db).searchMany(collection, queries, options),
  // The phases of a write that spans workers. A persistent database stages the batch
  // in its file (and log), so that it outlives a crash until it is committed or
  // discarded; a memory one, which a crash loses anyway, keeps it here.
  stage(args) {
    const { db, batch, collection, ids, vectors, lengths, metadata, texts } = args;
    if (durable(db)) return logged(db, "stage", args, WRITES.stage(handle(db), args));
    handle(db).stage(undefined, collection, ids, vectors, lengths, metadata, texts);
    staged.set(`${db}/${batch}`, args);
    handBack = null;
  },
  stageDelete(args) {
    const { db, batch, collection, ids } = args;
    if (durable(db)) return logged(db, "stageDelete", args, WRITES.stageDelete(handle(db), args));
    handle(db).stageDelete(undefined, collection, ids);
    staged.set(`${db}/${batch}`, { ...args, deletes: true });
  },
  commit(args) {
    const { db, batch } = args;
    if (durable(db)) return logged(db, "commit", args, WRITES.commit(handle(db), args) ?? null);
    const held = staged.get(`${db}/${batch}`);
    if (!held) throw fail("INTERNAL", "commit: no batch is staged");
    staged.delete(`${db}/${batch}`);
    if (held.deletes) {
      // Answered as a staged delete's commit is in a persistent database.
      ops.delete(held);
      return JSON.stringify({ ids: JSON.parse(held.ids), count: handle(db).count(held.collection) });
    }
    handBack = held.vectors.buffer;
    return ops.upsert(held);
  },
  discard(args) {
    const { db, batch } = args;
    if (durable(db)) return logged(db, "discard", args, WRITES.discard(handle(db), args));
    staged.delete(`${db}/${batch}`);
  },
  stagedBatches: ({ db }) => handle(db).stagedBatches(),
  decide: (args) => logged(args.db, "decide", args, WRITES.decide(handle(args.db), args)),
  decided: ({ db, batch }) => handle(db).decided(batch),
  forget(args) {
    // Logged only when it forgot something: reopening a database whose IndexedDB quota
    // is used up must not need room to log a change it did not make.
    const forgotten = WRITES.forget(handle(args.db), args);
    return forgotten ? logged(args.db, "forget", args, forgotten) : 0;
  },
  getMeta: ({ db, key }) => handle(db).getMeta(key) ?? null,
  integrityCheck: ({ db }) => handle(db).integrityCheck(),
  loaded: ({ db }) => handle(db).loaded(),
  toBytes: ({ db }) => transferred(handle(db).toBytes()),

  // Builds a standalone database file from the collections' rows gathered from every
  // worker: `collections` is [{name, dim, metric, parts: [rows op results]}].
  buildExport({ site, collections }) {
    const file = new core.Db(site);
    try {
      for (const { name, dim, metric, parts } of collections) {
        file.createCollection(name, dim, metric);
        for (const p of parts) {
          const n = JSON.parse(p.ids).length;
          if (n) file.upsert(name, p.ids, p.vectors, new Uint32Array(n).fill(dim), p.metadata, p.texts);
        }
      }
      return transferred(file.toBytes());
    } finally {
      file.free();
    }
  },

  // Reads an exported file: its collections' settings and rows, or CORRUPT_DATABASE.
  readExport({ site, bytes }) {
    const file = core.Db.fromBytes(bytes, site, true);
    try {
      return JSON.parse(file.collections()).map((name) => ({ settings: JSON.parse(file.collection(name)), ...file.rows(name) }));
    } finally {
      file.free();
    }
  },
  setMeta: (args) => logged(args.db, "setMeta", args, WRITES.setMeta(handle(args.db), args)),
  rows: ({ db, collection }) => handle(db).rows(collection),
  ring({ buffer, doorbells, index }) {
    ring = new Ring(buffer, doorbells, index);
    handled = 0;
  },
  get: ({ db, collection, ids }) => handle(db).get(collection, ids),
  delete: (args) => logged(args.db, "delete", args, WRITES.delete(handle(args.db), args)),
  count: ({ db, collection }) => handle(db).count(collection),
  ids: ({ db, collection }) => handle(db).ids(collection),
  scanBytes: ({ db, collection }) => handle(db).scanBytes(collection),
  // The wasm instance's memory: it only grows, so it shows the most this worker held.
  memoryBytes: () => wasm.memory.buffer.byteLength,
  distance: ({ metric, a, b }) => core.distance(metric, a, b),

  // Times searches here, next to the core, so a benchmark sees the search itself
  // without the message round trip (which the worker-pool benchmark measures).
  timeSearches({ db, collection, queries, dim, options, repeat }) {
    const d = handle(db);
    const n = queries.length / dim;
    const ms = [];
    const results = [];
    for (let r = 0; r < repeat; r++) {
      for (let i = 0; i < n; i++) {
        const q = queries.subarray(i * dim, (i + 1) * dim);
        const t0 = performance.now();
        const text = d.search(collection, q, options);
        ms.push(performance.now() - t0);
        if (r === 0) results.push(text);
      }
    }
    return { ms, results };
  },
};

/**
 * Writes what has fallen due in the persistent databases (or only in `only`): the
 * segments of OPFS ones, and the image of IndexedDB ones whose log has grown (of all
 * with a log, on close). It runs when the worker has been quiet a moment, and on close,
 * so that a bulk insert is not slowed by rewriting what it is growing. Both are caches
 * of what is durable already, so one that cannot be written now costs load time
 * later, nothing else.
 */
async function checkpoint(only, closing = false) {
  mayCheckpoint = false;
  for (const [name, { log }] of logs) {
    if (only !== undefined && name !== only) continue;
    const due = closing ? log.records > 0 : log.bytes > LOG_BYTES || log.records > LOG_RECORDS;
    if (due) await log.checkpoint(dbs.get(name).toChunks(CHUNK)).catch(() => {});
  }
  for (const [name, files] of segments) {
    if (only !== undefined && name !== only) continue;
    const db = dbs.get(name);
    for (const [collection, key] of JSON.parse(db.segmentsDue())) {
      try {
        await files.ensure(key);
        if (dbs.get(name) === db) db.writeSegment(collection);
      } catch {
        // Dropped meanwhile, or out of space: the next checkpoint tries again.
      }
    }
  }
}

/** The database an IndexedDB log holds: its image, then its writes replayed in order. */
async function fromLog(log, site) {
  const { image, records } = await log.load();
  const d = image.length > 0 ? core.Db.fromChunks(image, site, false) : new core.Db(site);
  for (const { op, args } of records) WRITES[op](d, args);
  return d;
}

/** The writes an IndexedDB log records, each as it applies to a database `d`. */
const WRITES = {
  createCollection: (d, { name, dim, metric }) => d.createCollection(name, dim, metric),
  dropCollection: (d, { name }) => d.dropCollection(name),
  upsert: (d, { collection, ids, vectors, lengths, metadata, texts }) => d.upsert(collection, ids, vectors, lengths, metadata, texts),
  delete: (d, { collection, ids }) => d.delete(collection, ids),
  setMeta: (d, { key, value }) => d.setMeta(key, value),
  stage: (d, { batch, collection, ids, vectors, lengths, metadata, texts }) => d.stage(batch, collection, ids, vectors, lengths, metadata, texts),
  stageDelete: (d, { batch, collection, ids }) => d.stageDelete(batch, collection, ids),
  commit: (d, { batch }) => d.commitStaged(batch),
  discard: (d, { batch }) => d.discardStaged(batch),
  decide: (d, { batch }) => d.decide(batch),
  forget: (d, { batch }) => d.forget(batch ?? undefined),
};

/** Whether database `db` is kept in OPFS or IndexedDB (not only in memory). */
const durable = (db) => pools.has(db) || logs.has(db);

/**
 * Logs write `op` of database `db`, done in memory with result `value`, when it is kept
 * in IndexedDB: the reply waits for the log. If the log cannot take it (out of quota),
 * the database is reopened from the log, so the write is undone as it failed.
 */
function logged(db, op, args, value) {
  const entry = logs.get(db);
  if (!entry) return value;
  const { db: _, ...rest } = args;
  return entry.log.append({ op, args: rest }, rest.vectors?.byteLength ?? 0).then(
    () => value,
    async (e) => {
      dbs.get(db).free();
      dbs.set(db, await fromLog(entry.log, entry.site));
      const why = e?.message || e?.name || String(e);
      throw e?.name === "QuotaExceededError" ? fail("QUOTA_EXCEEDED", `storage: IndexedDB is out of quota (${why})`) : fail("STORAGE", `storage: IndexedDB: ${why}`);
    },
  );
}

/**
 * Runs `f` until it stops failing for a file held by another worker, up to ~3 s: a
 * worker that has just died (or a page just reloaded) lets go of its OPFS handles
 * only a moment later.
 */
async function withRetries(f) {
  for (let delay = 25; ; delay *= 2) {
    try {
      return await f();
    } catch (e) {
      // A DOMException from OPFS names it in `name`; the core's errors carry it in the text.
      const held = e.name === "NoModificationAllowedError" || String(e.message).includes("NoModificationAllowedError");
      if (delay > 1600 || !held) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Sends `bytes` (a Uint8Array) to the page with the reply, without a copy. */
function transferred(bytes) {
  outgoing.push(bytes.buffer);
  return bytes;
}

/** Answers one request: {ok, value} (value a promise for async ops) or {ok: false, error}. */
function run(op, args) {
  try {
    if (!ops[op]) throw fail("INVALID_ARGUMENT", `op: unknown operation ${JSON.stringify(op)}`);
    if (!core && op !== "init") throw fail("CLOSED", "the worker has not loaded a build");
    return { ok: true, value: ops[op](args) };
  } catch (err) {
    return failure(err);
  }
}

function failure(err) {
  // A trap leaves the wasm instance in an unknown state: stop, and the page, which
  // holds this worker's lock, starts a fresh one.
  if (err instanceof WebAssembly.RuntimeError) setTimeout(() => self.close());
  return { ok: false, error: { code: err.code ?? "INTERNAL", message: String(err.message ?? err) } };
}

self.onmessage = async ({ data }) => {
  const { id, op, ...args } = data;
  // A batch's vector buffer goes back to the page to be refilled: allocating a fresh
  // one per batch cost more than the copy itself (every new page is a page fault).
  handBack = args.vectors?.buffer;
  outgoing = [];
  let reply = run(op, args);
  const buffer = handBack;
  const transfer = reply.ok ? outgoing : [];
  if (reply.value instanceof Promise) reply = await reply.value.then((value) => ({ ok: true, value }), failure);
  self.postMessage({ id, ...reply, buffer }, buffer ? [buffer, ...transfer] : transfer);
  if (ring && op !== "ring") handled++;
  mayCheckpoint = segments.size + logs.size > 0;
  if (ring) return serve();
  clearTimeout(quietTimer);
  if (mayCheckpoint) quietTimer = setTimeout(checkpoint, QUIET_MS);
};

// Requests the ring carries, and where each puts the ring's floats.
const ringOps = { search: "query", searchMany: "queries" };

/**
 * Serves the ring until the page has posted a message this worker has not handled:
 * then returns, so the event loop can deliver it (onmessage calls back here after).
 */
function serve() {
  let next = 0;
  for (;;) {
    const bell = ring.doorbell();
    if (Atomics.load(ring.header, YIELDS) !== handled) return;
    let idle = true;
    for (let n = 0; n < SLOTS; n++, next = (next + 1) % SLOTS) {
      if (ring.state(next) !== READY || !ring.swap(next, READY, BUSY)) continue;
      idle = false;
      const { floats, request } = ring.request(next);
      const slot = next;
      const { op, wake = [], ...args } = request;
      for (const i of wake) ring.wake(i);
      mayCheckpoint = segments.size + logs.size > 0;
      const reply = ringOps[op] ? run(op, { ...args, [ringOps[op]]: floats }) : run("ring:" + op, args);
      ring.complete(slot, reply.ok ? OK : FAILED, reply.ok ? reply.value : JSON.stringify(reply.error), (text) =>
        self.postMessage({ ring: slot, text }),
      );
    }
    // Blocked here, the worker runs no timers: it times its own quiet moment.
    if (idle && ring.sleep(bell, mayCheckpoint ? QUIET_MS : Infinity) === "timed-out") {
      checkpoint().finally(serve);
      return;
    }
  }
}
