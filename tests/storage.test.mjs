// One suite, every storage (workers/storage/: memory, OPFS, IndexedDB), as wa-sqlite
// runs one suite over its VFSes: the same writes, checks and reopen, through the
// public API in headless Chromium. A durable storage gives back exactly what was
// acknowledged; memory gives back nothing after close.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { usePage } from "./helpers.mjs";

const env = usePage(before, after);

/** In the page: what a database holds, as comparable values (vectors as arrays). */
function contents() {
  return (async () => {
    const out = {};
    for (const name of await window.db.collections()) {
      const col = await window.db.collection(name);
      const ids = (await col.ids()).sort();
      const records = await col.get(ids);
      out[name] = { dim: col.dim, metric: col.metric, records: records.map((r) => ({ ...r, vector: Array.from(r.vector) })) };
    }
    return out;
  })();
}

for (const storage of ["memory", "opfs", "idb"]) {
  test(`${storage}: writes, a refused batch, deletes and updates, then close and reopen`, async () => {
    const page = env.p.page;
    const written = await page.evaluate(async (storage) => {
      const { clustered } = await import("/tests/pages/data.js");
      const open = () => quiver.open({ name: `suite-${storage}`, storage, workers: 2, partitionThreshold: 300 });
      const db = (window.db = await open());
      const big = await db.collection("big", { dim: 16, metric: "cosine" });
      const vectors = clustered(1000, 16, 3);
      const rows = (from, to) =>
        Array.from({ length: to - from }, (_, i) => ({
          id: `b${from + i}`,
          vector: vectors.subarray((from + i) * 16, (from + i + 1) * 16),
          metadata: { i: from + i, even: (from + i) % 2 === 0 },
          text: `row ${from + i}`,
        }));
      for (let i = 0; i < 1000; i += 250) await big.upsert(rows(i, i + 250));
      const small = await db.collection("small", { dim: 3, metric: "euclidean" });
      await small.upsert([
        { id: "s1", vector: [1, 2, 3] },
        { id: "s2", vector: [3, 2, 1], metadata: { tag: "x" } },
      ]);
      // A batch over both workers with one bad record: nothing of it anywhere.
      const bad = rows(0, 100).map((r) => ({ ...r, id: r.id.replace("b", "z") }));
      bad[57] = { id: "zbad", vector: [1, 2] };
      const refused = await big.upsert(bad).then(
        () => "written",
        (e) => e.code,
      );
      const deleted = await big.delete(["b1", "b2", "b3", "nope"]);
      await big.upsert({ id: "b10", vector: vectors.subarray(0, 16), metadata: { i: -1 }, text: "moved" });
      const q = vectors.subarray(16 * 500, 16 * 501);
      const hits = await big.search(q, { k: 5, filter: { even: true } });
      const parts = await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "big" })));
      return { site: db.site, storage: db.storage, refused, deleted, hits, parts, count: await big.count(), integrity: await db.integrityCheck() };
    }, storage);
    assert.equal(written.storage, storage);
    assert.equal(written.refused, "DIMENSION_MISMATCH");
    assert.equal(written.deleted, 3);
    assert.equal(written.count, 997);
    assert.ok(
      written.parts.every((n) => n > 300),
      `spread over both workers: ${written.parts}`,
    );
    assert.equal(written.hits.length, 5);
    assert.ok(written.hits.every((h) => h.metadata.even));
    assert.equal(written.integrity, "ok");

    const before = await page.evaluate(contents);
    assert.deepEqual(Object.keys(before).sort(), ["big", "small"]);
    assert.equal(before.big.records.length, 997);
    assert.deepEqual(before.big.records.find((r) => r.id === "b10").metadata, { i: -1 });

    const reopened = await page.evaluate(async (storage) => {
      await window.db.close();
      window.db = await quiver.open({ name: `suite-${storage}`, storage, workers: 2, partitionThreshold: 300 });
      return { site: window.db.site, integrity: await window.db.integrityCheck() };
    }, storage);
    const after = await page.evaluate(contents);
    await page.evaluate(() => window.db.close());
    assert.equal(reopened.integrity, "ok");
    if (storage === "memory") {
      assert.deepEqual(after, {}, "memory keeps nothing past close");
      assert.notEqual(reopened.site, written.site);
    } else {
      assert.deepEqual(after, before);
      assert.equal(reopened.site, written.site);
    }
  });
}
