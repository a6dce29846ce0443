// Many shards in real OPFS: 100,000 small shards written, the database reopened, and
// 3,000 random uses through an LRU of 16 loaded shards: every shard's records
// come back intact, writes to evicted shards land, and no worker's memory keeps
// growing past what the LRU holds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { usePage } from "./helpers.mjs";

const SHARDS = Number(process.env.QUIVER_SHARDS ?? 100_000);
const env = usePage(before, after);

test(`${SHARDS.toLocaleString("en")} shards, 3,000 random uses through an LRU of 16, keep every record`, { timeout: 14 * 60_000 }, async () => {
  const out = await env.p.page.evaluate(async (SHARDS) => {
    // Shard i holds two records whose vectors and metadata are functions of i.
    const record = (i, j) => ({ id: `s${i}-r${j}`, vector: [1 + (i % 97), j + 1, (i * 7 + j) % 13, 1], metadata: { shard: i, j } });
    const open = () => quiver.open({ name: "shards", storage: "opfs", workers: 2, loadedCollections: 16 });
    let db = await open();
    const t0 = performance.now();
    const batch = 64;
    for (let i = 0; i < SHARDS; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, SHARDS - i) }, async (_, b) => {
          const shard = await db.shard(`shard-${i + b}`, { dim: 4, metric: "euclidean" });
          await shard.upsert([record(i + b, 0), record(i + b, 1)]);
        }),
      );
    }
    const createMs = (performance.now() - t0) / SHARDS;
    await db.close();

    db = await open();
    const loadedAfterOpen = await Promise.all([0, 1].map((w) => db._pool.call(w, "loaded")));
    const used = [];
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % SHARDS;
    const problems = [];
    const extra = new Map(); // shard -> records written on top of its two
    const memory = [];
    const t1 = performance.now();
    for (let u = 0; u < 3000; u++) {
      const i = random();
      used.push(i);
      const shard = await db.shard(`shard-${i}`);
      const want = [record(i, 0), record(i, 1)];
      if (u % 10 === 0) want.push(record(i, 2 + u));
      if (u % 10 === 0) {
        await shard.upsert(want[2]);
        extra.set(i, (extra.get(i) ?? 0) + 1);
      }
      const got = await shard.get(want.map((r) => r.id));
      got.forEach((r, j) => {
        if (!r || JSON.stringify(Array.from(r.vector)) !== JSON.stringify(want[j].vector) || r.metadata?.shard !== i || r.metadata?.j !== want[j].metadata.j) {
          problems.push(`shard ${i} record ${want[j].id}: ${JSON.stringify(r)}`);
        }
      });
      const hits = await shard.search(want[1].vector, { k: 1 });
      if (hits[0]?.id !== want[1].id || hits[0].score !== 0) problems.push(`shard ${i} search: ${JSON.stringify(hits)}`);
      // wasm memory only grows: once the LRU is full, its high-water mark must stay.
      if (u === 999 || u === 2999) memory.push(await Promise.all([0, 1].map((w) => db._pool.call(w, "memoryBytes"))));
    }
    const useMs = (performance.now() - t1) / 3000;
    const listed = await db.shards();
    const loaded = await Promise.all([0, 1].map((w) => db._pool.call(w, "loaded")));
    // Several shards in one search: the best of each, merged.
    const picks = used.slice(0, 5);
    const across = await db.search(
      picks.map((i) => `shard-${i}`),
      record(picks[2], 1).vector,
      { k: 3 },
    );
    const dropped = await db
      .dropShard(`shard-${used[0]}`)
      .then(() => db.shard(`shard-${used[0]}`))
      .then(
        () => "found",
        (e) => e.code,
      );
    const count = (await db.shards()).length;
    await db.close();
    const miscounted = listed.filter((s) => s.count !== 2 + (extra.get(Number(s.id.slice(6))) ?? 0) || s.bytes !== s.count * 16);
    return {
      createMs,
      useMs,
      listed: { n: listed.length, miscounted: miscounted.slice(0, 3), first: listed[0] },
      loadedAfterOpen,
      loaded,
      problems: problems.slice(0, 5),
      memory,
      across,
      pick: picks[2],
      dropped,
      count,
    };
  }, SHARDS);
  console.log(
    `# ${SHARDS} shards: ${out.createMs.toFixed(3)} ms to create each (with 2 records); ${out.useMs.toFixed(2)} ms to use each of 3,000 random ones (get 2-3, search, every 10th written); worker memory after 1,000 / 3,000 uses: ${out.memory.map((m) => m.map((b) => (b / 2 ** 20).toFixed(1) + " MiB").join(" + ")).join(" / ")}`,
  );
  assert.deepEqual(out.problems, []);
  assert.equal(out.listed.n, SHARDS);
  assert.deepEqual(out.listed.miscounted, []);
  assert.deepEqual(
    { ...out.listed.first, count: undefined, bytes: undefined },
    { id: "shard-0", dim: 4, metric: "euclidean", count: undefined, bytes: undefined },
  );
  assert.deepEqual(out.loadedAfterOpen, [0, 0], "opening loads no shard");
  assert.ok(
    out.loaded.every((n) => n <= 16),
    `at most 16 loaded per worker: ${out.loaded}`,
  );
  // By 1,000 uses the LRU and SQLite's 4 MiB page cache are full: 2,000 more uses of
  // other shards may cost the allocator some slack, nothing a shard leaves behind.
  out.memory[1].forEach((bytes, w) => assert.ok(bytes - out.memory[0][w] <= 1 << 20, `worker ${w} grew from ${out.memory[0][w]} to ${bytes} bytes`));
  assert.equal(out.across[0].id, `s${out.pick}-r1`);
  assert.equal(out.across[0].shard, `shard-${out.pick}`);
  assert.equal(out.across.length, 3);
  assert.ok(out.across[1].score <= out.across[2].score);
  assert.equal(out.dropped, "NOT_FOUND");
  assert.equal(out.count, SHARDS - 1);
});
