// Errors as the worker answers them: the code travels to the page, which throws a
// QuiverError with it.

/** An Error carrying one of the codes in js/protocol.js. */
export function fail(code, message) {
  return Object.assign(new Error(message), { code });
}
