// The TypeScript types shipped in js/index.d.ts, checked against real usage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./helpers.mjs";

test("js/index.d.ts types the README's usage and rejects misuse", () => {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const args = [
    "--noEmit",
    "--strict",
    "--target",
    "es2022",
    "--module",
    "nodenext",
    "--moduleResolution",
    "nodenext",
    "--lib",
    "es2022,dom",
    join(root, "tests", "types.ts"),
  ];
  let out = "";
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: root, encoding: "utf8" });
  } catch (e) {
    out = e.stdout;
  }
  assert.equal(out, "");
});
