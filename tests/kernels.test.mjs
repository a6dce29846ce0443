// Both wasm builds, loaded in-process in Node, must give the same answers: the same
// distance within 1e-5 on random and adversarial inputs, and the same search results.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./helpers.mjs";

async function load(flavour) {
  const glue = await import(join(root, "pkg", flavour, "quiver.js"));
  await glue.default({ module_or_path: readFileSync(join(root, "pkg", flavour, "quiver_bg.wasm")) });
  return glue;
}

const simd = await load("simd");
const scalar = await load("scalar");

function random(seed) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 1073741824 - 1;
  };
}

function cases() {
  const r = random(42);
  const out = [];
  for (const d of [1, 3, 15, 16, 17, 383, 384, 1536]) {
    const a = Float32Array.from({ length: d }, r);
    const b = Float32Array.from({ length: d }, r);
    out.push([`random d=${d}`, a, b]);
    out.push([`zero d=${d}`, a, new Float32Array(d)]);
    out.push([`both zero d=${d}`, new Float32Array(d), new Float32Array(d)]);
    // Large terms that cancel: the sum depends on the order of additions.
    const c = Float32Array.from({ length: d }, (_, i) => (i % 2 ? -1 : 1) * 1e18 * (1 + i / d));
    out.push([`cancelling d=${d}`, c, Float32Array.from({ length: d }, (_, i) => 1 + (i % 3))]);
    out.push([`tiny d=${d}`, Float32Array.from({ length: d }, () => 1e-30), Float32Array.from({ length: d }, r)]);
    out.push([`huge d=${d}`, Float32Array.from({ length: d }, () => 3e38), Float32Array.from({ length: d }, () => -3e38)]);
  }
  return out;
}

test("the two builds report which kernels they run", () => {
  assert.equal(simd.build(), "simd128");
  assert.equal(scalar.build(), "scalar");
});

/** Sum of |a_i * b_i| (or of (a_i - b_i)^2): the scale rounding error grows with. */
function magnitude(metric, a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += metric === "euclidean" ? (a[i] - b[i]) ** 2 : Math.abs(a[i] * b[i]);
  return metric === "euclidean" ? Math.sqrt(m) : metric === "cosine" ? 1 : m;
}

test("simd128 and scalar kernels agree within 1e-5 on random and adversarial inputs", () => {
  let compared = 0;
  for (const [name, a, b] of cases()) {
    for (const metric of ["dot", "cosine", "euclidean"]) {
      const x = simd.distance(metric, a, b);
      const y = scalar.distance(metric, a, b);
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        // Overflow must overflow the same way in both.
        assert.ok(Object.is(x, y), `${metric} ${name}: simd ${x} vs scalar ${y}`);
      } else {
        // Relative to the magnitude of the terms, so that cancelling inputs (whose sum
        // depends on the order of additions) are judged by the error rounding allows.
        const scale = Math.max(Math.abs(x), Math.abs(y), magnitude(metric, a, b), Number.MIN_VALUE);
        assert.ok(Math.abs(x - y) / scale < 1e-5, `${metric} ${name}: simd ${x} vs scalar ${y}`);
      }
      compared++;
    }
  }
  assert.equal(compared, 8 * 6 * 3);
});

test("distance matches an f64 reference", () => {
  const r = random(7);
  const a = Float32Array.from({ length: 383 }, r);
  const b = Float32Array.from({ length: 383 }, r);
  let dot = 0,
    na = 0,
    nb = 0,
    l2 = 0,
    mag = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    l2 += (a[i] - b[i]) ** 2;
    mag += Math.abs(a[i] * b[i]);
  }
  for (const core of [simd, scalar]) {
    assert.ok(Math.abs(core.distance("dot", a, b) - dot) <= 1e-5 * mag);
    assert.ok(Math.abs(core.distance("cosine", a, b) - dot / Math.sqrt(na * nb)) <= 1e-5);
    assert.ok(Math.abs(core.distance("euclidean", a, b) - Math.sqrt(l2)) <= 1e-5 * Math.sqrt(l2));
  }
});

test("binary codes' table scan picks the same candidates in both builds", () => {
  // 2,003 rows: codes are kept from 1,000, and the last block of 16 is partial; 383
  // dimensions pad the codes to 384 bits. With fetch = k the answer is the codes' own
  // top 10 (re-ranked), so the builds agree only if their scans' sums do.
  const r = random(5);
  const n = 2003,
    d = 383;
  const vectors = Float32Array.from({ length: n * d }, r);
  const ids = JSON.stringify(Array.from({ length: n }, (_, i) => `v${i}`));
  const queries = Array.from({ length: 20 }, () => Float32Array.from({ length: d }, r));
  const answers = [simd, scalar].map((core) => {
    const db = new core.Db("s");
    db.createCollection("c", d, "cosine", "flat", "binary");
    db.upsert("c", ids, vectors, new Uint32Array(n).fill(d), undefined, undefined);
    const out = queries.map((q) =>
      JSON.parse(db.search("c", q, JSON.stringify({ k: 10, fetch: 10 })))
        .map((h) => h.id)
        .sort(),
    );
    assert.ok(db.stats("c").codeBytes > 0, "the collection keeps codes");
    db.free();
    return out;
  });
  assert.deepEqual(answers[0], answers[1]);
});

test("searches in both builds return the same results", () => {
  const r = random(3);
  const n = 2000,
    d = 383;
  const vectors = Float32Array.from({ length: n * d }, r);
  const ids = JSON.stringify(Array.from({ length: n }, (_, i) => `v${i}`));
  const metadata = JSON.stringify(Array.from({ length: n }, (_, i) => ({ even: i % 2 === 0 })));
  const lengths = new Uint32Array(n).fill(d);
  const results = [simd, scalar].map((core) => {
    const db = new core.Db("s");
    db.createCollection("c", d, "euclidean");
    db.upsert("c", ids, vectors, lengths, metadata, undefined);
    const out = [];
    for (let q = 0; q < 20; q++) {
      const query = vectors.subarray(q * 97 * d, (q * 97 + 1) * d);
      out.push(db.search("c", query, JSON.stringify({ k: 10, filter: q % 2 ? { even: true } : undefined })));
    }
    db.free();
    return out;
  });
  for (let q = 0; q < results[0].length; q++) {
    const [a, b] = results.map((r) => JSON.parse(r[q]));
    assert.deepEqual(
      a.map((h) => h.id),
      b.map((h) => h.id),
      `query ${q}`,
    );
    a.forEach((h, i) => assert.ok(Math.abs(h.score - b[i].score) <= 1e-5 * Math.max(1, Math.abs(h.score)), `query ${q} rank ${i}`));
  }
  assert.equal(JSON.parse(results[0][0])[0].id, "v0");
  assert.equal(JSON.parse(results[0][0])[0].score, 0);
});
