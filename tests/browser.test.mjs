// End to end in headless Chromium: the package loaded by a plain <script type="module">
// page, with each wasm build, against a brute-force oracle computed in the page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage } from "./helpers.mjs";

let browser, page, stop, errors;

before(async () => {
  browser = await launch();
  ({ page, stop, errors } = await openPage(browser, "/tests/pages/plain.html"));
  await page.waitForFunction(() => window.ready);
});

after(async () => {
  await stop();
  await browser.close();
});

for (const build of ["simd128", "scalar"]) {
  test(`${build}: exact search equals brute force, for every metric`, async () => {
    const out = await page.evaluate(async (build) => {
      let s = 12345;
      const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
      const db = await quiver.open({ name: `bf-${build}`, build });
      const report = { build: db.build, mismatches: [] };
      for (const metric of ["cosine", "euclidean", "dot"]) {
        const dim = 67,
          n = 1500;
        const col = await db.collection(metric, { dim, metric });
        const rows = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, vector: Float32Array.from({ length: dim }, rand), metadata: { g: i % 5 } }));
        await col.upsert(rows);
        const score = (q, v) => {
          let d = 0,
            nq = 0,
            nv = 0,
            l2 = 0;
          for (let i = 0; i < dim; i++) {
            d += q[i] * v[i];
            nq += q[i] ** 2;
            nv += v[i] ** 2;
            l2 += (q[i] - v[i]) ** 2;
          }
          return metric === "cosine" ? d / Math.sqrt(nq * nv) : metric === "dot" ? d : Math.sqrt(l2);
        };
        for (let t = 0; t < 10; t++) {
          const q = Array.from({ length: dim }, rand);
          const filter = t % 2 ? { g: { $in: [1, 3] } } : undefined;
          const got = await col.search(q, { k: 10, filter });
          const want = rows
            .filter((r) => !filter || [1, 3].includes(r.metadata.g))
            .map((r) => ({ id: r.id, score: score(q, r.vector) }))
            .sort((a, b) => (metric === "euclidean" ? a.score - b.score : b.score - a.score))
            .slice(0, 10);
          got.forEach((g, i) => {
            if (g.id !== want[i].id || Math.abs(g.score - want[i].score) > 1e-4) report.mismatches.push({ metric, t, i, g, w: want[i] });
          });
          if (got.length !== 10) report.mismatches.push({ metric, t, length: got.length });
          if (filter && !got.every((g) => [1, 3].includes(g.metadata.g))) report.mismatches.push({ metric, t, filter: true });
        }
      }
      await db.close();
      return report;
    }, build);
    assert.equal(out.build, build);
    assert.deepEqual(out.mismatches, []);
  });
}

test("both builds give the same results in the browser, and auto picks simd128", async () => {
  const out = await page.evaluate(async () => {
    const results = {};
    for (const build of ["simd128", "scalar", "auto"]) {
      const db = await quiver.open({ name: `same-${build}`, build });
      const col = await db.collection("c", { dim: 384 });
      let s = 99;
      const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 1073741824 - 1;
      const vectors = Array.from({ length: 3000 }, () => Float32Array.from({ length: 384 }, rand));
      await col.upsert(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
      results[build] = { build: db.build, hits: [] };
      for (let q = 0; q < 5; q++) results[build].hits.push(await col.search(vectors[q * 11], { k: 20 }));
      await db.close();
    }
    return results;
  });
  assert.equal(out.auto.build, "simd128");
  assert.equal(out.scalar.build, "scalar");
  out.simd128.hits.forEach((hits, q) => {
    const other = out.scalar.hits[q];
    assert.deepEqual(
      hits.map((h) => h.id),
      other.map((h) => h.id),
      `query ${q}`,
    );
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - other[i].score) <= 1e-5, `query ${q} rank ${i}`));
  });
  assert.equal(out.simd128.hits[0][0].id, "v0");
});

test("filters with dotted paths, $exists and $not answer as a predicate in the page does", async () => {
  const out = await page.evaluate(async () => {
    const db = await quiver.open({ name: "filters" });
    const col = await db.collection("c", { dim: 2, metric: "dot" });
    const metadata = (i) => [{ repo: { lang: ["rust", "go"][i % 2], stars: i } }, { repo: "flat" }, { repo: { lang: null } }, {}, { price: i }][i % 5];
    await col.upsert(Array.from({ length: 200 }, (_, i) => ({ id: `r${i}`, vector: [1, i / 200], metadata: metadata(i) })));
    const cases = [
      [{ "repo.lang": "rust" }, (m) => m.repo?.lang === "rust"],
      [{ "repo.lang": { $exists: true } }, (m) => typeof m.repo === "object" && m.repo !== null && "lang" in m.repo],
      [{ "repo.stars": { $not: { $gt: 100 } } }, (m) => !(typeof m.repo?.stars === "number" && m.repo.stars > 100)],
      [{ price: { $exists: false }, "repo.lang": { $ne: "go" } }, (m) => !("price" in m) && m.repo?.lang !== "go"],
    ];
    const answers = [];
    for (const [filter, keep] of cases) {
      const got = (await col.search([0, 1], { k: 200, filter })).map((h) => h.id).sort();
      const want = Array.from({ length: 200 }, (_, i) => i)
        .filter((i) => keep(metadata(i)))
        .map((i) => `r${i}`)
        .sort();
      answers.push({ n: want.length, same: JSON.stringify(got) === JSON.stringify(want) });
    }
    const bad = await col.search([0, 1], { filter: { price: { $not: 5 } } }).then(
      () => "ok",
      (e) => `${e.code}: ${e.message}`,
    );
    await db.close();
    return { answers, bad };
  });
  for (const a of out.answers) assert.ok(a.same && a.n > 0 && a.n < 200, JSON.stringify(out.answers));
  assert.match(out.bad, /^INVALID_ARGUMENT: filter\.price\.\$not: expected an operator object/);
});

test("get, delete, count, ids, threshold and generated ids", async () => {
  const out = await page.evaluate(async () => {
    const db = await quiver.open({ name: "crud" });
    const col = await db.collection("notes", { dim: 2, metric: "euclidean" });
    const ids = await col.upsert([
      { id: "a", vector: [0, 0], metadata: { tag: "x" }, text: "origin" },
      { id: "b", vector: new Float32Array([3, 4]) },
      { vector: new Float64Array([6, 8]) },
    ]);
    const before = await col.count();
    const a = await col.get("a");
    const near = await col.search([0, 0], { k: 3, threshold: 5 });
    const deleted = await col.delete([ids[1], "missing"]);
    const after = { count: await col.count(), ids: await col.ids(), b: await col.get("b") };
    const again = await db.collection("notes");
    const names = await db.collections();
    await db.close();
    return { ids, before, a: { ...a, vector: Array.from(a.vector) }, near, deleted, after, again: [again.dim, again.metric], names };
  });
  assert.equal(out.ids.length, 3);
  assert.deepEqual(out.ids.slice(0, 2), ["a", "b"]);
  assert.match(out.ids[2], /^[0-9a-f]{16}-[0-9a-f]+$/);
  assert.equal(out.before, 3);
  assert.deepEqual(out.a, { id: "a", vector: [0, 0], metadata: { tag: "x" }, text: "origin" });
  assert.deepEqual(
    out.near.map((h) => [h.id, h.score]),
    [
      ["a", 0],
      ["b", 5],
    ],
  );
  assert.equal(out.deleted, 1);
  assert.deepEqual(out.after, { count: 2, ids: ["a", out.ids[2]], b: null });
  assert.deepEqual(out.again, [2, "euclidean"]);
  assert.deepEqual(out.names, ["notes"]);
});

test("bad input gets a QuiverError with a code naming the field, and changes nothing", async () => {
  const out = await page.evaluate(async () => {
    const db = await quiver.open({ name: "errors" });
    const col = await db.collection("c", { dim: 3, metric: "cosine" });
    await col.upsert([{ id: "keep", vector: [1, 2, 3], metadata: { n: 1 } }]);
    const attempt = async (label, fn) => {
      try {
        await fn();
        return { label, code: "none" };
      } catch (e) {
        return { label, name: e.name, code: e.code, message: e.message, isError: e instanceof quiver.QuiverError };
      }
    };
    const big = { blob: "x".repeat(70 * 1024) };
    const cyclic = {};
    cyclic.self = cyclic;
    const results = [
      await attempt("wrong dimension", () => col.upsert([{ vector: [1, 2] }])),
      await attempt("NaN", () => col.upsert([{ vector: [1, NaN, 3] }])),
      await attempt("Infinity", () => col.upsert([{ vector: new Float32Array([1, 2, Infinity]) }])),
      await attempt("empty", () => col.upsert([{ vector: [] }])),
      await attempt("not a vector", () => col.upsert([{ vector: "1,2,3" }])),
      await attempt("string element", () => col.upsert([{ vector: [1, "2", 3] }])),
      await attempt("zero under cosine", () => col.upsert([{ vector: [0, 0, 0] }])),
      await attempt("metadata array", () => col.upsert([{ vector: [1, 1, 1], metadata: [1, 2] }])),
      await attempt("metadata too big", () => col.upsert([{ vector: [1, 1, 1], metadata: big }])),
      await attempt("metadata cyclic", () => col.upsert([{ vector: [1, 1, 1], metadata: cyclic }])),
      await attempt("metadata bigint", () => col.upsert([{ vector: [1, 1, 1], metadata: { n: 1n } }])),
      await attempt("metadata function", () => col.upsert([{ vector: [1, 1, 1], metadata: { f() {} } }])),
      await attempt("metadata Map", () => col.upsert([{ vector: [1, 1, 1], metadata: new Map([["lang", "py"]]) }])),
      await attempt("metadata nested Set", () => col.upsert([{ vector: [1, 1, 1], metadata: { tags: { s: new Set([1]) } } }])),
      await attempt("metadata typed array", () => col.upsert([{ vector: [1, 1, 1], metadata: { v: new Float32Array(2) } }])),
      await attempt("metadata undefined value", () => col.upsert([{ vector: [1, 1, 1], metadata: { a: [1, undefined] } }])),
      await attempt("metadata NaN", () => col.upsert([{ vector: [1, 1, 1], metadata: { x: NaN } }])),
      await attempt("metadata symbol", () => col.upsert([{ vector: [1, 1, 1], metadata: { x: Symbol("s") } }])),
      await attempt("metadata Date", () => col.upsert([{ vector: [1, 1, 1], metadata: { when: new Date(0) } }])),
      await attempt("metadata bad in second record", () =>
        col.upsert([
          { id: "fine", vector: [1, 1, 1], metadata: { a: 1 } },
          { id: "f2", vector: [1, 1, 1], metadata: { g: () => 1 } },
        ]),
      ),
      await attempt("batch with one bad", () =>
        col.upsert([
          { id: "ok1", vector: [1, 1, 1] },
          { id: "ok2", vector: [1, 1, 1] },
          { id: "bad", vector: [1, 1] },
        ]),
      ),
      await attempt("id not a string", () => col.upsert([{ id: 7, vector: [1, 1, 1] }])),
      await attempt("k = 0", () => col.search([1, 2, 3], { k: 0 })),
      await attempt("k negative", () => col.search([1, 2, 3], { k: -3 })),
      await attempt("k too large", () => col.search([1, 2, 3], { k: 10001 })),
      await attempt("k fractional", () => col.search([1, 2, 3], { k: 2.5 })),
      await attempt("query wrong dimension", () => col.search([1, 2], { k: 1 })),
      await attempt("query NaN", () => col.search([1, NaN, 2], { k: 1 })),
      await attempt("filter undefined", () => col.search([1, 2, 3], { filter: { lang: undefined } })),
      await attempt("filter function", () => col.search([1, 2, 3], { filter: { n: { $in: [1, () => 2] } } })),
      await attempt("filter not an object", () => col.search([1, 2, 3], { filter: "lang = py" })),
      await attempt("timeout Infinity", () => col.search([1, 2, 3], { timeout: Infinity })),
      await attempt("timeout past 2^31-1", () => col.search([1, 2, 3], { timeout: 2 ** 31 })),
      await attempt("dim wraps as u32", () => db.collection("wrap", { dim: 2 ** 32 + 3 })),
      await attempt("dim over the maximum", () => db.collection("huge", { dim: 65537 })),
      await attempt("dim zero", () => db.collection("zero", { dim: 0 })),
      await attempt("bad filter", () => col.search([1, 2, 3], { filter: { n: { $regex: "x" } } })),
      await attempt("unknown metric", () => db.collection("m", { dim: 3, metric: "manhattan" })),
      await attempt("unknown collection", () => db.collection("nope")),
      await attempt("dim mismatch on reopen", () => db.collection("c", { dim: 4 })),
      await attempt("bad build", () => quiver.open({ build: "avx" })),
    ];
    const state = { count: await col.count(), ids: await col.ids(), keep: await col.get("keep"), collections: await db.collections() };
    await db.close();
    results.push(await attempt("search after close", () => col.search([1, 2, 3])));
    results.push(await attempt("upsert after close", () => col.upsert([{ vector: [1, 2, 3] }])));
    results.push(await attempt("collection after close", () => db.collection("c")));
    return { results, state: { ...state, keep: state.keep.metadata } };
  });
  const want = {
    "wrong dimension": ["DIMENSION_MISMATCH", /^records\[0\]\.vector has 2 dimensions, the collection has 3/],
    NaN: ["INVALID_VECTOR", /^records\[0\]\.vector\[1\] is NaN/],
    Infinity: ["INVALID_VECTOR", /^records\[0\]\.vector\[2\] is inf/],
    empty: ["INVALID_VECTOR", /^records\[0\]\.vector is empty/],
    "not a vector": ["INVALID_VECTOR", /^records\[0\]\.vector must be a Float32Array/],
    "string element": ["INVALID_VECTOR", /^records\[0\]\.vector\[1\] must be a number/],
    "zero under cosine": ["INVALID_VECTOR", /zero vector/],
    "metadata array": ["INVALID_METADATA", /^records\[0\]\.metadata must be a JSON object/],
    "metadata too big": ["INVALID_METADATA", /^records\[0\]\.metadata is \d+ bytes, over the 65536 limit/],
    "metadata cyclic": ["INVALID_METADATA", /^records\[0\]\.metadata\.self is a reference to itself/],
    "metadata bigint": ["INVALID_METADATA", /^records\[0\]\.metadata\.n is a bigint, which JSON cannot carry/],
    "metadata function": ["INVALID_METADATA", /^records\[0\]\.metadata\.f is a function/],
    "metadata Map": ["INVALID_METADATA", /^records\[0\]\.metadata is a Map,/],
    "metadata nested Set": ["INVALID_METADATA", /^records\[0\]\.metadata\.tags\.s is a Set,/],
    "metadata typed array": ["INVALID_METADATA", /^records\[0\]\.metadata\.v is a Float32Array,/],
    "metadata undefined value": ["INVALID_METADATA", /^records\[0\]\.metadata\.a\[1\] is undefined,/],
    "metadata NaN": ["INVALID_METADATA", /^records\[0\]\.metadata\.x is NaN,/],
    "metadata symbol": ["INVALID_METADATA", /^records\[0\]\.metadata\.x is a symbol,/],
    "metadata Date": ["INVALID_METADATA", /^records\[0\]\.metadata\.when is a Date,/],
    "metadata bad in second record": ["INVALID_METADATA", /^records\[1\]\.metadata\.g is a function/],
    "filter undefined": ["INVALID_ARGUMENT", /^filter\.lang is undefined,/],
    "filter function": ["INVALID_ARGUMENT", /^filter\.n\.\$in\[1\] is a function,/],
    "filter not an object": ["INVALID_ARGUMENT", /^filter: must be an object, got "lang = py"/],
    "timeout Infinity": ["INVALID_ARGUMENT", /^timeout: must be a number of milliseconds above 0 and at most 2147483647, got Infinity/],
    "timeout past 2^31-1": ["INVALID_ARGUMENT", /^timeout: .* got 2147483648/],
    "dim wraps as u32": ["INVALID_ARGUMENT", /^dim: must be an integer from 1 to 65536, got 4294967299/],
    "dim over the maximum": ["INVALID_ARGUMENT", /^dim: must be an integer from 1 to 65536, got 65537/],
    "dim zero": ["INVALID_ARGUMENT", /^dim: must be an integer from 1 to 65536, got 0/],
    "batch with one bad": ["DIMENSION_MISMATCH", /^records\[2\]\.vector/],
    "id not a string": ["INVALID_ARGUMENT", /^records\[0\]\.id/],
    "k = 0": ["INVALID_ARGUMENT", /^k: must be/],
    "k negative": ["INVALID_ARGUMENT", /^k: must be an integer from 1 to 10000, got -3$/],
    "k too large": ["INVALID_ARGUMENT", /^k: must be an integer from 1 to 10000, got 10001$/],
    "k fractional": ["INVALID_ARGUMENT", /^k: must be an integer from 1 to 10000, got 2.5$/],
    "query wrong dimension": ["DIMENSION_MISMATCH", /^query has 2 dimensions/],
    "query NaN": ["INVALID_VECTOR", /^query\[1\] is NaN/],
    "bad filter": ["INVALID_ARGUMENT", /^filter\.n\.\$regex: unknown operator/],
    "unknown metric": ["INVALID_ARGUMENT", /^metric: unknown metric "manhattan"/],
    "unknown collection": ["NOT_FOUND", /collection "nope" does not exist/],
    "dim mismatch on reopen": ["DIMENSION_MISMATCH", /^dim: collection "c" exists with 3 dimensions/],
    "bad build": ["INVALID_ARGUMENT", /^build:/],
    "search after close": ["CLOSED", /closed/],
    "upsert after close": ["CLOSED", /closed/],
    "collection after close": ["CLOSED", /closed/],
  };
  for (const r of out.results) {
    const [code, message] = want[r.label];
    assert.equal(r.code, code, `${r.label}: ${r.message}`);
    assert.match(r.message, message, r.label);
    assert.equal(r.name, "QuiverError", r.label);
    assert.ok(r.isError, r.label);
  }
  assert.equal(out.results.length, Object.keys(want).length);
  assert.deepEqual(out.state, { count: 1, ids: ["keep"], keep: { n: 1 }, collections: ["c"] });
  assert.deepEqual(errors, []);
});
