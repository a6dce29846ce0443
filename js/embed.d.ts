// Types of quiver/embed: sentence embeddings with all-MiniLM-L6-v2 in Web Workers.
import type { QuiverError } from "./index.js";

export type { QuiverError };

/** Progress of {@link loadEmbedder}: bytes of the model downloaded, then workers loaded. */
export interface LoadProgress {
  readonly stage: "download" | "load";
  readonly loaded: number;
  readonly total: number;
}

export interface LoadEmbedderOptions {
  /** Base URL of the model's files (`model.f16.safetensors` or `model.safetensors`,
   * `tokenizer.json`, `config.json`); default: `models/all-minilm-l6-v2/` beside the package. */
  model?: string | URL;
  /** Which weights to download: "f16" (45 MB, the default) or "f32" (90 MB); the same vectors to cosine 0.9999. */
  weights?: "f16" | "f32";
  /** How many workers embed (1 to 64); default: one a core, at most 4. */
  workers?: number;
  /** "auto" (the default) picks the fastest the browser runs: simd128, else the plain build. */
  build?: "auto" | "simd128" | "scalar";
  onProgress?: (progress: LoadProgress) => void;
}

export interface EmbedOptions {
  /** Called as batches of texts finish. */
  onProgress?: (progress: { readonly done: number; readonly total: number }) => void;
}

/** all-MiniLM-L6-v2 loaded in a pool of workers. */
export interface Embedder {
  /** The build the workers run. */
  readonly build: "simd128" | "scalar";
  /** How many workers embed. */
  readonly workers: number;
  /** The length of every vector: 384. */
  readonly dim: number;
  /**
   * The vectors of `texts` (mean-pooled, unit length), one Float32Array each, in the
   * texts' order. A text's first 254 tokens count; the rest is ignored.
   * Fails with INVALID_ARGUMENT if `texts` is not an array of strings, CLOSED after
   * close(), WORKER_LOST if a worker dies meanwhile.
   */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]>;
  /** Stops the workers; calls in flight fail with CLOSED. */
  close(): void;
}

/**
 * Downloads the model once and starts the workers. Fails with INVALID_ARGUMENT for a
 * bad option or files that are not the model, NOT_FOUND when a file cannot be fetched.
 */
export declare function loadEmbedder(options?: LoadEmbedderOptions): Promise<Embedder>;
