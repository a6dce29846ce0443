// One store worker, seen from the page: request/response over postMessage for setup
// and bulk data (big arrays transferred, not copied), and searches through the query
// ring when the page is cross-origin isolated.
import { QuiverError } from "./errors.js";
import { Ring, ringBytes, SLOTS, FREE, READY, DONE, COMPLETED, YIELDS, OK, POSTED } from "./ring.js";

let workers = 0;

/**
 * Longest the page polls for a ring answer before it waits asynchronously, ms: about
 * a graph search at ef 100 or so; the wake from waitAsync costs 0.1-0.2 ms.
 */
const SPIN_MS = 0.5;

export class WorkerClient {
  /**
   * Starts a worker running `build`. `onLost(why)` is called once if it dies: every
   * call in flight has then failed with WORKER_LOST. `spawn` starts another kind of
   * worker that answers the same messages (the embedder's), `name` names it in errors.
   */
  constructor(onLost, { spawn, name = "store worker" } = {}) {
    this.worker = spawn ? spawn() : new Worker(new URL("../workers/store-worker.js", import.meta.url), { type: "module" });
    this.name = name;
    this.lock = `quiver-worker-${crypto.randomUUID?.() ?? Math.random()}-${++workers}`;
    this.next = 1;
    this.pending = new Map();
    this.spare = null;
    this.ring = null;
    this.alive = true;
    this.onLost = onLost;
    this.worker.onmessage = ({ data }) => this.#message(data);
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this.#lost(e.message || "its script failed to load");
    };
    this.worker.onmessageerror = () => this.#lost("a message could not be deserialised");
  }

  /** Loads the wasm build in the worker (with `args` besides); returns what init answers. */
  async init(build, args = {}, transfer = []) {
    const chosen = await this.call("init", { build, lock: this.lock, ...args }, transfer);
    // The worker holds its lock until it is gone; being granted it means just that.
    navigator.locks?.request(this.lock, () => this.#lost("it stopped"));
    return chosen;
  }

  /** Moves searches onto a SharedArrayBuffer ring; the worker is `index` of `doorbells`. */
  async useRing(doorbells, index) {
    const ring = new Ring(new SharedArrayBuffer(ringBytes()), doorbells, index);
    await this.call("ring", { buffer: ring.buffer, doorbells, index });
    this.ring = ring;
    this.free = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
    this.inRing = new Map();
    this.awaitingPost = new Set();
    this.postedText = new Map();
    this.seen = 0;
    this.waiting = false;
  }

  #message(data) {
    if (data.ring !== undefined) return this.#ringPosted(data.ring, data.text);
    if (data.buffer && (!this.spare || data.buffer.byteLength > this.spare.byteLength)) this.spare = data.buffer;
    const p = this.pending.get(data.id);
    if (!p) return;
    this.pending.delete(data.id);
    if (data.ok) p.resolve(data.value);
    else p.reject(new QuiverError(data.error.code, data.error.message));
  }

  #lost(why) {
    if (!this.alive) return;
    this.alive = false;
    this.worker.terminate();
    const error = () => new QuiverError("WORKER_LOST", `the ${this.name} stopped (${why}); retry the call`);
    for (const p of this.pending.values()) p.reject(error());
    this.pending.clear();
    for (const p of this.inRing?.values() ?? []) p.reject(error());
    this.inRing?.clear();
    this.onLost?.(why);
  }

  /** A Float32Array of `length` floats, on a buffer the worker handed back if one fits. */
  floats(length) {
    const spare = this.spare;
    if (spare && spare.byteLength >= length * 4) {
      this.spare = null;
      return new Float32Array(spare, 0, length);
    }
    return new Float32Array(length);
  }

  /** Sends `op` with `args`; `transfer` lists buffers whose ownership moves to the worker. */
  call(op, args = {}, transfer = []) {
    if (!this.alive) return Promise.reject(new QuiverError("WORKER_LOST", `the ${this.name} has stopped`));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A worker serving the ring reads messages only when told that one is waiting.
      if (this.ring) {
        Atomics.add(this.ring.header, YIELDS, 1);
        this.ring.wake();
      }
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  /**
   * Sends a search through the ring: `floats` and the JSON `request`; `quick` says it
   * should take the worker only microseconds; `silent` leaves waking the worker to
   * another, whose request names it. Returns the slot and a promise of the result
   * text, or null when the ring is full or the request does not fit (the caller then
   * sends a message).
   */
  ringCall(floats, request, quick, silent = false) {
    if (!this.ring || this.free.length === 0) return null;
    const slot = this.free[this.free.length - 1];
    if (!this.ring.submit(slot, floats, request)) return null;
    if (!silent) this.ring.wake();
    this.free.pop();
    const promise = new Promise((resolve, reject) => this.inRing.set(slot, { resolve, reject }));
    if (!(quick && this.inRing.size === 1 && this.#spin())) this.#watch();
    return { slot, promise };
  }

  /** Has room in the ring for another request. */
  ringOpen() {
    return this.ring !== null && this.alive && this.free.length > 0;
  }

  /** Has no request in the ring: its worker is asleep or about to be. */
  ringIdle() {
    return this.ringOpen() && this.inRing.size === 0;
  }

  /**
   * Takes back a request the worker has not begun, for a caller that no longer waits
   * for it: one still waiting is freed at once (its promise never settles); one the
   * worker has taken with others is skipped, and its slot comes back answered ABORTED.
   */
  cancel(slot) {
    if (!this.inRing.has(slot)) return;
    if (!this.ring.swap(slot, READY, FREE)) return this.ring.drop(slot);
    this.inRing.delete(slot);
    this.free.push(slot);
  }

  /**
   * Polls for a lone quick request's answer for up to SPIN_MS: waking the page from
   * waitAsync costs more than a small search or a graph's search takes
   * (docs/BENCHMARKS.md, "Design measurements"). Only for those, in one worker, so
   * that a long scan never costs the page a core the workers need.
   */
  #spin() {
    if (!this.ring.pollCompleted(this.seen, SPIN_MS)) return false;
    this.#harvest();
    return true;
  }

  /** Waits (without blocking the page) for the worker to finish slots. */
  #watch() {
    if (this.waiting || !this.alive) return;
    this.waiting = true;
    const { async, value } = Atomics.waitAsync(this.ring.header, COMPLETED, this.seen);
    if (async) value.then(() => this.#harvest());
    else queueMicrotask(() => this.#harvest());
  }

  #harvest() {
    this.waiting = false;
    if (!this.alive) return;
    this.seen = Atomics.load(this.ring.header, COMPLETED);
    for (const slot of this.inRing.keys()) {
      if (this.ring.state(slot) !== DONE || this.awaitingPost.has(slot)) continue;
      const { status, text } = this.ring.result(slot);
      if (status !== POSTED) this.#finish(slot, status, text);
      else if (this.postedText.has(slot)) this.#finish(slot, OK, this.postedText.get(slot));
      else this.awaitingPost.add(slot);
    }
    if (this.inRing.size > 0) this.#watch();
    this.onRingSpace?.();
  }

  /** A result too large for its slot arrives as a message, before or after DONE. */
  #ringPosted(slot, text) {
    if (this.awaitingPost.has(slot)) {
      this.#finish(slot, OK, text);
      this.onRingSpace?.();
    } else this.postedText.set(slot, text);
  }

  #finish(slot, status, text) {
    const p = this.inRing.get(slot);
    this.inRing.delete(slot);
    this.awaitingPost.delete(slot);
    this.postedText.delete(slot);
    this.ring.swap(slot, DONE, FREE);
    this.free.push(slot);
    if (status === OK) p.resolve(text);
    else {
      const { code, message } = JSON.parse(text);
      p.reject(new QuiverError(code, message));
    }
  }

  /** Stops the worker; calls in flight fail with CLOSED and `message`. */
  terminate(message = "the database was closed") {
    this.alive = false;
    this.worker.terminate();
    const closed = () => new QuiverError("CLOSED", message);
    for (const p of this.pending.values()) p.reject(closed());
    this.pending.clear();
    for (const p of this.inRing?.values() ?? []) p.reject(closed());
    this.inRing?.clear();
  }
}
