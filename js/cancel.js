// How the public API runs a call: what it throws becomes a rejected promise, and a
// search can be withdrawn by an AbortSignal or a timeout.
import { QuiverError } from "./errors.js";
import { checkCancel } from "./validate.js";

/** Runs `f`, turning what it throws into a rejected promise, as an async function would. */
export function guard(f) {
  try {
    return f();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Runs `start(cancel)` (which registers withdrawal functions in `cancel`) and rejects
 * with ABORTED when `signal` fires or TIMEOUT after `timeout` ms, withdrawing the work.
 */
export function cancellable(start, signal, timeout) {
  checkCancel(signal, timeout);
  if (signal?.aborted) return Promise.reject(new QuiverError("ABORTED", "the search was aborted"));
  const cancel = [];
  const work = start(cancel);
  if (!signal && timeout === undefined) return work;
  return new Promise((resolve, reject) => {
    let timer;
    const stop = (err) => {
      cancel.forEach((f) => f());
      reject(err);
    };
    const onAbort = () => stop(new QuiverError("ABORTED", "the search was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout !== undefined) timer = setTimeout(() => stop(new QuiverError("TIMEOUT", `the search took over ${timeout} ms`)), timeout);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    work.then(
      (v) => (done(), resolve(v)),
      (e) => (done(), reject(e)),
    );
  });
}
