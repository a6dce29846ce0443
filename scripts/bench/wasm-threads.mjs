// The pool's ceiling for the `workers` suite: the simd128 build's own scan, in Node
// worker threads, with no browser and no dispatch in the timings. One thread holds all
// the rows; two more hold half each and start each scan together (they meet at a
// spinning barrier), so what the second core adds here is what the memory gives it: the
// most a pool could reach.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Waits, spinning, until `party` threads have called it with the same `cells`. */
function barrier(cells, party) {
  const generation = Atomics.load(cells, 1);
  if (Atomics.add(cells, 0, 1) + 1 === party) {
    Atomics.store(cells, 0, 0);
    Atomics.add(cells, 1, 1);
  } else {
    while (Atomics.load(cells, 1) === generation);
  }
}

/**
 * Starts the threads over `base` (the simd128 build in `pkg`). `round()` times every
 * query once on one thread over every row, then on two threads over half each (for
 * two, the slower half); `results` holds each layout's milliseconds and the ids of the
 * first round's answers.
 */
export async function wasmThreads({ pkg, base, queries, dim, k }) {
  const n = base.length / dim;
  const half = Math.ceil(n / 2);
  const cells = new SharedArrayBuffer(8);
  const spawn = (first, rows, party) =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { pkg, dim, k, first, rows, queries, cells, party } });
      w.once("message", () => resolve(w));
      w.once("error", reject);
    });
  const one = await spawn(0, base.subarray(0, n * dim), 1);
  const pair = [await spawn(0, base.subarray(0, half * dim), 2), await spawn(half, base.subarray(half * dim), 2)];
  const ask = (w, q) => new Promise((resolve) => (w.once("message", resolve), w.postMessage(q)));
  const nq = queries.length / dim;
  const results = { one: [], two: [], oneIds: [], twoIds: [] };
  const byScore = (a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    results,
    async round() {
      const first = results.oneIds.length === 0;
      for (let q = 0; q < nq; q++) {
        const { ms, hits } = await ask(one, q);
        results.one.push(ms);
        if (first) results.oneIds.push(hits.map((h) => h.id));
      }
      for (let q = 0; q < nq; q++) {
        const parts = await Promise.all(pair.map((w) => ask(w, q)));
        results.two.push(Math.max(...parts.map((p) => p.ms)));
        if (first)
          results.twoIds.push(
            parts
              .flatMap((p) => p.hits)
              .sort(byScore)
              .slice(0, k)
              .map((h) => h.id),
          );
      }
    },
    close: () => Promise.all([one, ...pair].map((w) => w.terminate())),
  };
}

if (!isMainThread) {
  const { pkg, dim, k, first, rows, queries, cells, party } = workerData;
  const glue = await import(join(pkg, "quiver.js"));
  await glue.default({ module_or_path: readFileSync(join(pkg, "quiver_bg.wasm")) });
  const db = new glue.Db("threads");
  db.createCollection("c", dim, "cosine");
  const n = rows.length / dim;
  for (let s = 0; s < n; s += 1000) {
    const m = Math.min(1000, n - s);
    const ids = JSON.stringify(Array.from({ length: m }, (_, i) => String(first + s + i)));
    db.upsert("c", ids, rows.subarray(s * dim, (s + m) * dim), new Uint32Array(m).fill(dim), undefined, undefined);
  }
  const options = JSON.stringify({ k });
  const search = (q) => db.search("c", queries.subarray(q * dim, (q + 1) * dim), options);
  for (let q = 0; q < 20; q++) search(q % (queries.length / dim));
  const meet = new Int32Array(cells);
  parentPort.postMessage("ready");
  parentPort.on("message", (q) => {
    if (party > 1) barrier(meet, party);
    const t = performance.now();
    const text = search(q);
    const ms = performance.now() - t;
    parentPort.postMessage({ ms, hits: JSON.parse(text) });
  });
}
