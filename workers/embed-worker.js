// An embed worker: one wasm instance of the embedder (quiver-embed, built into
// pkg/embed-{simd,scalar}), loaded from the model's bytes, which the page fetched once
// for every worker. Requests arrive as {id, op, ...args} and are answered with
// {id, ok, value} or {id, ok: false, error: {code, message}}, as the store worker's:
//   init  {build, lock, weights, tokenizer, config: ArrayBuffer} -> {build, dim}
//   embed {texts: [string]} -> Float32Array: the texts' vectors back to back (transferred)
import initSimd, { Embedder as SimdEmbedder } from "../pkg/embed-simd/quiver_embed.js";
import initScalar, { Embedder as ScalarEmbedder } from "../pkg/embed-scalar/quiver_embed.js";
import { simd as hasSimd } from "../js/vendor/wasm-feature-detect.js";
import { fail } from "./errors.js";

// Every build is imported statically so bundlers need no code splitting in workers;
// only the chosen one's wasm is fetched.
const builds = {
  simd128: { init: initSimd, Embedder: SimdEmbedder, wasm: () => new URL("../pkg/embed-simd/quiver_embed_bg.wasm", import.meta.url) },
  scalar: { init: initScalar, Embedder: ScalarEmbedder, wasm: () => new URL("../pkg/embed-scalar/quiver_embed_bg.wasm", import.meta.url) },
};

let embedder = null;

/** The fastest build this engine runs. */
const best = async () => ((await hasSimd()) ? "simd128" : "scalar");

const ops = {
  async init({ build, lock, weights, tokenizer, config }) {
    // Held for as long as this worker lives: the page is granted it when the worker
    // is gone, however it went (a crash fires no error event).
    if (lock && self.navigator.locks) {
      await new Promise((held) => self.navigator.locks.request(lock, () => (held(), new Promise(() => {}))));
    }
    const chosen = build === "auto" ? await best() : build;
    const b = builds[chosen];
    if (!b) throw fail("INVALID_ARGUMENT", `build: unknown build ${JSON.stringify(build)}`);
    await b.init({ module_or_path: b.wasm() });
    try {
      embedder = new b.Embedder(new Uint8Array(weights), new Uint8Array(tokenizer), new Uint8Array(config));
    } catch (e) {
      throw fail("INVALID_ARGUMENT", `model: its files are not all-MiniLM-L6-v2's: ${e.message ?? e}`);
    }
    return { build: chosen, dim: embedder.dim() };
  },
  embed({ texts }) {
    if (!embedder) throw fail("CLOSED", "the worker has not loaded the model");
    return embedder.embed(texts);
  },
};

self.onmessage = async ({ data }) => {
  const { id, op, ...args } = data;
  try {
    if (!ops[op]) throw fail("INVALID_ARGUMENT", `op: unknown operation ${JSON.stringify(op)}`);
    const value = await ops[op](args);
    self.postMessage({ id, ok: true, value }, value instanceof Float32Array ? [value.buffer] : []);
  } catch (err) {
    // A trap leaves the wasm instance in an unknown state: stop, and the page, which
    // holds this worker's lock, starts a fresh one.
    if (err instanceof WebAssembly.RuntimeError) setTimeout(() => self.close());
    self.postMessage({ id, ok: false, error: { code: err.code ?? "INTERNAL", message: String(err.message ?? err) } });
  }
};
