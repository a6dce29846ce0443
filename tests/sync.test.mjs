// Sync between browsers through a real relay process: separate Chromium profiles (own
// OPFS, own site ids) edit one collection at once and end identical, by WebTransport
// and by WebSocket; offline edits arrive after reconnecting; a relay killed mid-sync
// and restarted on its file loses nothing; ops delivered twice change nothing; a
// token opens its own room only.
/* global col, session, statuses -- set on the test page by join_() */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { chromiumArgs } from "./helpers.mjs";
import { serve } from "../scripts/serve.mjs";
import { root } from "./helpers.mjs";
import { buildRelay, mintToken, newSecret, startRelay } from "./relay.mjs";

const dir = mkdtempSync(join(tmpdir(), "quiver-sync-"));
const secret = newSecret();
let relay;
let browser;
let site;

before(async () => {
  buildRelay();
  relay = await startRelay({ data: join(dir, "relay.db"), secret });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: chromiumArgs });
  site = await serve({ root });
});

after(async () => {
  await browser?.close();
  await new Promise((r) => site?.server.close(r));
  relay?.proc.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A page in a fresh profile (its own storage), with quiver on window. */
async function newPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${site.url}/tests/pages/plain.html`);
  await page.waitForFunction(() => window.ready);
  return page;
}

/**
 * Opens database "s" (with `open`'s options too) and collection "notes" in `page`, and
 * starts a session as `options` say.
 */
async function join_(
  page,
  { room, token = mintToken(secret, room), transport = "auto", storage = "memory", url = relay.url, websocketUrl = relay.websocketUrl, open = {} },
) {
  await page.evaluate(
    async ({ room, token, transport, storage, url, websocketUrl, hash, open }) => {
      window.db ??= await quiver.open({ name: "s", storage, ...open });
      window.col = await db.collection("notes", { dim: 8, metric: "cosine" });
      const value = Uint8Array.from(hash.match(/../g), (x) => parseInt(x, 16));
      window.session = col.sync({ url, websocketUrl, room, token, transport, serverCertificateHashes: [{ algorithm: "sha-256", value }] });
      window.statuses = [];
      session.addEventListener("status", (e) => statuses.push(e.detail.reason ? `${e.detail.status} (${e.detail.reason})` : e.detail.status));
    },
    { room, token, transport, storage, url, websocketUrl, hash: relay.hash, open },
  );
}

const synced = (page) => page.evaluate(() => session.synced().then(() => session.transport));

/** Writes in `page`: upserts of `ids` (vectors from `seed`) and deletes of `dels`, in batches. */
function edit(page, { ids = [], seed = 1, dels = [], batch = 7 }) {
  return page.evaluate(
    async ({ ids, seed, dels, batch }) => {
      const vec = (i) => Array.from({ length: 8 }, (_, d) => Math.sin(seed * 31 + i * 7 + d));
      for (let i = 0; i < ids.length; i += batch) {
        await col.upsert(ids.slice(i, i + batch).map((id, j) => ({ id, vector: vec(i + j), metadata: { by: seed, n: i + j }, text: `note ${id} by ${seed}` })));
      }
      for (let i = 0; i < dels.length; i += batch) await col.delete(dels.slice(i, i + batch));
    },
    { ids, seed, dels, batch },
  );
}

/** Every record of the page's collection, as one comparable string (a checksum's input). */
const contents = (page) =>
  page.evaluate(async () => {
    const ids = (await col.ids()).sort();
    const rows = await col.get(ids);
    return JSON.stringify(rows.map((r) => [r.id, Array.from(r.vector), r.metadata, r.text]));
  });

/** Waits until every page holds the same records; returns them. */
async function converged(pages, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(pages.map(contents));
    if (all.every((c) => c === all[0])) return JSON.parse(all[0]);
    if (Date.now() > end) {
      const sets = all.map((c) => JSON.parse(c).map((r) => JSON.stringify(r)));
      const diff = sets.map((s, i) => s.filter((r) => !sets[(i + 1) % sets.length].includes(r)).map((r) => r.slice(0, 60)));
      assert.fail(`pages differ after ${timeoutMs} ms: ${all.map((c) => JSON.parse(c).length).join(" / ")} records; ${JSON.stringify(diff)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

test("three browsers editing one collection at once converge, over WebTransport and WebSocket", { timeout: 120_000 }, async () => {
  const pages = await Promise.all([newPage(), newPage(), newPage()]);
  const room = "three";
  await join_(pages[0], { room, transport: "webtransport" });
  // The second keeps its records in IndexedDB, whose log records each frame applied.
  await join_(pages[1], { room, transport: "websocket", storage: "idb" });
  // The third spreads the collection over two workers early: ops are then routed to
  // the worker that owns each id.
  await join_(pages[2], { room, open: { workers: 2, partitionThreshold: 10 } });
  // The statuses say why, should auto have fallen back to WebSocket.
  const history = () => Promise.all(pages.map((p) => p.evaluate(() => statuses.join(" > "))));
  assert.deepEqual(await Promise.all(pages.map(synced)), ["webtransport", "websocket", "webtransport"], (await history()).join("\n"));
  // Overlapping ids, written at once: every page must end with each id's last writer.
  await Promise.all([
    edit(pages[0], { ids: range("r", 0, 40), seed: 1 }),
    edit(pages[1], { ids: range("r", 20, 60), seed: 2, dels: range("r", 0, 5) }),
    edit(pages[2], { ids: range("r", 50, 70), seed: 3, dels: range("r", 30, 35) }),
  ]);
  await Promise.all(pages.map(synced));
  const rows = await converged(pages);
  const ids = rows.map((r) => r[0]);
  for (const id of ["r5", "r19", "r40", "r69"]) assert.ok(ids.includes(id), `${id} is in every page`);
  assert.ok(rows.length >= 55 && rows.length <= 70, `${rows.length} records`);
  // A record whose only writer deleted it after writing it is gone everywhere.
  const late = await pages[2].evaluate(async () => (await col.delete(["r55"]), session.synced()));
  assert.equal(late, undefined);
  assert.ok(!(await converged(pages)).some((r) => r[0] === "r55"));
  const owners = await pages[2].evaluate(async () => db._pool.all("count", { collection: "notes" }));
  assert.ok(
    owners.every((n) => n > 0),
    `each worker of the third page holds part: ${owners}`,
  );
  await Promise.all(pages.map((p) => p.context().close()));
});

test("offline edits arrive after reconnecting, and a restarted relay loses nothing", { timeout: 180_000 }, async () => {
  const [a, b] = await Promise.all([newPage(), newPage()]);
  const room = "offline";
  await join_(a, { room, storage: "opfs" });
  await join_(b, { room });
  await Promise.all([synced(a), synced(b)]);
  // A goes offline and writes; B writes meanwhile.
  await a.evaluate(() => session.close());
  await edit(a, { ids: range("o", 0, 30), seed: 4 });
  await edit(b, { ids: range("o", 20, 40), seed: 5 });
  // The relay dies mid-sync and comes back on the same file and ports.
  const pushing = edit(b, { ids: range("p", 0, 200), seed: 6, batch: 20 });
  await new Promise((r) => setTimeout(r, 50));
  await relay.kill("SIGKILL");
  await pushing;
  relay = await startRelay({ data: join(dir, "relay.db"), secret, ports: relay.ports });
  await join_(a, { room, storage: "opfs" });
  await Promise.all([synced(a), synced(b)]);
  const rows = await converged([a, b], 60_000);
  assert.equal(rows.filter((r) => r[0].startsWith("p")).length, 200);
  assert.equal(rows.filter((r) => r[0].startsWith("o")).length, 40);
  assert.ok(
    (await b.evaluate(() => statuses)).some((s) => s.startsWith("offline")),
    "B saw the relay go",
  );
  // Ops delivered again change nothing: A forgets its cursors and pulls and pushes all.
  const before = await contents(a);
  await a.evaluate(async () => {
    session.close();
    await db._pool.call(0, "setMeta", { key: "sync:notes:offline", value: JSON.stringify({ since: 0, pushed: [0], workers: 0 }) });
  });
  await join_(a, { room, storage: "opfs" });
  await synced(a);
  assert.equal(await contents(a), before);
  assert.equal(await contents(b), before);
  await Promise.all([a, b].map((p) => p.context().close()));
});

test("a token opens its own room only, and auto falls back to WebSocket when WebTransport cannot connect", { timeout: 120_000 }, async () => {
  const page = await newPage();
  await join_(page, { room: "b", token: mintToken(secret, "a") });
  const refused = await page.evaluate(() =>
    session.synced().then(
      () => "synced",
      (e) => `${e.code} ${session.status}`,
    ),
  );
  assert.equal(refused, "UNAUTHORIZED refused");
  await page.evaluate(() => session.close());
  await join_(page, { room: "b", token: "not a token" });
  assert.equal(
    await page.evaluate(() =>
      session.synced().then(
        () => "synced",
        (e) => e.code,
      ),
    ),
    "UNAUTHORIZED",
  );
  await page.evaluate(() => session.close());
  // Nothing listens for QUIC on the WebSocket's port: WebTransport fails, WebSocket goes.
  const blocked = `https://127.0.0.1:${relay.ports.ws}/`;
  await join_(page, { room: "b", url: blocked });
  assert.equal(await synced(page), "websocket");
  // Bad options are refused by name, and start nothing.
  const bad = await page.evaluate(() =>
    Promise.all([
      Promise.resolve()
        .then(() => col.sync({ url: "http://x/", room: "r", token: "" }))
        .catch((e) => e.message),
      Promise.resolve()
        .then(() => col.sync({ url: "https://x/", room: "", token: "" }))
        .catch((e) => e.message),
      Promise.resolve()
        .then(() => col.sync({ url: "https://x/", room: "r", token: "", transport: "pigeon" }))
        .catch((e) => e.message),
    ]),
  );
  assert.match(bad[0], /^url: /);
  assert.match(bad[1], /^room: /);
  assert.match(bad[2], /^transport: /);
  await page.context().close();
});

test("a site behind tombstones the relay dropped gets a snapshot and drops what the room deleted", { timeout: 120_000 }, async () => {
  // A relay that compacts every second and keeps no tombstone past that.
  const quick = await startRelay({ data: join(dir, "quick.db"), secret, extra: ["--tombstone-days", "0", "--compact-secs", "1"] });
  const saved = relay;
  relay = quick;
  try {
    const [a, b] = await Promise.all([newPage(), newPage()]);
    const room = "snapshot";
    await join_(a, { room });
    await join_(b, { room });
    await edit(a, { ids: range("k", 0, 10), seed: 7 });
    await Promise.all([synced(a), synced(b)]);
    await converged([a, b]);
    // B goes offline; A deletes two records and the relay forgets their tombstones.
    await b.evaluate(() => session.close());
    await edit(b, { ids: ["mine"], seed: 8 });
    await a.evaluate(async () => (await col.delete(["k1", "k2"]), session.synced()));
    await new Promise((r) => setTimeout(r, 2500));
    await join_(b, { room });
    await synced(b);
    assert.equal(await b.evaluate(() => session.snapshots), 1, "the relay sent B a snapshot");
    const rows = await converged([a, b]);
    const ids = rows.map((r) => r[0]);
    assert.ok(!ids.includes("k1") && !ids.includes("k2"), `deleted in the room: ${ids}`);
    assert.ok(ids.includes("mine") && ids.includes("k3"), `kept: ${ids}`);
    await Promise.all([a, b].map((p) => p.context().close()));
  } finally {
    relay = saved;
    await quick.kill("SIGKILL");
  }
});
