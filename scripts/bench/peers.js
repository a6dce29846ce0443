// The peers of suite `ann`, run in the page by scripts/bench.mjs, one engine to a fresh
// page: hnswlib-wasm, sqlite-vec's browser build and PGlite with pgvector. Each runs on
// the page's main thread, as its README shows it (none documents a worker set-up as the
// faster one), loaded as ES modules from /node_modules with no bundler, and is measured
// as ann.js measures quiver (`measure`): build time, recall@10 against the same exact
// ids, latency one query at a time and throughput with queries in flight, through the
// engine's own API.
import { loadSet, measure } from "./ann.js";

/** The /node_modules paths this page has fetched so far: what its engine downloads. */
function fetched() {
  const paths = performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname);
  return [...new Set(paths.filter((p) => p.startsWith("/node_modules/")))];
}

const seconds = (t0) => (performance.now() - t0) / 1000;
const mib = (bytes) => bytes / 2 ** 20;
/** A vector's bytes, which is how sqlite-vec takes a float32 vector as a parameter. */
const blob = (v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
/** pgvector's text form of a vector: the one a query parameter can carry. */
const pgText = (v) => `[${v.join(",")}]`;

/**
 * hnswlib-wasm: M 16, efConstruction 200 (quiver's), cosine space; rows added in
 * batches of 1,000 with addPoints and their row numbers as labels; searchKnn after
 * setEfSearch at each ef of `efs`.
 */
async function hnswlib({ base, queries, gt, dim, n, efs, k }) {
  const { loadHnswlib } = await import("/node_modules/hnswlib-wasm/dist/hnswlib.js");
  const lib = await loadHnswlib();
  const t0 = performance.now();
  // An empty autosave file name: the index stays in memory, not written to IDBFS as it grows.
  const index = new lib.HierarchicalNSW("cosine", dim, "");
  index.initIndex(n, 16, 200, 100);
  for (let start = 0; start < n; start += 1000) {
    const items = [];
    const labels = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      items.push(base.subarray(i * dim, (i + 1) * dim));
      labels.push(i);
    }
    index.addPoints(items, labels, false);
  }
  const build = seconds(t0);
  const rows = [];
  for (const ef of efs) {
    index.setEfSearch(ef);
    const r = await measure((q) => index.searchKnn(q, k, undefined).neighbors, queries, gt);
    rows.push({ engine: "hnswlib-wasm", config: `hnsw M16 efC200 ef ${ef}, main thread`, ef, ...r, build_s: build });
  }
  return { rows, memory: lib.HEAPU8.byteLength };
}

/**
 * sqlite-vec: a vec0 virtual table with distance_metric=cosine in an in-memory
 * database, filled in one transaction through one prepared insert; the KNN query is
 * vec0's `embedding MATCH ? AND k = ?`, a brute-force scan (vec0 has no ANN index).
 */
async function sqliteVec({ base, queries, gt, dim, n, k }) {
  const { default: init } = await import("/node_modules/sqlite-vec-wasm-demo/sqlite3.mjs");
  const sqlite3 = await init();
  const db = new sqlite3.oo1.DB(":memory:");
  const t0 = performance.now();
  db.exec(`create virtual table items using vec0(embedding float[${dim}] distance_metric=cosine)`);
  const insert = db.prepare("insert into items(rowid, embedding) values (?, ?)");
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.bind([i, blob(base.subarray(i * dim, (i + 1) * dim))]).stepReset();
  });
  insert.finalize();
  const build = seconds(t0);
  const knn = db.prepare("select rowid from items where embedding match ? and k = ? order by distance");
  const search = (q) => {
    knn.bind([blob(q), k]);
    const ids = [];
    while (knn.step()) ids.push(knn.get(0));
    knn.reset(true);
    return ids;
  };
  const r = await measure(search, queries, gt);
  const version = db.selectValue("select vec_version()");
  const rows = [{ engine: "sqlite-vec", config: `vec0 exact (k = ?), ${version}, main thread`, ...r, build_s: build }];
  return { rows, memory: sqlite3.wasm.heap8u().byteLength };
}

/**
 * PGlite with pgvector: an in-memory database, rows inserted 1,000 to a statement;
 * exact search by `ORDER BY embedding <=> $1 LIMIT k` over the table, then an HNSW
 * index (vector_cosine_ops, m 16, ef_construction 64: pgvector's defaults) built after
 * the load, as pgvector advises, and searched the same way at each `hnsw.ef_search`.
 */
async function pglite({ base, queries, gt, dim, n, k, efSearch }) {
  const { PGlite } = await import("/node_modules/@electric-sql/pglite/dist/index.js");
  const { vector } = await import("/node_modules/@electric-sql/pglite-pgvector/dist/index.js");
  const pg = await PGlite.create({ extensions: { vector } });
  await pg.exec(`create extension vector; create table items (id integer primary key, embedding vector(${dim}))`);
  const t0 = performance.now();
  for (let start = 0; start < n; start += 1000) {
    const values = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) values.push(`(${i}, '${pgText(base.subarray(i * dim, (i + 1) * dim))}')`);
    await pg.exec(`insert into items values ${values.join(",")}`);
  }
  const insert = seconds(t0);
  const sql = `select id from items order by embedding <=> $1::vector limit ${k}`;
  const search = async (q) => (await pg.query(sql, [pgText(q)])).rows.map((r) => r.id);
  const exact = await measure(search, queries, gt);
  const rows = [
    { engine: "pglite", config: "pgvector exact (<=>, no index), main thread", ...exact, build_s: insert, memory_mib: mib(pg.Module.HEAPU8.byteLength) },
  ];

  const t1 = performance.now();
  // pgvector builds far faster while the graph fits in maintenance_work_mem (64 MB by
  // default, less than the graph of 100k rows of 384 floats).
  await pg.exec("set maintenance_work_mem = '512MB'");
  await pg.exec("create index on items using hnsw (embedding vector_cosine_ops) with (m = 16, ef_construction = 64)");
  const build = insert + seconds(t1);
  // A plan without the index would time the exact scan again under the HNSW label.
  const plan = (await pg.query(`explain ${sql}`, [pgText(queries[0])])).rows.map((r) => r["QUERY PLAN"]).join("\n");
  if (!plan.includes("items_embedding_idx")) throw new Error(`pgvector did not use the HNSW index: ${plan.slice(0, 200)}`);
  for (const ef of efSearch) {
    await pg.exec(`set hnsw.ef_search = ${ef}`);
    const r = await measure(search, queries, gt);
    rows.push({ engine: "pglite", config: `pgvector hnsw m16 efc64 ef_search ${ef}, main thread`, ef, ...r, build_s: build });
  }
  const memory = pg.Module.HEAPU8.byteLength;
  await pg.close();
  return { rows, memory };
}

const engines = { hnswlib, sqliteVec, pglite };

/**
 * One peer, `engine`, over `dataset`: its rows with recall@10 against `gt`, latency,
 * build seconds, the MiB of its wasm memory at the end (the exact row of PGlite keeps
 * its own, taken before the index) and `files`, the package files it fetched, which
 * the runner turns into download sizes.
 */
export async function peer({ engine, dataset, gt, efs, efSearch, k = 10 }) {
  const { base, queries } = await loadSet(dataset, gt.length);
  const { rows, memory } = await engines[engine]({ base, queries, gt, dim: dataset.dim, n: dataset.n, efs, efSearch, k });
  const files = fetched();
  return {
    rows: rows.map((r) => ({ dataset: dataset.name, n: dataset.n, ...r, memory_mib: r.memory_mib ?? mib(memory), files })),
  };
}
