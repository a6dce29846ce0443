// Builds and serves the code-search demo (demo/). Two files the page fetches are made
// here rather than committed: sample.json, quiver's own sources that a first visit
// indexes, and the embedding model's files, which `npm run setup` downloads into
// models/. Both dev server and preview send the COOP/COEP headers that give the page
// SharedArrayBuffer.
import { defineConfig, type Plugin } from "vite";
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));

/** The folders (and files) of this repository that make the demo's sample. */
const SAMPLE = ["crate/src", "js", "workers"];
const SAMPLE_SKIP = /(^|\/)vendor\/|\.d\.ts$/;

function sampleJson(): string {
  const files: { path: string; text: string }[] = [];
  const walk = (abs: string) => {
    if (statSync(abs).isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(join(abs, name));
      return;
    }
    const path = relative(root, abs).split(sep).join("/");
    if (!SAMPLE_SKIP.test(path)) files.push({ path, text: readFileSync(abs, "utf8") });
  };
  for (const p of SAMPLE) walk(join(root, p));
  return JSON.stringify({ files });
}

/** The model's files the page loads (f16 weights), from models/ (`npm run setup`). */
const MODELS = join(root, "models");
const MODEL_FILES = ["model.f16.safetensors", "tokenizer.json", "config.json"].map((f) => `all-minilm-l6-v2/${f}`);
function modelFiles(): string[] {
  return MODEL_FILES.filter((f) => existsSync(join(MODELS, f)));
}

/** Serves sample.json and models/ in dev, and writes them into the build. */
function demoAssets(): Plugin {
  return {
    name: "quiver-demo-assets",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = decodeURIComponent((req.url ?? "").split("?")[0]);
        if (path === "/sample.json") {
          res.setHeader("Content-Type", "application/json");
          res.end(sampleJson());
        } else if (path.startsWith("/models/") && modelFiles().includes(path.slice(8))) {
          res.end(readFileSync(join(MODELS, path.slice(8))));
        } else next();
      });
    },
    generateBundle() {
      this.emitFile({ type: "asset", fileName: "sample.json", source: sampleJson() });
      for (const file of modelFiles()) {
        this.emitFile({ type: "asset", fileName: `models/${file}`, source: readFileSync(join(MODELS, file)) });
      }
    },
  };
}

const isolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  root: "demo",
  base: "./",
  plugins: [demoAssets()],
  build: { outDir: "../dist/demo", emptyOutDir: true, target: "es2022" },
  worker: { format: "es" },
  server: { host: "127.0.0.1", headers: isolation, fs: { allow: [root] } },
  preview: { host: "127.0.0.1", headers: isolation },
});
