// Ops the benchmarks add to a store worker (through its `extend` op), so that the
// production worker carries none of them.

/** `context.handle(db)` is the worker's core database named `db`. */
export function ops({ handle }) {
  return {
    // Times searches here, next to the core, so a benchmark sees the search itself
    // without the message round trip (which the worker-pool benchmark measures).
    timeSearches({ db, collection, queries, dim, options, repeat }) {
      const d = handle(db);
      const n = queries.length / dim;
      const ms = [];
      const results = [];
      for (let r = 0; r < repeat; r++) {
        for (let i = 0; i < n; i++) {
          const q = queries.subarray(i * dim, (i + 1) * dim);
          const t0 = performance.now();
          const text = d.search(collection, q, options);
          ms.push(performance.now() - t0);
          if (r === 0) results.push(text);
        }
      }
      return { ms, results };
    },
  };
}
