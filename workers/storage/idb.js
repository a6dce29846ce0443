// IndexedDB storage, where OPFS is missing: the database runs in memory, and an
// IndexedDB log (idb-log.js) keeps an image of it plus the writes made since. A write
// is acknowledged once its log record has committed. Interface: see memory.js.
import { IdbLog, CHUNK } from "./idb-log.js";
import { WRITES } from "./writes.js";
import { fail } from "../errors.js";

/** Log this many bytes of writes (or records) and the next quiet moment writes an image. */
const LOG_BYTES = 32 << 20;
const LOG_RECORDS = 1000;

export class IdbStorage {
  durable = true;
  #core;
  #log;
  #site;

  static async open(core, { site, directory }) {
    const log = await IdbLog.open(directory);
    return new IdbStorage(core, log, site, await fromLog(core, log, site));
  }

  constructor(core, log, site, db) {
    this.#core = core;
    this.#log = log;
    this.#site = site;
    this.db = db;
  }

  /**
   * Logs write `op`; the answer waits for the log. If the log cannot take it (out of
   * quota), the database is reopened from the log, so the write is undone as it failed.
   */
  record(op, args, value) {
    const { db: _, ...rest } = args;
    return this.#log.append({ op, args: rest }, (rest.vectors ?? rest.bytes)?.byteLength ?? 0).then(
      () => value,
      async (e) => {
        this.db.free();
        this.db = await fromLog(this.#core, this.#log, this.#site);
        const why = e?.message || e?.name || String(e);
        throw e?.name === "QuotaExceededError"
          ? fail("QUOTA_EXCEEDED", `storage: IndexedDB is out of quota (${why})`)
          : fail("STORAGE", `storage: IndexedDB: ${why}`);
      },
    );
  }

  /** Replaces image and log with a fresh image once the log has grown (on close, if it has any record). */
  async checkpoint(closing = false) {
    const log = this.#log;
    const due = closing ? log.records > 0 : log.bytes > LOG_BYTES || log.records > LOG_RECORDS;
    // The log holds every write already: a failed checkpoint costs replay time, nothing else.
    if (due) await log.checkpoint(this.db.toChunks(CHUNK)).catch(() => {});
  }

  close() {
    this.#log.close();
    this.db.free();
  }
}

/** The database a log holds: its image, then its writes replayed in order. */
async function fromLog(core, log, site) {
  const { image, records } = await log.load();
  const d = image.length > 0 ? core.Db.fromChunks(image, site, false) : new core.Db(site);
  for (const { op, args } of records) WRITES[op](d, args);
  return d;
}
