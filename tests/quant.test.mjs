// Quantized collections through the public API, in headless Chromium against the real
// build: on real embeddings (the committed MiniLM fixture) int8 and binary find what an
// exact collection finds, with its very scores, in one worker and spread over two; an
// hnsw graph walked on int8 codes recalls what the f32 graph does, with exact scores;
// bad settings and fetch values change nothing; a reopen in OPFS answers the same.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { usePage } from "./helpers.mjs";

const env = usePage(before, after);

test("int8 and binary find what flat finds on real embeddings, with exact scores, in one worker or two", async () => {
  for (const workers of [1, 2]) {
    const out = await env.p.page.evaluate(async (workers) => {
      const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
      const db = await quiver.open({ name: `quant-recall-${workers}`, workers, partitionThreshold: 500 });
      const cols = {};
      for (const quantization of ["none", "int8", "binary"]) cols[quantization] = await db.collection(quantization, { dim, quantization });
      for (let i = 0; i < n; i += 500) {
        const rows = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
          id: String(i + j),
          vector: base.subarray((i + j) * dim, (i + j + 1) * dim),
          metadata: { bucket: (i + j) % 10 },
        }));
        for (const col of Object.values(cols)) await col.upsert(rows);
      }
      const qs = Array.from({ length: queries.length / dim }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
      const result = { quantization: Object.values(cols).map((c) => c.quantization) };
      for (const name of ["int8", "binary"]) {
        const recall = async (options) => {
          let found = 0;
          let wrong = 0;
          for (const q of qs) {
            const truth = await cols.none.search(q, { k: 10, filter: options.filter });
            const all = new Map((await cols.none.search(q, { k: n, filter: options.filter })).map((h) => [h.id, h.score]));
            const got = await cols[name].search(q, { k: 10, ...options });
            found += got.filter((h) => truth.some((t) => t.id === h.id)).length;
            wrong += got.filter((h) => all.get(h.id) !== h.score).length;
          }
          return { recall: found / (qs.length * 10), wrong };
        };
        result[name] = {
          plain: await recall({}),
          filtered: await recall({ filter: { bucket: 3 } }),
          fetched: await recall({ fetch: 200 }),
          bare: await recall({ fetch: 10 }),
          stats: await cols[name].stats(),
        };
      }
      result.none = await cols.none.stats();
      result.spread = (await Promise.all([0, 1].slice(0, workers).map((w) => db._pool.call(w, "count", { collection: "int8" })))).every((c) => c > 0);
      await db.close();
      return result;
    }, workers);
    assert.deepEqual(out.quantization, ["none", "int8", "binary"]);
    assert.ok(out.spread, "every worker holds part of it");
    for (const [name, floor] of [
      ["int8", 0.97],
      ["binary", 0.95],
    ]) {
      const r = out[name];
      console.log(
        `${workers} worker(s), ${name}: recall@10 ${r.plain.recall}, filtered ${r.filtered.recall}, fetch 200 ${r.fetched.recall}, fetch 10 ${r.bare.recall}`,
      );
      assert.ok(r.plain.recall >= floor, `${name} recall@10 at the default fetch: ${r.plain.recall}`);
      assert.ok(r.filtered.recall >= floor, `${name} recall@10 under a 10% filter: ${r.filtered.recall}`);
      assert.ok(r.fetched.recall >= r.plain.recall, `${name}: fetch 200 finds no less than the default`);
      for (const run of ["plain", "filtered", "fetched", "bare"]) assert.equal(r[run].wrong, 0, `${name} ${run}: scores differ from the exact collection's`);
      assert.equal(r.stats.count, 2000);
      assert.equal(r.stats.vectorBytes, 2000 * 384 * 4);
      assert.ok(r.stats.codeBytes > 0, `${name} keeps codes`);
    }
    // Re-ranking no more than k shows the codes at work: binary's order alone misses some.
    assert.ok(out.binary.bare.recall < out.binary.plain.recall, `binary recall@10 at fetch 10: ${out.binary.bare.recall}`);
    assert.equal(out.int8.stats.codeBytes * 4, out.int8.stats.vectorBytes, "int8 codes are a quarter of the vectors");
    assert.ok(out.binary.stats.codeBytes * 20 < out.binary.stats.vectorBytes, `binary: ${out.binary.stats.codeBytes} bytes`);
    assert.deepEqual(out.none, { count: 2000, vectorBytes: 2000 * 384 * 4, codeBytes: 0, graphBytes: 0 });
  }
});

test("an hnsw collection on int8 codes recalls what the f32 graph does, with the exact scan's scores", async () => {
  const out = await env.p.page.evaluate(async () => {
    const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
    // One worker: one graph of all 2,000 rows, past the 1,000 from which it keeps codes.
    const db = await quiver.open({ name: "quant-hnsw", workers: 1 });
    const flat = await db.collection("flat", { dim });
    const f32 = await db.collection("f32", { dim, index: "hnsw" });
    const int8 = await db.collection("int8", { dim, index: "hnsw", quantization: "int8" });
    for (let i = 0; i < n; i += 500) {
      const rows = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
        id: String(i + j),
        vector: base.subarray((i + j) * dim, (i + j + 1) * dim),
        metadata: { bucket: (i + j) % 2 },
      }));
      for (const col of [flat, f32, int8]) await col.upsert(rows);
    }
    const qs = Array.from({ length: queries.length / dim }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
    const recall = async (col, options) => {
      let found = 0;
      let wrong = 0;
      for (const q of qs) {
        const truth = await flat.search(q, { k: 10, filter: options.filter });
        const all = new Map((await flat.search(q, { k: n })).map((h) => [h.id, h.score]));
        const got = await col.search(q, { k: 10, ...options });
        found += got.filter((h) => truth.some((t) => t.id === h.id)).length;
        wrong += got.filter((h) => all.get(h.id) !== h.score).length;
      }
      return { recall: found / (qs.length * 10), wrong };
    };
    const result = { settings: [int8.index, int8.quantization], stats: await int8.stats(), f32: {}, int8: {} };
    for (const ef of [10, 20, 40, 80]) {
      result.f32[ef] = await recall(f32, { ef });
      result.int8[ef] = await recall(int8, { ef });
    }
    result.filtered = await recall(int8, { filter: { bucket: 1 } });
    await db.close();
    return result;
  });
  assert.deepEqual(out.settings, ["hnsw", "int8"]);
  const { graphBytes, ...sizes } = out.stats;
  assert.deepEqual(sizes, { count: 2000, vectorBytes: 2000 * 384 * 4, codeBytes: 2000 * 384 });
  // Layer 0 holds a count and room for 2M = 32 links a node; upper layers add a few per cent.
  const layer0 = 2000 * (1 + 32) * 4;
  assert.ok(graphBytes >= layer0 && graphBytes < 2 * layer0, `graph bytes ${graphBytes} against layer 0's ${layer0}`);
  for (const ef of [10, 20, 40, 80]) {
    const [a, b] = [out.f32[ef], out.int8[ef]];
    console.log(`hnsw ef ${ef}: recall@10 f32 graph ${a.recall}, int8 graph ${b.recall}`);
    assert.ok(b.recall >= a.recall - 0.02, `ef ${ef}: int8 ${b.recall} against f32 ${a.recall}`);
    assert.equal(b.wrong, 0, `ef ${ef}: scores differ from the exact scan's`);
  }
  assert.ok(out.int8[40].recall >= 0.97, `int8 graph recall@10 at ef 40: ${out.int8[40].recall}`);
  assert.ok(out.filtered.recall >= 0.95 && out.filtered.wrong === 0, `under a 50% filter: ${JSON.stringify(out.filtered)}`);
});

test("an int8 hnsw collection reopens from OPFS with the same answers", async () => {
  const run = () =>
    env.p.page.evaluate(async () => {
      const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
      const db = await quiver.open({ name: "quant-hnsw-opfs", storage: "opfs", workers: 1 });
      const col = await db.collection("c", { dim, index: "hnsw", quantization: "int8" });
      // Three copies of the fixture: enough rows for a segment file.
      if ((await col.count()) === 0) {
        for (let copy = 0; copy < 3; copy++) {
          for (let i = 0; i < n; i += 1000) {
            await col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: `${copy}-${i + j}`, vector: base.subarray((i + j) * dim, (i + j + 1) * dim) })));
          }
        }
        await col.delete(["0-1", "1-2", "2-3"]);
      }
      const qs = Array.from({ length: 16 }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
      const answers = await col.searchMany(qs, { k: 10 });
      const result = { settings: [col.index, col.quantization], answers, stats: await col.stats() };
      await db.close();
      return result;
    });
  const first = await run();
  const again = await run();
  assert.deepEqual(again.settings, ["hnsw", "int8"]);
  assert.equal(first.stats.count, 5997);
  assert.ok(first.stats.codeBytes >= 5997 * 384, `code bytes ${first.stats.codeBytes}`);
  assert.deepEqual(again.stats, first.stats);
  assert.deepEqual(again.answers, first.answers);
});

test("bad quantization settings and fetch values are INVALID_ARGUMENT and change nothing", async () => {
  const out = await env.p.page.evaluate(async () => {
    const db = await quiver.open({ name: "quant-errors", workers: 1 });
    const col = await db.collection("c", { dim: 3, quantization: "int8" });
    await col.upsert({ id: "a", vector: [1, 0, 0] });
    const failure = (p) =>
      p.then(
        () => "resolved",
        (e) => `${e.code}: ${e.message}`,
      );
    const result = {
      unknown: await failure(db.collection("x", { dim: 3, quantization: "pq" })),
      other: await failure(db.collection("c", { dim: 3, quantization: "binary" })),
      graph: await failure(db.collection("g", { dim: 3, index: "hnsw", quantization: "binary" })),
      auto: await failure(db.collection("g", { dim: 3, index: "auto", quantization: "binary" })),
      fetch0: await failure(col.search([1, 0, 0], { fetch: 0 })),
      fetchBig: await failure(col.search([1, 0, 0], { fetch: 10_001 })),
      fetchText: await failure(col.search([1, 0, 0], { fetch: "40" })),
      same: (await db.collection("c", { dim: 3 })).quantization,
      collections: await db.collections(),
      hits: await col.search([1, 0, 0], { fetch: 1 }),
      limit: quiver.limits.maxFetchK,
    };
    await db.close();
    return result;
  });
  assert.equal(out.unknown, 'INVALID_ARGUMENT: quantization: must be one of "none", "int8", "binary", got "pq"');
  assert.equal(out.other, 'INVALID_ARGUMENT: quantization: collection "c" exists with quantization "int8", not "binary"');
  assert.equal(out.graph, 'INVALID_ARGUMENT: quantization: index "hnsw" takes "none" or "int8", not "binary" (only flat scans binary codes)');
  assert.equal(out.auto, 'INVALID_ARGUMENT: quantization: index "auto" takes "none" or "int8", not "binary" (only flat scans binary codes)');
  assert.equal(out.fetch0, "INVALID_ARGUMENT: fetch: must be an integer from 1 to 10000, got 0");
  assert.equal(out.fetchBig, "INVALID_ARGUMENT: fetch: must be an integer from 1 to 10000, got 10001");
  assert.equal(out.fetchText, 'INVALID_ARGUMENT: fetch: must be an integer from 1 to 10000, got "40"');
  assert.equal(out.same, "int8");
  assert.deepEqual(out.collections, ["c"]);
  assert.deepEqual(
    out.hits.map((h) => [h.id, h.score]),
    [["a", 1]],
  );
  assert.equal(out.limit, 10_000);
});

test("a quantized collection large enough for a segment reopens from OPFS with the same answers", async () => {
  const run = () =>
    env.p.page.evaluate(async () => {
      const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
      const db = await quiver.open({ name: "quant-opfs", storage: "opfs", workers: 1 });
      const col = await db.collection("c", { dim, quantization: "binary" });
      // Three copies of the fixture: enough rows for a segment file.
      if ((await col.count()) === 0) {
        for (let copy = 0; copy < 3; copy++) {
          for (let i = 0; i < n; i += 1000) {
            await col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: `${copy}-${i + j}`, vector: base.subarray((i + j) * dim, (i + j + 1) * dim) })));
          }
        }
      }
      const qs = Array.from({ length: 16 }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
      const answers = await col.searchMany(qs, { k: 10 });
      const result = { quantization: col.quantization, answers, stats: await col.stats() };
      await db.close();
      return result;
    });
  const first = await run();
  const again = await run();
  assert.equal(again.quantization, "binary");
  assert.equal(first.stats.count, 6000);
  assert.ok(first.stats.codeBytes > 0);
  assert.deepEqual(again.stats, first.stats);
  assert.deepEqual(again.answers, first.answers);
});
