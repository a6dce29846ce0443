// Suite `embed`, run in the page by scripts/bench/embed-run.js, one engine and set-up
// to a fresh page: chunks/s embedding 128-token chunks with quiver's embedder (a build,
// a pool size) or with onnxruntime-web's wasm backend (a thread count) on the same
// weights as an ONNX graph. Each engine embeds a few chunks untimed first (V8 tiers
// up, the pool's workers all start), then the whole set `rounds` times.
import { loadEmbedder } from "../../js/embed.js";

/** Chunks a call: quiver's pool deals them 4 at a time; ORT runs them as one batch of 4. */
const BATCH = 4;

const seconds = (t0) => (performance.now() - t0) / 1000;

async function quiver({ chunks, build, workers, rounds }) {
  const texts = chunks.map((c) => c.text);
  const embedder = await loadEmbedder({ model: "/models/all-minilm-l6-v2/", build, workers });
  try {
    await embedder.embed(texts.slice(0, BATCH * workers));
    const times = [];
    let vectors;
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      vectors = await embedder.embed(texts);
      times.push(seconds(t0));
    }
    return { times, vectors, build: embedder.build };
  } finally {
    embedder.close();
  }
}

async function ortWeb({ chunks, threads, rounds }) {
  const ort = await import("/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
  const session = await ort.InferenceSession.create("/bench-data/minilm.onnx", { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const tokens = chunks[0].ids.length;
  const run = async (batch) => {
    const ids = BigInt64Array.from(batch.flatMap((c) => c.ids.map(BigInt)));
    const feeds = {
      input_ids: new ort.Tensor("int64", ids, [batch.length, tokens]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), [batch.length, tokens]),
    };
    const { embedding } = await session.run(feeds);
    return Array.from({ length: batch.length }, (_, i) => embedding.data.slice(i * 384, (i + 1) * 384));
  };
  const all = async () => {
    const out = [];
    for (let s = 0; s < chunks.length; s += BATCH) out.push(...(await run(chunks.slice(s, s + BATCH))));
    return out;
  };
  await run(chunks.slice(0, BATCH));
  const times = [];
  let vectors;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    vectors = await all();
    times.push(seconds(t0));
  }
  await session.release();
  return { times, vectors };
}

/** One configuration's row: its best and median rate over the rounds, and its vectors (for the runner's cross-check). */
export async function embed({ engine, chunks, rounds = 3, ...options }) {
  const r = engine === "quiver" ? await quiver({ chunks, rounds, ...options }) : await ortWeb({ chunks, rounds, ...options });
  const rates = r.times.map((t) => chunks.length / t).sort((a, b) => a - b);
  const config =
    engine === "quiver"
      ? `${r.build}, ${options.workers === 1 ? "1 worker" : `pool of ${options.workers}`}`
      : `wasm, ${options.threads} thread${options.threads > 1 ? "s" : ""}`;
  return {
    rows: [
      {
        engine: engine === "quiver" ? "quiver-embed" : "onnxruntime-web",
        config,
        n: chunks.length,
        tokens: chunks[0].ids.length,
        chunks_per_s: rates.at(-1),
        chunks_per_s_median: rates[Math.floor(rates.length / 2)],
        vectors: r.vectors.map((v) => Array.from(v)),
      },
    ],
  };
}
