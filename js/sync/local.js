// The local side of a sync session: a collection's changes read as ops from each
// worker that owns part of it, other sites' ops written to the workers that own their
// ids, and the session's cursors kept in the database. The workers do the work (the
// core's LWW merge and the wire codec); this routes and keeps the page's replica in
// step, as Coordinator.upsert does for a write.
import { flatten, split } from "../placement.js";
import { isOps } from "./transport.js";

/** Ops read from a worker at a time: one push frame's worth. */
export const OPS_PER_READ = 512;
/** Frames at most this long carry no vector worth handing a worker whole. */
const SMALL_FRAME_BYTES = 256;

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
    const placements = this.co.placements;
    const { ops: all, vectors, upto } = await placements.ops(await placements.get(this.name), w, after, OPS_PER_READ);
    const floats = split(all, vectors);
    const ops = [];
    const own = [];
    all.forEach((op, j) => {
      if (op.site !== this.co.site) return;
      delete op.seq;
      ops.push(op);
      own.push(floats[j]);
    });
    return { ops, vectors: flatten(own), upto };
  }

  /**
   * The next Push frame, numbered `batch`, of worker w's changes after `after`:
   * `{ frame, upto, count }`, `frame` null when none of the changes read is this
   * site's. The worker reads and encodes in one call; a memory database's vectors are
   * in the page's replica, so there the page fills them in between.
   */
  async push(w, after, batch) {
    const c = await this.co.placements.get(this.name);
    if (!c.copy) return this.co.pool.call(w, "pushFrame", { collection: this.name, after, limit: OPS_PER_READ, batch });
    const { ops, vectors, upto } = await this.read(w, after);
    return { frame: ops.length ? await this.encode({ type: "push", batch, ops }, vectors) : null, upto, count: ops.length };
  }

  /**
   * A frame from the relay, decoded: `{ message, ids }`, `ids` those of an Ops frame's
   * ops that won and were applied on the workers that own them. Each worker's part is
   * one transaction; a session re-sends what a crash cut off, and applying an op twice
   * changes nothing. An Ops frame with vectors goes whole to a collection held by one
   * worker, to be decoded and applied in one call; a small frame (an ack, a new
   * cursor, a few deletes) is decoded first, outside the writes, and needs none
   * unless it holds ops.
   */
  async receive(bytes) {
    const placements = this.co.placements;
    if (isOps(bytes) && bytes.length > SMALL_FRAME_BYTES) {
      return this.co.write(async () => {
        const c = await placements.get(this.name);
        const owners = placements.owners(c);
        if (owners.length > 1) return this.#route(c, await this.decode(bytes));
        const out = await this.co.pool.call(owners[0], "applyFrame", { collection: this.name, bytes }, [bytes.buffer]);
        const message = JSON.parse(out.message);
        return { message, ids: placements.applied(c, owners[0], message.ops, split(message.ops, out.vectors), out) };
      });
    }
    const decoded = await this.decode(bytes);
    if (decoded.message.type !== "ops" || decoded.message.ops.length === 0) return { message: decoded.message, ids: [] };
    return this.co.write(async () => this.#route(await placements.get(this.name), decoded));
  }

  /** Applies a decoded Ops frame's ops on the workers that own their ids. */
  async #route(c, { message, vectors }) {
    const placements = this.co.placements;
    const parts = new Map();
    const floats = split(message.ops, vectors);
    message.ops.forEach((op, j) => {
      const w = placements.owner(c, op.id);
      if (!parts.has(w)) parts.set(w, { ops: [], floats: [] });
      parts.get(w).ops.push(op);
      parts.get(w).floats.push(floats[j]);
    });
    const ids = await Promise.all([...parts].map(([w, part]) => placements.applyOps(c, w, part.ops, part.floats)));
    return { message, ids: ids.flat() };
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
