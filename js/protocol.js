// The contract between the page, the workers and the core, written once: the error
// codes a call can fail with and the limits on its arguments. The core (Rust) has
// the same codes and limits; tests/contract.test.mjs checks that they agree with it
// and with index.d.ts.

/** Error codes a quiver call can fail with. The first ten come from the core. */
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
  "WORKER_LOST",
  "ABORTED",
  "TIMEOUT",
  "INTERNAL",
]);

/** Limits on arguments, as the core enforces them. */
export const limits = Object.freeze({
  /** Largest k a search accepts. */
  maxK: 10_000,
  /** Largest vector dimension a collection accepts. */
  maxDim: 65_536,
  /** Longest id, in UTF-8 bytes. */
  maxIdBytes: 512,
  /** Largest metadata object, serialised as JSON. */
  maxMetadataBytes: 64 * 1024,
  /** Longest timeout, in ms: what setTimeout can wait. */
  maxTimeoutMs: 2 ** 31 - 1,
});
