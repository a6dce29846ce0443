// The examples, used as users use them: the React + Vite app depends on quiver by
// path (a link in node_modules, as `npm install ../..` makes), imports it by name, is
// built with `vite build` with no config, and runs in headless Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, openPage, root } from "./helpers.mjs";

test("the React + Vite example builds with no config, and both builds search in it", async () => {
  const app = mkdtempSync(join(tmpdir(), "quiver-react-"));
  try {
    cpSync(join(root, "examples", "react-vite"), app, { recursive: true });
    mkdirSync(join(app, "node_modules"));
    for (const [name, target] of [
      ["quiver", root],
      ["react", join(root, "node_modules", "react")],
      ["react-dom", join(root, "node_modules", "react-dom")],
      ["scheduler", join(root, "node_modules", "scheduler")],
    ]) {
      symlinkSync(target, join(app, "node_modules", name));
    }
    execFileSync(process.execPath, [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], {
      cwd: app,
      stdio: "inherit",
    });
    const assets = readdirSync(join(app, "dist", "assets"));
    assert.equal(assets.filter((f) => f.endsWith(".wasm")).length, 2, `assets: ${assets}`);

    const browser = await launch();
    try {
      const { page, stop, errors } = await openPage(browser, "/", { dir: join(app, "dist") });
      const hits = (build) => page.locator(`section[data-build="${build}"] .hits li`);
      for (const build of ["simd128", "scalar"]) {
        const section = page.locator(`section[data-build="${build}"]`);
        await section.waitFor({ timeout: 60_000 });
        await section.locator(".refusal", { hasText: "DIMENSION_MISMATCH" }).waitFor({ timeout: 30_000 });
        assert.deepEqual(await hits(build).evaluateAll((li) => li.map((e) => e.dataset.id)), ["parse", "lex"]);
        // The user changes the query and drops the filter: the list follows.
        await section.locator("input[type=checkbox]").uncheck();
        await section.locator("select").selectOption("output to the screen");
        await page.waitForFunction((b) => document.querySelector(`section[data-build="${b}"] .hits li`)?.dataset.id === "draw", build, { timeout: 30_000 });
        assert.deepEqual(await hits(build).evaluateAll((li) => li.map((e) => e.dataset.id)), ["draw", "print"]);
      }
      await stop();
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
