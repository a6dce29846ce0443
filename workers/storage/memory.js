// Memory storage: the database lives in the worker's wasm memory and goes with it.
// SQLite stores no vectors here: the page's replica keeps every exact vector (to
// reload a restarted worker) and the search copy its prepared one, so a third copy
// would only cost memory; `get` and `rows` answer empty vectors the page fills in.
// What every storage offers (see also opfs.js and idb.js):
//   static open(core, {db, site, directory}) -> the storage, its database open
//   db          the core database (a core.Db), to read from
//   durable     whether its writes outlive the worker
//   record(op, args, value)  records write `op` (done already, answering `value`),
//               resolving with `value` once it is as durable as this storage makes it
//   checkpoint(closing)      writes the caches that have fallen due (async)
//   close()
export class MemoryStorage {
  durable = false;

  static async open(core, { site }) {
    return new MemoryStorage(core.Db.withoutVectors(site));
  }

  constructor(db) {
    this.db = db;
  }

  record(op, args, value) {
    return value;
  }

  async checkpoint() {}

  close() {
    this.db.free();
  }
}
