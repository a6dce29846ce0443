// The store's thread: one wasm instance that owns the databases opened through it.
//
// Requests arrive as {id, op, ...args} and are answered with {id, ok, value} or
// {id, ok: false, error: {code, message}}. Results that the core returns as JSON text
// travel as text and are parsed on the page, so they are serialised once.
import * as simdBuild from "../pkg/simd/quiver.js";
import * as scalarBuild from "../pkg/scalar/quiver.js";
import { simd as hasSimd } from "../js/vendor/wasm-feature-detect.js";

// Both builds are imported statically so bundlers need no code splitting in workers;
// only the chosen one's wasm is fetched.
const builds = {
  simd128: { glue: simdBuild, wasm: () => new URL("../pkg/simd/quiver_bg.wasm", import.meta.url) },
  scalar: { glue: scalarBuild, wasm: () => new URL("../pkg/scalar/quiver_bg.wasm", import.meta.url) },
};

let core = null;
const dbs = new Map();

function fail(code, message) {
  return Object.assign(new Error(message), { code });
}

function handle(name) {
  const db = dbs.get(name);
  if (!db) throw fail("CLOSED", `database ${JSON.stringify(name)} is closed`);
  return db;
}

const ops = {
  async init({ build }) {
    const chosen = build === "auto" ? ((await hasSimd()) ? "simd128" : "scalar") : build;
    const b = builds[chosen];
    if (!b) throw fail("INVALID_ARGUMENT", `build: unknown build ${JSON.stringify(build)}`);
    await b.glue.default({ module_or_path: b.wasm() });
    core = b.glue;
    return core.build();
  },
  open({ db, site }) {
    if (dbs.has(db)) throw fail("INVALID_ARGUMENT", `name: database ${JSON.stringify(db)} is already open`);
    dbs.set(db, new core.Db(site));
  },
  close({ db }) {
    dbs.get(db)?.free();
    dbs.delete(db);
  },
  createCollection: ({ db, name, dim, metric }) => handle(db).createCollection(name, dim, metric),
  collection: ({ db, name }) => handle(db).collection(name),
  collections: ({ db }) => handle(db).collections(),
  upsert: ({ db, collection, ids, vectors, lengths, metadata, texts }) =>
    handle(db).upsert(collection, ids, vectors, lengths, metadata, texts),
  search: ({ db, collection, query, options }) => handle(db).search(collection, query, options),
  get: ({ db, collection, ids }) => handle(db).get(collection, ids),
  delete: ({ db, collection, ids }) => handle(db).delete(collection, ids),
  count: ({ db, collection }) => handle(db).count(collection),
  ids: ({ db, collection }) => handle(db).ids(collection),
  scanBytes: ({ db, collection }) => handle(db).scanBytes(collection),
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

self.onmessage = async ({ data }) => {
  const { id, op, ...args } = data;
  // A batch's vector buffer goes back to the page to be refilled: allocating a fresh
  // one per batch cost more than the copy itself (every new page is a page fault).
  const buffer = args.vectors?.buffer;
  const transfer = buffer ? [buffer] : [];
  try {
    if (!ops[op]) throw fail("INVALID_ARGUMENT", `op: unknown operation ${JSON.stringify(op)}`);
    if (!core && op !== "init") throw fail("CLOSED", "the worker has not loaded a build");
    const value = await ops[op](args);
    self.postMessage({ id, ok: true, value, buffer }, transfer);
  } catch (err) {
    const error = { code: err.code ?? "INTERNAL", message: String(err.message ?? err) };
    self.postMessage({ id, ok: false, error, buffer }, transfer);
  }
};
