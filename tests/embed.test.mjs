// The embedder end to end in Chromium: every wasm build against the reference
// implementation's vectors on the committed fixture, order kept across the pool,
// progress reported, and bad arguments refused with typed errors. Needs the build
// (node scripts/build.mjs) and the model (npm run setup).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cosine, root, usePage } from "./helpers.mjs";

const fixture = join(root, "tests", "fixtures", "minilm-reference");
const texts = readFileSync(join(fixture, "texts.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l).text);
const reference = new Float32Array(readFileSync(join(fixture, "vectors.f32")).buffer.slice(0));

if (!existsSync(join(root, "models", "all-minilm-l6-v2", "model.f16.safetensors"))) {
  throw new Error("models/all-minilm-l6-v2/ is missing: run `npm run setup`");
}

const env = usePage(before, after);

/** In the page: loads an embedder with `options`, embeds `texts`; answers plain arrays. */
function embedInPage(options, texts) {
  return env.p.page.evaluate(
    async ({ options, texts }) => {
      const { loadEmbedder } = await import("/js/embed.js");
      const loading = [];
      const embedder = await loadEmbedder({ ...options, onProgress: (p) => loading.push(p) });
      try {
        const progress = [];
        const vectors = await embedder.embed(texts, { onProgress: (p) => progress.push(p) });
        // The same texts reversed: each vector must follow its text.
        const reversed = await embedder.embed([...texts].reverse());
        return {
          build: embedder.build,
          dim: embedder.dim,
          workers: embedder.workers,
          vectors: vectors.map((v) => [...v]),
          reversed: reversed.map((v) => [...v]),
          kinds: vectors.map((v) => v.constructor.name),
          loading,
          progress,
        };
      } finally {
        embedder.close();
      }
    },
    { options, texts },
  );
}

for (const build of ["simd128", "scalar"]) {
  test(`the ${build} build matches the reference on every fixture text, across a pool of 2`, { timeout: 600_000 }, async () => {
    const r = await embedInPage({ build, workers: 2 }, texts);
    assert.equal(r.build, build);
    assert.equal(r.dim, 384);
    assert.equal(r.workers, 2);
    assert.equal(r.vectors.length, texts.length);
    r.vectors.forEach((v, i) => {
      assert.equal(r.kinds[i], "Float32Array");
      assert.equal(v.length, 384);
      const c = cosine(v, reference.subarray(i * 384, (i + 1) * 384));
      assert.ok(c >= 0.999, `text ${i}: cosine ${c} with the reference`);
      const back = r.reversed[texts.length - 1 - i];
      assert.ok(cosine(v, back) > 0.99999, `text ${i} embeds differently when sent in reverse order`);
    });
    // Progress: bytes, then workers, each ending at its total; texts done, rising to all.
    const download = r.loading.filter((p) => p.stage === "download");
    const load = r.loading.filter((p) => p.stage === "load");
    assert.ok(download.length > 0 && download.at(-1).loaded === download.at(-1).total && download.at(-1).total > 40e6);
    assert.deepEqual(
      load.map((p) => p.loaded),
      [1, 2],
    );
    assert.deepEqual(
      r.progress.map((p) => p.total),
      r.progress.map(() => texts.length),
    );
    assert.equal(r.progress.at(-1).done, texts.length);
    assert.ok(r.progress.every((p, i) => i === 0 || p.done > r.progress[i - 1].done));
  });
}

test("a killed worker fails its batch with WORKER_LOST, restarts, and embeds right on retry", { timeout: 300_000 }, async () => {
  const out = await env.p.page.evaluate(async (texts) => {
    const { loadEmbedder } = await import("/js/embed.js");
    const embedder = await loadEmbedder({ workers: 2, build: "simd128" });
    try {
      const running = embedder.embed(texts);
      // Once the first batches are under way, worker 0 dies with its batch.
      await new Promise((r) => setTimeout(r, 50));
      const killed = embedder._workers[0];
      killed.terminate();
      const lost = await running.then(
        () => null,
        (e) => ({ code: e.code, message: e.message }),
      );
      // The retry waits for no one: worker 1 takes every batch until worker 0 is back.
      const again = await embedder.embed(texts);
      const fresh = embedder._workers[0] !== killed && embedder._workers.length === 2;
      return { lost, again: again.map((v) => [...v]), fresh };
    } finally {
      embedder.close();
    }
  }, texts);
  assert.equal(out.lost?.code, "WORKER_LOST", JSON.stringify(out.lost));
  assert.match(out.lost.message, /embed worker stopped/);
  assert.ok(out.fresh);
  out.again.forEach((v, i) => {
    const c = cosine(v, reference.subarray(i * 384, (i + 1) * 384));
    assert.ok(c >= 0.999, `text ${i} after the restart: cosine ${c}`);
  });
});

test("bad arguments fail with typed errors naming the field", { timeout: 300_000 }, async () => {
  // A model directory whose files are there but are not the model's.
  await env.p.page.route("**/not-a-model/*", (route) => route.fulfill({ status: 200, body: "not a model" }));
  const errors = await env.p.page.evaluate(async () => {
    const { loadEmbedder } = await import("/js/embed.js");
    const caught = async (f) => {
      try {
        await f();
        return null;
      } catch (e) {
        return { name: e.name, code: e.code, message: e.message };
      }
    };
    const out = {
      workers: await caught(() => loadEmbedder({ workers: 0 })),
      build: await caught(() => loadEmbedder({ build: "gpu" })),
      weights: await caught(() => loadEmbedder({ weights: "int4" })),
      missing: await caught(() => loadEmbedder({ model: "/nowhere/", workers: 1 })),
      wrong: await caught(() => loadEmbedder({ model: "/not-a-model/", workers: 1 })),
    };
    const embedder = await loadEmbedder({ workers: 1 });
    out.notArray = await caught(() => embedder.embed("one text"));
    out.notString = await caught(() => embedder.embed(["fine", 42]));
    out.empty = await embedder.embed([]);
    embedder.close();
    out.closed = await caught(() => embedder.embed(["after close"]));
    return out;
  });
  const expect = (e, code, field) => {
    assert.equal(e?.name, "QuiverError", JSON.stringify(e));
    assert.equal(e.code, code);
    assert.match(e.message, field);
  };
  expect(errors.workers, "INVALID_ARGUMENT", /^workers:/);
  expect(errors.build, "INVALID_ARGUMENT", /^build:/);
  expect(errors.weights, "INVALID_ARGUMENT", /^weights:/);
  expect(errors.missing, "NOT_FOUND", /^model: .*\/nowhere\/.* 404/);
  expect(errors.wrong, "INVALID_ARGUMENT", /^model: its files are not/);
  expect(errors.notArray, "INVALID_ARGUMENT", /^texts:/);
  expect(errors.notString, "INVALID_ARGUMENT", /^texts\[1\]:/);
  expect(errors.closed, "CLOSED", /closed/);
  assert.deepEqual(errors.empty, []);
});

test("js/embed.d.ts types the README's usage and rejects misuse", { timeout: 120_000 }, () => {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom"];
  let out = "";
  try {
    execFileSync(process.execPath, [tsc, ...args, join(root, "tests", "embed-types.ts")], { cwd: root, encoding: "utf8" });
  } catch (e) {
    out = e.stdout;
  }
  assert.equal(out, "");
});
