export { codes } from "./protocol.js";

/** The one error type quiver throws: `code` is stable, `message` names the field. */
export class QuiverError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "QuiverError";
    this.code = code;
  }
}
