// The code-search demo as a user meets it: built by Vite from vite.config.ts, opened
// in Chromium with every request off this machine refused, it indexes quiver's own
// sources with the real model, finds code by meaning, and after a reload answers from
// OPFS without indexing again. The plain-page example searches notes by meaning too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch, openPage, root } from "./helpers.mjs";

/** Natural-language questions and the file that answers each, in quiver's sources. */
const QUERIES = [
  ["graph of neighbours with layers, where a new node picks its links", "crate/src/index/hnsw/mod.rs"],
  ["split a byte stream into frames", "crate/src/sync/wire/decode.rs"],
  ["quantize vectors to 8-bit integers", "crate/src/quant/mod.rs"],
];

/** Refuses every request that would leave the machine; returns the URLs asked for. */
async function offline(context) {
  const asked = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    asked.push(url.href);
    return url.hostname === "127.0.0.1" ? route.continue() : route.abort("internetdisconnected");
  });
  return asked;
}

test("the demo indexes its sample offline, finds code by meaning, and reloads without indexing", { timeout: 15 * 60_000 }, async () => {
  execFileSync(process.execPath, [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  const browser = await launch();
  try {
    const asked = await offline(browser.context);
    const { page, stop, errors } = await openPage(browser, "/", { dir: join(root, "dist", "demo") });
    await page.evaluate(() => window.demo.ready);
    const first = await page.evaluate(() => ({ indexed: window.demo.indexedThisVisit, manifest: window.demo.manifest }));
    assert.ok(first.indexed > 100, `indexed ${first.indexed} chunks`);
    assert.equal(first.manifest.source, "sample");

    const answers = async () => {
      const out = [];
      for (const [q] of QUERIES) out.push(await page.evaluate((q) => window.demo.search(q), q));
      return out;
    };
    const before = await answers();
    QUERIES.forEach(([q, file], i) => {
      const top3 = before[i].slice(0, 3).map((h) => h.path);
      assert.ok(top3.includes(file), `"${q}": top 3 ${top3.join(", ")}; expected ${file}`);
    });

    // What a user does: types, and sees results with their paths and lines.
    await page.fill("#q", QUERIES[0][0]);
    await page.locator("#results li").first().waitFor({ timeout: 30_000 });
    const shown = await page.locator("#results li .path").allTextContents();
    assert.match(shown.slice(0, 3).join(" "), /crate\/src\/index\/hnsw\/mod\.rs:\d+–\d+/);
    await page.locator("#results li").first().click();
    await page.locator("#results li .ctx").first().waitFor({ timeout: 10_000 });

    // A reload finds the index in OPFS: nothing is indexed, the answers are the same,
    // and once loaded, searching asks the network for nothing.
    await page.reload();
    await page.evaluate(() => window.demo.ready);
    assert.equal(await page.evaluate(() => window.demo.indexedThisVisit), 0);
    const loadedAt = asked.length;
    const after = await answers();
    assert.deepEqual(
      after.map((hits) => hits.map((h) => h.path)),
      before.map((hits) => hits.map((h) => h.path)),
    );
    await page.fill("#q", QUERIES[1][0]);
    await page.locator("#results li").first().waitFor({ timeout: 30_000 });
    assert.deepEqual(asked.slice(loadedAt), [], "requests after the page loaded");
    mkdirSync(join(root, "test-results"), { recursive: true });
    await page.screenshot({ path: join(root, "test-results", "demo.png"), fullPage: true });
    assert.ok(
      asked.every((u) => new URL(u).hostname === "127.0.0.1"),
      `requests off the machine: ${asked.filter((u) => !u.includes("127.0.0.1"))}`,
    );
    await stop();
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the plain-page example searches notes by meaning", { timeout: 5 * 60_000 }, async () => {
  const browser = await launch();
  try {
    await offline(browser.context);
    const { page, stop, errors } = await openPage(browser, "/examples/plain/");
    await page.waitForFunction(() => typeof window.search === "function", null, { timeout: 120_000 });
    assert.deepEqual((await page.evaluate(() => window.search("how do I make a cup of tea"))).slice(0, 1), ["0"]);
    assert.deepEqual((await page.evaluate(() => window.search("my internet stopped working"))).slice(0, 1), ["7"]);
    await stop();
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
