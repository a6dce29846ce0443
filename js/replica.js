// The page's copy of one worker's rows of one collection, for databases held in
// memory: what a restarted worker is reloaded from, and what moves when a collection
// is spread over the pool.
//
// Vectors are appended to a few large blocks, and an id maps to a slot number: one
// typed array a row, or a chunk a batch, made the garbage collector's work cost the page
// a fifth of its insert rate. Replaced and deleted rows leave dead slots; when those
// outnumber the live ones, the live rows are copied into fresh blocks.

/** Floats a block holds: 4 MiB. */
const BLOCK_FLOATS = 1 << 20;

export class Replica {
  #slots = new Map(); // id -> slot
  #ids = []; // slot -> id, or null once dead
  #metadata = [];
  #texts = [];
  #blocks = [];

  constructor(dim) {
    this.dim = dim;
    this.perBlock = Math.max(1, Math.floor(BLOCK_FLOATS / dim));
  }

  get size() {
    return this.#slots.size;
  }

  /**
   * Copies `vectors` into new slots and returns the first. They stay dead until
   * `publish` names them: a batch is copied while its worker writes it and counts only
   * once it has committed.
   */
  reserve(vectors) {
    const dim = this.dim;
    const first = this.#ids.length;
    vectors.forEach((v, j) => {
      const slot = first + j;
      const block = Math.floor(slot / this.perBlock);
      if (block === this.#blocks.length) this.#blocks.push(new Float32Array(this.perBlock * dim));
      // A vector of another length is refused by the worker: its slot stays dead.
      this.#blocks[block].set(v.length > dim ? v.subarray(0, dim) : v, (slot % this.perBlock) * dim);
      this.#ids.push(null);
      this.#metadata.push(null);
      this.#texts.push(null);
    });
    return first;
  }

  /**
   * Makes reserved slots from `first` on live as `ids[j]`, with `metadata[j]` (JSON
   * text) and `texts[j]`. A later row of the same id replaces an earlier one.
   */
  publish(first, ids, metadata, texts) {
    ids.forEach((id, j) => {
      const old = this.#slots.get(id);
      if (old !== undefined) this.#ids[old] = null;
      this.#slots.set(id, first + j);
      this.#ids[first + j] = id;
      this.#metadata[first + j] = metadata[j];
      this.#texts[first + j] = texts[j];
    });
    this.#compactIfSparse();
  }

  delete(id) {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    this.#ids[slot] = null;
    this.#compactIfSparse();
  }

  #compactIfSparse() {
    const dead = this.#ids.length - this.#slots.size;
    if (dead <= this.#slots.size || dead < this.perBlock) return;
    const live = [...this.entries()];
    this.#slots.clear();
    this.#ids = [];
    this.#metadata = [];
    this.#texts = [];
    this.#blocks = [];
    for (const [id, vector, metadata, text] of live) this.publish(this.reserve([vector]), [id], [metadata], [text]);
  }

  /** The live row of `id` as `[id, vector, metadataJson, text]`, or undefined. */
  get(id) {
    const slot = this.#slots.get(id);
    return slot === undefined ? undefined : this.#row(slot);
  }

  #row(slot) {
    const at = (slot % this.perBlock) * this.dim;
    const block = this.#blocks[Math.floor(slot / this.perBlock)];
    return [this.#ids[slot], block.subarray(at, at + this.dim), this.#metadata[slot], this.#texts[slot]];
  }

  /** Every live row: `[id, vector, metadataJson, text]` (the vector a view). */
  *entries() {
    for (let slot = 0; slot < this.#ids.length; slot++) {
      if (this.#ids[slot] !== null) yield this.#row(slot);
    }
  }
}
