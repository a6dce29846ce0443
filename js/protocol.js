// The contract between the page, the workers and the core, written once: the error
// codes a call can fail with and the limits on its arguments. The core (Rust) has
// the same codes and limits; tests/contract.test.mjs checks that they agree with it
// and with index.d.ts.

/** Error codes a quiver call can fail with. The first twelve come from the core, the rest from the page. */
export const codes = Object.freeze([
  "DIMENSION_MISMATCH",
  "INVALID_VECTOR",
  "INVALID_METADATA",
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "CLOSED",
  "STORAGE",
  "CORRUPT_DATABASE",
  "QUOTA_EXCEEDED",
  "UNSUPPORTED_VERSION",
  "MALFORMED_FRAME",
  "FRAME_TOO_LARGE",
  "WORKER_LOST",
  "ABORTED",
  "TIMEOUT",
  "UNAUTHORIZED",
  "INTERNAL",
]);

/** The ways a collection is searched (the core's index kinds). */
export const INDEXES = Object.freeze(["flat", "hnsw", "auto"]);

/** How a collection's vectors are compressed for its scan (the core's quantizations). */
export const QUANTIZATIONS = Object.freeze(["none", "int8", "binary"]);

/** Limits on arguments, as the core enforces them. */
export const limits = Object.freeze({
  /** Largest k a search accepts. */
  maxK: 10_000,
  /** Largest ef (candidates a graph search keeps) a search accepts. */
  maxEf: 100_000,
  /** Most candidates a search re-ranks: a hybrid or MMR search's fetchK, a quantized
   * search's fetch. */
  maxFetchK: 10_000,
  /** Largest vector dimension a collection accepts. */
  maxDim: 65_536,
  /** Longest id, in UTF-8 bytes. */
  maxIdBytes: 512,
  /** Largest metadata object, serialised as JSON. */
  maxMetadataBytes: 64 * 1024,
  /** Longest timeout, in ms: what setTimeout can wait. */
  maxTimeoutMs: 2 ** 31 - 1,
});

/**
 * The operations a store worker answers, with what each takes besides `db` (the
 * database's name, sent with every op but init) and what it answers. Requests go by
 * message ({id, op, ...args}, answered {id, ok, value} or {id, ok: false, error:
 * {code, message}}); searches also through the query ring (ring.js). Arguments and
 * answers noted "JSON" are JSON text: search results, because the ring carries bytes;
 * a batch's columns, parsed in one pass by the core; and a few bulk answers.
 * The worker refuses to start if its op table and this list differ.
 */
export const OPS = Object.freeze({
  init: "{build, lock} -> the build loaded",
  open: "{site, storage, directory, maxBytes?, loaded?} -> the storage, auto resolved",
  close: "{} -> undefined, caches written",
  ring: "{buffer, doorbells, index} -> undefined; searches may come by ring from now on",
  extend: "{module} -> undefined; adds the ops module's ops() gives (benchmarks)",
  site: "{} -> the file's site id",
  createCollection: "{name, dim, metric, index?, quantization?} -> settings {name, dim, metric, index, quantization}",
  collection: "{name} -> settings, or NOT_FOUND",
  dropCollection: "{name} -> undefined, or NOT_FOUND",
  collections: "{} -> [name]",
  collectionCounts: "{} -> [{name, dim, metric, index, quantization, count}]",
  upsert:
    "{collection, ids: JSON, vectors: Float32Array, lengths: Uint32Array, metadata: JSON, texts?: JSON, helper?: SharedArrayBuffer (mailbox.js; another worker helps)} -> the collection's count after it",
  help: "{key, mailbox: SharedArrayBuffer} -> undefined; takes this worker's share of the graph inserts the upsert at the mailbox's other side makes",
  helping: "{} -> rows in the copy of another worker's graph this worker keeps to help build it (0 if none)",
  stage: "{batch, ...upsert's} -> undefined; checks, and holds the part until commit or discard",
  stageDelete: "{batch, collection, ids: [id]} -> undefined",
  commit: "{batch} -> the collection's count after it, or null if not staged here",
  discard: "{batch} -> undefined",
  stagedBatches: "{} -> [batch]",
  decide: "{batch} -> undefined; records that the batch commits",
  decided: "{batch} -> boolean",
  forget: "{batch?} -> how many decisions were forgotten",
  search: "{collection, query: Float32Array, options: JSON {k, filter, threshold, ef, fetch}} -> JSON [{id, score, metadata}]",
  searchMany: "{collection, queries: Float32Array, options: JSON} -> JSON [[hit]]",
  searchEach: "{collection, queries: Float32Array, options: JSON} -> [JSON [hit]]: a text a query, for a batch of ring searches",
  searchText: "{collection, text, options: JSON {k, filter}} -> JSON [{id, score: BM25, metadata}]",
  candidates: "{collection, query: Float32Array, options: JSON} -> {hits: JSON [hit], vectors: Float32Array, prepared, back to back}",
  mmr: "{metric, vectors: Float32Array, scores: Float32Array, k, lambda} -> Uint32Array: the picks' positions, in order",
  searchShards: "{names, query, options: JSON} -> [JSON [hit]], one list a collection",
  get: "{collection, ids: [id]} -> JSON [{id, vector, metadata, text} | null]",
  delete: "{collection, ids: [id]} -> how many existed",
  count: "{collection} -> number of records",
  stats: "{collection} -> {count, vectorBytes, codeBytes}",
  ids: "{collection} -> [id]",
  rows: "{collection} -> {ids: JSON, vectors: Float32Array, metadata: JSON, texts: JSON}",
  opsSince: "{collection, after, limit} -> {message: JSON [{id, version, site, deleted, dim, metadata, text, seq}], vectors: Float32Array}",
  pushFrame:
    "{collection, after, limit, batch} -> {frame: Uint8Array | null, upto, count}: this site's changes after `after` as one Push frame (a database that keeps its vectors)",
  applyOps: "{collection, ops: JSON [op], vectors: Float32Array} -> {applied: Uint8Array, 1 where an op won and was applied; count: the records after}",
  handOver: "{collection, ids: [string]} -> count: the records after; removes ids moved with their stamps to another worker, without tombstones",
  applyFrame: "{collection, bytes: Uint8Array, an Ops frame} -> {message, vectors} as decodeFrame gives them, with applied and count as applyOps gives them",
  encodeFrame: "{message: JSON {type: hello | push | close, ...}, vectors: Float32Array} -> Uint8Array: a sync frame",
  decodeFrame: "{bytes: Uint8Array} -> {message: JSON {type: welcome | ack | ops | refused | close, ...}, vectors: Float32Array}",
  getMeta: "{key} -> string or null",
  setMeta: "{key, value} -> undefined",
  integrityCheck: "{} -> 'ok' or SQLite's report",
  loaded: "{} -> collections whose search copy is in memory",
  memoryBytes: "{} -> bytes of the wasm instance's memory",
  batched: "{} -> how many searches this worker has answered in batches of two or more (BATCH in workers/store-worker.js)",
  toBytes: "{} -> Uint8Array: the database file",
  buildExport: "{site, collections: [{name, dim, metric, index, quantization, parts: [rows]}]} -> Uint8Array: a database file",
  readExport: "{site, bytes} -> [{settings, ...rows}], or CORRUPT_DATABASE",
});
