// The store's thread: one wasm instance that owns the databases opened through it.
//
// Requests arrive as {id, op, ...args} and are answered with {id, ok, value} or
// {id, ok: false, error: {code, message}}. Results that the core returns as JSON text
// travel as text and are parsed on the page, so they are serialised once.
import * as simdBuild from "../pkg/simd/quiver.js";
import * as scalarBuild from "../pkg/scalar/quiver.js";
import { simd as hasSimd } from "../js/vendor/wasm-feature-detect.js";
import { Ring, YIELDS, READY, BUSY, SLOTS, OK, FAILED } from "../js/ring.js";
import { OPS } from "../js/protocol.js";
import { Mailbox } from "../js/mailbox.js";
import { fail } from "./errors.js";
import { WRITES } from "./storage/writes.js";
import { MemoryStorage } from "./storage/memory.js";
import { OpfsStorage } from "./storage/opfs.js";
import { IdbStorage } from "./storage/idb.js";

// Both builds are imported statically so bundlers need no code splitting in workers;
// only the chosen one's wasm is fetched.
const builds = {
  simd128: { glue: simdBuild, wasm: () => new URL("../pkg/simd/quiver_bg.wasm", import.meta.url) },
  scalar: { glue: scalarBuild, wasm: () => new URL("../pkg/scalar/quiver_bg.wasm", import.meta.url) },
};

/** The storages a database can live in, each behind the interface in storage/memory.js. */
const STORAGES = { memory: MemoryStorage, opfs: OpfsStorage, idb: IdbStorage };

let core = null;
// The instance's exports (its memory, for diagnostics).
let wasm = null;
// The open databases' storages, by database name.
const stores = new Map();
// Whether a cache may have fallen due since the last checkpoint.
let mayCheckpoint = false;
// How long the worker waits without requests before it writes due caches.
const QUIET_MS = 250;
let quietTimer = 0;
// The query ring, once the page has sent one, and how many of the page's messages
// this worker has handled (the page counts the ones it posted, in the ring's header).
let ring = null;
let handled = 0;
// The vector buffer to hand back with the reply, for the page to refill.
let handBack = null;
// Other buffers the reply carries (results the page keeps).
let outgoing = [];

// The error of the trap that left this worker's instance unusable, if one has.
let trap = null;
// Searches answered in batches of two or more (see BATCH).
let batched = 0;

// The copy of another worker's graph this one helps build (core.Helper), dropped once
// no batch has come for FORGET_MS: the owner has stopped loading.
let helper = null;
let forgetTimer = 0;
const FORGET_MS = 10_000;

function storage(name) {
  const s = stores.get(name);
  if (!s) throw fail("CLOSED", `database ${JSON.stringify(name)} is closed`);
  return s;
}

const handle = (name) => storage(name).db;

/**
 * Applies write `op` to database `db` (with `mailbox`, to the worker sharing it), shows
 * `seen` its answer, and has its storage record it.
 */
function write(op, args, seen = () => {}, mailbox = undefined) {
  const s = storage(args.db);
  const value = WRITES[op](s.db, args, mailbox);
  seen(value);
  return s.record(op, args, value);
}

/** Whether any open database keeps caches to checkpoint. */
const anyDurable = () => [...stores.values()].some((s) => s.durable);

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
  async open({ db, site, storage: where, directory, maxBytes, loaded }) {
    if (stores.has(db)) throw fail("INVALID_ARGUMENT", `name: database ${JSON.stringify(db)} is already open`);
    if (where === "auto") {
      const opfs = typeof navigator.storage?.getDirectory === "function" && "createSyncAccessHandle" in (self.FileSystemFileHandle?.prototype ?? {});
      where = opfs ? "opfs" : "idb";
    }
    const s = await STORAGES[where].open(core, { db, site, directory });
    stores.set(db, s);
    if (maxBytes) s.db.setMaxBytes(maxBytes);
    if (loaded) s.db.setMaxLoaded(loaded);
    return where;
  },
  async close({ db }) {
    const s = stores.get(db);
    if (!s) return;
    await s.checkpoint(true);
    stores.delete(db);
    s.close();
  },

  createCollection: (args) => write("createCollection", args),
  site: ({ db }) => handle(db).site(),
  collection: ({ db, name }) => handle(db).collection(name),
  dropCollection: (args) => write("dropCollection", args),
  collections: ({ db }) => handle(db).collections(),
  collectionCounts: ({ db }) => handle(db).collectionCounts(),
  // Searches each named collection: one result list (JSON text) each.
  searchShards: ({ db, names, query, options }) => names.map((name) => handle(db).search(name, query, options)),
  // With `helper` (a mailbox buffer), the worker the page asked to `help` shares a
  // graph's inserts; the buffer is not part of the write its storage records.
  upsert({ helper, ...args }) {
    if (!helper) return write("upsert", args);
    const mailbox = new Mailbox(helper, 0);
    try {
      return write("upsert", args, undefined, mailbox);
    } finally {
      mailbox.close();
    }
  },
  helping: () => helper?.rows() ?? 0,
  help({ key, mailbox: buffer }) {
    const mailbox = new Mailbox(buffer, 1);
    helper ??= new core.Helper();
    clearTimeout(forgetTimer);
    try {
      helper.help(key, mailbox);
    } finally {
      mailbox.close();
      forgetTimer = setTimeout(() => helper.forget(), FORGET_MS);
    }
  },
  search: ({ db, collection, query, options }) => handle(db).search(collection, query, options),
  searchMany: (args) => `[${ops.searchEach(args).join(",")}]`,
  // searchMany's lists, one JSON text each: how a worker answers a batch of searches.
  searchEach: ({ db, collection, queries, options }) => handle(db).searchMany(collection, queries, options),
  searchText: ({ db, collection, text, options }) => handle(db).searchText(collection, text, options),
  candidates({ db, collection, query, options }) {
    const found = handle(db).candidates(collection, query, options);
    outgoing.push(found.vectors.buffer);
    return found;
  },
  // Needs no database: it ranks the candidates it is sent, gathered from every owner.
  mmr: ({ metric, vectors, scores, k, lambda }) => core.mmr(metric, vectors, scores, k, lambda),
  // The phases of a write that spans workers. The batch is staged in the database
  // (and an IndexedDB log), so that in a persistent one it outlives a crash until it
  // is committed or discarded.
  stage: (args) => write("stage", args),
  stageDelete: (args) => write("stageDelete", args),
  commit: (args) => write("commit", args) ?? null,
  discard: (args) => write("discard", args),
  stagedBatches: ({ db }) => handle(db).stagedBatches(),
  decide: (args) => write("decide", args),
  decided: ({ db, batch }) => handle(db).decided(batch),
  forget(args) {
    // Logged only when it forgot something: reopening a database whose IndexedDB quota
    // is used up must not need room to log a change it did not make.
    const forgotten = WRITES.forget(handle(args.db), args);
    return forgotten ? storage(args.db).record("forget", args, forgotten) : 0;
  },
  opsSince: ({ db, collection, after, limit }) => handle(db).opsSince(collection, after, limit),
  pushFrame({ db, collection, after, limit, batch }) {
    const out = handle(db).pushFrame(collection, after, limit, batch);
    if (out.frame) transferred(out.frame);
    return out;
  },
  applyOps: (args) => write("applyOps", args),
  // The decoded vectors go back transferred: the page's replica copies them.
  applyFrame: (args) => write("applyFrame", args, (out) => outgoing.push(out.vectors.buffer)),
  handOver: (args) => write("handOver", args),
  // The sync codec needs no database: any worker encodes and decodes.
  encodeFrame: ({ message, vectors }) => transferred(core.encodeFrame(message, vectors)),
  decodeFrame: ({ bytes }) => core.decodeFrame(bytes),
  getMeta: ({ db, key }) => handle(db).getMeta(key) ?? null,
  integrityCheck: ({ db }) => handle(db).integrityCheck(),
  loaded: ({ db }) => handle(db).loaded(),
  toBytes: ({ db }) => transferred(handle(db).toBytes()),

  // Builds a standalone database file from the collections' rows gathered from every
  // worker: `collections` is [{name, dim, metric, index, quantization, parts: [rows op results]}].
  buildExport({ site, collections }) {
    const file = new core.Db(site);
    try {
      for (const { name, dim, metric, index, quantization, parts } of collections) {
        file.createCollection(name, dim, metric, index, quantization);
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
      return file.collections().map((name) => ({ settings: file.collection(name), ...file.rows(name) }));
    } finally {
      file.free();
    }
  },
  setMeta: (args) => write("setMeta", args),
  rows: ({ db, collection }) => handle(db).rows(collection),
  ring({ buffer, doorbells, index }) {
    ring = new Ring(buffer, doorbells, index);
    handled = 0;
  },
  get: ({ db, collection, ids }) => handle(db).get(collection, ids),
  delete: (args) => write("delete", args),
  count: ({ db, collection }) => handle(db).count(collection),
  stats: ({ db, collection }) => handle(db).stats(collection),
  ids: ({ db, collection }) => handle(db).ids(collection),
  // The wasm instance's memory: it only grows, so it shows the most this worker held.
  memoryBytes: () => wasm.memory.buffer.byteLength,
  batched: () => batched,

  // Adds the ops a module exports as `ops(context)`: the benchmarks' timing ops
  // live there, not here. `context` reaches this worker's databases and instance.
  async extend({ module }) {
    Object.assign(ops, (await import(module)).ops({ handle, wasm: () => wasm }));
  },
};

// The protocol is written down once, in js/protocol.js: keep to it.
const drift = [...Object.keys(ops), ...Object.keys(OPS)].filter((op) => !(op in ops) || !(op in OPS));
if (drift.length) throw new Error(`store worker: ops out of step with js/protocol.js: ${drift.join(", ")}`);

/**
 * Writes the caches that have fallen due in the persistent databases: segments of
 * OPFS ones, images of IndexedDB ones. It runs when the worker has been quiet a
 * moment, and on close, so that a bulk insert is not slowed by rewriting what it is
 * growing.
 */
async function checkpoint() {
  mayCheckpoint = false;
  for (const s of stores.values()) await s.checkpoint();
}

/** Sends `bytes` (a Uint8Array) to the page with the reply, without a copy. */
function transferred(bytes) {
  outgoing.push(bytes.buffer);
  return bytes;
}

/** Answers one request: {ok, value} (value a promise for async ops) or {ok: false, error}. */
function run(op, args) {
  if (trap) return { ok: false, error: trap };
  try {
    if (!ops[op]) throw fail("INVALID_ARGUMENT", `op: unknown operation ${JSON.stringify(op)}`);
    if (!core && op !== "init") throw fail("CLOSED", "the worker has not loaded a build");
    return { ok: true, value: ops[op](args) };
  } catch (err) {
    return failure(err);
  }
}

function failure(err) {
  const error = { code: err.code ?? "INTERNAL", message: String(err.message ?? err) };
  // A trap leaves the wasm instance in an unknown state: nothing more runs on it, and
  // the worker stops once back in its event loop (serve returns to it); the page,
  // which holds this worker's lock, starts a fresh one.
  if (err instanceof WebAssembly.RuntimeError && !trap) {
    trap = error;
    setTimeout(() => self.close());
  }
  return { ok: false, error };
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
  mayCheckpoint = anyDurable();
  if (ring) return serve();
  clearTimeout(quietTimer);
  if (mayCheckpoint) quietTimer = setTimeout(checkpoint, QUIET_MS);
};

/**
 * After answering a request the page polls for (`quick`), the worker polls its
 * doorbell this long, ms, before it sleeps: a caller that awaits each search sends the
 * next within tens of microseconds, and waking from Atomics.wait costs more. Only
 * then, so that idle workers never poll beside a page that scans.
 */
const POLL_MS = 0.25;

// Requests the ring carries, and where each puts the ring's floats.
const ringOps = { search: "query", searchMany: "queries" };

/**
 * Most searches answered by one core call. Searches of one collection with the same
 * options that wait in the ring together are answered by one `searchMany`: an exact
 * scan then reads each tile of rows once for all of them instead of once each (see
 * docs/BENCHMARKS.md). A cap, so that answers keep coming back while a full ring is
 * served and the page can refill it.
 */
const BATCH = 8;

/**
 * Serves the ring until the page has posted a message this worker has not handled:
 * then returns, so the event loop can deliver it (onmessage calls back here after).
 * Each round takes every request waiting, wakes the workers they name, and answers
 * them batch by batch.
 */
function serve() {
  let polled = false;
  for (;;) {
    if (trap) return;
    const bell = ring.doorbell();
    if (Atomics.load(ring.header, YIELDS) !== handled) return;
    const taken = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      if (ring.state(slot) === READY && ring.swap(slot, READY, BUSY)) taken.push({ slot, ...ring.request(slot) });
    }
    for (const { request } of taken) for (const i of request.wake ?? []) ring.wake(i);
    if (taken.length) mayCheckpoint = anyDurable();
    for (const batch of batches(taken)) answer(batch);
    if (taken.length) {
      polled = taken.some((t) => t.request.quick);
      continue;
    }
    if (polled) {
      polled = false;
      if (ring.poll(bell, POLL_MS)) continue;
    }
    // Blocked here, the worker runs no timers: it times its own quiet moment.
    if (ring.sleep(bell, mayCheckpoint ? QUIET_MS : Infinity) === "timed-out") {
      checkpoint().finally(serve);
      return;
    }
  }
}

/**
 * Groups taken requests into batches of at most BATCH: searches alike in all but their
 * query (database, collection, options and the query's length) go together; any other
 * request goes alone.
 */
function batches(taken) {
  const groups = new Map();
  for (const t of taken) {
    const { op, db, collection, options } = t.request;
    const key = op === "search" ? JSON.stringify([db, collection, options, t.floats.length]) : t;
    const group = groups.get(key);
    if (group && group.at(-1).length < BATCH) group.at(-1).push(t);
    else if (group) group.push([t]);
    else groups.set(key, [[t]]);
  }
  return [...groups.values()].flat();
}

/**
 * Answers a batch of taken requests, but those the page has taken back since. Several
 * searches go to the core as one `searchMany`; if that fails, or splits the queries
 * otherwise than they came (queries of another length), each is answered alone, so
 * that each gets its own answer or error as a lone search would.
 */
function answer(taken) {
  const batch = [];
  for (const t of taken) {
    if (ring.dropped(t.slot)) complete(t.slot, { ok: false, error: { code: "ABORTED", message: "the search was taken back before it began" } });
    else batch.push(t);
  }
  if (batch.length > 1) {
    const { db, collection, options } = batch[0].request;
    const n = batch[0].floats.length;
    const queries = new Float32Array(batch.length * n);
    batch.forEach((t, j) => queries.set(t.floats, j * n));
    const reply = run("searchEach", { db, collection, options, queries });
    if (reply.ok && reply.value.length === batch.length) {
      batched += batch.length;
      batch.forEach((t, j) => complete(t.slot, { ok: true, value: reply.value[j] }));
      return;
    }
  }
  for (const { slot, floats, request } of batch) {
    const { op, wake: _wake, quick: _quick, ...args } = request;
    complete(slot, ringOps[op] ? run(op, { ...args, [ringOps[op]]: floats }) : run("ring:" + op, args));
  }
}

function complete(slot, reply) {
  ring.complete(slot, reply.ok ? OK : FAILED, reply.ok ? reply.value : JSON.stringify(reply.error), (text) => self.postMessage({ ring: slot, text }));
}
