// The worker pool: N store workers, each its own wasm instance and its own database,
// restarted when one dies. Searches go through each worker's query ring; when the page
// is not cross-origin isolated, through messages.
import { QuiverError } from "./errors.js";
import { WorkerClient } from "./client.js";
import { doorbellBytes } from "./ring.js";

let warned = false;

/** Restarts in a row a worker gets before the pool gives up on it. */
const MAX_RESTARTS = 3;

/** Whether this page can share memory with its workers. */
export const canShare = () => typeof SharedArrayBuffer === "function" && globalThis.crossOriginIsolated === true;

export class Pool {
  #clients = [];
  #ready = [];
  #queues = [];
  #restarts = [];
  #spawns = [];
  #closed = false;

  /**
   * @param {{size: number, build: string, db: string, site: string, storage: string,
   *   maxBytes?: number, loaded?: number, ring: boolean, restore: (i: number, call: Function) => Promise<void>}} options
   *   `restore` reloads worker i's data after a restart, calling it through `call`.
   */
  constructor({ size, build, db, site, storage, maxBytes, loaded, ring, restore }) {
    this.size = size;
    this.maxBytes = maxBytes;
    this.loaded = loaded;
    this.build = build;
    this.db = db;
    this.site = site;
    this.storage = storage;
    this.ring = ring;
    this.restore = restore;
    this.doorbells = ring ? new SharedArrayBuffer(doorbellBytes(size)) : null;
    if (!ring && !warned) {
      warned = true;
      console.info(
        "quiver: this page is not cross-origin isolated (no COOP/COEP headers), so searches reach the " +
          "workers by postMessage instead of a SharedArrayBuffer ring, which costs more per query.",
      );
    }
  }

  /** Starts every worker; resolves with the build they run. */
  async start() {
    const first = await this.#spawn(0, this.build);
    this.build = first;
    await Promise.all(Array.from({ length: this.size - 1 }, (_, i) => this.#spawn(i + 1, first)));
    return first;
  }

  /** How many times worker i has been started: names its incarnation. */
  incarnation(i) {
    return this.#spawns[i];
  }

  async #spawn(i, build) {
    this.#spawns[i] = (this.#spawns[i] ?? 0) + 1;
    const client = new WorkerClient(() => this.#lost(i, client));
    this.#clients[i] = client;
    this.#queues[i] ??= [];
    client.onRingSpace = () => this.#pump(i);
    try {
      const chosen = await client.init(build);
      // Each worker keeps its partition in an OPFS directory of its own: the pool of
      // files behind it is held by one worker at a time.
      const directory = `quiver/${encodeURIComponent(this.db)}/w${i}`;
      this.storage = await client.call("open", {
        db: this.db,
        site: this.site,
        storage: this.storage,
        directory,
        maxBytes: this.maxBytes,
        loaded: this.loaded,
      });
      if (this.ring) await client.useRing(this.doorbells, i);
      return chosen;
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /**
   * A worker died: start another in its place and have its data reloaded. After
   * MAX_RESTARTS failures in a row, calls to it fail instead of restarting forever.
   */
  #lost(i, client) {
    if (this.#closed || this.#clients[i] !== client) return;
    // It may have died before waking the other workers of a search (see searchAll):
    // wake them, so their parts do not sit in their rings until something else does.
    for (const c of this.#clients) if (c !== client && c.ring) c.ring.wake();
    const queued = this.#queues[i].splice(0);
    for (const q of queued) q.reject(new QuiverError("WORKER_LOST", "a store worker stopped; retry the call"));
    this.#restarts[i] = (this.#restarts[i] ?? 0) + 1;
    if (this.#restarts[i] > MAX_RESTARTS) {
      this.#ready[i] = Promise.reject(new QuiverError("WORKER_LOST", `a store worker failed ${MAX_RESTARTS} restarts in a row`));
      this.#ready[i].catch(() => {});
      return;
    }
    this.#ready[i] = (async () => {
      await this.#spawn(i, this.build);
      await this.restore(i, (op, args, transfer) => this.#clients[i].call(op, { db: this.db, ...args }, transfer));
      this.#ready[i] = null;
      this.#restarts[i] = 0;
      this.#pump(i);
    })();
    this.#ready[i].catch((e) => console.error("quiver: could not restart a store worker:", e));
  }

  /** Sends `op` to worker i by message (waiting out a restart). */
  async call(i, op, args = {}, transfer = []) {
    if (this.#ready[i]) await this.#ready[i];
    return this.#clients[i].call(op, { db: this.db, ...args }, transfer);
  }

  /** Sends `op` to every worker; resolves with their answers in order. */
  all(op, args = {}) {
    return Promise.all(Array.from({ length: this.size }, (_, i) => this.call(i, op, args)));
  }

  /** A buffer worker i handed back, to fill for the next batch sent to it. */
  floats(i, length) {
    return this.#clients[i].floats(length);
  }

  /**
   * Runs a search op (`search` or `searchMany`) on worker i: through its ring when there
   * is one, else by message. `cancel` collects a function that withdraws the request;
   * `quick` says the search is small enough to answer within the page's polling budget
   * (client.js), and goes in the request so that the worker polls too; `silent` that
   * the page is not to wake the worker, because another worker's request names it.
   */
  search(i, op, floats, request, cancel, quick = false, silent = false) {
    return new Promise((resolve, reject) => {
      const job = { op, floats, request, resolve, reject, cancelled: false, quick, silent };
      cancel.push(() => {
        job.cancelled = true;
        if (job.slot !== undefined) this.#clients[i].cancel(job.slot);
      });
      this.#queues[i].push(job);
      this.#pump(i);
    });
  }

  /**
   * Runs a search op on each of `owners`; returns the promises of their answers
   * (`quick` as for {@link Pool#search}). When every owner's ring is idle, the page
   * wakes only the first, whose request names the others for it to wake as it starts
   * (why: ring.js).
   */
  searchAll(owners, op, floats, request, cancel, quick = false) {
    const chain = owners.length > 1 && owners.every((i) => !this.#ready[i] && this.#queues[i].length === 0 && this.#clients[i].ringIdle());
    if (!chain) return owners.map((i) => this.search(i, op, floats, request, cancel, quick));
    // The others' requests go in first, so that none is woken before its slot is written.
    const rest = owners.slice(1).map((i) => this.search(i, op, floats, request, cancel, false, true));
    return [this.search(owners[0], op, floats, { ...request, wake: owners.slice(1) }, cancel), ...rest];
  }

  /** Starts queued searches on worker i while its ring has room. */
  #pump(i) {
    const queue = this.#queues[i];
    if (this.#ready[i]) {
      if (queue.length) this.#ready[i].then(() => this.#pump(i));
      return;
    }
    const client = this.#clients[i];
    while (queue.length) {
      const job = queue[0];
      if (job.cancelled) {
        queue.shift();
        continue;
      }
      if (client.ring && !client.ringOpen()) return;
      // Off the queue first: a quick answer may come back, and pump again, before
      // ringCall returns.
      queue.shift();
      const text = JSON.stringify({ op: job.op, db: this.db, ...job.request, ...(job.quick && { quick: true }) });
      let sent = client.ring ? client.ringCall(job.floats, text, job.quick, job.silent) : null;
      if (!sent) {
        // A message cannot wake the workers the request names: wake them from here.
        for (const j of job.request.wake ?? []) this.#clients[j].ring.wake();
        sent = { promise: this.#message(client, job) };
      }
      job.slot = sent.slot;
      sent.promise.then(job.resolve, job.reject);
    }
  }

  #message(client, { op, floats, request }) {
    const q = Float32Array.from(floats);
    const key = op === "search" ? "query" : "queries";
    return client.call(op, { db: this.db, ...request, [key]: q }, [q.buffer]);
  }

  /** Stops every worker; calls in flight fail with CLOSED. */
  async close() {
    if (this.#closed) return;
    await Promise.allSettled(this.#clients.map((c) => c.call("close", { db: this.db })));
    this.#closed = true;
    for (const c of this.#clients) c.terminate();
    for (const q of this.#queues) for (const job of q.splice(0)) job.reject(new QuiverError("CLOSED", "the database was closed"));
  }

  /** @internal the Worker objects, for tests that kill one. */
  get workers() {
    return this.#clients.map((c) => c.worker);
  }
}
