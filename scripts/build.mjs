// Builds the two wasm flavours (simd128 and plain) of each wasm crate (the store's
// bindings, and the embedder's in a module of its own so that the store's download does
// not carry it), runs wasm-bindgen (--target web) and wasm-opt on each, and reports their
// sizes raw and brotli.
// Each flavour has its own cargo target dir (under CARGO_TARGET_DIR when set, else
// target/) so neither invalidates the other, and wasm-bindgen and wasm-opt are skipped
// for a flavour whose output is the one they made last from the module cargo left.
import { execFileSync } from "node:child_process";
import { brotliCompressSync, constants } from "node:zlib";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args, env = {}) => execFileSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
/**
 * A file's size and time, to tell whether it is the one seen before. Outputs are
 * matched to their input this way, not by "output newer than input": a module copied
 * into pkg/ by hand (an experiment) is newer than cargo's, and was then kept.
 */
const stamp = (file) => {
  if (!existsSync(file)) return "";
  const { size, mtimeMs } = statSync(file);
  return `${size} ${mtimeMs}`;
};

/** SQLite options sqlite-wasm-rs turns on that nothing in quiver uses. */
const SQLITE_UNUSED = [
  "SQLITE_ENABLE_RTREE",
  "SQLITE_ENABLE_SESSION",
  "SQLITE_ENABLE_PREUPDATE_HOOK",
  "SQLITE_ENABLE_DBPAGE_VTAB",
  "SQLITE_ENABLE_DBSTAT_VTAB",
  "SQLITE_ENABLE_BYTECODE_VTAB",
  "SQLITE_ENABLE_STMTVTAB",
  "SQLITE_ENABLE_COLUMN_METADATA",
  "SQLITE_ENABLE_UNLOCK_NOTIFY",
  "SQLITE_ENABLE_MATH_FUNCTIONS",
  "SQLITE_ENABLE_OFFSET_SQL_FUNC",
  "SQLITE_ENABLE_API_ARMOR",
  "SQLITE_ENABLE_UNKNOWN_SQL_FUNCTION",
];

/**
 * Parts of SQLite that quiver never uses, left out (only options SQLite documents as
 * working with the amalgamation, none that changes the SQL grammar): JSON functions
 * (metadata is filtered in Rust), UTF-16 APIs, tracing, progress and authorizer
 * hooks, the WAL (the OPFS pool cannot run it; the store journals with PERSIST),
 * localtime, the pragmas that list schema, flags and compile options, EXPLAIN, the
 * planner's LIKE, OR, BETWEEN and transfer optimisations (quiver's queries are point
 * lookups and range scans on its own indexes; automatic indexes stay, as the join
 * that counts each collection's rows needs one), CHECK and
 * foreign-key enforcement, generated columns, AUTOINCREMENT, hex integer literals,
 * double-quoted strings, expression depth checks and test hooks. (Leaving out the date
 * functions or blob I/O makes the module import C's gmtime or the blob API that the
 * Rust side binds; leaving out auto-vacuum and the TEMP database together breaks
 * opening an exported file.)
 */
const SQLITE_OMIT = [
  "SQLITE_OMIT_JSON",
  "SQLITE_OMIT_UTF16",
  "SQLITE_OMIT_TRACE",
  "SQLITE_OMIT_PROGRESS_CALLBACK",
  "SQLITE_OMIT_AUTHORIZATION",
  "SQLITE_OMIT_COMPLETE",
  "SQLITE_OMIT_DECLTYPE",
  "SQLITE_OMIT_GET_TABLE",
  "SQLITE_OMIT_TCL_VARIABLE",
  "SQLITE_OMIT_WAL",
  "SQLITE_DEFAULT_MEMSTATUS=0",
  "SQLITE_OMIT_LOCALTIME",
  "SQLITE_OMIT_INTROSPECTION_PRAGMAS",
  "SQLITE_OMIT_COMPILEOPTION_DIAGS",
  "SQLITE_OMIT_XFER_OPT",
  "SQLITE_MAX_EXPR_DEPTH=0",
  "SQLITE_UNTESTABLE",
  "SQLITE_OMIT_FLAG_PRAGMAS",
  "SQLITE_OMIT_SCHEMA_PRAGMAS",
  "SQLITE_OMIT_CASE_SENSITIVE_LIKE_PRAGMA",
  "SQLITE_OMIT_EXPLAIN",
  "SQLITE_OMIT_LIKE_OPTIMIZATION",
  "SQLITE_OMIT_OR_OPTIMIZATION",
  "SQLITE_OMIT_BETWEEN_OPTIMIZATION",
  "SQLITE_OMIT_TRUNCATE_OPTIMIZATION",
  "SQLITE_OMIT_QUICKBALANCE",
  "SQLITE_OMIT_CHECK",
  "SQLITE_OMIT_FOREIGN_KEY",
  "SQLITE_OMIT_GENERATED_COLUMNS",
  "SQLITE_OMIT_AUTOINCREMENT",
  "SQLITE_OMIT_HEX_INTEGER",
  "SQLITE_OMIT_POPEN",
  "SQLITE_OMIT_SHUTDOWN_DIRECTORIES",
  "SQLITE_DQS=0",
];

export const flavours = {
  simd: { rustflags: "-C target-feature=+simd128" },
  scalar: { rustflags: "" },
};

/**
 * Each wasm crate: its package, the file cargo builds, the Cargo profile it is built
 * with, one or per flavour (Cargo.toml says why the store's are their own), where its flavours go
 * (pkg/<prefix><flavour>/<name>.js), and its flavours. No relaxed-SIMD flavour: the
 * embedder's linear layers are integer dot products, which relaxed SIMD's fused
 * multiply-adds do not touch (a build with them ran 1% faster), and the store's scans
 * are bound by memory.
 */
export const modules = [
  { pkg: "quiver-wasm", lib: "quiver_wasm", profile: { simd: "wasm", scalar: "wasm-plain" }, prefix: "", name: "quiver", flavours },
  {
    pkg: "quiver-embed-wasm",
    lib: "quiver_embed_wasm",
    profile: "release",
    prefix: "embed-",
    name: "quiver_embed",
    flavours,
  },
];

const sizes = {};
for (const { pkg, lib, profile: profiles, prefix, name: outName, flavours } of modules) {
  for (const [name, { rustflags }] of Object.entries(flavours)) {
    const profile = typeof profiles === "string" ? profiles : profiles[name];
    const targetDir = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), `wasm-${name}`);
    run("cargo", ["build", "--profile", profile, "--target", "wasm32-unknown-unknown", "-p", pkg, "--target-dir", targetDir], {
      RUSTFLAGS: rustflags,
      // Without bulk memory, clang compiles SQLite's memcpy calls to a word-by-word
      // loop; with it, to memory.copy: inserts of 1.5 KB rows ran twice as fast.
      CFLAGS_wasm32_unknown_unknown: "-mbulk-memory -msign-ext -mnontrapping-fptoint -ftls-model=local-exec",
      // The extensions sqlite-wasm-rs compiles in that quiver never calls; FTS5 stays
      // (keyword search).
      SQLITE_WASM_RS_FLAGS: [...SQLITE_UNUSED.map((f) => `-U${f}`), ...SQLITE_OMIT.map((f) => `-D${f}`)].join(" "),
    });
    const raw = join(targetDir, "wasm32-unknown-unknown", profile, `${lib}.wasm`);
    const out = join(root, "pkg", `${prefix}${name}`);
    const wasm = join(out, `${outName}_bg.wasm`);
    // Which cargo module the output was made from, and the output made.
    const made = join(targetDir, `${prefix}${name}.made`);
    const pair = () => `${stamp(raw)} / ${stamp(wasm)}`;
    if (stamp(made) === "" || readFileSync(made, "utf8") !== pair()) {
      mkdirSync(out, { recursive: true });
      run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", outName, raw]);
      // wasm-opt reads the features to allow from the module's target_features section,
      // so it never adds SIMD to the plain build. LLVM addresses a row's chunk as an
      // add then a load at offset 0, and V8 spends an instruction on each add; the two
      // flags let wasm-opt fold the constant into the load's offset, which is sound only
      // if the first 1 KiB of memory is never addressed: Rust puts the stack's 1 MiB
      // there, growing down, and the data above it.
      run(join(root, "node_modules", ".bin", "wasm-opt"), ["-O3", "--low-memory-unused", "--optimize-added-constants-propagate", wasm, "-o", wasm]);
      writeFileSync(made, pair());
    }
    const bytes = readFileSync(wasm);
    sizes[`${prefix}${name}`] = {
      raw: bytes.length,
      brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    };
  }
}
writeFileSync(join(root, "pkg", "sizes.json"), JSON.stringify(sizes, null, 2) + "\n");
for (const [name, s] of Object.entries(sizes)) {
  console.log(`pkg/${name}: ${(s.raw / 1024).toFixed(0)} KiB raw, ${(s.brotli / 1024).toFixed(0)} KiB brotli`);
}

// A plain <script type="module"> page cannot resolve bare npm names, so the one
// dependency the loader has is shipped beside it.
mkdirSync(join(root, "js", "vendor"), { recursive: true });
copyFileSync(join(root, "node_modules", "wasm-feature-detect", "dist", "esm", "index.js"), join(root, "js", "vendor", "wasm-feature-detect.js"));
