// A batch (of records, or of deletes) that spans workers, written all or nothing:
// every worker checks and stages its part, then all commit. A persistent database
// records the decision in worker 0 between the phases, so that a part a crash leaves
// staged is committed (or, with no decision, dropped) when its worker restarts or the
// database reopens (placement.js `settle`). A memory database, which a crash loses
// anyway, puts back from the page's replica what a lost worker's partners committed.
import { QuiverError } from "./errors.js";

/** 64 random bits in hex: names a batch. */
export const randomHex = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Writes `batches` ({w, indices, rows}) of collection `c` through `coordinator`:
 * `send(b, op, extra)` sends part b as op "stage" or "upsert"-like; `whileCommitting`
 * runs once the commits are sent. Resolves with each part's worker's new count.
 */
export async function twoPhase(coordinator, c, batches, send, whileCommitting) {
  const { pool, placements } = coordinator;
  const name = c.settings.name;
  const batch = randomHex();
  const durable = coordinator.storage !== "memory";
  const everywhere = (op) => Promise.allSettled(batches.map((b) => pool.call(b.w, op, { batch })));
  const checked = await Promise.allSettled(batches.map((b) => send(b, "stage", { batch })));
  const failed = checked.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    await everywhere("discard");
    throw renumber(checked[failed].reason, batches[failed].indices);
  }
  if (durable) {
    // The commit point. If worker 0 died deciding, its restart tells whether it did.
    const decided = await pool.call(0, "decide", { batch }).then(
      () => true,
      () => pool.call(0, "decided", { batch }),
    );
    if (!decided) {
      await everywhere("discard");
      throw new QuiverError("WORKER_LOST", "a store worker stopped before the batch was committed; nothing of it was written");
    }
  }
  const committing = everywhere("commit");
  whileCommitting();
  const committed = await committing;
  const lost = committed.findIndex((r) => r.status === "rejected");
  if (lost >= 0 && !durable) {
    // Put back what the others had before, from the replica.
    const done = batches.filter((_, j) => committed[j].status === "fulfilled");
    await Promise.all(done.map((b) => placements.revert(c, b.w, b.rows.ids)));
    throw committed[lost].reason;
  }
  // The batch is decided: a part whose commit failed is settled again (after its
  // worker's restart, which settles it too); if that fails as well (out of space),
  // the call fails and the part stays staged, to be written on the next reopen.
  const counts = await Promise.all(
    batches.map(async (b, j) => {
      if (committed[j].status === "rejected") await placements.settle(b.w);
      const value = committed[j].value;
      return value ? JSON.parse(value).count : pool.call(b.w, "count", { collection: name });
    }),
  );
  if (durable) pool.call(0, "forget", { batch }).catch(() => {});
  return counts;
}

/** Turns a failed part's "records[j]" into the caller's index. */
export function renumber(err, indices) {
  if (err instanceof QuiverError) {
    err.message = err.message.replace(/^records\[(\d+)\]/, (m, j) => `records[${indices[+j]}]`);
  }
  return err;
}
