// Builds the two wasm flavours of the bindings crate (simd128 and plain), runs wasm-bindgen
// (--target web) and wasm-opt on each, and reports their sizes raw and brotli.
// Each flavour has its own cargo target dir (under CARGO_TARGET_DIR when set, so that
// worktrees can share one) so neither invalidates the other, and a step whose output
// is newer than its input is skipped.
import { execFileSync } from "node:child_process";
import { brotliCompressSync, constants } from "node:zlib";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args, env = {}) => execFileSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
const newer = (out, input) => existsSync(out) && statSync(out).mtimeMs >= statSync(input).mtimeMs;

export const flavours = {
  simd: { rustflags: "-C target-feature=+simd128" },
  scalar: { rustflags: "" },
};

const sizes = {};
for (const [name, { rustflags }] of Object.entries(flavours)) {
  const targetDir = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), `wasm-${name}`);
  run("cargo", ["build", "--release", "--target", "wasm32-unknown-unknown", "-p", "quiver-wasm", "--target-dir", targetDir], {
    RUSTFLAGS: rustflags,
    // Without bulk memory, clang compiles SQLite's memcpy calls to a word-by-word
    // loop; with it, to memory.copy: inserts of 1.5 KB rows ran twice as fast.
    CFLAGS_wasm32_unknown_unknown: "-mbulk-memory -msign-ext -mnontrapping-fptoint -ftls-model=local-exec",
  });
  const raw = join(targetDir, "wasm32-unknown-unknown", "release", "quiver_wasm.wasm");
  const out = join(root, "pkg", name);
  const wasm = join(out, "quiver_bg.wasm");
  if (!newer(wasm, raw)) {
    mkdirSync(out, { recursive: true });
    run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "quiver", raw]);
    // wasm-opt reads the features to allow from the module's target_features section,
    // so it never adds SIMD to the plain build.
    run(join(root, "node_modules", ".bin", "wasm-opt"), ["-O3", wasm, "-o", wasm]);
  }
  const bytes = readFileSync(wasm);
  sizes[name] = {
    raw: bytes.length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}
writeFileSync(join(root, "pkg", "sizes.json"), JSON.stringify(sizes, null, 2) + "\n");
for (const [name, s] of Object.entries(sizes)) {
  console.log(`pkg/${name}/quiver_bg.wasm: ${(s.raw / 1024).toFixed(0)} KiB raw, ${(s.brotli / 1024).toFixed(0)} KiB brotli`);
}

// A plain <script type="module"> page cannot resolve bare npm names, so the one
// dependency the loader has is shipped beside it.
mkdirSync(join(root, "js", "vendor"), { recursive: true });
copyFileSync(join(root, "node_modules", "wasm-feature-detect", "dist", "esm", "index.js"), join(root, "js", "vendor", "wasm-feature-detect.js"));
