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
async function insertAll(col, base, dim) {
  const n = base.length / dim;
  const t0 = performance.now();
  for (let start = 0; start < n; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      batch.push({ id: String(i), vector: base.subarray(i * dim, (i + 1) * dim), metadata: { row: i } });
    }
    await col.upsert(batch);
  }
  return n / ((performance.now() - t0) / 1000);
}

/**
 * Suite `core`: insert rate and exact-search latency for the simd128 build, the
 * scalar build and the plain-JS baseline, on each dataset.
 */
export async function core({ datasets, k = 10 }) {
  const rows = [];
  for (const ds of datasets) {
    const base = await fetchF32(ds.base);
    const queries = await fetchF32(ds.queries);
    const { dim, metric } = ds;
    const nq = queries.length / dim;
    const scanBytes = base.length * 4;

    // The baseline first: its answers are the exact top-k every engine is scored by.
    const jsMs = [];
    const truth = [];
    for (let q = 0; q < Math.min(nq, ds.jsQueries); q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      const t0 = performance.now();
      truth.push(jsSearch(base, dim, query, k));
      jsMs.push(performance.now() - t0);
    }
    const row = (engine, config, extra) => ({ dataset: ds.name, n: base.length / dim, d: dim, engine, config, ...extra });
    rows.push(row("plain-js", "flat, main thread", { recall_at_10: ds.gt ? recall(truth, ds.gt) : undefined, ...timing(jsMs, scanBytes) }));

    for (const build of ["simd128", "scalar"]) {
      const db = await open({ name: `bench-${ds.name}-${build}`, build });
      const col = await db.collection("bench", { dim, metric });
      const insert_per_s = await insertAll(col, base, dim);
      const { ms, results } = await db._call("timeSearches", {
        collection: "bench",
        queries: queries.slice(),
        dim,
        options: JSON.stringify({ k }),
        repeat: ds.repeat,
      });
      const ids = results.map((r) => JSON.parse(r).map((h) => h.id));
      const scored = { recall_at_10: recall(ids.slice(0, truth.length), truth, k) };
      if (ds.gt) scored.recall_at_10_gt = recall(ids, ds.gt, k);
      rows.push(row("quiver", `${build} flat, in worker`, { ...scored, ...timing(ms, scanBytes), insert_per_s, truth }));

      // The same search through the public API: adds the message round trip.
      const apiMs = [];
      for (let q = 0; q < Math.min(nq, 50); q++) {
        const t0 = performance.now();
        await col.search(queries.subarray(q * dim, (q + 1) * dim), { k });
        apiMs.push(performance.now() - t0);
      }
      rows.push(row("quiver", `${build} flat, API round trip`, { ...scored, ...timing(apiMs, scanBytes) }));
      await db.close();
    }
  }
  return { rows };
}
