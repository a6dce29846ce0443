// OPFS storage: the database is a SQLite file in a pool of OPFS files (the sahpool
// VFS, one pool directory a worker: a pool holds its files exclusively), and each
// large collection's search copy is cached in a segment file beside it, so that
// reopening reads it in a few large reads. Interface: see memory.js.
import { SegmentFiles } from "./segment-files.js";

export class OpfsStorage {
  durable = true;
  #closed = false;
  #core;
  #vfs;
  #files;

  static async open(core, { db, site, directory }) {
    const vfs = `quiver-${db}`;
    await withRetries(() => core.installOpfs(vfs, directory));
    const d = core.Db.openPersistent("/quiver.sqlite", vfs, site);
    const files = await SegmentFiles.at(`${directory}-segments`);
    await withRetries(() => files.keep(d.segmentKeys()));
    d.setSegmentFiles(files);
    return new OpfsStorage(core, d, vfs, files);
  }

  constructor(core, db, vfs, files) {
    this.#core = core;
    this.db = db;
    this.#vfs = vfs;
    this.#files = files;
  }

  /** SQLite has made the write durable before the core answered. */
  record(op, args, value) {
    return value;
  }

  /**
   * Writes the segments that have fallen due. A segment is a cache of what is durable
   * already, so one that cannot be written now (out of space, or its collection
   * dropped meanwhile) costs load time later, nothing else.
   */
  async checkpoint() {
    for (const [collection, key] of this.db.segmentsDue()) {
      // A close while a file was being opened ends it: its handles are gone.
      if (this.#closed) return;
      try {
        await this.#files.ensure(key);
        if (!this.#closed) this.db.writeSegment(collection);
      } catch {
        // The next checkpoint tries again.
      }
    }
  }

  close() {
    this.#closed = true;
    this.db.free();
    this.#files.close();
    // Lets go of the pool's files at once, for the next worker to open them.
    this.#core.uninstallOpfs(this.#vfs);
  }
}

/**
 * Runs `f` until it stops failing for a file held by another worker, up to ~3 s: a
 * worker that has just died (or a page just reloaded) lets go of its OPFS handles
 * only a moment later.
 */
async function withRetries(f) {
  for (let delay = 25; ; delay *= 2) {
    try {
      return await f();
    } catch (e) {
      // A DOMException from OPFS names it in `name`; the core's errors carry it in the text.
      const held = e.name === "NoModificationAllowedError" || String(e.message).includes("NoModificationAllowedError");
      if (delay > 1600 || !held) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
