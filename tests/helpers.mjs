// Shared set-up for the end-to-end tests: a static server and headless Chromium.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "../scripts/serve.mjs";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const chromiumArgs = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Debian's Chromium with a fresh profile; `close()` removes the profile. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), "quiver-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: chromiumArgs,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Serves `dir` (the repo root by default) and opens `path` in a new page. */
export async function openPage(browser, path, { dir = root, isolate = true } = {}) {
  const { server, url } = await serve({ root: dir, isolate });
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${url}${path}`);
  return { page, url, errors, stop: () => new Promise((r) => server.close(r)) };
}

/**
 * For a test file: launches Chromium and opens the test page before the tests, and
 * closes both after. Returns the object that holds `browser` and `p` (the page) once
 * they are up; set DEBUG_PAGE=1 to see the page's console.
 */
export function usePage(before, after, path = "/tests/pages/plain.html") {
  const env = {};
  before(async () => {
    env.browser = await launch();
    env.p = await openPage(env.browser, path);
    env.p.page.on("console", (m) => process.env.DEBUG_PAGE && console.error("page:", m.text().slice(0, 300)));
    await env.p.page.waitForFunction(() => window.ready);
  });
  after(async () => {
    await env.p.stop();
    await env.browser.close();
  });
  return env;
}

/** Cosine similarity of two equal-length arrays of numbers. */
export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
