// Request/response over postMessage to one store worker. Big arrays are transferred,
// not copied; every pending call fails with WORKER_LOST if the worker dies.
import { QuiverError } from "./errors.js";

export class WorkerClient {
  constructor() {
    this.worker = new Worker(new URL("../workers/store-worker.js", import.meta.url), { type: "module" });
    this.next = 1;
    this.pending = new Map();
    this.spare = null;
    this.worker.onmessage = ({ data }) => {
      if (data.buffer && (!this.spare || data.buffer.byteLength > this.spare.byteLength)) this.spare = data.buffer;
      const p = this.pending.get(data.id);
      if (!p) return;
      this.pending.delete(data.id);
      if (data.ok) p.resolve(data.value);
      else p.reject(new QuiverError(data.error.code, data.error.message));
    };
    const lost = (why) => {
      for (const p of this.pending.values()) p.reject(new QuiverError("WORKER_LOST", `the store worker stopped: ${why}`));
      this.pending.clear();
    };
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      lost(e.message || "error");
    };
    this.worker.onmessageerror = () => lost("a message could not be deserialised");
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
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  terminate() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new QuiverError("CLOSED", "the database was closed"));
    this.pending.clear();
  }
}
