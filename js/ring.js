// The query ring: one SharedArrayBuffer between the page and a store worker, through
// which searches go out and results come back without postMessage. Both sides import
// this file, so the layout is written down once.
//
// Header (Int32): DOORBELL is bumped by the page whenever there is work (a request in a
// slot, or a message it wants the worker to read); the worker sleeps on it with
// Atomics.wait. YIELDS counts the messages the page has posted: while the worker has not
// handled that many, it leaves its loop so the event loop can deliver them. COMPLETED is
// bumped by the worker whenever a slot is done; the page waits on it with waitAsync.
//
// A slot: a header of SLOT_HEADER Int32s, then the query's floats, then UTF-8 JSON
// (the request's collection and options going out, the result coming back).

export const DOORBELL = 0;
export const YIELDS = 1;
export const COMPLETED = 2;
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

// Result statuses.
export const OK = 0;
export const FAILED = 1;
/** The result did not fit in the slot and was posted as a message instead. */
export const POSTED = 2;

export const ringBytes = () => HEADER_BYTES + SLOTS * SLOT_BYTES;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A view of one ring, as either side sees it. */
export class Ring {
  constructor(buffer) {
    this.buffer = buffer;
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

  bump(field) {
    Atomics.add(this.header, field, 1);
    Atomics.notify(this.header, field);
  }

  /**
   * Writes a request (floats, then a JSON text) into free slot `i` and hands it to the
   * worker. Returns false, writing nothing, when it does not fit.
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
    Atomics.store(s.ints, STATE, READY);
    this.bump(DOORBELL);
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
