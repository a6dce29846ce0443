// Suite `embed` (`npm run bench -- --suite embed`), the Node side: builds the ONNX graph
// and the 128-token chunks once (scripts/bench/embed-onnx.py, in a venv under target/
// holding `onnx` and `tokenizers` from PyPI), runs each configuration of
// scripts/bench/embed.js in a fresh page, checks that every engine's vectors agree with
// quiver's, and computes the ratios from this one run. Then the demo as a user meets
// it: the bytes its page downloads, the bundled sample indexed, and after a reload the
// time to the first answer.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cosine, launch, root } from "../../tests/helpers.mjs";
import { serve } from "../serve.mjs";

const venv = join(root, "target", "bench-venv");

/** The chunks (text and ids), after building them and the graph if missing. */
function setUp(outDir) {
  const model = join(root, "models", "all-minilm-l6-v2");
  if (!existsSync(join(model, "model.safetensors"))) throw new Error("models/all-minilm-l6-v2/ is missing: run `npm run setup`");
  const chunks = join(outDir, "embed-chunks.json");
  if (!existsSync(chunks) || !existsSync(join(outDir, "minilm.onnx"))) {
    if (!existsSync(join(venv, "bin", "python"))) {
      execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
      execFileSync(join(venv, "bin", "pip"), ["install", "--quiet", "onnx==1.23.2", "tokenizers==0.23.3"], { stdio: "inherit" });
    }
    // The shared set's 140 code and long texts when there, else the committed 11.
    const shared = join(root, "..", "shared", "data", "minilm-reference");
    const texts = existsSync(shared) ? shared : join(root, "tests", "fixtures", "minilm-reference");
    execFileSync(join(venv, "bin", "python"), [join(root, "scripts", "bench", "embed-onnx.py"), model, texts, outDir], { stdio: "inherit" });
  }
  return JSON.parse(readFileSync(chunks, "utf8"));
}

/**
 * The demo built by Vite, in a fresh profile: what its first visit downloads (every
 * file the server sends, uncompressed, the model's f16 weights included), how long the
 * bundled sample takes to index, and, after a reload (the server says no-store, so the
 * model is fetched again), the time from the navigation to the first query's answer.
 */
async function demoRun() {
  execFileSync(process.execPath, [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  let bytes = 0;
  const { server, url } = await serve({ root: join(root, "dist", "demo"), onServed: (_, n) => (bytes += n) });
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${url}/`);
    await page.evaluate(() => window.demo.ready);
    const firstVisit = bytes;
    const { chunks, files, seconds } = await page.evaluate(() => window.demo.manifest);
    await page.reload();
    const answered = await page.evaluate(async () => {
      await window.demo.ready;
      if (window.demo.indexedThisVisit) throw new Error("the reload indexed again");
      await window.demo.search("split a byte stream into frames");
      return performance.now();
    });
    const row = (config, values) => ({ engine: "demo", config, ...values });
    return [
      row("first visit: every byte the page fetched", { download_kib: firstVisit / 1024 }),
      row(`index the bundled sample (${files} files), pool of the default size`, { chunks, index_s: seconds, chunks_per_s: chunks / seconds }),
      row("reload: navigation to the first query's answer, model fetched again", { p50_ms: answered }),
    ];
  } finally {
    await browser.close();
    server.close();
  }
}

/** `inBrowser` and `inPage` are bench.mjs's; `outDir` is served as /bench-data/. */
export async function runEmbed({ inBrowser, inPage, outDir, cores }) {
  const chunks = setUp(outDir).slice(0, 32);
  const pool = Math.max(2, Math.min(cores, 4));
  const configs = [
    { engine: "quiver", build: "simd128", workers: 1 },
    { engine: "quiver", build: "scalar", workers: 1, rounds: 2 },
    { engine: "quiver", build: "simd128", workers: pool },
    { engine: "ort", threads: 1 },
    { engine: "ort", threads: 2 },
  ];
  const { rows, browser } = await inBrowser(async (b, url) => {
    const rows = [];
    for (const config of configs) rows.push(...(await inPage(b, url, "embed", { ...config, chunks })));
    return rows;
  });
  // Every engine must have computed the same vectors as quiver's one-worker simd128 run.
  const reference = rows[0].vectors;
  for (const r of rows) {
    r.min_cosine_vs_quiver = Math.min(...r.vectors.map((v, i) => cosine(v, reference[i])));
    delete r.vectors;
    if (r.min_cosine_vs_quiver < 0.999) throw new Error(`${r.engine} ${r.config}: cosine ${r.min_cosine_vs_quiver} with quiver's vectors`);
  }
  const rate = (engine, config) => rows.find((r) => r.engine === engine && r.config === config).chunks_per_s;
  const one = rate("quiver-embed", "simd128, 1 worker");
  const ratios = {
    embed_simd_vs_scalar: one / rate("quiver-embed", "scalar, 1 worker"),
    embed_pool_vs_one_worker: rate("quiver-embed", `simd128, pool of ${pool}`) / one,
    embed_pool_vs_ort_web_2t: rate("quiver-embed", `simd128, pool of ${pool}`) / rate("onnxruntime-web", "wasm, 2 threads"),
    embed_one_worker_vs_ort_web_1t: one / rate("onnxruntime-web", "wasm, 1 thread"),
  };
  rows.push(...(await demoRun()));
  return { rows, ratios, browser };
}
