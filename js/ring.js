// The query ring: one SharedArrayBuffer between the page and a store worker, through
// which searches go out and results come back without postMessage. Both sides import
// this file, so the layout is written down once.
//
// Header (Int32): YIELDS counts the messages the page has posted: while the worker has
// not handled that many, it leaves its loop so the event loop can deliver them.
// COMPLETED is bumped by the worker whenever a slot is done; the page waits on it with
// waitAsync.
//
// Doorbells: one Int32 a worker, in a SharedArrayBuffer of the pool's. Worker i sleeps
// on doorbell i with Atomics.wait; it is rung whenever there is work for it (a request
// in a slot, or a message the page wants it to read), by the page or by another worker:
// a request may name workers to wake (`wake`), which its worker rings as it starts it.
// A worker that has answered a request the page polls for (`quick`) polls its doorbell
// a moment before it sleeps, as the page's next request usually follows at once.
// The page wakes only the first worker of a search spread over idle workers and that
// worker wakes the rest, because when the page woke them all itself the kernel of a
// 2-core VM sometimes queued two of them on one core, behind each other, for the whole
// scan (1 search in 10; see README, "The worker pool").
//
// A slot: a header of SLOT_HEADER Int32s, then the query's floats, then UTF-8 JSON
// (the request's collection and options going out, the result coming back).

export const YIELDS = 0;
export const COMPLETED = 1;
const HEADER_BYTES = 64;

export const SLOTS = 32;
export const SLOT_BYTES = 64 * 1024;
const SLOT_HEADER = 8;

// Slot states. The page owns FREE and DONE slots, the worker READY and BUSY ones.
export const FREE = 0;
export const READY = 1;
export const BUSY = 2;
export const DONE = 3;

// Slot header fields.
const STATE = 0;
const FLOATS = 1;
const TEXT_BYTES = 2;
const STATUS = 3;
/** Set by the page on a request it takes back after the worker took it, before it began. */
const DROPPED = 4;

// Result statuses.
export const OK = 0;
export const FAILED = 1;
/** The result did not fit in the slot and was posted as a message instead. */
export const POSTED = 2;

/** Polls `cells[i]` for up to `ms`: whether it moved from `seen`. */
function moved(cells, i, seen, ms) {
  const until = performance.now() + ms;
  while (Atomics.load(cells, i) === seen) if (performance.now() > until) return false;
  return true;
}

export const ringBytes = () => HEADER_BYTES + SLOTS * SLOT_BYTES;
export const doorbellBytes = (workers) => workers * 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A view of worker `index`'s ring and of the pool's doorbells, as either side sees them. */
export class Ring {
  constructor(buffer, doorbells, index) {
    this.buffer = buffer;
    this.doorbells = new Int32Array(doorbells);
    this.index = index;
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.slots = Array.from({ length: SLOTS }, (_, i) => {
      const at = HEADER_BYTES + i * SLOT_BYTES;
      return {
        ints: new Int32Array(buffer, at, SLOT_HEADER),
        bytes: new Uint8Array(buffer, at + SLOT_HEADER * 4, SLOT_BYTES - SLOT_HEADER * 4),
        at: at + SLOT_HEADER * 4,
      };
    });
  }

  state(i) {
    return Atomics.load(this.slots[i].ints, STATE);
  }

  /** Moves slot `i` from state `from` to `to`; false if another side got there first. */
  swap(i, from, to) {
    return Atomics.compareExchange(this.slots[i].ints, STATE, from, to) === from;
  }

  /** Asks the worker to skip slot `i`'s request if it has taken it but not begun it. */
  drop(i) {
    Atomics.store(this.slots[i].ints, DROPPED, 1);
  }

  /** Whether the page has taken back slot `i`'s request (see {@link Ring#drop}). */
  dropped(i) {
    return Atomics.load(this.slots[i].ints, DROPPED) === 1;
  }

  bump(field) {
    Atomics.add(this.header, field, 1);
    Atomics.notify(this.header, field);
  }

  /** Rings worker `i`'s doorbell (this ring's worker by default). */
  wake(i = this.index) {
    Atomics.add(this.doorbells, i, 1);
    Atomics.notify(this.doorbells, i);
  }

  /** The doorbell's count now: the worker reads it before looking for work. */
  doorbell() {
    return Atomics.load(this.doorbells, this.index);
  }

  /** Polls the doorbell for up to `ms` (the worker's side): whether it moved from `seen`. */
  poll(seen, ms) {
    return moved(this.doorbells, this.index, seen, ms);
  }

  /** Polls COMPLETED for up to `ms` (the page's side): whether it moved from `seen`. */
  pollCompleted(seen, ms) {
    return moved(this.header, COMPLETED, seen, ms);
  }

  /** Sleeps the worker until its doorbell moves from `seen`, or `ms` pass. */
  sleep(seen, ms) {
    return Atomics.wait(this.doorbells, this.index, seen, ms);
  }

  /**
   * Writes a request (floats, then a JSON text) into free slot `i`, where the worker
   * takes it once woken. Returns false, writing nothing, when it does not fit.
   */
  submit(i, floats, text) {
    const s = this.slots[i];
    const floatBytes = floats.length * 4;
    // Chromium's encodeInto refuses shared memory: encode, then copy.
    const bytes = encoder.encode(text);
    if (floatBytes + bytes.length > s.bytes.length) return false;
    new Float32Array(this.buffer, s.at, floats.length).set(floats);
    s.bytes.set(bytes, floatBytes);
    s.ints[FLOATS] = floats.length;
    s.ints[TEXT_BYTES] = bytes.length;
    s.ints[DROPPED] = 0;
    Atomics.store(s.ints, STATE, READY);
    return true;
  }

  /** The worker's view of a READY slot it has claimed: the floats and the parsed text. */
  request(i) {
    const s = this.slots[i];
    const n = s.ints[FLOATS];
    const floats = new Float32Array(n);
    floats.set(new Float32Array(this.buffer, s.at, n));
    const text = decoder.decode(s.bytes.slice(n * 4, n * 4 + s.ints[TEXT_BYTES]));
    return { floats, request: JSON.parse(text) };
  }

  /** Writes a result (JSON text) or posts it when it does not fit; marks the slot DONE. */
  complete(i, status, text, post) {
    const s = this.slots[i];
    const bytes = encoder.encode(text);
    if (bytes.length > s.bytes.length) {
      post(text);
      status = POSTED;
    } else {
      s.bytes.set(bytes);
      s.ints[TEXT_BYTES] = bytes.length;
    }
    s.ints[STATUS] = status;
    Atomics.store(s.ints, STATE, DONE);
    this.bump(COMPLETED);
  }

  /** The page's view of a DONE slot: its status and result text (null when POSTED). */
  result(i) {
    const s = this.slots[i];
    const status = s.ints[STATUS];
    const text = status === POSTED ? null : decoder.decode(s.bytes.slice(0, s.ints[TEXT_BYTES]));
    return { status, text };
  }
}
