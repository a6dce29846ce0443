// The local side of a sync session: a collection's changes read as ops from each
// worker that owns part of it, other sites' ops written to the workers that own their
// ids, and the session's cursors kept in the database. The workers do the work (the
// core's LWW merge and the wire codec); this routes and keeps the page's replica in
// step, as Coordinator.upsert does for a write.

/** Ops read from a worker at a time: one push frame's worth. */
export const OPS_PER_READ = 512;

export class Local {
  /**
   * @param {import("../coordinator.js").Coordinator} coordinator the leading tab's
   * @param {string} name the collection
   */
  constructor(coordinator, name) {
    this.co = coordinator;
    this.name = name;
  }

  /** The workers that hold part of the collection now. */
  async owners() {
    return this.co.placements.owners(await this.co.placements.get(this.name));
  }

  /**
   * Worker w's changes after its local change `after`: `{ ops, vectors, upto }`, `ops`
   * those made by this site (the others' came from a relay, which has them), `upto`
   * the cursor past every change read, this site's or not.
   */
  async read(w, after) {
    const c = await this.co.placements.get(this.name);
    const out = await this.co.pool.call(w, "opsSince", { collection: this.name, after, limit: OPS_PER_READ });
    const all = JSON.parse(out.message);
    const upto = all.length ? all[all.length - 1].seq : after;
    const ops = [];
    const floats = [];
    let at = 0;
    for (const op of all) {
      const dim = op.deleted ? 0 : op.dim;
      if (op.site === this.co.site) {
        if (!op.deleted) {
          // A memory database keeps its vectors in the page's replica, not in SQLite.
          const vector = c.copy ? c.copy[w].get(op.id)?.[1] : out.vectors.subarray(at, at + dim);
          floats.push(vector);
          op.dim = vector.length;
        }
        delete op.seq;
        ops.push(op);
      }
      at += dim;
    }
    return { ops, vectors: flatten(floats), upto };
  }

  /**
   * Applies other sites' ops (`ops` as the codec decodes them, `vectors` theirs back to
   * back) on the workers that own their ids, each where it wins; returns the ids of
   * those applied. Each worker's part is one transaction; a session re-sends what a
   * crash cut off, and applying an op twice changes nothing.
   */
  apply(ops, vectors) {
    return this.co.write(async () => {
      const c = await this.co.placements.get(this.name);
      const parts = new Map();
      let at = 0;
      for (const op of ops) {
        const dim = op.deleted ? 0 : op.dim;
        const w = this.co.placements.owner(c, op.id);
        if (!parts.has(w)) parts.set(w, { ops: [], floats: [] });
        const part = parts.get(w);
        part.ops.push(op);
        part.floats.push(vectors.subarray(at, at + dim));
        at += dim;
      }
      const applied = [];
      await Promise.all(
        [...parts].map(async ([w, part]) => {
          const args = { collection: this.name, ops: JSON.stringify(part.ops), vectors: flatten(part.floats) };
          const { applied: won, count } = await this.co.pool.call(w, "applyOps", args);
          part.ops.forEach((op, j) => {
            if (!won[j]) return;
            applied.push(op.id);
            if (!c.copy) return;
            if (op.deleted) c.copy[w].delete(op.id);
            else c.copy[w].publish(c.copy[w].reserve([part.floats[j]]), [op.id], [op.metadata === null ? "null" : JSON.stringify(op.metadata)], [op.text]);
          });
          c.counts[w] = count;
        }),
      );
      return applied;
    });
  }

  /** Every id the collection holds. */
  ids() {
    return this.co.ids(this.name);
  }

  /** Deletes `ids` as a local write (pushed like any other); returns them. */
  async remove(ids) {
    await this.co.delete(this.name, ids);
    return ids;
  }

  /** The session's cursors for `room`, kept in worker 0's file: `{ since, pushed }`. */
  async cursors(room) {
    const text = await this.co.pool.call(0, "getMeta", { key: this.#key(room) });
    const saved = text ? JSON.parse(text) : null;
    // Per-worker cursors mean nothing to a pool of another size: send everything again
    // (the relay keeps one copy of each op).
    const pushed = saved?.workers === this.co.pool.size ? saved.pushed : new Array(this.co.pool.size).fill(0);
    return { since: saved?.since ?? 0, pushed };
  }

  saveCursors(room, { since, pushed }) {
    const value = JSON.stringify({ since, pushed, workers: this.co.pool.size });
    return this.co.pool.call(0, "setMeta", { key: this.#key(room), value });
  }

  #key(room) {
    return `sync:${this.name}:${room}`;
  }

  encode(message, vectors = new Float32Array(0)) {
    return this.co.pool.call(0, "encodeFrame", { message: JSON.stringify(message), vectors });
  }

  async decode(bytes) {
    const { message, vectors } = await this.co.pool.call(0, "decodeFrame", { bytes });
    return { message: JSON.parse(message), vectors };
  }
}

/** Vectors back to back in one array, as the workers take a batch's. */
function flatten(vectors) {
  const out = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
  vectors.reduce((offset, v) => (out.set(v, offset), offset + v.length), 0);
  return out;
}
