// The embedder: sentence embeddings with all-MiniLM-L6-v2 (384 dimensions, unit
// length), computed in a pool of embed workers (workers/embed-worker.js), each its own
// wasm instance of the quiver-embed crate. The page fetches the model's files once and
// hands every worker a copy; texts go to the workers in small batches, each worker
// taking the next batch as it finishes one, so long and short texts even out.
import { QuiverError } from "./errors.js";
import { WorkerClient } from "./client.js";
import { checkInteger, invalid } from "./validate.js";

const BUILDS = { auto: "auto", simd128: "simd128", simd: "simd128", scalar: "scalar" };

/** The model's files, by the weights' precision: f16 halves the download; the workers compute in f32 either way. */
const WEIGHTS = { f16: "model.f16.safetensors", f32: "model.safetensors" };

/** Texts a message to a worker: a few, so progress is fine-grained and the workers stay evenly busy. */
const BATCH = 4;

/** Restarts in a row a worker gets before the embedder gives up on it. */
const MAX_RESTARTS = 3;

/** Where `scripts/model.mjs` puts the model: beside the package. */
const defaultModel = () => new URL("../models/all-minilm-l6-v2/", import.meta.url);

/** One worker a core, at most 4: each holds the model's weights (about 100 MB). */
const defaultWorkers = () => Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, 4));

const spawn = () => new Worker(new URL("../workers/embed-worker.js", import.meta.url), { type: "module" });

/**
 * Fetches the model and starts the embed workers.
 * @param {{model?: string|URL, weights?: "f16"|"f32", workers?: number, build?: "auto"|"simd128"|"scalar",
 *   onProgress?: (p: {stage: "download"|"load", loaded: number, total: number}) => void}} [options]
 */
export async function loadEmbedder(options = {}) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { model = defaultModel(), weights = "f16", workers = defaultWorkers(), build = "auto", onProgress } = options;
  if (!(build in BUILDS)) throw invalid(`build: must be "auto", "simd128" or "scalar", got ${JSON.stringify(build)}`);
  if (!(weights in WEIGHTS)) throw invalid(`weights: must be "f16" or "f32", got ${JSON.stringify(weights)}`);
  checkInteger(workers, "workers", 1, 64);
  if (onProgress !== undefined && typeof onProgress !== "function") throw invalid("onProgress: must be a function");
  let base;
  try {
    base = new URL(model, globalThis.location?.href);
  } catch {
    throw invalid(`model: must be a URL, got ${JSON.stringify(String(model))}`);
  }
  if (!base.pathname.endsWith("/")) base = new URL(`${base.pathname}/${base.search}`, base);
  const files = await download(base, [WEIGHTS[weights], "tokenizer.json", "config.json"], onProgress);
  const embedder = new Embedder({ weights: files[0], tokenizer: files[1], config: files[2] }, BUILDS[build], workers);
  try {
    await embedder.start(onProgress);
  } catch (e) {
    embedder.close();
    throw e;
  }
  return embedder;
}

/** The files under `base`, as ArrayBuffers, reporting the bytes received. */
async function download(base, names, onProgress) {
  const responses = await Promise.all(
    names.map(async (name) => {
      const url = new URL(name, base);
      let response;
      try {
        response = await fetch(url);
      } catch (e) {
        throw new QuiverError("NOT_FOUND", `model: could not fetch ${url}: ${e.message}`);
      }
      if (!response.ok) throw new QuiverError("NOT_FOUND", `model: ${url} answered ${response.status}`);
      return response;
    }),
  );
  const total = responses.reduce((sum, r) => sum + Number(r.headers.get("content-length") ?? 0), 0);
  let loaded = 0;
  return Promise.all(
    responses.map(async (response) => {
      if (!response.body || !onProgress) return response.arrayBuffer();
      const parts = [];
      for await (const part of response.body) {
        parts.push(part);
        loaded += part.length;
        onProgress({ stage: "download", loaded, total: Math.max(total, loaded) });
      }
      return new Blob(parts).arrayBuffer();
    }),
  );
}

/** A pool of embed workers with the model loaded. Made by {@link loadEmbedder}. */
class Embedder {
  #files;
  #clients = [];
  #busy = [];
  #restarts = [];
  #queue = [];
  #closed = false;

  constructor(files, build, workers) {
    this.#files = files;
    /** The build the workers run: "simd128" or "scalar". */
    this.build = build;
    /** How many workers embed. */
    this.workers = workers;
    /** The length of every vector (384). */
    this.dim = 0;
  }

  /** @internal Starts every worker; the first decides the build the others run. */
  async start(onProgress) {
    let ready = 0;
    const one = async (i) => {
      await this.#spawn(i);
      onProgress?.({ stage: "load", loaded: ++ready, total: this.workers });
    };
    await one(0);
    await Promise.all(Array.from({ length: this.workers - 1 }, (_, i) => one(i + 1)));
  }

  async #spawn(i) {
    const client = new WorkerClient(() => this.#lost(i, client), { spawn, name: "embed worker" });
    this.#clients[i] = client;
    this.#busy[i] = true;
    try {
      // Each worker gets its own copy of the bytes (structured clone): the page keeps
      // the files to restart a worker that dies.
      const { build, dim } = await client.init(this.build, this.#files);
      this.build = build;
      this.dim = dim;
    } catch (e) {
      client.terminate("the embedder was closed");
      throw e;
    }
    this.#busy[i] = false;
    this.#pump();
  }

  /**
   * A worker died: its batch has failed with WORKER_LOST; start another in its place.
   * After MAX_RESTARTS failures in a row it stays down, and its batches go to the others.
   */
  #lost(i, client) {
    if (this.#closed || this.#clients[i] !== client) return;
    this.#restarts[i] = (this.#restarts[i] ?? 0) + 1;
    if (this.#restarts[i] > MAX_RESTARTS) return this.#pump();
    this.#spawn(i).then(
      () => (this.#restarts[i] = 0),
      (e) => {
        console.error("quiver: could not restart an embed worker:", e);
        this.#pump();
      },
    );
  }

  /**
   * The vectors of `texts`, one Float32Array(384) each, in the texts' order.
   * `onProgress({done, total})` follows the texts embedded.
   * @param {string[]} texts
   * @param {{onProgress?: (p: {done: number, total: number}) => void}} [options]
   * @returns {Promise<Float32Array[]>}
   */
  embed(texts, options = {}) {
    try {
      checkTexts(texts);
      if (options === null || typeof options !== "object") throw invalid("options: must be an object");
      if (options.onProgress !== undefined && typeof options.onProgress !== "function") throw invalid("onProgress: must be a function");
      if (this.#closed) throw new QuiverError("CLOSED", "the embedder was closed");
    } catch (e) {
      return Promise.reject(e);
    }
    const { onProgress } = options;
    const out = new Array(texts.length);
    if (texts.length === 0) return Promise.resolve(out);
    return new Promise((resolve, reject) => {
      let done = 0;
      const job = {
        failed: false,
        finish: (batch, vectors) => {
          if (job.failed) return;
          for (let i = 0; i < batch.texts.length; i++) out[batch.start + i] = vectors.slice(i * this.dim, (i + 1) * this.dim);
          done += batch.texts.length;
          onProgress?.({ done, total: texts.length });
          if (done === texts.length) resolve(out);
        },
        fail: (e) => {
          if (job.failed) return;
          job.failed = true;
          this.#queue = this.#queue.filter((b) => b.job !== job);
          reject(e);
        },
      };
      for (let start = 0; start < texts.length; start += BATCH) this.#queue.push({ job, start, texts: texts.slice(start, start + BATCH) });
      this.#pump();
    });
  }

  /** Hands the next batches to idle workers; fails them when no worker is left to take them. */
  #pump() {
    if (!this.#clients.some((c) => c.alive)) {
      for (const batch of this.#queue.splice(0)) batch.job.fail(new QuiverError("WORKER_LOST", "every embed worker has stopped"));
      return;
    }
    for (let i = 0; i < this.#clients.length && this.#queue.length; i++) {
      if (this.#busy[i] || !this.#clients[i].alive) continue;
      const batch = this.#queue.shift();
      const client = this.#clients[i];
      this.#busy[i] = true;
      client
        .call("embed", { texts: batch.texts })
        .then(
          (vectors) => batch.job.finish(batch, vectors),
          (e) => batch.job.fail(e),
        )
        .finally(() => {
          // A worker started in a dead one's place is busy until it has loaded the model.
          if (this.#clients[i] === client) this.#busy[i] = false;
          this.#pump();
        });
    }
  }

  /** Stops the workers; calls in flight and later fail with CLOSED. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const batch of this.#queue.splice(0)) batch.job.fail(new QuiverError("CLOSED", "the embedder was closed"));
    for (const c of this.#clients) c.terminate("the embedder was closed");
    this.#files = null;
  }

  /** @internal the Worker objects, for tests that kill one. */
  get _workers() {
    return this.#clients.map((c) => c.worker);
  }
}

/** An array of strings, else INVALID_ARGUMENT naming the first bad element. */
function checkTexts(texts) {
  if (!Array.isArray(texts)) throw invalid("texts: must be an array of strings");
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== "string") throw invalid(`texts[${i}]: must be a string, got ${typeof texts[i]}`);
  }
}
