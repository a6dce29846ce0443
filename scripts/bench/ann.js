// Suite `ann`, run in the page by scripts/bench.mjs: quiver's index kinds against each
// other and against a plain-JS brute force, over one dataset, through the public API.
import { open } from "../../js/index.js";
import { jsSearch, recall } from "./suites.js";

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** p50/p95/p99 and queries a second of awaited calls taking `ms` each. */
export function latency(ms) {
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return { p50_ms: percentile(ms, 0.5), p95_ms: percentile(ms, 0.95), p99_ms: percentile(ms, 0.99), qps: 1000 / mean };
}

/** The dataset's rows and its first `count` queries, each a view of its own. */
export async function loadSet(dataset, count) {
  const [base, packed] = await Promise.all([dataset.base, dataset.queries].map(async (u) => new Float32Array(await (await fetch(u)).arrayBuffer())));
  const queries = Array.from({ length: count }, (_, q) => packed.subarray(q * dataset.dim, (q + 1) * dataset.dim));
  return { base, queries };
}

/** Searches each query once, awaited one after the other: ids and times. */
async function timed(col, queries, options) {
  const ids = [];
  const ms = [];
  for (const q of queries) {
    const t0 = performance.now();
    const hits = await col.search(q, options);
    ms.push(performance.now() - t0);
    ids.push(hits.map((h) => h.id));
  }
  return { ids, ms };
}

/** Inserts every row through the API in batches of 1,000; returns the seconds it took. */
async function build(col, base, dim) {
  const n = base.length / dim;
  const t0 = performance.now();
  for (let start = 0; start < n; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) batch.push({ id: String(i), vector: base.subarray(i * dim, (i + 1) * dim) });
    await col.upsert(batch);
  }
  return (performance.now() - t0) / 1000;
}

/** MiB of wasm memory the database's workers hold. */
async function wasmMiB(db) {
  const bytes = await Promise.all(Array.from({ length: db.workers }, (_, w) => db._pool.call(w, "memoryBytes")));
  return bytes.reduce((a, b) => a + b, 0) / 2 ** 20;
}

/**
 * Flat and HNSW (at each ef of `efs`) in a pool of `workers`, and the plain-JS scan on
 * a few queries: build time, recall@10 against `gt` (exact ids, best first), latency
 * through the API. The HNSW collection is built in OPFS, then reopened: "open + first
 * query" is what a returning user waits for instead of the build.
 */
export async function ann({ dataset, gt, efs, workers = 2, k = 10, jsQueries = 20 }) {
  const { dim, metric, name, n } = dataset;
  const { base, queries } = await loadSet(dataset, gt.length);
  const row = (engine, config, extra) => ({ dataset: name, n, engine, config, ...extra });
  const rows = [];

  const js = [];
  const jsIds = [];
  for (const q of queries.slice(0, jsQueries)) {
    const t0 = performance.now();
    jsIds.push(jsSearch(base, dim, q, k));
    js.push(performance.now() - t0);
  }
  rows.push(row("plain JS", "brute force, main thread", { recall_at_10: recall(jsIds, gt), ...latency(js), memory_mib: base.byteLength / 2 ** 20 }));

  const flatDb = await open({ name: `ann-flat-${Date.now()}`, workers });
  const flat = await flatDb.collection("c", { dim, metric });
  const flatBuild = await build(flat, base, dim);
  await timed(flat, queries.slice(0, 20), { k }); // warm-up
  const exact = await timed(flat, queries, { k });
  rows.push(
    row("quiver", `flat, pool of ${workers}`, {
      recall_at_10: recall(exact.ids, gt),
      ...latency(exact.ms),
      build_s: flatBuild,
      memory_mib: await wasmMiB(flatDb),
    }),
  );
  await flatDb.close();

  const dbName = `ann-hnsw-${Date.now()}`;
  let db = await open({ name: dbName, storage: "opfs", workers });
  let col = await db.collection("c", { dim, metric, index: "hnsw" });
  const hnswBuild = await build(col, base, dim);
  const memory = await wasmMiB(db);
  await timed(col, queries.slice(0, 20), { k });
  for (const ef of efs) {
    const r = await timed(col, queries, { k, ef });
    rows.push(
      row("quiver", `hnsw M16 efC200 ef ${ef}, pool of ${workers}`, {
        ef,
        recall_at_10: recall(r.ids, gt),
        ...latency(r.ms),
        build_s: hnswBuild,
        memory_mib: memory,
      }),
    );
  }
  const five = await timed(col, queries, { k: 5 });
  const fiveTruth = gt.map((ids) => ids.slice(0, 5));
  rows.push(row("quiver", `hnsw k = 5, default ef, pool of ${workers}`, { recall_at_5: recall(five.ids, fiveTruth, 5), ...latency(five.ms) }));
  await db.close();

  const t0 = performance.now();
  db = await open({ name: dbName, storage: "opfs", workers });
  col = await db.collection("c");
  await col.search(queries[0], { k });
  const reopen = (performance.now() - t0) / 1000;
  const again = await timed(col, queries, { k });
  rows.push(
    row("quiver", `hnsw reopened from OPFS: open + first query, pool of ${workers}`, {
      open_s: reopen,
      build_s: hnswBuild,
      recall_at_10: recall(again.ids, gt),
    }),
  );
  await db.close();
  return { rows };
}
