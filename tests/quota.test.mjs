// The browser's real storage quota, made small through the DevTools protocol: running
// out of it mid-insert fails the batch with QUOTA_EXCEEDED and leaves the data as it
// was before that batch, in OPFS and IndexedDB, on one worker or spread over two.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage } from "./helpers.mjs";

let browser;
before(async () => (browser = await launch()));
after(() => browser.close());

for (const storage of ["opfs", "idb"]) {
  for (const workers of [1, 2]) {
    test(`${storage}, ${workers} worker(s): out of quota a batch fails with QUOTA_EXCEEDED and the data stays as it was`, async () => {
      // A page of its own, served on a port of its own: an origin with its own quota.
      const p = await openPage(browser, "/tests/pages/plain.html");
      try {
        await p.page.waitForFunction(() => window.ready);
        const cdp = await browser.context.newCDPSession(p.page);
        await cdp.send("Storage.overrideQuotaForOrigin", { origin: new URL(p.url).origin, quotaSize: 24 << 20 });
        const out = await p.page.evaluate(
          async ({ storage, workers }) => {
            const options = { name: "full", storage, workers, partitionThreshold: 1000 };
            const db = await quiver.open(options);
            const col = await db.collection("c", { dim: 384 });
            // Random vectors: IndexedDB compresses what it stores, and would take a
            // repeated vector for almost nothing.
            const batch = (b) =>
              Array.from({ length: 500 }, (_, j) => ({
                id: `${b}-${j}`,
                vector: Float32Array.from({ length: 384 }, () => Math.random() - 0.5),
                metadata: { b },
              }));
            let acked = 0;
            let error = null;
            for (let b = 0; b < 200 && !error; b++)
              await col.upsert(batch(b)).then(
                () => acked++,
                (e) => (error = { code: e.code, message: e.message }),
              );
            const state = async (db) => {
              const col = await db.collection("c");
              const ids = Array.from({ length: acked + 1 }, (_, b) => [`${b}-0`, `${b}-499`]).flat();
              const found = (await col.get(ids)).map((r) => r !== null);
              return { count: await col.count(), found, integrity: await db.integrityCheck() };
            };
            const live = await state(db);
            await db.close();
            const again = await quiver.open(options);
            const reopened = await state(again);
            await again.close();
            return { error, acked, live, reopened };
          },
          { storage, workers },
        );
        assert.equal(out.error?.code, "QUOTA_EXCEEDED", JSON.stringify(out.error));
        assert.match(out.error.message, /^storage: /);
        assert.ok(out.acked > 5, `${out.acked} batches before the quota`);
        const expected = [...Array(out.acked * 2).fill(true), false, false];
        for (const s of [out.live, out.reopened]) {
          assert.equal(s.count, out.acked * 500, "every acknowledged batch and nothing of the failed one");
          assert.deepEqual(s.found, expected);
          assert.equal(s.integrity, "ok");
        }
      } finally {
        await p.page.close();
        await p.stop();
      }
    });
  }
}
