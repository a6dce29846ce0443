/** Error codes a quiver call can fail with. */
export type ErrorCode =
  | "DIMENSION_MISMATCH"
  | "INVALID_VECTOR"
  | "INVALID_METADATA"
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "CLOSED"
  | "STORAGE"
  | "CORRUPT_DATABASE"
  | "QUOTA_EXCEEDED"
  | "UNSUPPORTED_VERSION"
  | "MALFORMED_FRAME"
  | "FRAME_TOO_LARGE"
  | "WORKER_LOST"
  | "ABORTED"
  | "TIMEOUT"
  | "UNAUTHORIZED"
  | "INTERNAL";

export declare const codes: readonly ErrorCode[];

/** Limits on arguments; past one a call fails with INVALID_ARGUMENT (or INVALID_METADATA). */
export declare const limits: {
  /** Largest k a search accepts (10,000). */
  readonly maxK: number;
  /** Most candidates a search re-ranks (10,000): a hybrid or MMR search's fetchK, a quantized search's fetch. */
  readonly maxFetchK: number;
  /** Largest vector dimension a collection accepts (65,536). */
  readonly maxDim: number;
  /** Longest id, in UTF-8 bytes (512). */
  readonly maxIdBytes: number;
  /** Largest metadata object serialised as JSON, in bytes (65,536). */
  readonly maxMetadataBytes: number;
  /** Longest search timeout, in ms (2^31 - 1). */
  readonly maxTimeoutMs: number;
};

/** The one error type quiver throws: `code` is stable, `message` names the field. */
export declare class QuiverError extends Error {
  readonly name: "QuiverError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string);
}

export type Metric = "cosine" | "euclidean" | "dot";
export type Build = "simd128" | "scalar";
export type Vector = Float32Array | ArrayLike<number>;
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Metadata = { [key: string]: JsonValue };

export interface OpenOptions {
  /** Database name (default "default"). */
  name?: string;
  /** Which wasm build to load; "auto" picks simd128 where the engine supports it. */
  build?: "auto" | Build;
  /**
   * Where the data lives: "memory" (default; gone with the page), "opfs" (the
   * origin-private file system: survives reloads and restarts), "idb" (IndexedDB, for
   * browsers without OPFS sync access handles) or "auto" (OPFS where there, else idb).
   */
  storage?: "memory" | "opfs" | "idb" | "auto";
  /** Workers in the pool (default: one a core, at most 8). */
  workers?: number;
  /**
   * Collections with fewer records than this live whole in one worker; larger ones are
   * spread over every worker (default 8192, and 262144 for `index: "hnsw"`, whose graph
   * answers fastest whole). A value given applies to every collection.
   */
  partitionThreshold?: number;
  /**
   * Caps the database's files at about this many bytes (shared evenly by the
   * workers; in memory storage, what the workers hold, vectors included): a write past
   * it fails with QUOTA_EXCEEDED, as running out of the origin's storage quota does,
   * and writes nothing.
   */
  maxBytes?: number;
  /**
   * Collections whose search copy each worker keeps in memory, least recently used
   * evicted first (default 64); an evicted one reloads from SQLite when next used. A
   * memory database keeps all of them: it has nowhere else to reload them from.
   */
  loadedCollections?: number;
}

/**
 * How a collection is searched: "flat" exactly (every record scored); "hnsw" through a
 * graph (approximate: recall below 1, fast at any size); "auto" exactly until a worker
 * holds 20,000 of its records, then through a graph.
 */
export type IndexKind = "flat" | "hnsw" | "auto";

/**
 * How a flat collection's vectors are compressed for its scan: "none" (f32), "int8"
 * (a byte a dimension, 4x smaller) or "binary" (a bit a dimension plus 12 bytes, about
 * 25x smaller at 384 dimensions). A search scans the codes, then re-ranks its best
 * `fetch` candidates on the full vectors: scores stay exact, recall dips slightly.
 */
export type Quantization = "none" | "int8" | "binary";

export interface CollectionOptions {
  dim: number;
  /** Default "cosine". */
  metric?: Metric;
  /** Default "flat" for a new collection; an existing one keeps its own, and must match when given. */
  index?: IndexKind;
  /** Default "none"; flat collections only. An existing collection keeps its own, and must match when given. */
  quantization?: Quantization;
}

export interface UpsertRecord {
  /** Generated when missing. */
  id?: string;
  vector: Vector;
  /** A JSON object of at most 64 KiB. */
  metadata?: Metadata | null;
  text?: string | null;
}

type Scalar = string | number | boolean | null;
interface FieldOperators {
  $eq?: Scalar;
  $ne?: Scalar;
  $in?: Scalar[];
  $nin?: Scalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  /** Whether the key is present; a key holding null is present. */
  $exists?: boolean;
  /** The operators inside do not all hold (a row without the key matches). */
  $not?: FieldOperators;
}
type FieldCondition = Scalar | FieldOperators;
/**
 * MongoDB-style filter over metadata keys. A key is a path: dots always separate nested
 * keys (`"repo.lang"`); arrays are not traversed.
 */
export type Filter = { $and?: Filter[]; $or?: Filter[] } & { [key: string]: FieldCondition | Filter[] | undefined };

export interface SearchOptions {
  /** 1..10000, default 10. */
  k?: number;
  filter?: Filter;
  /** Minimum score (cosine, dot) or maximum distance (euclidean). */
  threshold?: number;
  /**
   * Candidates a graph search keeps (efSearch), 1..100000: more is slower and closer to
   * exact. Default max(k, 64). Exact search ignores it.
   */
  ef?: number;
  /**
   * Candidates a quantized collection re-ranks on the full vectors, 1..10000 (at least
   * k are): more is slower and closer to exact. Default 4k (int8) or 10k (binary).
   * Collections without quantization ignore it.
   */
  fetch?: number;
  /** Cancels the search: it fails with ABORTED. */
  signal?: AbortSignal;
  /** Fails the search with TIMEOUT after this many milliseconds. */
  timeout?: number;
}

/** How a hybrid search fuses its vector and keyword rankings (reciprocal rank fusion). */
export interface HybridOptions {
  /** 0..1, default 0.5: the vector ranking's share; the keyword ranking has the rest. */
  weight?: number;
  /** RRF's rank constant, 1..10000, default 60: larger flattens the top ranks' lead. */
  k?: number;
  /** How deep each ranking goes, k..10000, default min(4k, 10000). */
  fetchK?: number;
}

/** Maximal marginal relevance: k diverse results among the fetchK nearest. */
export interface MmrOptions {
  /** 0..1, default 0.5: 1 is plain search, lower favours results unlike those picked. */
  lambda?: number;
  /** Candidates picked from, k..10000, default min(4k, 10000). */
  fetchK?: number;
}

/** Options of `col.search`: a vector search, hybrid with `text`, or diversified with `mmr`. */
export type CollectionSearchOptions = SearchOptions &
  (
    | { text?: undefined; hybrid?: undefined; mmr?: undefined }
    | {
        /** Words to match by BM25 and fuse with the vector ranking; `score` is then the fused score. */
        text: string;
        hybrid?: HybridOptions;
        mmr?: undefined;
      }
    | { text?: undefined; hybrid?: undefined; mmr: MmrOptions }
  );

/** Options of `col.searchText`. */
export interface TextSearchOptions {
  /** 1..10000, default 10. */
  k?: number;
  filter?: Filter;
  signal?: AbortSignal;
  timeout?: number;
}

export interface Hit {
  id: string;
  /**
   * Cosine similarity or dot product (higher is closer), or Euclidean distance (lower is
   * closer); for a hybrid search the fused RRF score, and for searchText BM25 (higher
   * is better).
   */
  score: number;
  metadata: Metadata | null;
}

/** A hit of a search over several shards: which shard it came from. */
export interface ShardHit extends Hit {
  shard: string;
}

/** A shard as `db.shards()` lists it, without loading it. */
export interface ShardInfo {
  id: string;
  dim: number;
  metric: Metric;
  count: number;
  /** Bytes its vectors take (count x dim x 4). */
  bytes: number;
}

export interface StoredRecord {
  id: string;
  vector: Float32Array;
  metadata: Metadata | null;
  text: string | null;
}

/** A collection's size in memory, as `col.stats()` reports it. */
export interface CollectionStats {
  count: number;
  /** Bytes its f32 vectors take (count x dim x 4). */
  vectorBytes: number;
  /** Bytes its quantized codes take: 0 without quantization, or under 1,000 records a worker. */
  codeBytes: number;
  /** Bytes its graph takes (links, levels): 0 for an exact scan. */
  graphBytes: number;
}

export declare class Collection {
  readonly name: string;
  readonly dim: number;
  readonly metric: Metric;
  readonly index: IndexKind;
  readonly quantization: Quantization;
  /** Inserts or replaces records in one transaction; returns their ids. */
  upsert(records: UpsertRecord | UpsertRecord[]): Promise<string[]>;
  /** The k closest records, best first; hybrid with `text`, diversified with `mmr`. */
  search(query: Vector, options?: CollectionSearchOptions): Promise<Hit[]>;
  /** The k records whose text best matches `text` by BM25 (score: BM25, higher is better). */
  searchText(text: string, options?: TextSearchOptions): Promise<Hit[]>;
  /** One result list per query, in order; much faster than a loop of searches. */
  searchMany(queries: Vector[], options?: SearchOptions): Promise<Hit[][]>;
  get(id: string): Promise<StoredRecord | null>;
  get(ids: string[]): Promise<(StoredRecord | null)[]>;
  /** Returns how many of the ids existed. */
  delete(ids: string | string[]): Promise<number>;
  count(): Promise<number>;
  /** Its records and the bytes their vectors and codes take. */
  stats(): Promise<CollectionStats>;
  ids(): Promise<string[]>;
  /**
   * Keeps this collection in step with a room on a quiver relay (see README "Sync"):
   * pushes this site's changes, applies the others' where they win (last writer wins
   * per id), and reconnects after a disconnect. Fails with INVALID_ARGUMENT for bad
   * options; a tab that follows another (which runs the workers) cannot sync.
   */
  sync(options: SyncOptions): Sync;
}

export declare class Database {
  readonly name: string;
  /** The kernels in use. */
  readonly build: Build;
  /** How many workers serve it. */
  readonly workers: number;
  /** Where the data lives, "auto" resolved. */
  readonly storage: "memory" | "opfs" | "idb";
  /**
   * This database's site id (16 hex digits): created with its files and kept with them
   * across reopens, it names this replica for sync and prefixes generated ids.
   */
  readonly site: string;
  /** Creates (or opens, checking dim and metric) a collection. */
  collection(name: string, options: CollectionOptions): Promise<Collection>;
  /** Opens an existing collection; NOT_FOUND when missing. */
  collection(name: string): Promise<Collection>;
  collections(): Promise<string[]>;
  /** Deletes a collection and all its records; NOT_FOUND when there is none. */
  dropCollection(name: string): Promise<void>;
  /** A shard (one of many small collections, e.g. one per agent): creates it with options. */
  shard(id: string, options: CollectionOptions): Promise<Collection>;
  /** Opens an existing shard; NOT_FOUND when missing. */
  shard(id: string): Promise<Collection>;
  /** Every shard with its count and size, sorted by id, loading none. */
  shards(): Promise<ShardInfo[]>;
  /** Deletes a shard and its records; NOT_FOUND when there is none. */
  dropShard(id: string): Promise<void>;
  /** The k closest records among several shards (same dim and metric), best first. */
  search(shards: string[], query: Vector, options?: SearchOptions): Promise<ShardHit[]>;
  /**
   * The database (or the named collections) as one standalone SQLite file: a backup,
   * something to `import` elsewhere, or to open with the sqlite3 CLI.
   */
  export(options?: { collections?: string[] }): Promise<Uint8Array>;
  /** Adds an exported file's collections and records; CORRUPT_DATABASE if it is not one. */
  import(data: Uint8Array | ArrayBuffer | Blob): Promise<{ collections: string[]; records: number }>;
  /** SQLite's integrity check over every worker's file: "ok", or what is wrong. */
  integrityCheck(): Promise<string>;
  /** {@link Collection.sync} for the collection or shard named `options.collection`. */
  sync(options: SyncOptions & { collection: string }): Sync;
  close(): Promise<void>;
}

/** Opens a database served by a pool of workers. */
export declare function open(options?: OpenOptions): Promise<Database>;

export interface SyncOptions {
  /** The relay's WebTransport address, e.g. "https://127.0.0.1:4433/". */
  url?: string;
  /** Its WebSocket address (default: ws:// to url's host and port). */
  websocketUrl?: string;
  room: string;
  /** A token that opens `room` (the relay mints them: `quiver-relay token`). */
  token: string;
  /** For a relay with a self-signed certificate (its GET /certificate gives them). */
  serverCertificateHashes?: { algorithm: "sha-256"; value: BufferSource }[];
  /** "auto" (default): WebTransport, or WebSocket where it is missing or blocked. */
  transport?: "auto" | "webtransport" | "websocket";
}

export type SyncStatus = "connecting" | "live" | "offline" | "refused" | "closed";

/** A running sync session. Events: "status", "progress", "change" (CustomEvent). */
export declare class Sync extends EventTarget {
  readonly status: SyncStatus;
  /** The transport of the current or last connection. */
  readonly transport: "webtransport" | "websocket" | null;
  /** Ops this session pushed and the relay acknowledged, and ops it pulled. */
  readonly pushed: number;
  readonly pulled: number;
  /** Bytes of frames sent and received over the session's connections. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /**
   * Times the relay sent the whole room rather than what is new: this site had been
   * away past the relay's tombstone horizon, so records the room no longer has were
   * deleted here (but for this site's own unacknowledged writes).
   */
  readonly snapshots: number;
  /**
   * Resolves once the room's backlog is applied and every local change is
   * acknowledged; rejects with UNAUTHORIZED if the relay refuses the token.
   */
  synced(): Promise<void>;
  /** Ends the session; unsent changes go with the next session. */
  close(): void;
}
