// `npm run bench -- --suite NAME`: runs a suite in headless Chromium (and, for the
// core suite, the same search natively), prints a table and writes
// bench-results/NAME.json with the ratios computed from rows of this one run.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { launch, root } from "../tests/helpers.mjs";
import { serve } from "./serve.mjs";

const args = process.argv.slice(2);
/** The value after flag `name` on the command line, if given. */
const arg = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = arg("--suite") ?? null;
const dataDir = join(root, "..", "shared", "data", "code-minilm-20k");
const outDir = join(root, "target", "bench-data");
mkdirSync(outDir, { recursive: true });

/** A seeded normal deviate (Box-Muller over an LCG), so every run builds the same data. */
function gaussian(seed) {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function normalise(v) {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

/**
 * The datasets: real MiniLM code embeddings when ../shared/data has them (10k, the
 * full 20k with its exact ground truth, and 100k made of the 20k plus jittered
 * copies), else clustered random unit vectors of the same shape.
 */
function datasets() {
  const dim = 384;
  let base20, queries, gt;
  if (existsSync(join(dataDir, "base.f32"))) {
    base20 = new Float32Array(readFileSync(join(dataDir, "base.f32")).buffer.slice(0));
    queries = new Float32Array(readFileSync(join(dataDir, "queries.f32")).buffer.slice(0));
    const meta = JSON.parse(readFileSync(join(dataDir, "meta.json"), "utf8"));
    const g = new Int32Array(readFileSync(join(dataDir, "gt.i32")).buffer.slice(0));
    gt = Array.from({ length: meta.q }, (_, q) => Array.from(g.subarray(q * meta.k, q * meta.k + 10)));
  } else {
    const r = gaussian(1);
    const centres = Array.from({ length: 64 }, () => Float32Array.from({ length: dim }, r));
    const point = () => normalise(centres[Math.floor(Math.abs(r() * 1e6)) % 64].map((c) => c + 0.5 * r()));
    base20 = new Float32Array(20000 * dim);
    for (let i = 0; i < 20000; i++) base20.set(point(), i * dim);
    queries = new Float32Array(500 * dim);
    for (let i = 0; i < 500; i++) queries.set(point(), i * dim);
  }
  const real = !!gt;
  const r = gaussian(7);
  const base100 = new Float32Array(100000 * dim);
  base100.set(base20);
  for (let i = 20000; i < 100000; i++) {
    const src = base20.subarray((i % 20000) * dim, ((i % 20000) + 1) * dim);
    base100.set(normalise(src.map((x) => x + 0.01 * r())), i * dim);
  }
  const prefix = real ? "code-minilm" : "synthetic";
  const write = (name, base, q) => {
    writeFileSync(join(outDir, `${name}.base.f32`), base);
    writeFileSync(join(outDir, `${name}.queries.f32`), q);
    return { base: `/bench-data/${name}.base.f32`, queries: `/bench-data/${name}.queries.f32` };
  };
  return [
    { name: `${prefix}-10k`, ...write(`${prefix}-10k`, base20.subarray(0, 10000 * dim), queries.subarray(0, 200 * dim)), jsQueries: 30, repeat: 3 },
    {
      name: `${prefix}-20k`,
      ...write(`${prefix}-20k`, base20, queries.subarray(0, 200 * dim)),
      jsQueries: 30,
      repeat: 3,
      gt: real ? gt.slice(0, 200) : undefined,
    },
    { name: `${prefix}-100k`, ...write(`${prefix}-100k`, base100, queries.subarray(0, 50 * dim)), jsQueries: 10, repeat: 3 },
  ].map((d) => ({ ...d, dim, metric: "cosine" }));
}

function table(rows) {
  const cols = [
    "dataset",
    "n",
    "engine",
    "config",
    "recall_at_10",
    "recall_at_10_gt",
    "p50_ms",
    "p95_ms",
    "p50_us",
    "p95_us",
    "qps",
    "gb_per_s",
    "insert_per_s",
  ].filter((c) => rows.some((r) => r[c] !== undefined));
  const fmt = (v) => (v === undefined ? "" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  const cells = [cols, ...rows.map((r) => cols.map((c) => fmt(r[c])))];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}

/**
 * Serves the repo and the bench data, starts Chromium, and runs `fn(browser, url)`;
 * returns its rows and the browser's version.
 */
async function inBrowser(fn) {
  const { server, url } = await serve({ root, routes: { "/bench-data/": outDir } });
  const browser = await launch();
  try {
    const version = browser.context.browser()?.version() ?? "chromium";
    return { rows: await fn(browser, url), browser: version };
  } finally {
    await browser.close();
    server.close();
  }
}

/**
 * Runs `suite` from scripts/bench/suites.js in a fresh bench page; returns its rows.
 * `expose` names Node functions the page may call.
 */
async function inPage(browser, url, suite, args, expose = {}) {
  const page = await browser.context.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(m.text()));
  for (const [name, fn] of Object.entries(expose)) await page.exposeFunction(name, fn);
  await page.goto(`${url}/scripts/bench/index.html`);
  await page.waitForFunction(() => window.ready);
  const { rows } = await page.evaluate(async ({ suite, args }) => window.suites[suite](args), { suite, args });
  await page.close();
  return rows;
}

/**
 * Runs crate/examples/native_search (built for this CPU on first use) over `ds`,
 * `repeat` times, on one thread and, when `threads` > 1, also split over that many;
 * returns its JSON output.
 */
function native(ds, repeat, threads = 1) {
  const targetDir = join(root, "target", "native-bench");
  execFileSync("cargo", ["build", "--release", "--example", "native_search", "-p", "quiver", "--target-dir", targetDir], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, RUSTFLAGS: "-C target-cpu=native" },
  });
  const files = [join(outDir, `${ds.name}.base.f32`), join(outDir, `${ds.name}.queries.f32`)];
  const args = [...files, String(ds.dim), ds.metric, "10", String(repeat), String(threads)];
  return JSON.parse(execFileSync(join(targetDir, "release", "examples", "native_search"), args, { maxBuffer: 1 << 28 }).toString());
}

async function runCore() {
  const sets = datasets();
  const { rows, browser: browserVersion } = await inBrowser(async (browser, url) => [
    ...(await inPage(browser, url, "core", { datasets: sets })),
    // Inserts in a page of their own, so no earlier work is freed while they are timed.
    ...(await inPage(browser, url, "inserts", { dataset: sets.find((d) => d.name.endsWith("-100k")) })),
  ]);

  // The same core compiled natively for this CPU, searching the same data.
  const { timing, recall } = await import("./bench/suites.js");
  for (const ds of sets) {
    const out = native(ds, ds.repeat);
    const simd = rows.find((r) => r.dataset === ds.name && r.config === "simd128 flat, in worker");
    const truthRow = rows.find((r) => r.dataset === ds.name && r.engine === "plain-js");
    rows.push({
      dataset: ds.name,
      n: simd.n,
      d: ds.dim,
      engine: "quiver-native",
      config: "flat, target-cpu=native",
      recall_at_10: truthRow.truth ? recall(out.results.slice(0, truthRow.truth.length), truthRow.truth) : undefined,
      ...timing(out.ms, out.scan_bytes),
      insert_per_s: out.insert_per_s,
    });
  }
  for (const r of rows) delete r.truth;

  const find = (ds, config) => rows.find((r) => r.dataset.endsWith(ds) && r.config === config);
  const ratios = {
    simd_vs_scalar_flat: find("-10k", "scalar flat, in worker").p50_ms / find("-10k", "simd128 flat, in worker").p50_ms,
    simd_vs_js_flat: find("-10k", "flat, main thread").p50_ms / find("-10k", "simd128 flat, in worker").p50_ms,
    wasm_vs_native_flat: find("-100k", "flat, target-cpu=native").p50_ms / find("-100k", "simd128 flat, in worker").p50_ms,
  };
  return { rows, ratios, browser: browserVersion };
}

async function runWorkers() {
  const dataset = datasets().find((d) => d.name.endsWith("-100k"));
  // The ceilings: the simd128 build's scan in Node threads (no browser, no dispatch),
  // and the same core natively, each on one thread and split over two. A
  // bandwidth-bound scan gains from a second thread only what the machine's memory
  // gives it, and on this VM that moves from minute to minute (vCPUs move between
  // cores), so the Node ceiling takes its rounds between the browser's.
  const { jsSearch, recall, timing } = await import("./bench/suites.js");
  const { wasmThreads } = await import("./bench/wasm-threads.mjs");
  const f32 = (path) => new Float32Array(readFileSync(path).buffer.slice(0));
  const base = f32(join(outDir, `${dataset.name}.base.f32`));
  const queries = f32(join(outDir, `${dataset.name}.queries.f32`));
  const dim = dataset.dim;
  const threads = await wasmThreads({ pkg: join(root, "pkg", "simd"), base, queries, dim, k: 10 });
  let browserRows;
  try {
    browserRows = await inBrowser((browser, url) =>
      inPage(browser, url, "workers", { dataset, small: [500, 1000, 2000, 4000, 8000, 16000] }, { betweenRounds: () => threads.round() }),
    );
  } finally {
    await threads.close();
  }
  const { rows, browser: browserVersion } = browserRows;
  const truth = Array.from({ length: 10 }, (_, q) => jsSearch(base, dim, queries.subarray(q * dim, (q + 1) * dim), 10));
  const scanBytes = base.length * 4;
  const ceiling = (engine, config, ms, results) => ({
    dataset: dataset.name,
    n: base.length / dim,
    d: dim,
    engine,
    config,
    recall_at_10: recall(results.slice(0, truth.length), truth),
    ...timing(ms, scanBytes),
  });
  const t = threads.results;
  rows.push(ceiling("quiver-node", "simd128 scan, Node, 1 thread", t.one, t.oneIds));
  rows.push(ceiling("quiver-node", "simd128 scan, Node, 2 threads", t.two, t.twoIds));
  const out = native(dataset, 3, 2);
  rows.push(ceiling("quiver-native", "flat, target-cpu=native, 1 thread", out.ms, out.results));
  rows.push(ceiling("quiver-native", "flat, target-cpu=native, 2 threads", out.pool_ms, out.pool_results));

  const find = (config) => rows.find((r) => r.config === config);
  const p50 = (config) => find(config).p50_ms;
  const many = rows.find((r) => r.config.startsWith("simd128 searchMany"));
  const loop = rows.find((r) => r.config.startsWith("simd128 search loop"));
  const ratios = {
    pool_vs_one_worker_flat: p50("simd128 flat, 1 worker") / p50("simd128 flat, pool of 2"),
    pool_vs_one_worker_scalar: p50("scalar flat, 1 worker") / p50("scalar flat, pool of 2"),
    sab_vs_postmessage_dispatch: find("dispatch round trip, postMessage").p50_us / find("dispatch round trip, SAB ring").p50_us,
    search_many_vs_loop: loop.p50_ms / many.p50_ms,
    wasm_two_threads_vs_one_flat: p50("simd128 scan, Node, 1 thread") / p50("simd128 scan, Node, 2 threads"),
    native_two_threads_vs_one_flat: p50("flat, target-cpu=native, 1 thread") / p50("flat, target-cpu=native, 2 threads"),
  };
  // The smallest size from which the pool answers faster than one worker, at every size.
  const sizes = rows.filter((r) => r.config.startsWith("simd128 partitioning, 1 worker"));
  const faster = (one) => rows.find((r) => r.n === one.n && r.config === "simd128 partitioning, 2 workers").p50_ms < one.p50_ms;
  const pays = sizes.find((one, i) => sizes.slice(i).every(faster));
  console.log(`partitioning over 2 workers pays from n = ${pays ? pays.n : "(not within the sizes tried)"}`);
  return { rows, ratios, browser: browserVersion };
}

async function runStorage() {
  const dataset = datasets().find((d) => d.name.endsWith("-100k"));
  const shards = Number(arg("--shards") ?? 100_000);
  const { rows, browser } = await inBrowser((b, url) => inPage(b, url, "storage", { dataset, shards }));
  const p50 = (prefix) => rows.find((r) => r.config.startsWith(prefix)).p50_ms;
  const ratios = {
    opfs_open_first_query_vs_raw_read: p50("opfs shard open + first query") / p50("raw read"),
    opfs_database_open_first_query_vs_raw_read: p50("opfs database open + first query") / p50("raw read"),
    idb_open_first_query_vs_raw_read: p50("idb database open + first query") / p50("raw read"),
  };
  return { rows, ratios, browser };
}

const suites = { core: runCore, workers: runWorkers, storage: runStorage };
if (only !== null && !suites[only]) {
  console.error(`unknown suite ${only}; known: ${Object.keys(suites).join(", ")}`);
  process.exit(2);
}
for (const suite of only ? [only] : Object.keys(suites)) {
  const { rows, ratios, browser } = await suites[suite]();
  const result = {
    suite,
    when: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, browser: `Chromium ${browser}` },
    rows,
    ratios,
  };
  mkdirSync(join(root, "bench-results"), { recursive: true });
  writeFileSync(join(root, "bench-results", `${suite}.json`), JSON.stringify(result, null, 2) + "\n");
  console.log(`\n== suite ${suite}`);
  console.log(table(rows));
  console.log();
  for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
  console.log(`\nwrote bench-results/${suite}.json`);
}
