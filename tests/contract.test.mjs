// The contract between the core and the page is written twice, once in each language
// (crate/src/error.rs and db.rs; js/protocol.js), and the error codes a third time in
// the shipped types (js/index.d.ts). These must agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./helpers.mjs";
import { codes, limits } from "../js/protocol.js";

const glue = await import(join(root, "pkg", "simd", "quiver.js"));
await glue.default({ module_or_path: readFileSync(join(root, "pkg", "simd", "quiver_bg.wasm")) });

/** Codes the page adds: failures of workers, of cancellation, of a relay's refusal, and of quiver itself. */
const PAGE_ONLY = ["WORKER_LOST", "ABORTED", "TIMEOUT", "UNAUTHORIZED", "INTERNAL"];

test("the error codes of the core, of js/protocol.js and of index.d.ts are the same set", () => {
  const core = glue.errorCodes();
  assert.deepEqual([...core].sort(), codes.filter((c) => !PAGE_ONLY.includes(c)).sort());
  const dts = readFileSync(join(root, "js", "index.d.ts"), "utf8");
  const union = dts.match(/export type ErrorCode =([^;]*);/)[1];
  assert.deepEqual([...union.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]).sort(), [...codes].sort());
  assert.equal(new Set(codes).size, codes.length);
});

test("the limits of js/protocol.js are the core's", () => {
  const core = glue.limits();
  const { maxTimeoutMs, ...shared } = limits;
  assert.deepEqual({ ...core }, shared);
  assert.equal(maxTimeoutMs, 2 ** 31 - 1);
});
