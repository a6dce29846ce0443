// The package used from a Vite project exactly as a user would: installed into
// node_modules (a link, as `npm install ../quiver` makes), imported by name, built
// with `vite build` with no config, and run in headless Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openPage, root } from "./helpers.mjs";

test("a Vite build finds the wasm and the worker with no config, and both builds run", async () => {
  const app = mkdtempSync(join(tmpdir(), "quiver-vite-"));
  try {
    cpSync(join(root, "tests", "vite-app"), app, { recursive: true });
    mkdirSync(join(app, "node_modules"));
    symlinkSync(root, join(app, "node_modules", "quiver"));
    execFileSync(process.execPath, [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], {
      cwd: app,
      stdio: "inherit",
    });
    const assets = readdirSync(join(app, "dist", "assets"));
    assert.equal(assets.filter((f) => f.endsWith(".wasm")).length, 2, `assets: ${assets}`);

    const browser = await launch();
    try {
      const { page, stop, errors } = await openPage(browser, "/", { dir: join(app, "dist") });
      const result = await page.evaluate(() => window.result);
      await stop();
      assert.deepEqual(result, [
        { build: "simd128", hits: ["parse", "lex"], error: "DIMENSION_MISMATCH" },
        { build: "scalar", hits: ["parse", "lex"], error: "DIMENSION_MISMATCH" },
      ]);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
