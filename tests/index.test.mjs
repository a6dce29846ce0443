// The index kinds through the public API, in headless Chromium: a graph ("hnsw") finds
// what the exact scan ("flat") finds, on real embeddings (the committed MiniLM fixture)
// and spread over workers; it takes updates, deletes and filters; it survives a reopen
// in OPFS; and its options are checked.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { usePage } from "./helpers.mjs";

const env = usePage(before, after);

test("hnsw finds what flat finds on real embeddings, one graph a worker, more so with a larger ef", async () => {
  const out = await env.p.page.evaluate(async () => {
    const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
    const db = await quiver.open({ name: "hnsw-recall", workers: 2, partitionThreshold: 500 });
    const flat = await db.collection("flat", { dim, metric: "cosine" });
    const hnsw = await db.collection("hnsw", { dim, metric: "cosine", index: "hnsw" });
    for (let i = 0; i < n; i += 500) {
      const rows = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
        id: String(i + j),
        vector: base.subarray((i + j) * dim, (i + j + 1) * dim),
        metadata: { even: (i + j) % 2 === 0, bucket: (i + j) % 100 },
      }));
      await flat.upsert(rows);
      await hnsw.upsert(rows);
    }
    const qs = Array.from({ length: queries.length / dim }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
    const recall = async (options) => {
      let found = 0;
      for (const q of qs) {
        const truth = new Set((await flat.search(q, { k: 10, filter: options.filter })).map((h) => h.id));
        const got = await hnsw.search(q, { k: 10, ...options });
        found += got.filter((h) => truth.has(h.id)).length;
        if (got.length !== truth.size) return `${got.length} hits for ${truth.size}`;
      }
      return found / (qs.length * 10);
    };
    // Scores are exact whatever the index: the same row scores the same.
    const [exact] = await flat.search(qs[0], { k: 1 });
    const [approx] = await hnsw.search(qs[0], { k: 1 });
    const result = {
      index: [flat.index, hnsw.index],
      spread: (await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "hnsw" })))).every((c) => c > 0),
      ef10: await recall({ ef: 10 }),
      ef64: await recall({}),
      ef400: await recall({ ef: 400 }),
      filtered: await recall({ filter: { bucket: 7 } }),
      half: await recall({ filter: { even: true } }),
      sameTop: exact.id === approx.id && exact.score === approx.score,
      many:
        JSON.stringify(await hnsw.searchMany(qs.slice(0, 8), { k: 5 })) ===
        JSON.stringify(await Promise.all(qs.slice(0, 8).map((q) => hnsw.search(q, { k: 5 })))),
    };
    await db.close();
    return result;
  });
  assert.deepEqual(out.index, ["flat", "hnsw"]);
  assert.ok(out.spread, "the collection is spread over both workers");
  assert.ok(out.ef64 >= 0.95, `recall@10 at the default ef: ${out.ef64}`);
  assert.ok(out.ef400 >= out.ef64 && out.ef64 >= out.ef10, `recall by ef 10/64/400: ${out.ef10} ${out.ef64} ${out.ef400}`);
  assert.ok(out.ef400 >= 0.99, `recall@10 at ef 400: ${out.ef400}`);
  assert.ok(out.filtered >= 0.95, `recall@10 under a 1% filter: ${out.filtered}`);
  assert.ok(out.half >= 0.95, `recall@10 under a 50% filter: ${out.half}`);
  assert.ok(out.sameTop, "the best hit and its score are the exact scan's");
  assert.ok(out.many, "searchMany answers as search does");
});

test("an hnsw collection takes updates and deletes, and reopens from OPFS with the same answers", async () => {
  const out = await env.p.page.evaluate(async () => {
    const { clustered } = await import("/tests/pages/data.js");
    const dim = 32;
    const vectors = clustered(6000, dim, 11);
    const open = () => quiver.open({ name: "hnsw-opfs", storage: "opfs", workers: 1 });
    let db = await open();
    let col = await db.collection("c", { dim, metric: "euclidean", index: "hnsw" });
    for (let i = 0; i < 6000; i += 1000) {
      await col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: `r${i + j}`, vector: vectors.subarray((i + j) * dim, (i + j + 1) * dim) })));
    }
    // r5 moves onto r4000's vector; r4000 and r1..r3 go.
    await col.upsert({ id: "r5", vector: vectors.subarray(4000 * dim, 4001 * dim) });
    await col.delete(["r4000", "r1", "r2", "r3"]);
    const probe = vectors.subarray(4000 * dim, 4001 * dim);
    const moved = (await col.search(probe, { k: 1 }))[0];
    const gone = [];
    for (const i of [1, 2, 3]) gone.push((await col.search(vectors.subarray(i * dim, (i + 1) * dim), { k: 5 })).some((h) => ["r1", "r2", "r3"].includes(h.id)));
    const qs = Array.from({ length: 20 }, (_, q) => vectors.subarray((q * 97 + 13) * dim, (q * 97 + 14) * dim));
    const before = await col.searchMany(qs, { k: 10 });
    const count = await col.count();
    await db.close();
    db = await open();
    col = await db.collection("c");
    const after = await col.searchMany(qs, { k: 10 });
    const reopened = { index: col.index, count: await col.count(), same: JSON.stringify(after) === JSON.stringify(before) };
    await db.close();
    return { moved, gone, count, reopened };
  });
  assert.equal(out.moved.id, "r5");
  assert.equal(out.moved.score, 0);
  assert.deepEqual(out.gone, [false, false, false]);
  assert.equal(out.count, 5996);
  assert.deepEqual(out.reopened, { index: "hnsw", count: 5996, same: true });
});

test("index and ef are checked and named, and change nothing", async () => {
  const out = await env.p.page.evaluate(async () => {
    const db = await quiver.open({ name: "hnsw-args", workers: 1 });
    const code = (p) =>
      p.then(
        () => "ok",
        (e) => `${e.code}: ${e.message}`,
      );
    const col = await db.collection("c", { dim: 2, index: "hnsw" });
    await col.upsert({ id: "a", vector: [1, 0] });
    const result = {
      badIndex: await code(db.collection("d", { dim: 2, index: "ivf" })),
      created: await db.collections(),
      otherIndex: await code(db.collection("c", { dim: 2, index: "flat" })),
      sameIndex: await code(db.collection("c", { dim: 2 })),
      auto: (await db.collection("e", { dim: 2, index: "auto" })).index,
      efZero: await code(col.search([1, 0], { ef: 0 })),
      efBig: await code(col.search([1, 0], { ef: 100001 })),
      efFraction: await code(col.search([1, 0], { ef: 2.5 })),
      efOk: (await col.search([1, 0], { ef: 1 }))[0].id,
    };
    await db.close();
    return result;
  });
  assert.match(out.badIndex, /^INVALID_ARGUMENT: index: must be one of "flat", "hnsw", "auto", got "ivf"/);
  assert.deepEqual(out.created, ["c"]);
  assert.match(out.otherIndex, /^INVALID_ARGUMENT: index: collection "c" exists with index "hnsw", not "flat"/);
  assert.equal(out.sameIndex, "ok");
  assert.equal(out.auto, "auto");
  assert.match(out.efZero, /^INVALID_ARGUMENT: ef: must be an integer from 1 to 100000, got 0/);
  assert.match(out.efBig, /^INVALID_ARGUMENT: ef: .* got 100001/);
  assert.match(out.efFraction, /^INVALID_ARGUMENT: ef: .* got 2.5/);
  assert.equal(out.efOk, "a");
});

test("a graph on one worker of two is built with the other's help, at the same recall", async () => {
  const out = await env.p.page.evaluate(async () => {
    const { dim, base, queries, n } = await (await import("/tests/pages/data.js")).minilm();
    const db = await quiver.open({ name: "hnsw-helped", workers: 2 });
    const flat = await db.collection("flat", { dim, metric: "cosine" });
    const hnsw = await db.collection("hnsw", { dim, metric: "cosine", index: "hnsw" });
    for (let i = 0; i < n; i += 500) {
      const rows = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ id: String(i + j), vector: base.subarray((i + j) * dim, (i + j + 1) * dim) }));
      await flat.upsert(rows);
      await hnsw.upsert(rows);
    }
    const counts = await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "hnsw" }).catch(() => 0)));
    const owner = counts.findIndex((c) => c === n);
    const helping = await Promise.all([0, 1].map((w) => db._pool.call(w, "helping")));
    // A batch too small to share, and an update: the owner inserts them alone.
    await hnsw.upsert([{ id: "0", vector: base.subarray(dim, 2 * dim) }]);
    let found = 0;
    const qs = Array.from({ length: queries.length / dim }, (_, q) => queries.subarray(q * dim, (q + 1) * dim));
    for (const q of qs) {
      const truth = new Set((await flat.search(q, { k: 10 })).map((h) => h.id));
      found += (await hnsw.search(q, { k: 10 })).filter((h) => truth.has(h.id)).length;
    }
    const count = await hnsw.count();
    await db.close();
    return { owner, helping, recall: found / (qs.length * 10), count };
  });
  assert.ok(out.owner >= 0, "one worker holds the whole graph");
  assert.equal(out.helping[out.owner], 0);
  assert.equal(out.helping[1 - out.owner], 2000, "the other worker keeps a copy of every row it helped link");
  assert.ok(out.recall >= 0.95, `recall@10 at the default ef: ${out.recall}`);
  assert.equal(out.count, 2000);
});

test("a graph's owner whose helper dies mid-batch finishes the batch alone, without waiting it out", async () => {
  const out = await env.p.page.evaluate(async () => {
    const dim = 384;
    const n = 9000;
    const base = (await import("/tests/pages/data.js")).clustered(n, dim, 7);
    const db = await quiver.open({ name: "hnsw-helper-dies", workers: 2 });
    const hnsw = await db.collection("hnsw", { dim, metric: "cosine", index: "hnsw" });
    const rows = (from, to) =>
      Array.from({ length: to - from }, (_, j) => ({ id: String(from + j), vector: base.subarray((from + j) * dim, (from + j + 1) * dim) }));
    let t0 = performance.now();
    await hnsw.upsert(rows(0, 3000));
    const first = (performance.now() - t0) / 1000;
    const counts = await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "hnsw" }).catch(() => 0)));
    const helper = counts.findIndex((c) => c === 0);
    const copy = await db._pool.call(helper, "helping");
    t0 = performance.now();
    const written = hnsw.upsert(rows(3000, n));
    // Mid-batch: the helper has its copy and is walking.
    await new Promise((r) => setTimeout(r, (first * 1000) / 3));
    db._pool.workers[helper].terminate();
    await written;
    const seconds = (performance.now() - t0) / 1000;
    const [top] = await hnsw.search(base.subarray(4500 * dim, 4501 * dim), { k: 1 });
    const count = await hnsw.count();
    await db.close();
    return { copy, first, seconds, count, top: top.id };
  });
  assert.equal(out.copy, 3000, "the helper kept a copy of the first batch");
  assert.equal(out.count, 9000);
  assert.equal(out.top, "4500");
  // Left waiting on a helper that never answers, the owner would give up after 30 s.
  assert.ok(out.seconds < 10, `the batch took ${out.seconds} s (the first ${out.first} s)`);
});
