// Two workers' synchronous channel over a SharedArrayBuffer: the owner of a graph and
// the worker helping it build (see crate/src/index/hnsw/shared.rs) swap bytes in step
// from inside their wasm calls, so neither can wait on a message event. Each side
// writes to its own half and blocks with Atomics.wait on the other's; a message larger
// than a half goes in pieces. Only one side's message is ever large (the owner's rows),
// so two sends never wait on each other. A word after the halves is the counter from
// which both take a round's nodes.

/** Bytes of each side's half, beside its header: one batch of 384-d rows goes in two. */
const PIECE_BYTES = 1 << 20;
/** Header words a side: full (0 or 1), this piece's bytes, the message's bytes, closed. */
const HEADER_WORDS = 4;
const [FULL, PIECE, TOTAL, CLOSED] = [0, 1, 2, 3];
const HALF_BYTES = HEADER_WORDS * 4 + PIECE_BYTES;

/**
 * How long the owner waits for the helper to start (it may be busy with other calls):
 * then it goes alone. The helper waits for the owner's first word as long as for any,
 * since the owner writes the batch to SQLite first.
 */
const HELLO_MS = 200;
/** How long a side waits mid-batch, where the other is computing, before it gives up. */
const PATIENCE_MS = 30_000;

/** A new channel's buffer, for the page to give both sides: one a batch. */
export const mailboxBuffer = () => new SharedArrayBuffer(2 * HALF_BYTES + 4);

/**
 * Marks `side` of the channel in `buffer` done, so the other side's waits end at once:
 * what the page does for a side whose worker died or whose call failed.
 */
export function closeSide(buffer, side) {
  const words = new Int32Array(buffer, side * HALF_BYTES, HEADER_WORDS);
  Atomics.store(words, CLOSED, 1);
  Atomics.notify(words, FULL);
}

/** One side of the channel: side 0 is the owner, 1 the helper. */
export class Mailbox {
  #mine;
  #theirs;
  #side;
  #swaps = 0;
  #next;

  constructor(buffer, side) {
    this.#side = side;
    const half = (s) => ({
      words: new Int32Array(buffer, s * HALF_BYTES, HEADER_WORDS),
      bytes: new Uint8Array(buffer, s * HALF_BYTES + HEADER_WORDS * 4, PIECE_BYTES),
    });
    this.#mine = half(side);
    this.#theirs = half(1 - side);
    this.#next = new Int32Array(buffer, 2 * HALF_BYTES, 1);
  }

  /**
   * Takes the next slot of `start..end` that neither side has taken, or undefined once
   * all are: the counter never passes `end` (Peer::take in shared.rs).
   */
  take(start, end) {
    let seen = Atomics.load(this.#next, 0);
    for (;;) {
      const next = Math.max(seen, start);
      if (next >= end) return undefined;
      const was = Atomics.compareExchange(this.#next, 0, seen, next + 1);
      if (was === seen) return next;
      seen = was;
    }
  }

  /** Sends `mine`, returns the other side's bytes; undefined once it is gone. */
  swap(mine) {
    const wait = this.#swaps++ === 0 && this.#side === 0 ? HELLO_MS : PATIENCE_MS;
    return this.#send(mine, wait) ? this.#receive(wait) : undefined;
  }

  /** Tells the other side this one is done: its waits end at once. */
  close() {
    closeSide(this.#mine.words.buffer, this.#side);
  }

  /** Whether `words[FULL]` became `want` within `ms`, and the other side is not closed. */
  #await(words, want, ms, other) {
    const deadline = performance.now() + ms;
    while (Atomics.load(words, FULL) !== want) {
      if (Atomics.load(other, CLOSED) === 1) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(words, FULL, 1 - want, Math.min(left, 50));
    }
    return true;
  }

  #send(bytes, ms) {
    const { words, bytes: room } = this.#mine;
    let at = 0;
    do {
      // The other side may not have read this side's last message yet.
      if (!this.#await(words, 0, ms, this.#theirs.words)) return false;
      words[TOTAL] = bytes.length;
      const piece = bytes.subarray(at, at + PIECE_BYTES);
      room.set(piece);
      words[PIECE] = piece.length;
      at += piece.length;
      Atomics.store(words, FULL, 1);
      Atomics.notify(words, FULL);
    } while (at < bytes.length);
    return true;
  }

  #receive(ms) {
    const { words, bytes: room } = this.#theirs;
    let out = null;
    let at = 0;
    do {
      // The other side's pieces come full; it may close after its last one, which
      // is still read.
      if (Atomics.load(words, FULL) !== 1 && !this.#await(words, 1, ms, words)) return undefined;
      out ??= new Uint8Array(Atomics.load(words, TOTAL));
      const n = words[PIECE];
      out.set(room.subarray(0, n), at);
      at += n;
      Atomics.store(words, FULL, 0);
      Atomics.notify(words, FULL);
    } while (at < out.length);
    return out;
  }
}
