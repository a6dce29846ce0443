// The worker pool in headless Chromium: a collection spread over several workers
// answers exactly as one worker does, survives a killed worker, works without
// cross-origin isolation, pipelines many queries, and honours abort and timeout.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage } from "./helpers.mjs";

let browser, isolated, plain;

before(async () => {
  browser = await launch();
  isolated = await openPage(browser, "/tests/pages/plain.html");
  plain = await openPage(browser, "/tests/pages/plain.html", { isolate: false });
  for (const p of [isolated, plain]) await p.page.waitForFunction(() => window.ready);
});

after(async () => {
  for (const p of [isolated, plain]) await p.stop();
  await browser.close();
});

/**
 * In the page: loads a dataset into a 1-worker and a 3-worker database and returns
 * both answers to the same searches, with the pool's layout. `data` is "random" or
 * "minilm" (real embeddings, tests/fixtures/minilm-2k).
 */
function compareInPage({ data, metric, queries: nq }) {
  return (async () => {
    let dim, base, qs;
    if (data === "minilm") {
      ({ dim, base, queries: qs } = await (await import("/tests/pages/data.js")).minilm());
    } else {
      let s = 7;
      const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
      dim = 24;
      // Rounded to a coarse grid, and every vector twice under two ids: many exact ties.
      base = Float32Array.from({ length: 3000 * dim }, () => Math.round(rand() * 4) / 4);
      base.set(base.subarray(0, 1500 * dim), 1500 * dim);
      qs = Float32Array.from({ length: nq * dim }, () => Math.round(rand() * 4) / 4);
    }
    const n = base.length / dim;
    const query = (i) => qs.subarray(i * dim, (i + 1) * dim);
    const out = {};
    for (const workers of [1, 3]) {
      // Both sets (3,000 and 2,000 rows) are below the default threshold: lower it so they spread.
      const partitionThreshold = 500;
      const db = await quiver.open({ name: `cmp-${data}-${metric}-${workers}`, workers, partitionThreshold });
      const col = await db.collection("c", { dim, metric });
      for (let i = 0; i < n; i += 1000) {
        const batch = [];
        for (let j = i; j < Math.min(n, i + 1000); j++) {
          batch.push({ id: `row-${j}`, vector: base.subarray(j * dim, (j + 1) * dim), metadata: { g: j % 4 } });
        }
        await col.upsert(batch);
      }
      const single = [],
        many = [];
      for (let i = 0; i < nq; i++) single.push(await col.search(query(i), { k: 10 }));
      for (let i = 0; i < nq; i++) single.push(await col.search(query(i), { k: 25, filter: { g: { $in: [1, 2] } } }));
      const all = Array.from({ length: nq }, (_, i) => query(i));
      many.push(...(await col.searchMany(all, { k: 10 })));
      many.push(...(await col.searchMany(all, { k: 25, filter: { g: { $in: [1, 2] } } })));
      // Twice the queries: with 384 dimensions more than a ring slot holds, so the batch
      // goes to each worker by message (on idle workers, the page wakes them all then).
      const twice = await col.searchMany([...all, ...all], { k: 10 });
      const parts = await Promise.all(Array.from({ length: workers }, (_, w) => db._pool.call(w, "count", { collection: "c" })));
      out[workers] = { single, many, twice, parts, count: await col.count(), isolated: crossOriginIsolated };
      await db.close();
    }
    return out;
  })();
}

for (const [data, metric] of [
  ["random", "dot"],
  ["random", "euclidean"],
  ["minilm", "cosine"],
]) {
  test(`3 workers answer exactly as 1 does (${data} data, ${metric}), by search and searchMany`, async () => {
    const out = await isolated.page.evaluate(compareInPage, { data, metric, queries: 40 });
    const { 1: one, 3: pool } = out;
    assert.equal(pool.isolated, true);
    assert.equal(pool.count, one.count);
    // Partitioned: every worker holds a fair share.
    assert.equal(
      pool.parts.reduce((a, b) => a + b),
      one.count,
    );
    for (const p of pool.parts) assert.ok(p > one.count / 6, `unbalanced partitions: ${pool.parts}`);
    assert.ok(one.single[0].length === 10 && one.single[40].length === 25);
    assert.deepEqual(pool.single, one.single);
    assert.deepEqual(pool.many, one.single);
    assert.deepEqual(one.many, one.single);
    const byTen = one.single.slice(0, 40);
    assert.deepEqual(pool.twice, [...byTen, ...byTen]);
  });
}

test("without COOP/COEP the pool falls back to messages and gives the same answers", async () => {
  const args = { data: "random", metric: "dot", queries: 20 };
  const logs = [];
  plain.page.on("console", (m) => logs.push(m.text()));
  const withRing = await isolated.page.evaluate(compareInPage, args);
  const without = await plain.page.evaluate(compareInPage, args);
  assert.equal(without[3].isolated, false);
  assert.deepEqual(without[3].single, withRing[3].single);
  assert.deepEqual(without[3].many, withRing[3].many);
  assert.equal(logs.filter((l) => l.includes("not cross-origin isolated")).length, 1);
});

test("a killed worker fails its queries with WORKER_LOST, restarts, and answers right on retry, whenever it dies", async () => {
  const out = await isolated.page.evaluate(async () => {
    const { dim, base, queries: qs, n } = await (await import("/tests/pages/data.js")).minilm();
    const db = await quiver.open({ name: "kill", workers: 2, partitionThreshold: 500 });
    const col = await db.collection("c", { dim, metric: "cosine" });
    for (let i = 0; i < n; i += 1000) {
      await col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: String(i + j), vector: base.subarray((i + j) * dim, (i + j + 1) * dim) })));
    }
    const queries = Array.from({ length: 200 }, (_, i) => qs.subarray((i % 64) * dim, ((i % 64) + 1) * dim));
    const before = await col.searchMany(queries.slice(0, 20), { k: 10 });
    // Many searches in flight, then worker 1 dies under them.
    const inFlight = queries.map((q) =>
      col.search(q, { k: 10 }).then(
        () => "ok",
        (e) => e.code,
      ),
    );
    const big = col.searchMany(queries, { k: 10 }).then(
      () => "ok",
      (e) => e.code,
    );
    db._pool.workers[1].terminate();
    const codes = [...(await Promise.all(inFlight)), await big];
    const retry = [];
    for (const q of queries.slice(0, 20)) retry.push(await col.search(q, { k: 10 }));
    // A lone search on idle workers: the page wakes only the first owner, which wakes
    // the other. That one dying before the search is sent, while it is, or while it is
    // scanned must leave nothing waiting (a hang times the test out). A call that finds
    // it dead fails with WORKER_LOST and is retried; each retry also lets the pool
    // restart the worker before the next kill.
    const { retryLost: retried } = await import("/tests/pages/retry.js");
    const first = db._placements.owners(await db._placement("c"))[0];
    const moments = [() => null, () => Promise.resolve(), () => new Promise((r) => setTimeout(r, 0)), () => new Promise((r) => setTimeout(r, 1))];
    for (const moment of moments) {
      const lone = col.search(queries[0], { k: 10 }).then(
        () => "ok",
        (e) => e.code,
      );
      await moment();
      db._pool.workers[first].terminate();
      codes.push(await lone);
      await retried(() => col.search(queries[1], { k: 10 }));
    }
    const again = [];
    for (const q of queries.slice(0, 20)) again.push(await retried(() => col.search(q, { k: 10 })));
    const count = await retried(() => col.count());
    await db.close();
    return { codes, same: [retry, again].map((r) => JSON.stringify(r) === JSON.stringify(before)), count };
  });
  assert.ok(out.codes.includes("WORKER_LOST"), `no query saw WORKER_LOST: ${out.codes}`);
  assert.deepEqual(
    [...new Set(out.codes)].filter((c) => c !== "ok" && c !== "WORKER_LOST"),
    [],
  );
  assert.deepEqual(out.same, [true, true]);
  assert.equal(out.count, 2000);
});

test("1,000 concurrent queries are all answered, each as a lone search answers it", async () => {
  const out = await isolated.page.evaluate(async () => {
    let s = 3;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const dim = 32;
    const db = await quiver.open({ name: "many", workers: 2, partitionThreshold: 1000 });
    const col = await db.collection("c", { dim, metric: "cosine" });
    await col.upsert(Array.from({ length: 5000 }, (_, i) => ({ id: `v${i}`, vector: Float32Array.from({ length: dim }, rand) })));
    const queries = Array.from({ length: 1000 }, () => Float32Array.from({ length: dim }, rand));
    const together = await Promise.all(queries.map((q) => col.search(q, { k: 5 })));
    const expected = await col.searchMany(queries, { k: 5 });
    await db.close();
    return { n: together.length, same: JSON.stringify(together) === JSON.stringify(expected), empty: together.filter((r) => r.length !== 5).length };
  });
  assert.deepEqual(out, { n: 1000, same: true, empty: 0 });
});

test("searches waiting in a worker's ring together are answered as each alone is; a bad one fails alone", async () => {
  const out = await isolated.page.evaluate(async () => {
    let s = 5;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const dim = 32;
    const db = await quiver.open({ name: "batched", workers: 1 });
    const col = await db.collection("c", { dim, metric: "cosine" });
    await col.upsert(Array.from({ length: 3000 }, (_, i) => ({ id: `v${i}`, vector: Float32Array.from({ length: dim }, rand), metadata: { g: i % 3 } })));
    const queries = Array.from({ length: 24 }, () => Float32Array.from({ length: dim }, rand));
    const kinds = [{ k: 5 }, { k: 7, filter: { g: 1 } }];
    // Among the first kind's queries, where they share a batch: one with a NaN, and
    // two of half the length, which back to back pass for one query (asks 12 to 14).
    const half = queries[0].subarray(0, dim / 2);
    const bad = [queries[0].map((x, i) => (i === 3 ? NaN : x)), half, half];
    const asks = [...queries.slice(0, 12), ...bad, ...queries.slice(12)].map((q) => [q, kinds[0]]).concat(queries.map((q) => [q, kinds[1]]));
    const settle = (p) =>
      p.then(
        (hits) => ({ hits }),
        (e) => ({ code: e.code, message: e.message }),
      );
    const batched = () => db._pool.call(0, "batched");
    const alone = [];
    for (const [q, o] of asks) alone.push(await settle(col.search(q, o)));
    const before = await batched();
    // Hold the worker with a batch too large for a ring slot, sent by message: the
    // searches asked meanwhile all wait in the ring, and are taken together after it.
    const hold = col.searchMany(
      Array.from({ length: 1200 }, (_, i) => queries[i % 24]),
      { k: 5 },
    );
    const together = await Promise.all(asks.map(([q, o]) => settle(col.search(q, o))));
    await hold;
    const after = await batched();
    await db.close();
    return { alone, together, before, after };
  });
  assert.equal(out.alone.length, 51);
  out.alone.forEach((r, i) => (i >= 12 && i <= 14) || assert.equal(r.hits.length, i < 27 ? 5 : 7, `ask ${i}`));
  assert.equal(out.alone[12].code, "INVALID_VECTOR");
  assert.match(out.alone[12].message, /^query\b/);
  assert.deepEqual([out.alone[13].code, out.alone[14].code], ["DIMENSION_MISMATCH", "DIMENSION_MISMATCH"]);
  assert.deepEqual(out.together, out.alone);
  // One at a time, nothing was batched; together, the first round alone (32 taken)
  // holds at least two whole batches of good ones.
  assert.equal(out.before, 0);
  assert.ok(out.after >= 16, `${out.after} searches answered in batches`);
});

test("a search taken back after its worker took it, before it began, is skipped", async () => {
  const out = await isolated.page.evaluate(async () => {
    let s = 13;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const dim = 256;
    const db = await quiver.open({ name: "dropped", workers: 1 });
    const col = await db.collection("c", { dim, metric: "dot" });
    for (let i = 0; i < 40000; i += 5000) {
      await col.upsert(Array.from({ length: 5000 }, (_, j) => ({ id: `v${i + j}`, vector: Float32Array.from({ length: dim }, rand) })));
    }
    const qs = Array.from({ length: 8 }, () => Float32Array.from({ length: dim }, rand));
    // Held by a batch sent by message, the worker takes the 32 searches asked meanwhile
    // in one round (a ring's worth), the moment it has answered the hold, and answers
    // them in slot order, the order asked: three batches of kept ones (about 15 ms of
    // scanning), then the last eight. The abort comes 3 ms after the hold's answer:
    // after the worker took them, before it begins them.
    const hold = col.searchMany(
      Array.from({ length: 80 }, (_, i) => qs[i % 8]),
      { k: 1 },
    );
    const ctl = new AbortController();
    const kept = [...qs, ...qs, ...qs].map((q) => col.search(q, { k: 10 }));
    const dropped = qs.map((q) =>
      col.search(q, { k: 11, signal: ctl.signal }).then(
        () => "answered",
        (e) => e.code,
      ),
    );
    await hold;
    await new Promise((later) => setTimeout(later, 3));
    ctl.abort();
    const answered = (await Promise.all(kept)).map((hits) => hits.length);
    const codes = await Promise.all(dropped);
    const batched = await db._pool.call(0, "batched");
    const after = await col.search(qs[0], { k: 11 });
    await db.close();
    return { answered, codes, batched, after: after.length };
  });
  assert.deepEqual(out.answered, Array(24).fill(10));
  assert.deepEqual(out.codes, Array(8).fill("ABORTED"));
  // Only the kept 24 were scanned.
  assert.equal(out.batched, 24);
  assert.equal(out.after, 11);
});

test("a search can be aborted or time out, and the pool keeps working after", async () => {
  const out = await isolated.page.evaluate(async () => {
    let s = 11;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const dim = 256;
    const db = await quiver.open({ name: "abort", workers: 2, partitionThreshold: 0 });
    const col = await db.collection("c", { dim, metric: "dot" });
    for (let i = 0; i < 40000; i += 5000) {
      await col.upsert(Array.from({ length: 5000 }, (_, j) => ({ id: `v${i + j}`, vector: Float32Array.from({ length: dim }, rand) })));
    }
    const code = (p) =>
      p.then(
        () => "ok",
        (e) => e.code,
      );
    const q = Float32Array.from({ length: dim }, rand);
    const aborted = new AbortController();
    aborted.abort();
    const already = await code(col.search(q, { signal: aborted.signal }));
    // Aborted while queued behind a long batch.
    const queries = Array.from({ length: 300 }, () => q);
    const slow = col.searchMany(queries, { k: 10 });
    const ctl = new AbortController();
    const pending = code(col.search(q, { signal: ctl.signal }));
    ctl.abort();
    const midway = await pending;
    const timedOut = await code(col.searchMany(queries, { k: 10, timeout: 5 }));
    await slow;
    const after = await col.search(q, { k: 3 });
    const expected = (await col.searchMany([q], { k: 3 }))[0];
    const bad = [await code(col.search(q, { timeout: -1 })), await code(col.search(q, { signal: "no" }))];
    await db.close();
    return { already, midway, timedOut, same: JSON.stringify(after) === JSON.stringify(expected), bad };
  });
  assert.deepEqual(out, { already: "ABORTED", midway: "ABORTED", timedOut: "TIMEOUT", same: true, bad: ["INVALID_ARGUMENT", "INVALID_ARGUMENT"] });
});

test("writes find their owners: a bad record anywhere writes nothing anywhere, updates and deletes land", async () => {
  const out = await isolated.page.evaluate(async () => {
    const dim = 4;
    const db = await quiver.open({ name: "writes", workers: 3, partitionThreshold: 10 });
    const col = await db.collection("c", { dim, metric: "euclidean" });
    const rec = (i) => ({ id: `k${i}`, vector: [i, 1, 2, 3], metadata: { i } });
    // A worker the collection has not reached yet holds none of it.
    const count = (w) => db._pool.call(w, "count", { collection: "c" }).catch((e) => (e.code === "NOT_FOUND" ? 0 : Promise.reject(e)));
    const parts = async () => Promise.all([0, 1, 2].map(count));
    // Below the threshold the collection lives whole in one worker; crossing it spreads it.
    await col.upsert(Array.from({ length: 8 }, (_, i) => rec(i)));
    const small = await parts();
    await col.upsert(Array.from({ length: 22 }, (_, i) => rec(8 + i)));
    const before = await parts();
    const batch = Array.from({ length: 30 }, (_, i) => rec(100 + i));
    batch[17] = { id: "bad", vector: [1, 2, 3] };
    const error = await col.upsert(batch).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
    const afterBad = await parts();
    await col.upsert({ id: "k5", vector: [50, 1, 2, 3], metadata: { i: 500 } });
    const updated = await col.get(["k5", "k6", "nope"]);
    const deleted = await col.delete(["k5", "k7", "nope"]);
    const ids = (await col.ids()).sort();
    const top = await col.search([50, 1, 2, 3], { k: 2 });
    await db.close();
    return { small, before, error, afterBad, updated: updated.map((r) => r && r.metadata.i), deleted, ids: ids.length, top: top.map((h) => h.id) };
  });
  assert.deepEqual([...out.small].sort(), [0, 0, 8]);
  assert.ok(
    out.before.every((n) => n > 0),
    `not partitioned: ${out.before}`,
  );
  assert.equal(
    out.before.reduce((a, b) => a + b),
    30,
  );
  assert.deepEqual(out.afterBad, out.before);
  assert.equal(out.error.code, "DIMENSION_MISMATCH");
  assert.match(out.error.message, /^records\[17\]\.vector/);
  assert.deepEqual(out.updated, [500, 6, null]);
  assert.equal(out.deleted, 2);
  assert.equal(out.ids, 28);
  assert.deepEqual(out.top, ["k29", "k28"]);
});

test("writes to collections in different workers run side by side; one collection's keep their order; an export waits for all", async () => {
  const out = await isolated.page.evaluate(async () => {
    const db = await quiver.open({ name: "side-by-side", storage: "opfs", workers: 2 });
    // A collection lives in the worker its name hashes to: one of several names in each.
    const inWorker = async (w, prefix, options) => {
      const names = Array.from({ length: 8 }, (_, i) => `${prefix}${i}`);
      await Promise.all(names.map((n) => db.collection(n, options)));
      const list = await db._pool.call(w, "collections");
      return db.collection(names.find((n) => list.includes(n)));
    };
    const dim = 384;
    const big = await inWorker(0, "big", { dim, metric: "cosine" });
    const small = await inWorker(1, "small", { dim: 4, metric: "euclidean" });
    const order = [];
    // 8,000 rows of 384 floats (12 MB) in worker 0 take far longer than one small row in worker 1.
    const rows = Array.from({ length: 8000 }, (_, i) => ({ id: `r${i}`, vector: Float32Array.from({ length: dim }, (_, j) => Math.sin(i * 7 + j)) }));
    const bigWrite = big.upsert(rows).then(() => order.push("big"));
    const smallWrite = small.upsert({ id: "x", vector: [1, 2, 3, 4] }).then(() => order.push("small"));
    // One collection's writes apply, and answer, in the order they were made.
    const sequence = [
      small.upsert({ id: "y", vector: [1, 1, 1, 1], metadata: { v: 1 } }).then(() => order.push("y1")),
      small.upsert({ id: "y", vector: [2, 2, 2, 2], metadata: { v: 2 } }).then(() => order.push("y2")),
      small.delete(["x"]).then(() => order.push("delete x")),
      small.upsert({ id: "x", vector: [3, 3, 3, 3], metadata: { v: 3 } }).then(() => order.push("x3")),
    ];
    // A write over every worker waits for every write before it: the file has them all.
    const exported = db.export({ collections: [big.name, small.name] });
    await Promise.all([bigWrite, smallWrite, ...sequence]);
    const file = await exported;
    const got = (await small.get(["x", "y"])).map((r) => r && { vector: Array.from(r.vector), v: r.metadata?.v });
    await db.close();
    const copy = await quiver.open({ name: "side-by-side-copy", storage: "memory" });
    const imported = await copy.import(file);
    await copy.close();
    return { order, got, imported };
  });
  // The small write's worker did not wait for the other's; one collection's writes
  // answered in the order they were made.
  assert.ok(out.order.indexOf("small") < out.order.indexOf("big"), `answered in order ${out.order}`);
  assert.deepEqual(
    out.order.filter((w) => w !== "big"),
    ["small", "y1", "y2", "delete x", "x3"],
  );
  assert.deepEqual(out.got, [
    { vector: [3, 3, 3, 3], v: 3 },
    { vector: [2, 2, 2, 2], v: 2 },
  ]);
  assert.equal(out.imported.records, 8002);
});

// A memory database undoes the batch; a persistent one has decided it before any part
// committed, so the restarted worker commits its staged part and the call succeeds.
// The same for a delete.
for (const write of ["upsert", "delete"]) {
  for (const storage of ["memory", "opfs"]) {
    test(`${storage}: a worker lost between the two phases of ${write === "upsert" ? "a write" : "a delete"} leaves the batch applied ${storage === "memory" ? "nowhere" : "everywhere"}`, async () => {
      const out = await isolated.page.evaluate(
        async ({ storage, write }) => {
          const db = await quiver.open({ name: `two-phase-${write}-${storage}`, storage, workers: 2, partitionThreshold: 0 });
          const col = await db.collection("c", { dim: 4, metric: "dot" });
          await col.upsert(Array.from({ length: 20 }, (_, i) => ({ id: `k${i}`, vector: [i, 1, 1, 1], metadata: { v: 1 } })));
          await col.upsert(Array.from({ length: 20 }, (_, i) => ({ id: `m${i}`, vector: [1, 1, 1, i] })));
          // Worker 1 dies just as it is told to commit; worker 0 commits its part.
          const pool = db._pool;
          const call = pool.call.bind(pool);
          pool.call = (i, op, ...rest) => {
            if (op === "commit" && i === 1) pool.workers[1].terminate();
            return call(i, op, ...rest);
          };
          const batch = [
            ...Array.from({ length: 20 }, (_, i) => ({ id: `k${i}`, vector: [i, 2, 2, 2], metadata: { v: 2 } })),
            ...Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, vector: [1, 1, 1, 1] })),
          ];
          const done = write === "upsert" ? col.upsert(batch) : col.delete(batch.slice(0, 20).map((r) => r.id));
          const code = await done.then(
            () => "ok",
            (e) => e.code,
          );
          delete pool.call;
          const got = await col.get(batch.map((r) => r.id));
          const parts = await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "c" })));
          const count = await col.count();
          await db.close();
          return { code, versions: got.map((r) => r && (r.metadata?.v ?? 0)), parts, count };
        },
        { storage, write },
      );
      const before = [...Array(20).fill(1), ...Array(20).fill(null)];
      const after = write === "upsert" ? [...Array(20).fill(2), ...Array(20).fill(0)] : Array(40).fill(null);
      assert.equal(out.code, storage === "memory" ? "WORKER_LOST" : "ok");
      assert.deepEqual(out.versions, storage === "memory" ? before : after);
      assert.equal(out.count, 20 + out.versions.filter((v) => v !== null).length, "the untouched rows and the batch's");
      assert.ok(
        out.parts.every((n) => n > 0),
        `both workers should hold rows: ${out.parts}`,
      );
      assert.equal(out.parts[0] + out.parts[1], out.count);
    });
  }
}
