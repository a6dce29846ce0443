/** Error codes a quiver call can fail with. */
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

/** The one error type quiver throws: `code` is stable, `message` names the field. */
export class QuiverError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "QuiverError";
    this.code = code;
  }
}
