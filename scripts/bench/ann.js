// Suite `ann`, run in the page by scripts/bench.mjs: quiver's index kinds against each
// other and against a plain-JS brute force, over one dataset, through the public API.
import { open } from "../../js/index.js";
import { jsSearch, recall } from "./suites.js";

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** Untimed queries first, so that V8 has tiered up each engine's code. */
const WARM_UP = 20;
/** Searches a caller keeps in flight for `qps`: as many as a store worker's query ring holds. */
export const IN_FLIGHT = 32;
/** Passes over the queries for `qps`, so that the timed span is long enough to mean something. */
const PASSES = 5;
/**
 * Latencies `measure` takes, awaited one after the other, by passes over the queries
 * while it has fewer and LATENCY_BUDGET_MS has not passed: the p99 of a synthetic
 * set's 100 queries would be its second worst, which one hiccup of the host decides.
 * Every engine gets at least one pass; a slow exact scan gets no more.
 */
const LATENCY_SAMPLES = 1000;
const LATENCY_BUDGET_MS = 3000;

/**
 * Measures `search(q)` (ids, or a promise of them) over `queries` after WARM_UP untimed
 * ones, two ways:
 * - awaited one after the other, in passes over the queries up to LATENCY_SAMPLES:
 *   p50/p95/p99 and `qps_serial` (1,000 / mean ms), what a caller that waits for each
 *   answer before asking the next gets;
 * - with IN_FLIGHT searches outstanding at once, PASSES times over the queries: `qps`,
 *   what a caller with many questions gets (an engine that answers synchronously on
 *   the page's thread gets no more than its serial rate).
 * `recall_at_10` is the lower of the two ways' recall against `gt` (at `k`), so an
 * answer changed by concurrency shows.
 */
export async function measure(search, queries, gt, k = 10) {
  for (const q of queries.slice(0, WARM_UP)) await search(q);
  const ids = [];
  const ms = [];
  const start = performance.now();
  do {
    for (const q of queries) {
      const t0 = performance.now();
      const found = await search(q);
      ms.push(performance.now() - t0);
      if (ids.length < queries.length) ids.push(found);
    }
  } while (ms.length < LATENCY_SAMPLES && performance.now() - start < LATENCY_BUDGET_MS);
  const concurrent = new Array(queries.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < PASSES * queries.length; i = next++) concurrent[i % queries.length] = await search(queries[i % queries.length]);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const qps = (PASSES * queries.length) / ((performance.now() - t0) / 1000);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return {
    recall_at_10: Math.min(recall(ids, gt, k), recall(concurrent, gt, k)),
    p50_ms: percentile(ms, 0.5),
    p95_ms: percentile(ms, 0.95),
    p99_ms: percentile(ms, 0.99),
    qps_serial: 1000 / mean,
    qps,
  };
}

/** The dataset's rows and its first `count` queries, each a view of its own. */
export async function loadSet(dataset, count) {
  const [base, packed] = await Promise.all([dataset.base, dataset.queries].map(async (u) => new Float32Array(await (await fetch(u)).arrayBuffer())));
  const queries = Array.from({ length: count }, (_, q) => packed.subarray(q * dataset.dim, (q + 1) * dataset.dim));
  return { base, queries };
}

/** `col.search` as `measure` takes it: the ids of the hits. */
const searcher = (col, options) => async (q) => (await col.search(q, options)).map((h) => h.id);

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

/** MiB of vectors, codes and graph links a collection reports in `stats()`. */
async function indexMiB(col) {
  const s = await col.stats();
  return { vector_mib: s.vectorBytes / 2 ** 20, code_mib: s.codeBytes / 2 ** 20, graph_mib: s.graphBytes / 2 ** 20 };
}

/**
 * Flat (exact, int8 and binary), HNSW on f32 and on int8 (at each ef of `efs`) in a
 * pool of `workers`, and the plain-JS scan on a few queries: build time, recall@10
 * against `gt` (exact ids, best first), latency and throughput through the API. The
 * HNSW collections are built in OPFS, then reopened: "open + first query" is what a
 * returning user waits for instead of the build.
 */
export async function ann({ dataset, gt, efs, fetches, workers = 2, k = 10, jsQueries = 20 }) {
  const { dim, metric, name, n } = dataset;
  const { base, queries } = await loadSet(dataset, gt.length);
  const row = (engine, config, extra) => ({ dataset: name, n, engine, config, ...extra });
  const rows = [];

  const js = await measure((q) => jsSearch(base, dim, q, k), queries.slice(0, jsQueries), gt.slice(0, jsQueries));
  rows.push(row("plain JS", "brute force, main thread", { ...js, memory_mib: base.byteLength / 2 ** 20 }));

  for (const quantization of ["none", "int8", "binary"]) {
    const db = await open({ name: `ann-flat-${quantization}-${Date.now()}`, workers });
    const col = await db.collection("c", { dim, metric, quantization });
    const build_s = await build(col, base, dim);
    const memory = { memory_mib: await wasmMiB(db), ...(await indexMiB(col)) };
    for (const fetch of quantization === "none" ? [undefined] : fetches[quantization]) {
      const r = await measure(searcher(col, { k, fetch }), queries, gt);
      const config = quantization === "none" ? `flat, pool of ${workers}` : `flat ${quantization} fetch ${fetch}, pool of ${workers}`;
      rows.push(row("quiver", config, { quantization, fetch, ...r, build_s, ...memory }));
    }
    await db.close();
  }

  for (const quantization of ["none", "int8"]) {
    const dbName = `ann-hnsw-${quantization}-${Date.now()}`;
    let db = await open({ name: dbName, storage: "opfs", workers });
    let col = await db.collection("c", { dim, metric, index: "hnsw", quantization });
    const build_s = await build(col, base, dim);
    const memory = { memory_mib: await wasmMiB(db), ...(await indexMiB(col)) };
    const label = quantization === "none" ? "hnsw" : `hnsw ${quantization}`;
    for (const ef of efs) {
      const r = await measure(searcher(col, { k, ef }), queries, gt);
      rows.push(row("quiver", `${label} M16 efC200 ef ${ef}, pool of ${workers}`, { quantization, ef, ...r, build_s, ...memory }));
    }
    const fiveTruth = gt.map((ids) => ids.slice(0, 5));
    const { recall_at_10: recall_at_5, ...five } = await measure(searcher(col, { k: 5 }), queries, fiveTruth, 5);
    rows.push(row("quiver", `${label} k = 5, default ef, pool of ${workers}`, { quantization, recall_at_5, ...five }));
    await db.close();

    const t0 = performance.now();
    db = await open({ name: dbName, storage: "opfs", workers });
    col = await db.collection("c");
    await col.search(queries[0], { k });
    const open_s = (performance.now() - t0) / 1000;
    const { recall_at_10 } = await measure(searcher(col, { k }), queries, gt);
    rows.push(row("quiver", `${label} reopened from OPFS: open + first query, pool of ${workers}`, { quantization, open_s, build_s, recall_at_10 }));
    await db.close();
  }
  return { rows };
}
