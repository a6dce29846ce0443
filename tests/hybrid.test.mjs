// Keyword (BM25), hybrid and MMR search end to end in headless Chromium, against the
// real build, on a corpus made in the page: clustered synthetic vectors (data.js), each
// with a text of words drawn from a small vocabulary plus an identifier of its own.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { usePage } from "./helpers.mjs";
import { fuseRanks } from "../js/partitions.js";

const env = usePage(before, after);

/** The test page, with `corpus` and `unit` defined in it. */
let helpers;
async function page() {
  helpers ??= env.p.page.evaluate(() => {
    /** `n` records of `dim` dimensions: r0, r1, ... with texts and metadata. */
    window.corpus = async (n, dim) => {
      const { clustered } = await import("/tests/pages/data.js");
      const vectors = clustered(n, dim, 7);
      const vocabulary = ["parse", "json", "render", "vector", "index", "query", "cache", "token", "stream", "buffer", "socket", "thread"];
      let s = 99;
      const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
      return Array.from({ length: n }, (_, i) => {
        const words = Array.from({ length: 3 + (next() % 6) }, () => vocabulary[next() % vocabulary.length]);
        return {
          id: `r${i}`,
          vector: vectors.subarray(i * dim, (i + 1) * dim),
          metadata: { group: i % 3 },
          text: `${words.join(" ")} handler_${i}`,
        };
      });
    };
    window.unit = (v) => {
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    };
  });
  await helpers;
  return env.p.page;
}

test("reciprocal rank fusion weighs each ranking's ranks, and ties go by id", () => {
  const a = { id: "a", metadata: null };
  const b = { id: "b", metadata: { x: 1 } };
  const c = { id: "c", metadata: null };
  const fused = fuseRanks([a, b], [b, c], { k: 3, weight: 0.5, rrfK: 60 });
  assert.deepEqual(
    fused.map((h) => h.id),
    ["b", "a", "c"],
  );
  assert.equal(fused[0].score, 0.5 / 62 + 0.5 / 61);
  assert.deepEqual(fused[0].metadata, { x: 1 });
  // a (vector rank 1) and c (keyword rank 2) tie only at weight 1/2 and equal ranks.
  assert.deepEqual(
    fuseRanks([a], [c], { k: 2, weight: 0.5, rrfK: 60 }).map((h) => h.id),
    ["a", "c"],
  );
  assert.deepEqual(
    fuseRanks([a], [c], { k: 2, weight: 0, rrfK: 60 }).map((h) => [h.id, h.score]),
    [
      ["c", 1 / 61],
      ["a", 0],
    ],
  );
  assert.equal(fuseRanks([a, b], [c], { k: 1, weight: 1, rrfK: 1 }).length, 1);
});

test("searchText finds a record by an exact identifier; hybrid ranks first what both rankings rank high", async () => {
  const out = await (
    await page()
  ).evaluate(async () => {
    const db = await quiver.open({ name: "hybrid-one", workers: 1 });
    const col = await db.collection("c", { dim: 16 });
    await col.upsert(await window.corpus(300, 16));
    const q = window.unit(Array.from({ length: 16 }, (_, d) => (d % 2 ? 1 : -1) * (d + 1)));
    const near = window.unit(q.map((x, d) => x + (d === 3 ? 0.08 : 0)));
    await col.upsert([
      { id: "best-vector", vector: q, text: "nothing to see", metadata: { group: 0 } },
      { id: "both", vector: near, text: "the zebra in the quiver, and more words besides", metadata: { group: 1 } },
      { id: "best-text", vector: q.map((x) => -x), text: "zebra quiver zebra quiver", metadata: { group: 2 } },
    ]);
    const ids = (hits) => hits.map((h) => h.id);
    const out = {
      identifier: await col.searchText("handler_123", { k: 3 }),
      filtered: ids(await col.searchText("parse json", { k: 5, filter: { group: 1 } })),
      filteredGroups: (await col.searchText("parse json", { k: 50, filter: { group: 1 } })).map((h) => h.metadata.group),
      byVector: ids(await col.search(q, { k: 2 })),
      byText: ids(await col.searchText("zebra quiver", { k: 2 })),
      hybrid: await col.search(q, { k: 3, text: "zebra quiver" }),
      textOnly: ids(await col.search(q, { k: 2, text: "zebra quiver", hybrid: { weight: 0 } })),
      vectorOnly: ids(await col.search(q, { k: 2, text: "zebra quiver", hybrid: { weight: 1 } })),
      hybridFiltered: ids(await col.search(q, { k: 3, text: "zebra quiver", filter: { group: { $ne: 1 } } })),
    };
    await db.close();
    return out;
  });
  assert.deepEqual(
    out.identifier.map((h) => h.id),
    ["r123"],
    "only r123 holds its identifier",
  );
  assert.ok(out.identifier[0].score > 0, "BM25 is reported positive");
  assert.deepEqual(out.identifier[0].metadata, { group: 0 });
  assert.equal(out.filtered.length, 5);
  assert.ok(out.filteredGroups.length > 5 && out.filteredGroups.every((g) => g === 1));
  assert.deepEqual(out.byVector, ["best-vector", "both"]);
  assert.deepEqual(out.byText, ["best-text", "both"]);
  assert.equal(out.hybrid[0].id, "both", JSON.stringify(out.hybrid));
  assert.equal(out.hybrid[0].score, 0.5 / 62 + 0.5 / 62, "the fused score of rank 2 in both");
  assert.deepEqual(out.textOnly, out.byText);
  assert.deepEqual(out.vectorOnly, out.byVector);
  assert.ok(!out.hybridFiltered.includes("both"), "the filter applies to both rankings");
});

test("a collection spread over two workers finds the same matches and MMR picks as a one-worker one", async () => {
  const out = await (
    await page()
  ).evaluate(async () => {
    const records = await window.corpus(600, 16);
    const one = await quiver.open({ name: "spread-one", workers: 1 });
    const two = await quiver.open({ name: "spread-two", workers: 2, partitionThreshold: 100 });
    const cols = [await one.collection("c", { dim: 16 }), await two.collection("c", { dim: 16 })];
    for (const col of cols) for (let i = 0; i < records.length; i += 100) await col.upsert(records.slice(i, i + 100));
    const parts = await Promise.all([0, 1].map((w) => two._pool.call(w, "count", { collection: "c" })));
    const ids = (hits) => hits.map((h) => h.id);
    const texts = ["parse json", "vector index cache", "handler_17", "stream buffer token socket", "thread"];
    const answers = [];
    for (const col of cols) {
      const a = { text: [], all: [], mmr: [] };
      for (const [i, t] of texts.entries()) {
        const q = records[i * 50].vector;
        a.text.push(ids(await col.searchText(t, { k: 10 })));
        const all = await col.searchText(t, { k: 1000 });
        a.all.push(ids(all).sort());
        a.mmr.push(ids(await col.search(q, { k: 10, mmr: { lambda: 0.5 } })));
      }
      answers.push(a);
    }
    await one.close();
    await two.close();
    return { parts, answers };
  });
  assert.ok(
    out.parts.every((n) => n > 200),
    `spread: ${out.parts}`,
  );
  const [one, two] = out.answers;
  // Every match is found whatever the layout, and a word only one text holds finds it.
  assert.deepEqual(two.all, one.all);
  assert.deepEqual(two.text[2], ["r17"]);
  assert.deepEqual(one.text[2], ["r17"]);
  // Not asserted: the order of the other keyword answers, nor so of hybrid ones. Each worker
  // weighs terms by its own texts' statistics (IDF, average length), so scores differ
  // from a one-worker collection's, and this corpus of twelve words is all near-ties.
  // MMR sees every worker's candidates: exactly the same picks.
  assert.deepEqual(two.mmr, one.mmr);
});

test("MMR returns k results with fewer near-duplicates than plain search, with their exact scores", async () => {
  const out = await (
    await page()
  ).evaluate(async () => {
    const dim = 16;
    const records = await window.corpus(300, dim);
    // Five copies, barely apart, of each of the four records nearest the query.
    const q = records[0].vector;
    const db = await quiver.open({ name: "mmr", workers: 2, partitionThreshold: 200 });
    const col = await db.collection("c", { dim });
    await col.upsert(records);
    const nearest = await col.search(q, { k: 4 });
    const stored = await col.get(nearest.map((h) => h.id));
    let s = 5;
    const jitter = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.002;
    const copies = stored.flatMap((r) => Array.from({ length: 5 }, (_, j) => ({ id: `${r.id}-copy${j}`, vector: Array.from(r.vector, (x) => x + jitter()) })));
    await col.upsert(copies);
    const cosine = (a, b) => {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += a[d] * b[d];
      return dot / Math.hypot(...a) / Math.hypot(...b);
    };
    const vectors = new Map([...records, ...copies].map((r) => [r.id, r.vector]));
    const duplicatePairs = (hits) => {
      let pairs = 0;
      for (let i = 0; i < hits.length; i++) for (let j = i + 1; j < hits.length; j++) pairs += cosine(vectors.get(hits[i].id), vectors.get(hits[j].id)) > 0.999;
      return pairs;
    };
    const plain = await col.search(q, { k: 10 });
    const diverse = await col.search(q, { k: 10, mmr: { fetchK: 60 } });
    const moreDiverse = await col.search(q, { k: 10, mmr: { lambda: 0.3, fetchK: 60 } });
    const exact = new Map((await col.search(q, { k: 60 })).map((h) => [h.id, h.score]));
    const greedyOne = await col.search(q, { k: 10, mmr: { lambda: 1 } });
    const out = {
      plain: duplicatePairs(plain),
      diverse: duplicatePairs(diverse),
      moreDiverse: duplicatePairs(moreDiverse),
      n: diverse.length,
      scoresExact: diverse.every((h) => exact.get(h.id) === h.score),
      lambdaOne: JSON.stringify(greedyOne) === JSON.stringify(plain),
      defaults: (await col.search(q, { k: 3, mmr: {} })).length,
      small: (await col.search(q, { k: 10, mmr: { fetchK: 10000 }, filter: { group: 2 } })).every((h) => h.metadata?.group === 2),
    };
    await db.close();
    return out;
  });
  assert.equal(out.n, 10);
  assert.ok(out.plain >= 20, `plain search returns the copies: ${out.plain} near-duplicate pairs`);
  // Under cosine, a copy's relevance is about its likeness to the original picked
  // before it, so at lambda 1/2 the two nearly cancel; below, copies wait.
  assert.ok(out.diverse < out.plain, `MMR: ${out.diverse} near-duplicate pairs, plain: ${out.plain}`);
  assert.equal(out.moreDiverse, 0);
  assert.ok(out.scoresExact, "MMR keeps each hit's score against the query");
  assert.ok(out.lambdaOne, "lambda 1 is plain search");
  assert.equal(out.defaults, 3);
  assert.ok(out.small, "the filter applies to the candidates");
});

test("bad text, hybrid and mmr options are INVALID_ARGUMENT naming the field, before and in the core, changing nothing", async () => {
  const out = await (
    await page()
  ).evaluate(async () => {
    const db = await quiver.open({ name: "bad-hybrid", workers: 2, partitionThreshold: 10 });
    const col = await db.collection("c", { dim: 16 });
    await col.upsert(await window.corpus(40, 16));
    const before = JSON.stringify(await col.search(new Array(16).fill(1), { k: 40 }));
    const q = new Array(16).fill(1);
    const calls = {
      "text: not a string": () => col.searchText(5),
      "text: empty": () => col.searchText(""),
      "text: blank": () => col.searchText(" \n"),
      "k of searchText": () => col.searchText("json", { k: 0 }),
      "filter of searchText": () => col.searchText("json", { filter: [1] }),
      "search text: not a string": () => col.search(q, { text: 5 }),
      "search text: empty": () => col.search(q, { text: "" }),
      "hybrid without text": () => col.search(q, { hybrid: {} }),
      "hybrid.weight above 1": () => col.search(q, { text: "json", hybrid: { weight: 1.5 } }),
      "hybrid.weight below 0": () => col.search(q, { text: "json", hybrid: { weight: -0.1 } }),
      "hybrid.weight NaN": () => col.search(q, { text: "json", hybrid: { weight: NaN } }),
      "hybrid.k": () => col.search(q, { text: "json", hybrid: { k: 0 } }),
      "hybrid.fetchK": () => col.search(q, { k: 10, text: "json", hybrid: { fetchK: 5 } }),
      "hybrid not an object": () => col.search(q, { text: "json", hybrid: 1 }),
      "mmr.lambda": () => col.search(q, { mmr: { lambda: 1.01 } }),
      "mmr.lambda string": () => col.search(q, { mmr: { lambda: "0.5" } }),
      "mmr.fetchK below k": () => col.search(q, { k: 10, mmr: { fetchK: 9 } }),
      "mmr.fetchK above the limit": () => col.search(q, { mmr: { fetchK: quiver.limits.maxFetchK + 1 } }),
      "mmr with text": () => col.search(q, { text: "json", mmr: {} }),
      "searchMany with text": () => col.searchMany([q], { text: "json" }),
      "db.search with mmr": () => db.search(["c"], q, { mmr: {} }),
      // The core checks again what it receives.
      "core text": () => db._pool.call(0, "searchText", { collection: "c", text: "  ", options: '{"k":1}' }),
      "core lambda": () => db._pool.call(0, "mmr", { metric: "cosine", vectors: new Float32Array(2), scores: new Float32Array(1), k: 1, lambda: 2 }),
    };
    const got = {};
    for (const [name, call] of Object.entries(calls)) {
      got[name] = await call().then(
        (v) => `resolved ${JSON.stringify(v)}`,
        (e) => `${e.code} ${e.message}`,
      );
    }
    const after = JSON.stringify(await col.search(q, { k: 40 }));
    await db.close();
    return { got, unchanged: before === after, maxFetchK: quiver.limits.maxFetchK };
  });
  const field = {
    "text: not a string": "text:",
    "text: empty": "text:",
    "text: blank": "text:",
    "k of searchText": "k:",
    "filter of searchText": "filter:",
    "search text: not a string": "text:",
    "search text: empty": "text:",
    "hybrid without text": "text:",
    "hybrid.weight above 1": "hybrid.weight:",
    "hybrid.weight below 0": "hybrid.weight:",
    "hybrid.weight NaN": "hybrid.weight:",
    "hybrid.k": "hybrid.k:",
    "hybrid.fetchK": "hybrid.fetchK:",
    "hybrid not an object": "hybrid:",
    "mmr.lambda": "mmr.lambda:",
    "mmr.lambda string": "mmr.lambda:",
    "mmr.fetchK below k": "mmr.fetchK:",
    "mmr.fetchK above the limit": "mmr.fetchK:",
    "mmr with text": "mmr:",
    "searchMany with text": "text:",
    "db.search with mmr": "mmr:",
    "core text": "text:",
    "core lambda": "mmr.lambda:",
  };
  for (const [name, prefix] of Object.entries(field)) {
    assert.ok(out.got[name].startsWith(`INVALID_ARGUMENT ${prefix}`), `${name}: ${out.got[name]}`);
  }
  assert.ok(out.unchanged);
  assert.equal(out.maxFetchK, 10_000);
});

test("keyword search survives a reopen in OPFS", async () => {
  const out = await (
    await page()
  ).evaluate(async () => {
    const open = () => quiver.open({ name: "hybrid-opfs", storage: "opfs", workers: 2, partitionThreshold: 50 });
    let db = await open();
    const col = await db.collection("c", { dim: 16 });
    await col.upsert(await window.corpus(120, 16));
    await col.delete("r7");
    await db.close();
    db = await open();
    const again = await db.collection("c");
    const out = {
      found: (await again.searchText("handler_42 handler_7", { k: 5 })).map((h) => h.id),
      check: await db.integrityCheck(),
    };
    await db.dropCollection("c");
    await db.close();
    return out;
  });
  assert.deepEqual(out.found, ["r42"]);
  assert.equal(out.check, "ok");
});
