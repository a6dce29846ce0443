// Benchmark suites, run in the page by scripts/bench.mjs. Each returns rows measured
// in this one run; the runner computes the ratios from them.
import { open } from "../../js/index.js";

async function fetchF32(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return new Float32Array(await res.arrayBuffer());
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/** Recall@k of `got` (lists of ids) against `want`. */
export function recall(got, want, k = 10) {
  let hit = 0;
  got.forEach((ids, q) => {
    const truth = new Set(want[q].slice(0, k).map(String));
    hit += ids.slice(0, k).filter((id) => truth.has(String(id))).length;
  });
  return hit / (got.length * k);
}

export function timing(ms, scanBytes) {
  const p50 = percentile(ms, 0.5);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return { p50_ms: p50, p95_ms: percentile(ms, 0.95), qps: 1000 / mean, gb_per_s: scanBytes / (p50 / 1000) / 1e9 };
}

/**
 * The plain-JavaScript baseline: a straightforward brute-force scan with a sorted
 * top-k array, what a small JS vector library does. Cosine over unit vectors is a dot.
 */
export function jsSearch(matrix, dim, query, k) {
  const n = matrix.length / dim;
  const top = [];
  let floor = -Infinity;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const off = i * dim;
    for (let j = 0; j < dim; j++) s += query[j] * matrix[off + j];
    if (top.length < k || s > floor) {
      top.push({ i, s });
      top.sort((a, b) => b.s - a.s || a.i - b.i);
      if (top.length > k) top.pop();
      floor = top[top.length - 1].s;
    }
  }
  return top.map((t) => t.i);
}

/** Inserts `base` through the public API in batches of 1,000; returns vectors/s. */
async function insertAll(col, base, dim, withMetadata) {
  const n = base.length / dim;
  const t0 = performance.now();
  for (let start = 0; start < n; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const record = { id: String(i), vector: base.subarray(i * dim, (i + 1) * dim) };
      if (withMetadata) record.metadata = { row: i, even: i % 2 === 0 };
      batch.push(record);
    }
    await col.upsert(batch);
  }
  return n / ((performance.now() - t0) / 1000);
}

/**
 * Suite `core`: insert rate and exact-search latency for the simd128 build, the
 * scalar build and the plain-JS baseline. Engines take turns, round after round, so
 * that a slow spell of this shared machine falls on all of them alike; each wasm build
 * is warmed up first so V8 has tiered its code up.
 */
export async function core({ datasets, k = 10, rounds = 3 }) {
  const rows = [];
  for (const ds of datasets) {
    // Closed workers free their memory in the background, on the same two cores.
    await new Promise((r) => setTimeout(r, 2000));
    const base = await fetchF32(ds.base);
    const queries = await fetchF32(ds.queries);
    const { dim, metric } = ds;
    const n = base.length / dim;
    const nq = queries.length / dim;
    const scanBytes = base.length * 4;
    const row = (engine, config, extra) => ({ dataset: ds.name, n, d: dim, engine, config, ...extra });

    const builds = ["simd128", "scalar"];
    const dbs = {};
    for (const build of builds) {
      dbs[build] = await open({ name: `bench-${ds.file}-${build}`, build, workers: 1 });
      await dbs[build]._pool.call(0, "extend", { module: new URL("./worker-ops.js", import.meta.url).href });
      await insertAll(await dbs[build].collection("bench", { dim, metric }), base, dim, false);
    }
    const timed = (build, count) =>
      dbs[build]._pool.call(0, "timeSearches", {
        collection: "bench",
        queries: queries.slice(0, count * dim),
        dim,
        options: JSON.stringify({ k }),
        repeat: 1,
      });
    for (const build of builds) await timed(build, Math.min(nq, 20));

    const ms = { js: [], simd128: [], scalar: [] };
    const truth = [];
    const found = { simd128: [], scalar: [] };
    for (let r = 0; r < rounds; r++) {
      for (let q = 0; q < ds.jsQueries; q++) {
        const query = queries.subarray(q * dim, (q + 1) * dim);
        const t0 = performance.now();
        const top = jsSearch(base, dim, query, k);
        ms.js.push(performance.now() - t0);
        if (r === 0) truth.push(top);
      }
      for (const build of builds) {
        const out = await timed(build, nq);
        ms[build].push(...out.ms);
        if (r === 0) found[build] = out.results.map((t) => JSON.parse(t).map((h) => h.id));
      }
    }
    rows.push(row("plain-js", "flat, main thread", { recall_at_10: ds.gt ? recall(truth, ds.gt) : undefined, ...timing(ms.js, scanBytes), truth }));
    for (const build of builds) {
      const scored = { recall_at_10: recall(found[build].slice(0, truth.length), truth, k) };
      if (ds.gt) scored.recall_at_10_gt = recall(found[build], ds.gt, k);
      rows.push(row("quiver", `${build} flat, in worker`, { ...scored, ...timing(ms[build], scanBytes) }));

      // The same search through the public API: adds the message round trip.
      const col = await dbs[build].collection("bench");
      const apiMs = [];
      for (let q = 0; q < Math.min(nq, 50); q++) {
        const t0 = performance.now();
        await col.search(queries.subarray(q * dim, (q + 1) * dim), { k });
        apiMs.push(performance.now() - t0);
      }
      rows.push(row("quiver", `${build} flat, API round trip`, { ...scored, ...timing(apiMs, scanBytes) }));
      await dbs[build].close();
    }
  }
  return { rows };
}

/**
 * Insert rate through the public API, batches of 1,000, into an in-memory collection:
 * each build in fresh workers, after a 5,000-vector warm-up (until V8 has tiered up
 * SQLite's code), with and without metadata. Run in a page of its own: the memory that
 * closed workers free in the background would otherwise be timed too.
 */
export async function inserts({ dataset }) {
  const base = await fetchF32(dataset.base);
  const { dim, metric } = dataset;
  const rows = [];
  for (const build of ["simd128", "scalar"]) {
    for (const withMetadata of [false, true]) {
      // Best of three fresh workers: on a shared machine the fastest run is the one
      // least disturbed, and the closest to what the code itself costs.
      let best = 0;
      for (let run = 0; run < 3; run++) {
        const db = await open({ name: `insert-${build}-${withMetadata}-${run}`, build, workers: 1 });
        await insertAll(await db.collection("warm-up", { dim, metric }), base.subarray(0, 5000 * dim), dim, withMetadata);
        best = Math.max(best, await insertAll(await db.collection("bench", { dim, metric }), base, dim, withMetadata));
        await db.close();
        await new Promise((r) => setTimeout(r, 1500));
      }
      rows.push({
        dataset: dataset.name,
        n: base.length / dim,
        d: dim,
        engine: "quiver",
        config: `${build} insert, batches of 1000${withMetadata ? ", with metadata" : ""}, best of 3`,
        insert_per_s: best,
      });
    }
  }
  return { rows };
}

/** Times `count` awaited calls of `fn(i)`, appending each in ms to `ms`. */
async function timeCalls(count, fn, ms = []) {
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await fn(i);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/**
 * Suite `workers`: the pool against one worker on a large collection, for each build;
 * searchMany against a loop of searches; the query ring against postMessage for a
 * tiny collection; and the size from which partitioning pays (the threshold).
 * Configurations take turns, round after round, as in `core`.
 */
export async function workers({ dataset, small, k = 10, rounds = 3, poolSize = 2 }) {
  const base = await fetchF32(dataset.base);
  const queries = await fetchF32(dataset.queries);
  const { dim, metric } = dataset;
  const n = base.length / dim;
  const nq = queries.length / dim;
  const scanBytes = base.length * 4;
  const query = (i) => queries.subarray((i % nq) * dim, ((i % nq) + 1) * dim);
  const rows = [];
  const row = (config, extra) => ({ dataset: dataset.name, n, d: dim, engine: "quiver", config, ...extra });

  // The exact answer, from the plain-JS scan, for the first queries.
  const truth = Array.from({ length: 10 }, (_, q) => jsSearch(base, dim, query(q), k));
  const scored = (lists) => ({
    recall_at_10: recall(
      lists.slice(0, truth.length).map((hits) => hits.map((h) => h.id)),
      truth,
      k,
    ),
  });

  for (const build of ["simd128", "scalar"]) {
    const configs = [];
    for (const size of [1, poolSize]) {
      const db = await open({ name: `workers-${build}-${size}`, build, workers: size });
      const col = await db.collection("bench", { dim, metric });
      await insertAll(col, base, dim, false);
      await timeCalls(20, (i) => col.search(query(i), { k }));
      configs.push({ db, col, size, ms: [], found: [] });
    }
    // Let the page's garbage collector finish with the inserts' garbage: its helper
    // threads share the two cores with the workers being timed.
    await new Promise((r) => setTimeout(r, 3000));
    // Each configuration in turn, all the queries a turn, round after round, so a slow
    // spell hits both alike. Not query by query: then the pool's second core sits idle
    // through each one-worker search, and this VM took milliseconds to give an idle
    // vCPU back (pool p50 7-12 ms instead of 6.5 at 100k scalar; both workers alone
    // scanned their halves in 6.1 ms).
    for (let r = 0; r < rounds; r++) {
      for (const c of configs) {
        for (let i = 0; i < nq; i++) await timeCalls(1, async () => (c.found[i] = await c.col.search(query(i), { k })), c.ms);
      }
      // The bench's ceilings, timed between the rounds so that they see the same machine.
      if (build === "simd128") await globalThis.betweenRounds?.();
    }
    for (const c of configs) {
      const label = c.size === 1 ? "1 worker" : `pool of ${c.size}`;
      rows.push(row(`${build} flat, ${label}`, { workers: c.size, ...scored(c.found), ...timing(c.ms, scanBytes) }));
    }
    if (build === "simd128") {
      // A batch of queries against the same queries one by one, on the pool.
      const pool = configs[1];
      const batch = Array.from({ length: nq }, (_, i) => query(i));
      const loop = [],
        many = [];
      let manyFound;
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        for (const q of batch) await pool.col.search(q, { k });
        loop.push((performance.now() - t0) / nq);
        const t1 = performance.now();
        manyFound = await pool.col.searchMany(batch, { k });
        many.push((performance.now() - t1) / nq);
      }
      rows.push(row(`simd128 search loop of ${nq}, pool of ${pool.size}`, { ...scored(pool.found), ...timing(loop, scanBytes), per: "query" }));
      rows.push(row(`simd128 searchMany(${nq}), pool of ${pool.size}, effective GB/s`, { ...scored(manyFound), ...timing(many, scanBytes), per: "query" }));
    }
    for (const c of configs) await c.db.close();
    await new Promise((r) => setTimeout(r, 1500));
  }

  // Dispatch: the same worker, the same tiny search, through the ring and by message.
  {
    const db = await open({ name: "dispatch", workers: 1 });
    const col = await db.collection("tiny", { dim: 8, metric: "dot" });
    await col.upsert(Array.from({ length: 16 }, (_, i) => ({ id: `t${i}`, vector: Float32Array.from({ length: 8 }, (_, j) => ((i * 7 + j) % 5) - 2) })));
    // The ring through the public API; the same search by message, one level down
    // (what the pool does without cross-origin isolation).
    const q = new Float32Array([1, 0, -1, 2, 0, 1, 1, -2]);
    const viaRing = async () => JSON.stringify(await col.search(q, { k: 4 }));
    const viaMessage = async () =>
      JSON.stringify(JSON.parse(await db._pool.call(0, "search", { collection: "tiny", options: JSON.stringify({ k: 4 }), query: q.slice() })));
    const same = (await viaRing()) === (await viaMessage());
    const ms = { ring: [], message: [] };
    await timeCalls(500, viaRing);
    await timeCalls(500, viaMessage);
    for (let r = 0; r < 5; r++) {
      await timeCalls(400, viaRing, ms.ring);
      await timeCalls(400, viaMessage, ms.message);
    }
    for (const [how, list] of Object.entries(ms)) {
      const t = timing(list, 16 * 8 * 4);
      rows.push({
        dataset: "tiny",
        n: 16,
        d: 8,
        engine: "quiver",
        config: `dispatch round trip, ${how === "ring" ? "SAB ring" : "postMessage"}`,
        recall_at_10: same ? 1 : 0,
        p50_us: t.p50_ms * 1000,
        p95_us: t.p95_ms * 1000,
        qps: t.qps,
      });
    }
    await db.close();
  }

  // Where partitioning starts to pay: one worker against the pool, by collection size.
  for (const size of small) {
    const part = base.subarray(0, size * dim);
    const exact = Array.from({ length: 5 }, (_, q) => jsSearch(part, dim, query(q), k));
    const ms = [[], []];
    const found = [[], []];
    const dbs = [];
    for (const w of [1, poolSize]) {
      const db = await open({ name: `threshold-${size}-${w}`, workers: w, partitionThreshold: 0 });
      const col = await db.collection("c", { dim, metric });
      await insertAll(col, part, dim, false);
      await timeCalls(50, (i) => col.search(query(i), { k }));
      dbs.push({ db, col });
    }
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < 100; i++) {
        for (const [j, { col }] of dbs.entries()) {
          await timeCalls(1, async () => (found[j][i] = (await col.search(query(i), { k })).map((h) => h.id)), ms[j]);
        }
      }
    }
    for (const [j, { db }] of dbs.entries()) {
      const config = `simd128 partitioning, ${db.workers} worker${db.workers > 1 ? "s" : ""}`;
      const recall_at_10 = recall(found[j].slice(0, exact.length), exact, k);
      rows.push({ dataset: dataset.name, n: size, d: dim, engine: "quiver", config, workers: db.workers, recall_at_10, ...timing(ms[j], size * dim * 4) });
      await db.close();
    }
  }
  return { rows };
}

/**
 * Suite `storage`: reopening a persisted collection from OPFS and answering its first
 * query, against the floor of reading its segment file raw, against reopening it from
 * IndexedDB and against inserting the same data afresh in memory; and many small shards.
 */
export async function storage({ dataset, k = 10, shards = 100_000 }) {
  const base = await fetchF32(dataset.base);
  const queries = await fetchF32(dataset.queries);
  const { dim, metric } = dataset;
  const n = base.length / dim;
  const bytes = base.length * 4;
  const row = (config, extra) => ({ dataset: dataset.name, n, d: dim, engine: "quiver", config, ...extra });
  const q = queries.subarray(0, dim);
  const truth = [jsSearch(base, dim, q, k)];
  const rows = [];
  const name = `storage-bench-${Date.now()}`;

  // Write it once, persistently, in one worker.
  const db = await open({ name, storage: "opfs", workers: 1 });
  const t0 = performance.now();
  await insertAll(await db.collection("bench", { dim, metric }), base, dim, false);
  rows.push(row("opfs insert, batches of 1000", { insert_per_s: n / ((performance.now() - t0) / 1000) }));
  await db.close();
  await new Promise((r) => setTimeout(r, 1000));

  // Reopen and answer one query, best of 3: timed from before `open` (new workers, the
  // VFS, SQLite, the search copy, the scan), then from an open database whose workers
  // have loaded nothing, so the shard's first use loads it from its segment.
  const reopenTimed = async (config, fromOpen, storage = "opfs", dbName = name) => {
    const ms = [];
    let found;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      const again = await open({ name: dbName, storage, workers: 1 });
      const t1 = fromOpen ? t0 : performance.now();
      const hits = await (await again.shard("bench")).search(q, { k });
      ms.push(performance.now() - t1);
      found = [hits.map((h) => h.id)];
      await again.close();
      await new Promise((r) => setTimeout(r, 500));
    }
    const best = Math.min(...ms);
    rows.push(row(config, { recall_at_10: recall(found, truth, k), p50_ms: best, gb_per_s: bytes / (best / 1000) / 1e9 }));
  };
  await reopenTimed("opfs database open + first query, best of 3", true);
  await reopenTimed("opfs shard open + first query, best of 3", false);

  // The floor: the collection's own segment file (what the reopens read, and the
  // database now closed has let go of), read raw in 1 MiB calls.
  const raw = await new Promise((resolve, reject) => {
    const w = new Worker(new URL("./opfs-raw-worker.js", import.meta.url));
    w.onmessage = ({ data }) => (w.terminate(), data.error ? reject(new Error(data.error)) : resolve(data));
    w.onerror = (e) => reject(new Error(e.message));
    // The pool's directory of worker 0 (js/pool.js) and its segments beside it (workers/storage/opfs.js).
    w.postMessage({ path: `quiver/${encodeURIComponent(name)}/w0-segments`, chunk: 1 << 20 });
  });
  rows.push({
    dataset: dataset.name,
    n,
    d: dim,
    engine: "opfs",
    config: "raw read of the segment file, sync access handle, 1 MiB calls, best of 3",
    p50_ms: raw.ms,
    gb_per_s: raw.bytes / (raw.ms / 1000) / 1e9,
    bytes: raw.bytes,
  });

  // The same data kept in IndexedDB: written, closed (which stores its image), then
  // reopened, where opening reads the whole image back.
  const idbName = `${name}-idb`;
  const idb = await open({ name: idbName, storage: "idb", workers: 1 });
  await insertAll(await idb.collection("bench", { dim, metric }), base, dim, false);
  await idb.close();
  await reopenTimed("idb database open + first query, best of 3", true, "idb", idbName);

  // The same data inserted afresh into memory, and its first query.
  const t2 = performance.now();
  const mem = await open({ name: `${name}-memory`, workers: 1 });
  const col = await mem.collection("bench", { dim, metric });
  await insertAll(col, base, dim, false);
  const memHits = await col.search(q, { k });
  const memMs = performance.now() - t2;
  rows.push(row("memory insert + first query", { recall_at_10: recall([memHits.map((h) => h.id)], truth, k), p50_ms: memMs }));
  await mem.close();
  rows.push(...(await manyShards({ shards })));
  return { rows };
}

/**
 * Suite `resident`: what a vector costs in resident memory in `storage`: the
 * renderer's (the page's and its workers') resident bytes, which the runner reads as
 * the OS counts them, after inserting all of `dataset` through the API, less before
 * (the database open, its collection empty), over the count. One worker; run in a
 * page of its own, so that no earlier work is freed between the readings.
 */
export async function resident({ dataset, storage }) {
  const base = await fetchF32(dataset.base);
  const { dim, metric } = dataset;
  const n = base.length / dim;
  // Growth of the processes alive at both readings (one that ended between is no growth).
  const grown = (before, after) => Object.keys(before).reduce((sum, pid) => sum + (after[pid] ?? before[pid]) - before[pid], 0);
  const db = await open({ name: `resident-${storage}-${Date.now()}`, storage, workers: 1 });
  const col = await db.collection("bench", { dim, metric });
  const before = await globalThis.residentBytes();
  await insertAll(col, base, dim, false);
  const after = await globalThis.residentBytes();
  await db.close();
  const row = {
    dataset: dataset.name,
    n,
    d: dim,
    engine: "quiver",
    config: `resident memory, ${storage} storage, 1 worker`,
    bytes_per_vector: grown(before.renderers, after.renderers) / n,
    all_processes_bytes_per_vector: grown(before.all, after.all) / n,
    raw_bytes_per_vector: dim * 4,
  };
  return { rows: [row] };
}

/**
 * `shards` small shards (two 4-d records each) created in OPFS, then 3,000 random uses
 * (load, search) through an LRU of 16: what each costs, and the workers' memory after
 * 1,000 and 3,000 uses (past the LRU's cap only SQLite's 2 MiB page cache may grow).
 */
async function manyShards({ shards }) {
  const name = `shards-bench-${Date.now()}`;
  const reopen = () => open({ name, storage: "opfs", workers: 2, loadedCollections: 16 });
  let db = await reopen();
  const t0 = performance.now();
  for (let i = 0; i < shards; i++) {
    const shard = await db.shard(`shard-${i}`, { dim: 4, metric: "euclidean" });
    await shard.upsert([0, 1].map((j) => ({ id: `s${i}-${j}`, vector: [i % 97, j, 1, 1] })));
  }
  const createMs = (performance.now() - t0) / shards;
  await db.close();
  db = await reopen();
  const memory = () => Promise.all([0, 1].map((w) => db._pool.call(w, "memoryBytes"))).then((m) => m.reduce((a, b) => a + b));
  let seed = 7;
  const t1 = performance.now();
  let hit = 0;
  let after1000;
  for (let u = 0; u < 3000; u++) {
    const i = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % shards;
    const [best] = await (await db.shard(`shard-${i}`)).search([i % 97, 1, 1, 1], { k: 1 });
    if (best?.id === `s${i}-1`) hit++;
    if (u === 999) after1000 = await memory();
  }
  const useMs = (performance.now() - t1) / 3000;
  const after3000 = await memory();
  await db.close();
  const config = `${shards} shards x 2 records, LRU of 16`;
  const base = { dataset: "synthetic-4d", n: shards * 2, d: 4, engine: "quiver" };
  return [
    { ...base, config: `${config}: create + first write, per shard`, p50_ms: createMs },
    { ...base, config: `${config}: load + first query of a random shard`, p50_ms: useMs, recall_at_1: hit / 3000 },
    {
      ...base,
      config: `${config}: worker memory after 1,000 / 3,000 random uses`,
      memory_mib: `${(after1000 / 2 ** 20).toFixed(1)} / ${(after3000 / 2 ** 20).toFixed(1)}`,
    },
  ];
}
