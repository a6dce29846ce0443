// IndexedDB storage for a worker's database, where OPFS is missing: the database runs in
// memory, and IndexedDB keeps an image of it (the bytes of its SQLite file) plus a log of
// the writes made since. A write is acknowledged once its log record has committed, so
// reopening (image, then the log replayed in order) finds every acknowledged write and
// no other. When the log grows, or on close, a fresh image replaces image and log in
// one IndexedDB transaction.
//
// There is no SQLite VFS over IndexedDB for sqlite-wasm-rs: IndexedDB is asynchronous
// and SQLite's I/O is not. A log of whole writes needs none.

/** Bytes an image chunk holds: IndexedDB stores large values less well than several. */
export const CHUNK = 16 << 20;

const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

const committed = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
  });

export class IdbLog {
  #db;
  /** Log records since the image, and their payload bytes (for when to checkpoint). */
  records = 0;
  bytes = 0;

  /** Opens (creating it if missing) the IndexedDB database `name`. */
  static async open(name) {
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("image");
      request.result.createObjectStore("log", { autoIncrement: true });
    };
    const log = new IdbLog();
    log.#db = await done(request);
    return log;
  }

  /**
   * The image, in order, as the Uint8Array chunks it was stored in (none before the
   * first checkpoint), and the log records.
   */
  async load() {
    const tx = this.#db.transaction(["image", "log"], "readonly");
    const [chunks, records] = await Promise.all([done(tx.objectStore("image").getAll()), done(tx.objectStore("log").getAll())]);
    this.records = records.length;
    this.bytes = 0;
    return { image: chunks.map((c) => new Uint8Array(c)), records };
  }

  /**
   * Appends a write, `{op, args}`, to the log. Its transaction is created here, so
   * records commit in the order of the calls; the promise settles when it has.
   */
  append(record, bytes) {
    const tx = this.#db.transaction("log", "readwrite", { durability: "strict" });
    tx.objectStore("log").add(record);
    this.records++;
    this.bytes += bytes;
    return committed(tx);
  }

  /**
   * Replaces image and log with `chunks` (the image as Uint8Arrays of CHUNK bytes, each
   * on a buffer of its own), atomically.
   */
  checkpoint(chunks) {
    const tx = this.#db.transaction(["image", "log"], "readwrite", { durability: "strict" });
    const store = tx.objectStore("image");
    store.clear();
    chunks.forEach((chunk, i) => store.put(chunk.buffer, i));
    tx.objectStore("log").clear();
    this.records = 0;
    this.bytes = 0;
    return committed(tx);
  }

  close() {
    this.#db.close();
  }
}
