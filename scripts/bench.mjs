// `npm run bench -- --suite NAME`: runs a suite in headless Chromium (and, for the
// core and workers suites, native baselines over the same data, in the same run),
// prints a table and writes bench-results/NAME.json with the ratios computed from
// rows of this one run. docs/BENCHMARKS.md says what each figure means.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { brotliCompressSync } from "node:zlib";
import { createInterface } from "node:readline";
import { launch, root } from "../tests/helpers.mjs";
import { jsSearch, recall, timing } from "./bench/suites.js";
import { runEmbed } from "./bench/embed-run.js";
import { serve } from "./serve.mjs";
import { runSync } from "./bench/sync.js";

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
 * The datasets: real MiniLM code embeddings when ../shared/data has them (the first
 * 10k, the full 20k with its exact ground truth), else clustered random unit vectors
 * of the same shape; and 100k made of the 20k plus 80k jittered copies of them, which
 * is synthetic either way and named so. `file` names the data on disk and in URLs,
 * `name` is what every row and table shows; `about` says where each came from.
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
  const source = real ? `MiniLM code embeddings from ${dataDir}` : "clustered random unit vectors (64 Gaussian centres)";
  const write = (file, base, q) => {
    writeFileSync(join(outDir, `${file}.base.f32`), base);
    writeFileSync(join(outDir, `${file}.queries.f32`), q);
    return { file, base: `/bench-data/${file}.base.f32`, queries: `/bench-data/${file}.queries.f32` };
  };
  return [
    {
      size: "10k",
      name: `${prefix}-10k`,
      about: `the first 10k rows of the ${source}`,
      ...write(`${prefix}-10k`, base20.subarray(0, 10000 * dim), queries.subarray(0, 200 * dim)),
      jsQueries: 30,
      repeat: 3,
    },
    {
      size: "20k",
      name: `${prefix}-20k`,
      about: `all 20k rows of the ${source}${real ? ", with its exact ground truth" : ""}`,
      ...write(`${prefix}-20k`, base20, queries.subarray(0, 200 * dim)),
      jsQueries: 30,
      repeat: 3,
      gt: real ? gt.slice(0, 200) : undefined,
    },
    {
      size: "100k",
      name: real ? "code-minilm-20k+80k-jittered (synthetic)" : "synthetic-100k",
      about: `the 20k rows above plus 80k copies of them, each component jittered by N(0, 0.01) and renormalised`,
      ...write(`${prefix}-100k`, base100, queries.subarray(0, 50 * dim)),
      jsQueries: 10,
      repeat: 3,
    },
  ].map((d) => ({ ...d, dim, metric: "cosine" }));
}

function table(rows) {
  const cols = [
    "dataset",
    "n",
    "engine",
    "transport",
    "config",
    "recall_at_10",
    "recall_at_10_gt",
    "recall_at_5",
    "ef",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "warmup_p50_ms",
    "p50_us",
    "p95_us",
    "qps",
    "qps_serial",
    "gb_per_s",
    "insert_per_s",
    "bytes_per_vector",
    "raw_bytes_per_vector",
    "memory_mib",
    "vector_mib",
    "code_mib",
    "graph_mib",
    "download_kib",
    "download_br_kib",
    "build_s",
    "open_s",
    "sustained_ops_s",
    "bytes_per_op",
    "sessions",
    "relay_kib_per_idle_session",
    "fanout_p50_ms",
    "fanout_p99_ms",
    "tokens",
    "chunks",
    "index_s",
    "chunks_per_s",
    "chunks_per_s_median",
    "min_cosine_vs_quiver",
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
 * Starts crate/examples/native_search (built for this CPU on first use) over `ds`, its
 * searches also split over `threads` threads when more than one. Returns what it said
 * on start (`info`: insert rate, kernel, bytes), `round()`, which times every query once
 * in each layout and the memory bandwidth and adds that to `rounds`, and `close()`.
 * Driven a round at a time, so that its rounds can take turns with the browser's.
 */
async function native(ds, threads = 1) {
  const targetDir = join(root, "target", "native-bench");
  execFileSync("cargo", ["build", "--release", "--example", "native_search", "-p", "quiver", "--target-dir", targetDir], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, RUSTFLAGS: "-C target-cpu=native" },
  });
  const files = [join(outDir, `${ds.file}.base.f32`), join(outDir, `${ds.file}.queries.f32`)];
  const args = [...files, String(ds.dim), ds.metric, "10", String(threads)];
  const child = spawn(join(targetDir, "release", "examples", "native_search"), args, { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`native_search ${ds.file} exited with ${child.exitCode}`);
    return JSON.parse(value);
  };
  const info = await next();
  const rounds = [];
  return {
    info,
    rounds,
    async round() {
      child.stdin.write("\n");
      rounds.push(await next());
    },
    close() {
      child.stdin.end();
      return once(child, "exit");
    },
  };
}

/**
 * The rows of a native run `nat` over `ds`: each layout's times over all its rounds,
 * recall of its first round's answers against `truth` (the JS brute force's, for the
 * first queries), and the memory bandwidth of its best round. `suffix` ends each config.
 */
function nativeRows(ds, nat, truth, suffix = "") {
  const { info, rounds } = nat;
  const base = { dataset: ds.name, n: info.prepared_bytes / 4 / ds.dim, d: ds.dim };
  const layouts = [
    ["core", "quiver-native", "flat, target-cpu=native", info.scan_bytes],
    ["scan", "native-scan", `flat dot scan, ${info.kernel}`, info.prepared_bytes],
  ];
  const threads = rounds[0].core_pool
    ? [
        ["", ", 1 thread"],
        ["_pool", ", 2 threads"],
      ]
    : [["", ""]];
  const rows = [];
  for (const [pool, label] of threads) {
    for (const [key, engine, config, bytes] of layouts) {
      const runs = rounds.map((r) => r[key + pool]);
      rows.push({
        ...base,
        engine,
        config: config + label + suffix,
        recall_at_10: recall(runs[0].ids.slice(0, truth.length), truth),
        ...timing(
          runs.flatMap((r) => r.ms),
          bytes,
        ),
        insert_per_s: key === "core" && !pool ? info.insert_per_s : undefined,
      });
    }
    const memory = `memory read (sum over ${info.memory_bytes >> 20} MiB), best of ${5 * rounds.length}`;
    const gbPerS = Math.max(...rounds.map((r) => r[`memory${pool}_gb_per_s`]));
    rows.push({ ...base, engine: "machine", config: memory + label + suffix, gb_per_s: gbPerS });
  }
  return rows;
}

async function runCore(sets) {
  // The native baselines right before and right after the browser's part, so that a
  // slow spell of this shared machine shows as a difference between the two.
  const nativeRuns = async () => {
    const runs = [];
    for (const ds of sets) {
      const nat = await native(ds);
      for (let r = 0; r < ds.repeat; r++) await nat.round();
      await nat.close();
      runs.push(nat);
    }
    return runs;
  };
  const before = await nativeRuns();
  const { rows, browser: browserVersion } = await inBrowser(async (browser, url) => [
    ...(await inPage(browser, url, "core", { datasets: sets })),
    // Inserts in a page of their own, so no earlier work is freed while they are timed.
    ...(await inPage(browser, url, "inserts", { dataset: sets.find((d) => d.size === "100k") })),
  ]);
  const after = await nativeRuns();

  sets.forEach((ds, i) => {
    const { truth } = rows.find((r) => r.dataset === ds.name && r.engine === "plain-js");
    rows.push(...nativeRows(ds, before[i], truth, ", before the browser"));
    rows.push(...nativeRows(ds, after[i], truth, ", after the browser"));
  });
  for (const r of rows) delete r.truth;

  const name = (size) => sets.find((d) => d.size === size).name;
  const row = (size, config) => rows.find((r) => r.dataset === name(size) && r.config === config);
  const p50 = (size, config) => row(size, config).p50_ms;
  // The native rows at 100k of `engine`, before and after the browser: the faster, as
  // the machine's limit is its best showing.
  const native100k = (engine) => rows.filter((r) => r.dataset === name("100k") && r.engine === engine);
  const nativeP50 = (engine) => Math.min(...native100k(engine).map((r) => r.p50_ms));
  const wasm100k = row("100k", "simd128 flat, in worker");
  const ratios = {
    simd_vs_scalar_flat: p50("10k", "scalar flat, in worker") / p50("10k", "simd128 flat, in worker"),
    simd_vs_scalar_flat_api: p50("10k", "scalar flat, API round trip") / p50("10k", "simd128 flat, API round trip"),
    simd_vs_js_flat: p50("10k", "flat, main thread") / p50("10k", "simd128 flat, API round trip"),
    simd_vs_js_flat_in_worker: p50("10k", "flat, main thread") / p50("10k", "simd128 flat, in worker"),
    wasm_vs_native_flat: nativeP50("native-scan") / wasm100k.p50_ms,
    wasm_vs_native_portable_flat: nativeP50("quiver-native") / wasm100k.p50_ms,
    wasm_flat_vs_memory_bandwidth: wasm100k.gb_per_s / Math.max(...native100k("machine").map((r) => r.gb_per_s)),
  };
  return { rows, ratios, browser: browserVersion };
}

async function runWorkers(sets) {
  const dataset = sets.find((d) => d.size === "100k");
  // The ceilings: the simd128 build's scan in Node threads (no browser, no dispatch),
  // the same core natively and a vectorised native scan, each on one thread and split
  // over two, and the memory bandwidth. A bandwidth-bound scan gains from a second
  // thread only what the machine's memory gives it, and on this VM that moves from
  // minute to minute (vCPUs move between cores), so the ceilings take their rounds
  // between the browser's, one after the other.
  const { wasmThreads } = await import("./bench/wasm-threads.mjs");
  const f32 = (path) => new Float32Array(readFileSync(path).buffer.slice(0));
  const base = f32(join(outDir, `${dataset.file}.base.f32`));
  const queries = f32(join(outDir, `${dataset.file}.queries.f32`));
  const dim = dataset.dim;
  const threads = await wasmThreads({ pkg: join(root, "pkg", "simd"), base, queries, dim, k: 10 });
  const nat = await native(dataset, 2);
  let browserRows;
  try {
    const betweenRounds = async () => {
      await threads.round();
      await nat.round();
    };
    browserRows = await inBrowser((browser, url) =>
      inPage(browser, url, "workers", { dataset, small: [500, 1000, 2000, 4000, 8000, 16000] }, { betweenRounds }),
    );
  } finally {
    await threads.close();
    await nat.close();
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
  rows.push(...nativeRows(dataset, nat, truth));

  const find = (config) => rows.find((r) => r.config === config);
  const p50 = (config) => find(config).p50_ms;
  const many = rows.find((r) => r.config.startsWith("simd128 searchMany"));
  const loop = rows.find((r) => r.config.startsWith("simd128 search loop"));
  const scan = `flat dot scan, ${nat.info.kernel}`;
  const ratios = {
    pool_vs_one_worker_flat: p50("simd128 flat, 1 worker") / p50("simd128 flat, pool of 2"),
    pool_vs_one_worker_scalar: p50("scalar flat, 1 worker") / p50("scalar flat, pool of 2"),
    sab_vs_postmessage_dispatch: find("dispatch round trip, postMessage").p50_us / find("dispatch round trip, SAB ring").p50_us,
    search_many_vs_loop: loop.p50_ms / many.p50_ms,
    wasm_two_threads_vs_one_flat: p50("simd128 scan, Node, 1 thread") / p50("simd128 scan, Node, 2 threads"),
    native_two_threads_vs_one_flat: p50("flat, target-cpu=native, 1 thread") / p50("flat, target-cpu=native, 2 threads"),
    native_scan_two_threads_vs_one_flat: p50(`${scan}, 1 thread`) / p50(`${scan}, 2 threads`),
    pool_vs_native_scan_two_threads_flat: p50(`${scan}, 2 threads`) / p50("simd128 flat, pool of 2"),
  };
  // The smallest size from which the pool answers faster than one worker, at every size.
  const sizes = rows.filter((r) => r.config.startsWith("simd128 partitioning, 1 worker"));
  const faster = (one) => rows.find((r) => r.n === one.n && r.config === "simd128 partitioning, 2 workers").p50_ms < one.p50_ms;
  const pays = sizes.find((one, i) => sizes.slice(i).every(faster));
  console.log(`partitioning over 2 workers pays from n = ${pays ? pays.n : "(not within the sizes tried)"}`);
  return { rows, ratios, browser: browserVersion };
}

/**
 * Resident bytes of this run's Chromium processes by pid, as the OS counts them (VmRSS
 * in /proc): its renderers' (a page's dedicated workers run in its renderer) and all
 * of them (the browser's own holds IndexedDB's side). Each page's heap is collected
 * first, and the figures are read until they settle (two readings half a second apart
 * within 1 MiB, for at most 10 s), so that memory still being freed does not count.
 */
async function residentBytes(browser) {
  for (const page of browser.context.pages()) {
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send("HeapProfiler.collectGarbage");
    await cdp.detach();
  }
  const read = () => {
    const procs = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return {
            pid: Number(pid),
            ppid: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]),
            renderer: readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer"),
            rss: 1024 * Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0),
          };
        } catch {
          return null; // gone meanwhile
        }
      })
      .filter(Boolean);
    // This process's descendants: this run's Chromium, and no other run's on the machine.
    const ours = new Set([process.pid]);
    for (let grew = true; grew;) {
      grew = false;
      for (const p of procs) {
        if (!ours.has(p.pid) && ours.has(p.ppid)) {
          ours.add(p.pid);
          grew = true;
        }
      }
    }
    const chromium = procs.filter((p) => ours.has(p.pid) && p.pid !== process.pid);
    const byPid = (list) => Object.fromEntries(list.map((p) => [p.pid, p.rss]));
    return { renderers: byPid(chromium.filter((p) => p.renderer)), all: byPid(chromium) };
  };
  const total = (r) => Object.values(r.all).reduce((a, b) => a + b, 0);
  let last = read();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = read();
    const settled = Math.abs(total(now) - total(last)) < 2 ** 20;
    last = now;
    if (settled) break;
  }
  return last;
}

async function runStorage(sets) {
  const dataset = sets.find((d) => d.size === "100k");
  const shards = Number(arg("--shards") ?? 100_000);
  const { rows, browser } = await inBrowser(async (b, url) => {
    const rows = await inPage(b, url, "storage", { dataset, shards });
    for (const storage of ["memory", "opfs", "idb"]) {
      rows.push(...(await inPage(b, url, "resident", { dataset, storage }, { residentBytes: () => residentBytes(b) })));
    }
    return rows;
  });
  const find = (prefix) => rows.find((r) => r.config.startsWith(prefix));
  const p50 = (prefix) => find(prefix).p50_ms;
  const perVector = (storage) => {
    const r = find(`resident memory, ${storage} storage`);
    return r.bytes_per_vector / r.raw_bytes_per_vector;
  };
  const ratios = {
    opfs_open_first_query_vs_raw_read: p50("opfs shard open + first query") / p50("raw read"),
    opfs_database_open_first_query_vs_raw_read: p50("opfs database open + first query") / p50("raw read"),
    idb_open_first_query_vs_raw_read: p50("idb database open + first query") / p50("raw read"),
    memory_bytes_per_vector_vs_raw: perVector("memory"),
    opfs_bytes_per_vector_vs_raw: perVector("opfs"),
    idb_bytes_per_vector_vs_raw: perVector("idb"),
  };
  return { rows, ratios, browser };
}

/**
 * The ann suite's synthetic set: `n` points clustered around the real rows (each a
 * random row of `centres` plus N(0, 0.03) in every component, renormalised, so a
 * point's cosine to its centre is about 0.86, as close as real neighbours here are),
 * and `q` queries drawn the same way, with their exact top 10 by cosine computed here.
 * Clustered rather than jittered copies: no point has a near-duplicate by design.
 */
function clusteredSet(centres, dim, n, q, seed) {
  const r = gaussian(seed);
  const count = centres.length / dim;
  let s = seed;
  const pick = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % count;
  const draw = (out, i) => {
    const c = pick();
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = centres[c * dim + j] + 0.03 * r();
    out.set(normalise(v), i * dim);
  };
  const base = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) draw(base, i);
  const queries = new Float32Array(q * dim);
  for (let i = 0; i < q; i++) draw(queries, i);
  const gt = Array.from({ length: q }, (_, qi) => jsSearch(base, dim, queries.subarray(qi * dim, (qi + 1) * dim), 10));
  return { base, queries, gt };
}

/** Kibibytes of `paths` (URL paths under the repo root) as served raw and brotli'd (quality 11, as a static host pre-compresses), memoised by path. */
const compressed = new Map();
function downloadKiB(paths) {
  let raw = 0;
  let br = 0;
  for (const path of paths) {
    if (!compressed.has(path)) {
      const body = readFileSync(join(root, path));
      compressed.set(path, [body.length, brotliCompressSync(body).length]);
    }
    const [r, b] = compressed.get(path);
    raw += r;
    br += b;
  }
  return { download_kib: raw / 1024, download_br_kib: br / 1024 };
}

/**
 * What a page using quiver downloads: js/ (with its vendored feature test), workers/,
 * both builds' glue (the worker imports both and then instantiates one) and the
 * simd128 build's wasm.
 */
function quiverFiles() {
  const under = (dir) =>
    readdirSync(join(root, dir), { recursive: true })
      .filter((f) => f.endsWith(".js"))
      .map((f) => `/${dir}/${f}`);
  return [...under("js"), ...under("workers"), "/pkg/simd/quiver.js", "/pkg/scalar/quiver.js", "/pkg/simd/quiver_bg.wasm"];
}

const xml = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * An SVG of recall@10 (x) against QPS (y, log scale) for the rows of one dataset: a
 * polyline per engine and configuration family (its rows differing only in ef), a
 * marker per row, a legend. Built as a string, so the runner needs no plotting package.
 */
function annChart(rows, title) {
  const families = new Map();
  for (const r of rows.filter((r) => r.recall_at_10 !== undefined && r.qps !== undefined)) {
    const key = `${r.engine}: ${r.config.replace(/ (ef|ef_search|fetch) \d+/, "")}`;
    if (!families.has(key)) families.set(key, []);
    families.get(key).push(r);
  }
  const all = [...families.values()].flat();
  const [w, h, left, top, plotW, plotH] = [1000, 460, 70, 40, 500, 360];
  const x0 = Math.min(0.9, Math.floor(Math.min(...all.map((r) => r.recall_at_10)) * 20) / 20);
  const y0 = Math.floor(Math.log10(Math.min(...all.map((r) => r.qps))));
  const y1 = Math.max(y0 + 1, Math.ceil(Math.log10(Math.max(...all.map((r) => r.qps)))));
  const round = (v) => Math.round(v * 10) / 10;
  const px = (recall) => round(left + ((recall - x0) / (1 - x0)) * plotW);
  const py = (qps) => round(top + plotH - ((Math.log10(qps) - y0) / (y1 - y0)) * plotH);
  const colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="14">${xml(title)}</text>`,
  ];
  const step = 1 - x0 > 0.3 ? 0.1 : 0.05;
  for (let x = x0; x <= 1 + 1e-9; x += step) {
    out.push(`<line x1="${px(x)}" y1="${top}" x2="${px(x)}" y2="${top + plotH}" stroke="#ddd"/>`);
    out.push(`<text x="${px(x)}" y="${top + plotH + 16}" text-anchor="middle">${x.toFixed(2)}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    for (const m of e < y1 ? [1, 2, 5] : [1]) {
      const y = py(m * 10 ** e);
      out.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="${m === 1 ? "#bbb" : "#eee"}"/>`);
      out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${(m * 10 ** e).toLocaleString("en")}</text>`);
    }
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${h - 12}" text-anchor="middle">recall@10</text>`);
  out.push(`<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">queries per second (log)</text>`);
  [...families].forEach(([name, points], i) => {
    const colour = colours[i % colours.length];
    const xy = points.sort((a, b) => a.recall_at_10 - b.recall_at_10).map((r) => [px(r.recall_at_10), py(r.qps)]);
    if (xy.length > 1) out.push(`<polyline points="${xy.map((p) => p.join(",")).join(" ")}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const [x, y] of xy) out.push(`<circle cx="${x}" cy="${y}" r="3.5" fill="${colour}"/>`);
    const ly = top + 8 + i * 20;
    out.push(`<line x1="${left + plotW + 20}" y1="${ly}" x2="${left + plotW + 44}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<circle cx="${left + plotW + 32}" cy="${ly}" r="3.5" fill="${colour}"/>`);
    out.push(`<text x="${left + plotW + 50}" y="${ly + 4}">${xml(name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

async function runAnn(sets) {
  const dim = 384;
  const real = sets.find((d) => d.size === "20k");
  const real20k = new Float32Array(readFileSync(join(outDir, `${real.file}.base.f32`)).buffer.slice(0));
  const about = real.gt ? "code-minilm-20k rows" : "the synthetic 20k";
  /** The clustered synthetic set of `n` points, written where the page fetches it. */
  const synthetic = (n, peers) => {
    const file = `clustered-${n / 1000}k`;
    const synth = clusteredSet(real20k, dim, n, 100, 11);
    writeFileSync(join(outDir, `${file}.base.f32`), synth.base);
    writeFileSync(join(outDir, `${file}.queries.f32`), synth.queries);
    const dataset = {
      name: `clustered-${n / 1000}k (synthetic, around ${about})`,
      n,
      dim,
      metric: "cosine",
      base: `/bench-data/${file}.base.f32`,
      queries: `/bench-data/${file}.queries.f32`,
    };
    return { file, dataset, gt: synth.gt, peers };
  };
  const n = Number(arg("--ann-n") ?? 100_000);
  // The larger synthetic set shows how quiver's own costs grow; the peers sit it out
  // (PGlite alone would take the better part of an hour to load and index it).
  const large = Number(arg("--ann-large") ?? 500_000);
  const part = arg("--ann-sets");
  const ann = [
    ...(part === "synthetic" || !real.gt ? [] : [{ file: real.file, dataset: { ...real, n: 20000 }, gt: real.gt, peers: true }]),
    ...(part === "real" ? [] : [synthetic(n, true), ...(large ? [synthetic(large, false)] : [])]),
  ];
  const efs = [10, 16, 24, 32, 48, 64, 96, 128, 256];
  const efSearch = [40, 100, 200];
  // Candidates re-ranked on the full vectors: the default (4k int8, 10k binary) and more.
  const fetches = { int8: [40, 80], binary: [100, 200, 400] };
  // All three peers by default; `none`, or some of them by name (`hnswlib,sqliteVec`).
  const allPeers = ["hnswlib", "sqliteVec", "pglite"];
  const peerArg = arg("--ann-peers") ?? allPeers.join(",");
  const peers = peerArg === "none" ? [] : peerArg.split(",");
  const unknown = peers.filter((p) => !allPeers.includes(p));
  if (unknown.length) throw new Error(`--ann-peers: unknown peer ${unknown.join(", ")}; known: none, ${allPeers.join(", ")}`);
  const { rows, browser } = await inBrowser(async (b, url) => {
    const rows = [];
    for (const { dataset, gt, peers: withPeers } of ann) {
      const args = { dataset: { ...dataset, gt: undefined }, gt, efs, efSearch, fetches };
      rows.push(...(await inPage(b, url, "ann", args)));
      // Each peer in a fresh page, so that none runs beside another's memory or garbage.
      for (const engine of withPeers ? peers : []) rows.push(...(await inPage(b, url, "peer", { ...args, engine })));
    }
    return rows;
  });
  const quiver = quiverFiles();
  for (const r of rows) {
    const files = r.files ?? (r.engine === "quiver" ? quiver : undefined);
    if (files) Object.assign(r, downloadKiB(files));
    delete r.files;
  }

  /** a / b, or null when either side is missing (no row reached a recall floor). */
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
  const ratios = {};
  mkdirSync(join(root, "bench-results"), { recursive: true });
  const growth = [];
  for (const { file, dataset, peers: withPeers } of ann) {
    const of = rows.filter((r) => r.dataset === dataset.name);
    const one = (engine, prefix) => of.find((r) => r.engine === engine && r.config.startsWith(prefix));
    const flat = one("quiver", "flat, pool");
    // The highest `qps` (or another figure) of `engine`'s rows that pass `keep` (by
    // default: a graph's) at recall@10 >= floor; -Infinity if none.
    const at = (engine, floor, qps = "qps", keep = (r) => r.ef !== undefined) =>
      Math.max(...of.filter((r) => r.engine === engine && keep(r) && r.recall_at_10 >= floor).map((r) => r[qps]));
    // The real set is "20k"; a synthetic one is named by its size, unless that is 20k too.
    const tag = file === real.file ? "20k" : dataset.n === 20_000 ? "clustered_20k" : `${dataset.n / 1000}k`;
    // How each index kind's costs grow with n: build, memory, tail latency at ef 64.
    for (const r of [flat, one("quiver", "hnsw M16 efC200 ef 64,"), one("quiver", "hnsw int8 M16 efC200 ef 64,")].filter(Boolean)) {
      const { n, config, build_s, memory_mib, vector_mib, code_mib, graph_mib, recall_at_10, p50_ms, p99_ms, qps } = r;
      growth.push({ dataset: tag, n, engine: "quiver", config, build_s, memory_mib, vector_mib, code_mib, graph_mib, recall_at_10, p50_ms, p99_ms, qps });
    }
    ratios[`hnsw_vs_flat_qps_at_095_${tag}`] = ratio(at("quiver", 0.95), flat.qps);
    ratios[`hnsw_vs_flat_qps_at_099_${tag}`] = ratio(at("quiver", 0.99), flat.qps);
    const reopened = of.find((r) => r.open_s !== undefined);
    ratios[`hnsw_open_vs_build_${tag}`] = reopened.open_s / reopened.build_s;
    const binary = at("quiver", 0.95, "qps", (r) => r.quantization === "binary");
    ratios[`binary_rerank_vs_flat_qps_${tag}`] = ratio(binary, flat.qps);
    const int8 = one("quiver", "flat int8");
    ratios[`int8_vectors_vs_codes_${tag}`] = ratio(int8.vector_mib, int8.code_mib);
    writeFileSync(join(root, "bench-results", `ann-${file}.svg`), annChart(of, `${dataset.name}, n = ${dataset.n}: recall@10 against QPS`));
    console.log(`wrote bench-results/ann-${file}.svg`);
    if (!withPeers) continue;
    ratios[`hnsw_vs_hnswlib_qps_at_095_${tag}`] = ratio(at("quiver", 0.95), at("hnswlib-wasm", 0.95));
    ratios[`hnsw_vs_hnswlib_qps_at_099_${tag}`] = ratio(at("quiver", 0.99), at("hnswlib-wasm", 0.99));
    ratios[`hnsw_vs_hnswlib_qps_serial_at_095_${tag}`] = ratio(at("quiver", 0.95, "qps_serial"), at("hnswlib-wasm", 0.95, "qps_serial"));
    ratios[`hnsw_vs_hnswlib_qps_serial_at_099_${tag}`] = ratio(at("quiver", 0.99, "qps_serial"), at("hnswlib-wasm", 0.99, "qps_serial"));
    const hnswlibBuild = one("hnswlib-wasm", "hnsw")?.build_s;
    ratios[`hnsw_build_vs_hnswlib_${tag}`] = ratio(hnswlibBuild, one("quiver", "hnsw M16").build_s);
    ratios[`hnsw_int8_build_vs_hnswlib_${tag}`] = ratio(hnswlibBuild, one("quiver", "hnsw int8 M16").build_s);
    ratios[`flat_vs_sqlite_vec_${tag}`] = ratio(flat.qps, one("sqlite-vec", "vec0")?.qps);
    ratios[`flat_vs_pglite_exact_${tag}`] = ratio(flat.qps, one("pglite", "pgvector exact")?.qps);
  }
  console.log("\nhow quiver's costs grow with n (ef 64 for the graphs):");
  console.log(table(growth));
  return { rows, ratios, browser };
}

const suites = {
  core: runCore,
  workers: runWorkers,
  storage: runStorage,
  ann: runAnn,
  sync: runSync,
  embed: () => runEmbed({ inBrowser, inPage, outDir, cores: cpus().length }),
};
if (only !== null && !suites[only]) {
  console.error(`unknown suite ${only}; known: ${Object.keys(suites).join(", ")}`);
  process.exit(2);
}
const sets = datasets();
console.log("datasets:");
for (const d of sets) console.log(`  ${d.name}: ${d.about}`);
for (const suite of only ? [only] : Object.keys(suites)) {
  const { rows, ratios, browser } = await suites[suite](sets);
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
  for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v === null ? "n/a (no row reached the recall)" : v.toFixed(2)}`);
  console.log(`\nwrote bench-results/${suite}.json`);
}
