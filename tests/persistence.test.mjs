// Persistence in headless Chromium with real OPFS: a database of several workers
// survives a page reload and a killed worker, with every record, its metadata and its
// text, and answers searches as before.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { usePage } from "./helpers.mjs";

const env = usePage(before, after);

/** In the page: opens the OPFS database and reads back what the test compares. */
function snapshot() {
  return (async () => {
    // Synthetic clustered vectors: 20,000 rows spread over two workers give each a segment.
    const { clustered } = await import("/tests/pages/data.js");
    const qs = clustered(10, 384, 99);
    // The database this page already has open, or (after a reload) open it again.
    const db = window.db ?? (await quiver.open({ name: "persist", storage: "opfs", workers: 2 }));
    const out = { storage: db.storage, collections: (await db.collections()).sort() };
    const big = await db.collection("big");
    const small = await db.collection("small");
    out.counts = [await big.count(), await small.count()];
    out.parts = await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "big" })));
    out.hits = [];
    for (let i = 0; i < 10; i++) out.hits.push(await big.search(qs.subarray(i * 384, (i + 1) * 384), { k: 5 }));
    out.small = await small.search([1, 0, 0, 0], { k: 3, filter: { even: true } });
    out.records = (await big.get(["7", "19999", "nope"])).map(
      (r) => r && { id: r.id, metadata: r.metadata, text: r.text, v: Array.from(r.vector.slice(0, 3)) },
    );
    window.db = db;
    return out;
  })();
}

test("an OPFS database of two workers survives a reload, and a killed worker reopens its file", async () => {
  const written = await env.p.page.evaluate(async () => {
    const base = (await import("/tests/pages/data.js")).clustered(20000, 384, 7);
    const db = await quiver.open({ name: "persist", storage: "opfs", workers: 2 });
    const big = await db.collection("big", { dim: 384 });
    for (let i = 0; i < 20000; i += 1000) {
      await big.upsert(
        Array.from({ length: 1000 }, (_, j) => ({
          id: String(i + j),
          vector: base.subarray((i + j) * 384, (i + j + 1) * 384),
          metadata: { row: i + j },
          text: `chunk ${i + j}`,
        })),
      );
    }
    const small = await db.collection("small", { dim: 4, metric: "euclidean" });
    await small.upsert(Array.from({ length: 50 }, (_, i) => ({ id: `s${i}`, vector: [i, 0, 0, 0], metadata: { even: i % 2 === 0 } })));
    await small.delete("s0");
    // No close: the page goes away as a reload takes it.
    window.db = db;
  });
  void written;
  const before = await env.p.page.evaluate(snapshot);
  assert.equal(before.storage, "opfs");
  assert.deepEqual(before.counts, [20000, 49]);
  assert.ok(
    before.parts.every((n) => n > 8000),
    `big should be spread: ${before.parts}`,
  );
  assert.deepEqual(
    before.small.map((h) => h.id),
    ["s2", "s4", "s6"],
  );
  assert.deepEqual(before.records[0].metadata, { row: 7 });
  assert.equal(before.records[1].text, "chunk 19999");
  assert.equal(before.records[2], null);

  await env.p.page.reload();
  await env.p.page.waitForFunction(() => window.ready);
  const after = await env.p.page.evaluate(snapshot);
  assert.deepEqual(after, before);

  // Kill a worker: its replacement reopens the same OPFS file.
  const killed = await env.p.page.evaluate(async () => {
    const big = await db.collection("big");
    const qs = (await import("/tests/pages/data.js")).clustered(1, 384, 99);
    const { retryLost: retry } = await import("/tests/pages/retry.js");
    db._pool.workers[1].terminate();
    const lost = await db._pool.call(1, "count", { collection: "big" }).then(
      () => "answered",
      (e) => e.code,
    );
    const hits = await retry(() => big.search(qs.subarray(0, 384), { k: 5 }));
    return { lost, hits, count: await retry(() => big.count()) };
  });
  assert.equal(killed.lost, "WORKER_LOST");
  assert.deepEqual(killed.hits, before.hits[0]);
  assert.equal(killed.count, 20000);

  const wrongSize = await env.p.page.evaluate(async () => {
    await db.close();
    return quiver.open({ name: "persist", storage: "opfs", workers: 3 }).then(
      () => "opened",
      (e) => e.code + ": " + e.message,
    );
  });
  assert.match(wrongSize, /^INVALID_ARGUMENT: workers: .* open it with workers: 2$/);
});

test('an IndexedDB database of two workers survives a reload; "auto" takes OPFS where workers have it', async () => {
  const page = await env.browser.context.newPage();
  await page.goto(`${env.p.url}/tests/pages/plain.html`);
  await page.waitForFunction(() => window.ready);
  const write = () =>
    page.evaluate(async () => {
      const db = await quiver.open({ name: "idb-reload", storage: "idb", workers: 2, partitionThreshold: 100 });
      const big = await db.collection("big", { dim: 3, metric: "euclidean" });
      await big.upsert(Array.from({ length: 300 }, (_, i) => ({ id: `b${i}`, vector: [i, i % 7, 1], metadata: { i }, text: `t${i}` })));
      await big.delete(["b5", "b6"]);
      const small = await db.collection("small", { dim: 2, metric: "dot" });
      await small.upsert({ id: "s", vector: [1, 2] });
      const auto = await quiver.open({ name: "auto-probe", storage: "auto", workers: 1 });
      const picked = auto.storage;
      await auto.close();
      // No close: the reload takes the page as it is.
      return { storage: db.storage, picked };
    });
  const read = () =>
    page.evaluate(async () => {
      const db = await quiver.open({ name: "idb-reload", storage: "idb", workers: 2, partitionThreshold: 100 });
      const big = await db.collection("big");
      const out = {
        names: await db.collections(),
        count: await big.count(),
        parts: await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "big" }))),
        hit: (await big.search([42, 0, 1], { k: 1 }))[0],
        got: await big.get(["b7", "b5"]).then((rs) => rs.map((r) => r && { id: r.id, v: Array.from(r.vector), metadata: r.metadata, text: r.text })),
        small: await (await db.collection("small")).count(),
      };
      await db.close();
      return out;
    });
  assert.deepEqual(await write(), { storage: "idb", picked: "opfs" });
  await page.reload();
  await page.waitForFunction(() => window.ready);
  const out = await read();
  await page.close();
  assert.deepEqual(out.names, ["big", "small"]);
  assert.equal(out.count, 298);
  assert.ok(
    out.parts.every((n) => n > 0),
    `spread over both workers: ${out.parts}`,
  );
  assert.deepEqual(out.hit, { id: "b42", score: 0, metadata: { i: 42 } });
  assert.deepEqual(out.got, [{ id: "b7", v: [7, 0, 1], metadata: { i: 7 }, text: "t7" }, null]);
  assert.equal(out.small, 1);
});

for (const storage of ["opfs", "idb"]) {
  test(`${storage}: a page closed, or a worker killed, in the middle of a bulk insert loses no acknowledged batch and keeps no partial one`, async () => {
    // Same origin as the other page, so the same OPFS.
    const victim = await env.browser.context.newPage();
    await victim.goto(`${env.p.url}/tests/pages/plain.html`);
    await victim.waitForFunction(() => window.ready);
    let acked = 0;
    victim.on("console", (m) => {
      const [word, n] = m.text().split(" ");
      if (word === "acked") acked = Number(n);
    });
    const inserting = victim
      .evaluate(async (storage) => {
        const { base, n } = await (await import("/tests/pages/data.js")).minilm();
        const db = await quiver.open({ name: `bulk-${storage}`, storage, workers: 1 });
        const col = await db.collection("c", { dim: 384 });
        for (let b = 0; b < 100; b++) {
          const start = (b * 1000) % n;
          await col.upsert(
            Array.from({ length: 1000 }, (_, j) => ({ id: `${b}-${j}`, vector: base.subarray((start + j) * 384, (start + j + 1) * 384), metadata: { b } })),
          );
          console.log(`acked ${b + 1}`);
        }
      }, storage)
      .catch(() => "closed");
    // The page acknowledges a batch every few tens of ms; give up (a clear failure, not
    // a hang) if twelve have not come within a minute.
    for (const deadline = Date.now() + 60_000; acked < 12;) {
      if (Date.now() > deadline) assert.fail(`only ${acked} batches acknowledged in 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await victim.close();
    assert.equal(await inserting, "closed");
    const seen = acked;

    const check = () =>
      env.p.page.evaluate(async (storage) => {
        window.bulk = window[`bulk-${storage}`] ??= await quiver.open({ name: `bulk-${storage}`, storage, workers: 1 });
        const col = await window.bulk.collection("c");
        const count = await col.count();
        const batches = count / 1000;
        const firstAndLast = await col.get(Array.from({ length: Math.ceil(batches) }, (_, b) => [`${b}-0`, `${b}-999`]).flat());
        return { count, integrity: await window.bulk.integrityCheck(), missing: firstAndLast.filter((r) => r === null).length };
      }, storage);
    const reopened = await check();
    assert.equal(reopened.integrity, "ok");
    assert.equal(reopened.count % 1000, 0, `a partial batch: ${reopened.count}`);
    assert.ok(reopened.count >= seen * 1000 && reopened.count <= (seen + 1) * 1000, `${reopened.count} rows after ${seen} acknowledged batches`);
    assert.equal(reopened.missing, 0);

    // Now the worker dies under a batch: the batch fails, and the file stays whole.
    const killed = await env.p.page.evaluate(async () => {
      const col = await window.bulk.collection("c");
      const before = await col.count();
      const vector = new Float32Array(384).fill(0.05);
      const batches = Array.from({ length: 5 }, (_, b) =>
        col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: `k${b}-${j}`, vector }))).then(
          () => "ok",
          (e) => e.code,
        ),
      );
      await new Promise((r) => setTimeout(r, 30));
      window.bulk._pool.workers[0].terminate();
      return { before, outcomes: await Promise.all(batches) };
    });
    assert.ok(killed.outcomes.includes("WORKER_LOST"), killed.outcomes.join());
    const after = await check();
    assert.equal(after.integrity, "ok");
    assert.equal(after.count % 1000, 0);
    const acknowledged = killed.outcomes.filter((o) => o === "ok").length;
    assert.ok(after.count >= killed.before + acknowledged * 1000, `${after.count} < ${killed.before} + ${acknowledged}k`);
  });
}

for (const write of ["upsert", "delete"]) {
  for (const storage of ["opfs", "idb"]) {
    for (const cut of ["decided", "undecided"]) {
      test(`${storage}: ${write === "upsert" ? "a batch" : "a delete"} spread over two workers is whole after the page dies between its phases (${cut})`, async () => {
        const name = `2pc-${write}-${storage}-${cut}`;
        const victim = await env.browser.context.newPage();
        await victim.goto(`${env.p.url}/tests/pages/plain.html`);
        await victim.waitForFunction(() => window.ready);
        const between = new Promise((r) => victim.on("console", (m) => m.text() === "between" && r()));
        // The page stops sending at the cut: before worker 0 records the decision, or after
        // one worker has committed its part and before the other commits its own.
        const run = victim.evaluate(
          async ({ name, storage, cut, write }) => {
            const db = await quiver.open({ name, storage, workers: 2, partitionThreshold: 0 });
            const col = await db.collection("c", { dim: 4, metric: "euclidean" });
            await col.upsert(Array.from({ length: 200 }, (_, i) => ({ id: `a${i}`, vector: [i, 0, 0, 1] })));
            const pool = db._pool;
            const real = pool.call.bind(pool);
            let first;
            pool.call = (w, op, args, transfer) => {
              if (cut === "undecided" && op === "decide") return (console.log("between"), new Promise(() => {}));
              if (cut === "decided" && op === "commit" && !first) return (first = real(w, op, args, transfer));
              if (cut === "decided" && op === "commit") return (first.then(() => console.log("between")), new Promise(() => {}));
              return real(w, op, args, transfer);
            };
            if (write === "upsert") await col.upsert(Array.from({ length: 100 }, (_, i) => ({ id: `b${i}`, vector: [i, 1, 0, 1], metadata: { i } })));
            else await col.delete(Array.from({ length: 100 }, (_, i) => `a${i}`));
          },
          { name, storage, cut, write },
        );
        await Promise.race([between, run.then(() => Promise.reject(new Error("the batch was not cut")))]);
        await victim.close();

        const out = await env.p.page.evaluate(
          async ({ name, storage, write }) => {
            const db = await quiver.open({ name, storage, workers: 2, partitionThreshold: 0 });
            const col = await db.collection("c");
            const out = {
              count: await col.count(),
              parts: await Promise.all([0, 1].map((w) => db._pool.call(w, "count", { collection: "c" }))),
              staged: await Promise.all([0, 1].map((w) => db._pool.call(w, "stagedBatches"))),
              a: (await col.get(Array.from({ length: 100 }, (_, i) => `a${i}`))).filter((r) => r !== null).length,
              b: (await col.get(Array.from({ length: 100 }, (_, i) => `b${i}`))).filter((r) => r !== null).map((r) => r.metadata.i),
              hit: (await col.search([42, write === "upsert" ? 1 : 0, 0, 1], { k: 1 }))[0]?.id,
              integrity: await db.integrityCheck(),
            };
            // Settled parts leave nothing behind: the next batch spans both workers again.
            await col.upsert(Array.from({ length: 50 }, (_, i) => ({ id: `c${i}`, vector: [i, 2, 0, 1] })));
            out.after = await col.count();
            await db.close();
            return out;
          },
          { name, storage, write },
        );
        assert.equal(out.integrity, "ok");
        assert.deepEqual(out.staged, [[], []]);
        if (cut === "undecided") {
          assert.equal(out.count, 200, "nothing of the undecided batch");
          assert.deepEqual([out.a, out.b, out.hit], [100, [], "a42"]);
        } else if (write === "upsert") {
          assert.equal(out.count, 300, "every part of the decided batch");
          assert.deepEqual(
            out.b.sort((x, y) => x - y),
            Array.from({ length: 100 }, (_, i) => i),
          );
          assert.equal(out.hit, "b42");
        } else {
          assert.equal(out.count, 100, "every part of the decided delete");
          assert.deepEqual([out.a, out.hit], [0, "a100"]);
        }
        assert.ok(
          out.parts.every((n) => n > 0),
          `spread over both workers: ${out.parts}`,
        );
        assert.equal(out.after, out.count + 50);
      });
    }
  }
}

test("a database's site id is created with its files and kept across reopen, in OPFS and IndexedDB", async () => {
  const out = await env.p.page.evaluate(async () => {
    const seen = [];
    for (const storage of ["opfs", "idb"]) {
      const open = () => quiver.open({ name: `site-${storage}`, storage, workers: 2 });
      const first = await open();
      const [id] = await (await first.collection("c", { dim: 2 })).upsert({ vector: [1, 2] });
      await first.close();
      const again = await open();
      seen.push({ storage, first: first.site, again: again.site, id });
      await again.close();
    }
    const memory = await Promise.all([quiver.open({ name: "site-m1" }), quiver.open({ name: "site-m2" })]);
    seen.push({ storage: "memory", first: memory[0].site, again: memory[1].site });
    await Promise.all(memory.map((db) => db.close()));
    return seen;
  });
  for (const { storage, first, again, id } of out) {
    assert.match(first, /^[0-9a-f]{16}$/, storage);
    if (storage === "memory") assert.notEqual(first, again, "two databases, two sites");
    else assert.equal(again, first, `${storage}: the site is the file's`);
    if (id) assert.ok(id.startsWith(`${first}-`), `${storage}: generated ids carry the site: ${id}`);
  }
  assert.notEqual(out[0].first, out[1].first);
});

for (const storage of ["opfs", "idb"]) {
  test(`${storage}: a spread collection dropped as the page dies is gone from every worker on reopen`, async () => {
    const name = `drop-cut-${storage}`;
    const victim = await env.browser.context.newPage();
    await victim.goto(`${env.p.url}/tests/pages/plain.html`);
    await victim.waitForFunction(() => window.ready);
    const between = new Promise((r) => victim.on("console", (m) => m.text() === "between" && r()));
    // Worker 1's drop never leaves the page: the page dies with only worker 0's done.
    const run = victim.evaluate(
      async ({ name, storage }) => {
        const db = await quiver.open({ name, storage, workers: 2, partitionThreshold: 0 });
        for (const c of ["gone", "kept"]) {
          await (await db.collection(c, { dim: 2, metric: "dot" })).upsert(Array.from({ length: 100 }, (_, i) => ({ id: `${c}${i}`, vector: [i, 1] })));
        }
        const pool = db._pool;
        const real = pool.call.bind(pool);
        pool.call = (w, op, args, transfer) => {
          if (op === "dropCollection" && w === 1) return (real(0, "count", { collection: "kept" }).then(() => console.log("between")), new Promise(() => {}));
          return real(w, op, args, transfer);
        };
        await db.dropCollection("gone");
      },
      { name, storage },
    );
    await Promise.race([between, run.then(() => Promise.reject(new Error("the drop was not cut")))]);
    await victim.close();
    const out = await env.p.page.evaluate(
      async ({ name, storage }) => {
        const db = await quiver.open({ name, storage, workers: 2, partitionThreshold: 0 });
        const out = {
          names: await db.collections(),
          perWorker: await Promise.all([0, 1].map((w) => db._pool.call(w, "collections"))),
          kept: await (await db.collection("kept")).count(),
          gone: await db.collection("gone").then(
            () => "found",
            (e) => e.code,
          ),
          integrity: await db.integrityCheck(),
        };
        await db.close();
        return out;
      },
      { name, storage },
    );
    assert.deepEqual(out, { names: ["kept"], perWorker: [["kept"], ["kept"]], kept: 100, gone: "NOT_FOUND", integrity: "ok" });
  });
}

test("opfs: a segment with a byte flipped in its vectors is refused, and the collection loads from its rows", async () => {
  const out = await env.p.page.evaluate(async () => {
    const { clustered } = await import("/tests/pages/data.js");
    // 6,000 rows: past the 4,096 from which a collection keeps a segment.
    const dim = 64;
    const n = 6000;
    const vectors = clustered(n, dim, 11);
    const open = () => quiver.open({ name: "flipped", storage: "opfs", workers: 1 });
    let db = await open();
    const col = await db.collection("c", { dim });
    for (let i = 0; i < n; i += 1000) {
      await col.upsert(Array.from({ length: 1000 }, (_, j) => ({ id: `r${i + j}`, vector: vectors.subarray((i + j) * dim, (i + j + 1) * dim) })));
    }
    // Row 0 (the segment's first) searched for with its own vector.
    const q = vectors.subarray(0, dim);
    const before = await col.search(q, { k: 5 });
    await db.close();
    // Closing wrote the segment; flip the exponent of row 0's first value in it.
    let dir = await navigator.storage.getDirectory();
    for (const part of ["quiver", "flipped", "w0-segments"]) dir = await dir.getDirectoryHandle(part);
    const names = [];
    for await (const name of dir.keys()) names.push(name);
    const handle = await dir.getFileHandle(names[0]);
    const bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
    const HEADER = 64;
    bytes[HEADER + 3] ^= 0x20;
    const writable = await handle.createWritable();
    await writable.write(bytes);
    await writable.close();
    db = await open();
    const after = await (await db.collection("c")).search(q, { k: 5 });
    const got = await (await db.collection("c")).get("r0");
    await db.close();
    return { names, size: bytes.length, before, after, same: Array.from(got.vector).every((v, i) => v === q[i]) };
  });
  assert.equal(out.names.length, 1, `one segment file: ${out.names}`);
  assert.ok(out.size > 6000 * 64 * 4, `the segment holds the vectors: ${out.size} bytes`);
  assert.equal(out.before[0].id, "r0");
  assert.deepEqual(out.after, out.before);
  assert.ok(out.same);
});

test("export then import round-trips every record exactly, the file opens in sqlite3, and a corrupt file is refused", async () => {
  const out = await env.p.page.evaluate(async () => {
    let s = 5;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const a = await quiver.open({ name: "export-a", workers: 2, partitionThreshold: 100 });
    const ca = await a.collection("a", { dim: 8, metric: "euclidean" });
    await ca.upsert(
      Array.from({ length: 500 }, (_, i) => ({
        id: `a${i}`,
        vector: Float32Array.from({ length: 8 }, rand),
        metadata: { i, tag: ["x", "y"][i % 2] },
        text: i % 3 ? null : `text ${i}`,
      })),
    );
    const cb = await a.collection("b", { dim: 3, metric: "cosine" });
    await cb.upsert(Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, vector: [i + 1, 1, 0.5] })));
    const bytes = await a.export();

    const b = await quiver.open({ name: "export-b", storage: "opfs", workers: 1 });
    const imported = await b.import(new Blob([bytes]));
    const same = async (name, ids, from = a, to = b) => {
      const [x, y] = await Promise.all([(await from.collection(name)).get(ids), (await to.collection(name)).get(ids)]);
      return x.every(
        (r, i) =>
          r.id === y[i].id &&
          r.text === y[i].text &&
          JSON.stringify(r.metadata) === JSON.stringify(y[i].metadata) &&
          r.vector.length > 0 &&
          r.vector.length === y[i].vector.length &&
          r.vector.every((v, j) => Object.is(v, y[i].vector[j])),
      );
    };
    const equal =
      (await same(
        "a",
        Array.from({ length: 500 }, (_, i) => `a${i}`),
      )) &&
      (await same(
        "b",
        Array.from({ length: 10 }, (_, i) => `b${i}`),
      ));
    const q = Float32Array.from({ length: 8 }, rand);
    const searches = JSON.stringify(await ca.search(q, { k: 7 })) === JSON.stringify(await (await b.collection("a")).search(q, { k: 7 }));

    const c = await quiver.open({ name: "export-c", workers: 1 });
    await c.import(await a.export({ collections: ["b"] }));
    const subset = await c.collections();
    // A whole memory database of one worker, whose SQLite keeps no vectors.
    const e = await quiver.open({ name: "export-e", storage: "opfs", workers: 1 });
    await e.import(await c.export());
    const wholeOne = await same(
      "b",
      Array.from({ length: 10 }, (_, i) => `b${i}`),
      c,
      e,
    );
    await e.close();
    const refused = [];
    for (const bad of [new Uint8Array([1, 2, 3]), bytes.slice(0, bytes.length >> 1), "text"]) {
      refused.push(
        await c.import(bad).then(
          () => "imported",
          (e) => e.code,
        ),
      );
    }
    const clash = await c
      .import(
        await (async () => {
          const d = await quiver.open({ name: "export-d", workers: 1 });
          await (await d.collection("b", { dim: 4 })).upsert({ id: "z", vector: [1, 2, 3, 4] });
          const f = await d.export();
          await d.close();
          return f;
        })(),
      )
      .then(
        () => "imported",
        (e) => e.code,
      );
    const cCount = await (await c.collection("b")).count();
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    for (const db of [a, b, c]) await db.close();
    return { imported, equal, searches, subset, wholeOne, refused, clash, cCount, base64: btoa(binary) };
  });
  assert.deepEqual(out.imported, { collections: ["a", "b"], records: 510 });
  assert.equal(out.equal, true);
  assert.equal(out.searches, true);
  assert.deepEqual(out.subset, ["b"]);
  assert.ok(out.wholeOne, "a one-worker memory database exports its vectors");
  assert.deepEqual(out.refused, ["CORRUPT_DATABASE", "CORRUPT_DATABASE", "INVALID_ARGUMENT"]);
  assert.equal(out.clash, "DIMENSION_MISMATCH");
  assert.equal(out.cCount, 10);

  // The exported file is a plain SQLite database: Python's sqlite3 reads it.
  const file = join(mkdtempSync(join(tmpdir(), "quiver-export-")), "export.sqlite");
  writeFileSync(file, Buffer.from(out.base64, "base64"));
  const report = execFileSync("python3", [
    "-c",
    `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("PRAGMA integrity_check").fetchone()[0])
print(db.execute("SELECT count(*) FROM vectors WHERE deleted = 0").fetchone()[0])
print(db.execute("SELECT name, dim, metric FROM collections ORDER BY name").fetchall())
`,
    file,
  ])
    .toString()
    .trim()
    .split("\n");
  assert.deepEqual(report, ["ok", "510", "[('a', 8, 'euclidean'), ('b', 3, 'cosine')]"]);
});

test("an import that runs out of space writes nothing, on one worker or spread over two", async () => {
  const out = await env.p.page.evaluate(async () => {
    let s = 17;
    const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
    const rows = (prefix, n) =>
      Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, vector: Float32Array.from({ length: 128 }, rand), metadata: { i } }));
    // The file: 4,000 new rows for "a" (which exists) and 4,000 for "fresh" (which does
    // not), 4 MB of vectors: more than the 2 MB a worker may hold, though a part fits.
    const src = await quiver.open({ name: "import-src", workers: 1 });
    await (await src.collection("a", { dim: 128 })).upsert(rows("x", 4000));
    await (await src.collection("fresh", { dim: 128 })).upsert(rows("y", 4000));
    const file = await src.export();
    await src.close();
    const q = rows("q", 1)[0].vector;
    const results = [];
    for (const [workers, storage] of [
      [1, "opfs"],
      [2, "opfs"],
      [1, "memory"],
      [2, "memory"],
    ]) {
      const db = await quiver.open({ name: `import-full-${workers}-${storage}`, storage, workers, partitionThreshold: 500, maxBytes: workers * (2 << 20) });
      const a = await db.collection("a", { dim: 128 });
      await a.upsert(rows("a", 1000));
      const before = { names: await db.collections(), count: await a.count(), top: await a.search(q, { k: 3 }) };
      const error = await db.import(file).then(
        () => null,
        (e) => e.code,
      );
      const after = { names: await db.collections(), count: await a.count(), top: await a.search(q, { k: 3 }) };
      // Nothing of it anywhere, and the database still takes writes that fit.
      const got = await a.get(["x0", "x3999"]);
      await a.upsert(rows("b", 10));
      results.push({
        workers,
        storage,
        error,
        same: JSON.stringify(before) === JSON.stringify(after),
        got,
        count: await a.count(),
        integrity: await db.integrityCheck(),
      });
      await db.close();
    }
    return results;
  });
  for (const r of out) {
    const label = `${r.workers} worker(s), ${r.storage}`;
    assert.equal(r.error, "QUOTA_EXCEEDED", label);
    assert.ok(r.same, `${label}: the import changed something`);
    assert.deepEqual(r.got, [null, null], label);
    assert.equal(r.count, 1010, label);
    assert.equal(r.integrity, "ok", label);
  }
});

test("past maxBytes a batch fails with QUOTA_EXCEEDED and writes nothing, on one worker or spread over two", async () => {
  const out = await env.p.page.evaluate(async () => {
    const results = [];
    for (const [workers, storage] of [
      [1, "opfs"],
      [2, "memory"],
    ]) {
      const db = await quiver.open({ name: `quota-${workers}`, storage, workers, partitionThreshold: 500, maxBytes: workers * (3 << 20) });
      const col = await db.collection("c", { dim: 128 });
      const v = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i));
      let acked = 0,
        error = null;
      for (let b = 0; b < 200 && !error; b++) {
        await col.upsert(Array.from({ length: 200 }, (_, j) => ({ id: `${b}-${j}`, vector: v, metadata: { b } }))).then(
          () => acked++,
          (e) => (error = e.code),
        );
      }
      const failed = await col.get([`${acked}-0`, `${acked}-199`]);
      results.push({
        workers,
        error,
        acked,
        count: await col.count(),
        failed,
        integrity: await db.integrityCheck(),
        hits: (await col.search(v, { k: 3 })).length,
      });
      await db.close();
    }
    return results;
  });
  for (const r of out) {
    assert.equal(r.error, "QUOTA_EXCEEDED", JSON.stringify(r));
    assert.ok(r.acked > 0);
    assert.equal(r.count, r.acked * 200, `workers ${r.workers}: a partial batch`);
    assert.deepEqual(r.failed, [null, null]);
    assert.equal(r.integrity, "ok");
    assert.equal(r.hits, 3);
  }
});

test("two tabs write one database at once: one leads, the other forwards, takes over when it closes, nothing lost", async () => {
  const tab = async () => {
    const page = await env.browser.context.newPage();
    await page.goto(`${env.p.url}/tests/pages/plain.html`);
    await page.waitForFunction(() => window.ready);
    return page;
  };
  const [a, b] = [await tab(), await tab()];
  const openIn = (page) =>
    page.evaluate(async () => {
      window.tabs = await quiver.open({ name: "tabs", storage: "opfs", workers: 2, partitionThreshold: 1000 });
      await window.tabs.collection("c", { dim: 16 });
      return { follows: !!window.tabs._remote, workers: window.tabs.workers, build: window.tabs.build };
    });
  const roleA = await openIn(a);
  const roleB = await openIn(b);
  assert.deepEqual([roleA.follows, roleB.follows], [false, true]);
  assert.equal(roleB.workers, 2);

  const write = (page, prefix, batches) =>
    page.evaluate(
      async ({ prefix, batches }) => {
        const col = await window.tabs.collection("c");
        const outcomes = [];
        for (let i = 0; i < batches; i++) {
          const records = Array.from({ length: 250 }, (_, j) => ({
            id: `${prefix}${i}-${j}`,
            vector: Float32Array.from({ length: 16 }, (_, d) => Math.sin(i * 250 + j + d)),
            metadata: { prefix },
          }));
          outcomes.push(
            await col.upsert(records).then(
              () => "ok",
              (e) => `${e.code}: ${e.message}`,
            ),
          );
        }
        return outcomes;
      },
      { prefix, batches },
    );
  // Both tabs write at once.
  const [outA, outB] = await Promise.all([write(a, "a", 20), write(b, "b", 20)]);
  assert.deepEqual([...new Set([...outA, ...outB])], ["ok"]);
  const view = (page) =>
    page.evaluate(async () => {
      const col = await window.tabs.collection("c");
      const hits = await col.search(
        Float32Array.from({ length: 16 }, (_, d) => Math.cos(d)),
        { k: 5 },
      );
      return { count: await col.count(), hits: hits.map((h) => h.id), integrity: await window.tabs.integrityCheck() };
    });
  const [viewA, viewB] = [await view(a), await view(b)];
  assert.equal(viewA.count, 10000);
  assert.deepEqual(viewB, viewA);

  // The leading tab goes away while the other writes: it takes over, losing nothing.
  const more = write(b, "c", 20);
  await new Promise((r) => setTimeout(r, 100));
  await a.close();
  assert.deepEqual([...new Set(await more)], ["ok"]);
  const after = await b.evaluate(async () => ({
    follows: !!window.tabs._remote,
    count: await (await window.tabs.collection("c")).count(),
    integrity: await window.tabs.integrityCheck(),
  }));
  assert.deepEqual(after, { follows: false, count: 15000, integrity: "ok" });
  await b.close();
});

// A memory database keeps every collection loaded: its SQLite holds no vectors (the
// page's replica does), so its rows could not rebuild an evicted one.
test("many small collections stay intact, through an LRU of 4 loaded ones in OPFS, all loaded in memory", async () => {
  const out = await env.p.page.evaluate(async () => {
    const results = [];
    for (const storage of ["memory", "opfs"]) {
      const db = await quiver.open({ name: `lru-${storage}`, storage, workers: 2, loadedCollections: 4 });
      for (let c = 0; c < 60; c++) {
        const col = await db.collection(`agent-${c}`, { dim: 3, metric: "dot" });
        await col.upsert(Array.from({ length: 5 }, (_, i) => ({ id: `${c}-${i}`, vector: [c, i, 1], metadata: { c } })));
      }
      let wrong = 0;
      for (let step = 0; step < 300; step++) {
        const c = (step * 37) % 60;
        const col = await db.collection(`agent-${c}`);
        const [top] = await col.search([0, 1, 0], { k: 1 });
        if (top.id !== `${c}-4` || top.metadata.c !== c || (await col.count()) !== 5) wrong++;
      }
      const loaded = await Promise.all([0, 1].map((w) => db._pool.call(w, "loaded")));
      const capped = storage === "memory" ? loaded[0] + loaded[1] === 60 : loaded.every((n) => n > 0 && n <= 4);
      results.push({ storage, wrong, collections: (await db.collections()).length, capped });
      await db.close();
    }
    return results;
  });
  assert.deepEqual(out, [
    { storage: "memory", wrong: 0, collections: 60, capped: true },
    { storage: "opfs", wrong: 0, collections: 60, capped: true },
  ]);
});

test("a dropped collection is gone from every worker, and stays gone after reopening", async () => {
  const out = await env.p.page.evaluate(async () => {
    const open = () => quiver.open({ name: "drops", storage: "opfs", workers: 2, partitionThreshold: 100 });
    let db = await open();
    for (const [name, n] of [
      ["big", 300],
      ["small", 10],
      ["other", 10],
    ]) {
      const col = await db.collection(name, { dim: 2, metric: "dot" });
      await col.upsert(Array.from({ length: n }, (_, i) => ({ id: `${name}-${i}`, vector: [i, 1] })));
    }
    await db.dropCollection("big");
    await db.dropCollection("small");
    const again = await db.dropCollection("small").then(
      () => "dropped",
      (e) => e.code,
    );
    const perWorker = await Promise.all([0, 1].map((w) => db._pool.call(w, "collections")));
    await db.close();
    db = await open();
    const reopened = {
      names: await db.collections(),
      big: await db.collection("big").then(
        () => "found",
        (e) => e.code,
      ),
    };
    const fresh = await db.collection("big", { dim: 3 });
    const count = await fresh.count();
    const other = await (await db.collection("other")).count();
    await db.close();
    return { again, perWorker, reopened, count, other };
  });
  assert.equal(out.again, "NOT_FOUND");
  // "other" lives in its home worker only (it never outgrew it); the dropped ones nowhere.
  assert.deepEqual(out.perWorker.flat(), ["other"]);
  assert.deepEqual(out.reopened, { names: ["other"], big: "NOT_FOUND" });
  assert.equal(out.count, 0);
  assert.equal(out.other, 10);
});
