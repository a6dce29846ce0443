// A batch (of records, or of deletes) that spans workers, written all or nothing:
// every worker checks and stages its part, then all commit. A persistent database
// records the decision in worker 0 between the phases, so that a part a crash leaves
// staged is committed (or, with no decision, dropped) when its worker restarts or the
// database reopens (placement.js `settle`). A memory database, which a crash loses
// anyway, puts back from the page's replica what a lost worker's partners committed.
import { QuiverError } from "./errors.js";
import { newBatch } from "./ids.js";

/**
 * Writes `parts` ({w, c, indices, rows}: rows of collection placement `c` for worker
 * w) through `coordinator`, all or nothing: `send(part, "stage", extra)` sends a part
 * to be checked and staged; `whileCommitting` runs once the commits are sent. A part
 * is staged as "<batch>/<n>"; the decision is recorded for "<batch>" alone, so one
 * decision covers parts of several collections in one worker (an import).
 * Resolves with each part's worker's new count of the part's collection.
 */
export async function twoPhase(coordinator, parts, send, whileCommitting) {
  const { pool, placements } = coordinator;
  const batch = newBatch();
  parts.forEach((p, j) => (p.id = `${batch}/${j}`));
  const durable = coordinator.storage !== "memory";
  const everywhere = (op) => Promise.allSettled(parts.map((p) => pool.call(p.w, op, { batch: p.id })));
  const checked = await Promise.allSettled(parts.map((p) => send(p, "stage", { batch: p.id })));
  const failed = checked.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    await everywhere("discard");
    throw renumber(checked[failed].reason, parts[failed].indices);
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
    const done = parts.filter((_, j) => committed[j].status === "fulfilled");
    await Promise.all(done.map((p) => placements.revert(p.c, p.w, p.rows.ids)));
    throw committed[lost].reason;
  }
  // The batch is decided: a part whose commit failed is settled again (after its
  // worker's restart, which settles it too); if that fails as well (out of space),
  // the call fails and the part stays staged, to be written on the next reopen.
  const counts = await Promise.all(
    parts.map(async (p, j) => {
      if (committed[j].status === "rejected") await placements.settle(p.w);
      const value = committed[j].value;
      return typeof value === "number" ? value : pool.call(p.w, "count", { collection: p.c.settings.name });
    }),
  );
  if (durable) pool.call(0, "forget", { batch }).catch(() => {});
  return counts;
}

/** The batch whose decision covers staged part `part` ("<batch>/<n>", or a batch). */
export const decisionOf = (part) => part.split("/")[0];

/** Turns a failed part's "records[j]" into the caller's index. */
export function renumber(err, indices) {
  if (err instanceof QuiverError) {
    err.message = err.message.replace(/^records\[(\d+)\]/, (m, j) => `records[${indices[+j]}]`);
  }
  return err;
}
