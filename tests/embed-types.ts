// Compiled with `tsc --noEmit` by tests/embed.test.mjs: js/embed.d.ts accepts the
// README's usage and rejects misuse (each @ts-expect-error must be an error).
import { loadEmbedder, type Embedder, type LoadProgress } from "quiver/embed";

const seen: LoadProgress[] = [];
const embedder: Embedder = await loadEmbedder({
  model: "/models/all-minilm-l6-v2/",
  weights: "f16",
  workers: 2,
  build: "auto",
  onProgress: (p) => seen.push(p),
});
const vectors: Float32Array[] = await embedder.embed(["a", "b"], { onProgress: ({ done, total }) => console.log(done / total) });
const dim: number = embedder.dim;
const build: "simd128" | "scalar" = embedder.build;
embedder.close();
await loadEmbedder();
await loadEmbedder({ model: new URL("https://example.com/model/") });

// @ts-expect-error texts are strings
await embedder.embed([1, 2]);
// @ts-expect-error one text is still an array of one
await embedder.embed("a");
// @ts-expect-error no such build
await loadEmbedder({ build: "gpu" });
// @ts-expect-error no such precision
await loadEmbedder({ weights: "int8" });

export { vectors, dim, build };
