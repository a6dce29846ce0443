// Suite `sync`, run from Node by scripts/bench.mjs: a real relay (release build) on
// loopback and two Chromium profiles. For each transport: how long a 100-vector delta
// written in A takes to be searchable in B (A's upsert call to B's search finding the
// last row, one clock: performance.timeOrigin + now, shared by the pages of one
// browser), the same for one vector, the floor under both (the same frames page to
// page through the relay with nothing else on the way), sustained ops a second from A
// to B, and bytes on the wire per op.
/* global col, session, arrived, waiters, rawLink, rawEncode, rawWaiter, rawArrived, nextFrame -- set on the bench pages by join_() and raw() */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { chromiumArgs, root } from "../../tests/helpers.mjs";
import { buildRelay, mintToken, newSecret, startRelay } from "../../tests/relay.mjs";
import { serve } from "../serve.mjs";

const DIM = 384;
const DELTA = 100;
const ROUNDS = 40;
/**
 * Rounds run before the measured ones: V8 runs a page's wasm in its baseline tier
 * until a function has run enough to be optimized, and the first rounds' apply took
 * 4x a warm one's (measured in a worker: 4.5 ms p50 over the first 40 applies of a
 * 100-op frame, 1.1 ms after 100). A session that has synced a while is warm; the
 * warm-up rounds' own p50 is reported beside.
 */
const WARMUP_ROUNDS = 20;
const SUSTAINED_OPS = 20_000;
/** Idle sessions the native load generator holds on one relay while writers converge. */
const SESSIONS = 5_000;

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function page(browser, url) {
  const p = await (await browser.newContext()).newPage();
  await p.goto(`${url}/tests/pages/plain.html`);
  await p.waitForFunction(() => window.ready);
  return p;
}

/** Opens a collection in `p` and syncs it with `room` over `transport`. */
function join_(p, relay, room, token, transport) {
  return p.evaluate(
    async ({ relay, room, token, transport, dim }) => {
      window.db = await quiver.open({ name: `bench-${room}`, workers: 1 });
      window.col = await db.collection("c", { dim, metric: "cosine" });
      const value = Uint8Array.from(relay.hash.match(/../g), (x) => parseInt(x, 16));
      const serverCertificateHashes = [{ algorithm: "sha-256", value }];
      window.session = col.sync({ url: relay.url, websocketUrl: relay.websocketUrl, room, token, transport, serverCertificateHashes });
      window.arrived = new Set();
      window.waiters = [];
      session.addEventListener("change", (e) => {
        for (const id of e.detail.ids) arrived.add(id);
        for (const w of waiters.splice(0)) w();
      });
      await session.synced();
      return session.transport;
    },
    { relay: { url: relay.url, websocketUrl: relay.websocketUrl, hash: relay.hash }, room, token, transport, dim: DIM },
  );
}

/** In B: resolves with the time at which `last` has arrived and a search finds it. */
function searchable(p, last) {
  return p.evaluate(
    async ({ last }) => {
      while (!arrived.has(last)) await new Promise((r) => waiters.push(r));
      const row = await col.get(last);
      const [hit] = await col.search(row.vector, { k: 1 });
      if (hit.id !== last) throw new Error(`searched for ${last}, found ${hit.id}`);
      return performance.timeOrigin + performance.now();
    },
    { last },
  );
}

/** In A: writes `n` random vectors with ids `prefix0..`, made beforehand; the time the first upsert began. */
function write(p, prefix, n, batch = n) {
  return p.evaluate(
    async ({ prefix, n, batch, dim }) => {
      const batches = [];
      for (let i = 0; i < n; i += batch) {
        const rows = [];
        for (let j = i; j < Math.min(n, i + batch); j++) rows.push({ id: `${prefix}${j}`, vector: Array.from({ length: dim }, () => Math.random() - 0.5) });
        batches.push(rows);
      }
      const t0 = performance.timeOrigin + performance.now();
      for (const rows of batches) await col.upsert(rows);
      return t0;
    },
    { prefix, n, batch, dim: DIM },
  );
}

/**
 * The floor under a delta: the same frames through the same relay with nothing else on
 * the way. A and B open bare connections (js/sync/transport.js) to a room of their
 * own; A sends a Push frame of `n` ops encoded beforehand, and B's connection hands
 * over the Ops frame the relay fans out. Returns the p50 of that time, in ms, over
 * ROUNDS rounds after WARMUP_ROUNDS.
 */
async function raw(a, b, relay, room, token, transport, n) {
  const open = (p) =>
    p.evaluate(
      async ({ relay, room, token, transport }) => {
        const { webTransport, webSocket } = await import("/js/sync/transport.js");
        const encode = (message, vectors = new Float32Array(0)) => db._pool.call(0, "encodeFrame", { message: JSON.stringify(message), vectors });
        // Resolved by the first frame of at least `big` bytes.
        window.rawWaiter = null;
        const value = Uint8Array.from(relay.hash.match(/../g), (x) => parseInt(x, 16));
        const handlers = {
          timeout: 5000,
          serverCertificateHashes: [{ algorithm: "sha-256", value }],
          onFrame: (bytes) => {
            const t = performance.timeOrigin + performance.now();
            if (!rawWaiter || bytes.length < rawWaiter.big) return;
            rawWaiter.resolve(t);
            window.rawWaiter = null;
          },
          onClose: () => {},
        };
        window.rawLink = transport === "webtransport" ? await webTransport(relay.url, handlers) : await webSocket(relay.websocketUrl, handlers);
        window.rawEncode = encode;
        await rawLink.send(await encode({ type: "hello", room, token, site: db.site, since: 0 }));
      },
      { relay: { url: relay.url, websocketUrl: relay.websocketUrl, hash: relay.hash }, room, token, transport },
    );
  await open(a);
  await open(b);
  const ms = [];
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const frame = await a.evaluate(
      async ({ r, n, dim }) => {
        const ops = Array.from({ length: n }, (_, i) => ({
          id: `raw${r}-${i}`,
          version: r + 1,
          site: db.site,
          deleted: false,
          dim,
          metadata: null,
          text: null,
        }));
        window.nextFrame = await rawEncode(
          { type: "push", batch: r + 1, ops },
          new Float32Array(n * dim).map(() => Math.random() - 0.5),
        );
        return nextFrame.length;
      },
      { r, n, dim: DIM },
    );
    // The Ops frame holds the push's ops, each with its sequence: about its size.
    await b.evaluate((big) => {
      window.rawArrived = new Promise((resolve) => (window.rawWaiter = { big, resolve }));
    }, frame / 2);
    const arrived = b.evaluate(() => rawArrived);
    const t0 = await a.evaluate(() => {
      const t0 = performance.timeOrigin + performance.now();
      rawLink.send(nextFrame);
      return t0;
    });
    const t1 = await arrived;
    if (r >= WARMUP_ROUNDS) ms.push(t1 - t0);
  }
  await Promise.all([a, b].map((p) => p.evaluate(() => rawLink.close("done"))));
  return percentile(ms, 0.5);
}

/**
 * The native load generator (relay/src/bin/quiver-relay-load.rs) against a relay of
 * its own: SESSIONS idle sessions held, 4 writers and 10 readers converging in a room
 * meanwhile; one row of what it prints, per transport.
 */
async function load(dir, secret, transport) {
  const relay = await startRelay({ data: join(dir, `load-${transport}.db`), secret });
  try {
    const bin = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "release", "quiver-relay-load");
    const args = ["--url", relay.url.replace(/\/$/, ""), "--http", `127.0.0.1:${relay.ports.ws}`, "--secret", secret];
    args.push("--transport", transport === "webtransport" ? "wt" : "ws", "--sessions", String(SESSIONS), "--rooms", "50");
    args.push("--writers", "4", "--readers", "10", "--ops", "2000", "--dim", String(DIM), "--relay-pid", String(relay.proc.pid));
    const out = JSON.parse(execFileSync(bin, args, { encoding: "utf8", timeout: 600_000 }).trim().split("\n").pop());
    return {
      transport,
      config: `native load generator: ${out.idle_sessions} idle sessions over 50 rooms, ${out.writers} writers x 2,000 ops to ${out.readers} readers`,
      sessions: out.idle_sessions_alive_after,
      relay_kib_per_idle_session: out.relay_kib_per_idle_session,
      sustained_ops_s: out.acked_ops_per_s,
      fanout_p50_ms: out.fanout_p50_ms,
      fanout_p99_ms: out.fanout_p99_ms,
      bytes_per_op: out.push_bytes_per_op,
    };
  } finally {
    await relay.kill("SIGTERM");
  }
}

export async function runSync() {
  buildRelay({ release: true });
  const dir = mkdtempSync(join(tmpdir(), "quiver-bench-sync-"));
  const secret = newSecret();
  const relay = await startRelay({ data: join(dir, "relay.db"), secret });
  const { server, url } = await serve({ root });
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: chromiumArgs });
  const rows = [];
  try {
    for (const transport of ["webtransport", "websocket"]) {
      const room = `bench-${transport}`;
      const token = mintToken(secret, room);
      const [a, b] = [await page(browser, url), await page(browser, url)];
      const used = [await join_(a, relay, room, token, transport), await join_(b, relay, room, token, transport)];
      if (used.some((t) => t !== transport)) throw new Error(`asked for ${transport}, got ${used}`);
      const delta = async (prefix, n) => {
        const arrivedAt = searchable(b, `${prefix}${n - 1}`);
        const t0 = await write(a, prefix, n);
        return (await arrivedAt) - t0;
      };
      const warm = [];
      for (let r = 0; r < WARMUP_ROUNDS; r++) warm.push(await delta(`w${r}-`, DELTA));
      const ms = [];
      for (let r = 0; r < ROUNDS; r++) ms.push(await delta(`d${r}-`, DELTA));
      // The same with one vector: what a delta costs whatever its size.
      const one = [];
      for (let r = 0; r < ROUNDS; r++) one.push(await delta(`o${r}-`, 1));
      const floor = {};
      for (const n of [DELTA, 1]) {
        const rawRoom = `raw-${transport}-${n}`;
        floor[n] = await raw(a, b, relay, rawRoom, mintToken(secret, rawRoom), transport, n);
      }
      const sentBefore = await a.evaluate(() => ({ bytes: session.bytesSent, ops: session.pushed }));
      const done = searchable(b, `s${SUSTAINED_OPS - 1}`);
      const t0 = await write(a, "s", SUSTAINED_OPS, 500);
      const seconds = ((await done) - t0) / 1000;
      const sent = await a.evaluate(() => ({ bytes: session.bytesSent, ops: session.pushed }));
      rows.push({
        transport,
        config: `${DELTA} x ${DIM}-d delta, A's upsert to B's search finding it, memory storage, ${ROUNDS} rounds after ${WARMUP_ROUNDS} of warm-up`,
        p50_ms: percentile(ms, 0.5),
        warmup_p50_ms: percentile(warm, 0.5),
        p95_ms: percentile(ms, 0.95),
        p99_ms: percentile(ms, 0.99),
        sustained_ops_s: SUSTAINED_OPS / seconds,
        bytes_per_op: (sent.bytes - sentBefore.bytes) / (sent.ops - sentBefore.ops),
      });
      rows.push({
        transport,
        config: `1 x ${DIM}-d delta, the same, ${ROUNDS} rounds`,
        p50_ms: percentile(one, 0.5),
        p95_ms: percentile(one, 0.95),
        p99_ms: percentile(one, 0.99),
      });
      for (const n of [DELTA, 1]) {
        rows.push({
          transport,
          config: `${n} x ${DIM}-d as one frame encoded beforehand, A's page to B's page through the relay, no workers or database: the floor`,
          p50_ms: floor[n],
        });
      }
      await Promise.all([a, b].map((p) => p.evaluate(() => (session.close(), db.close()))));
      await Promise.all([a, b].map((p) => p.context().close()));
    }
    for (const transport of ["webtransport", "websocket"]) rows.push(await load(dir, secret, transport));
  } finally {
    const version = browser.version();
    await browser.close();
    await new Promise((r) => server.close(r));
    await relay.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
    rows.browser = version;
  }
  const find = (transport, start) => rows.find((r) => r.transport === transport && r.config.startsWith(start)).p50_ms;
  const [wt, ws] = ["webtransport", "websocket"].map((t) => find(t, `${DELTA} x ${DIM}-d delta`));
  const floor = (t) => find(t, `${DELTA} x ${DIM}-d as one frame`);
  return {
    rows,
    ratios: {
      webtransport_vs_websocket_latency: ws / wt,
      webtransport_delta_vs_floor: wt / floor("webtransport"),
      websocket_delta_vs_floor: ws / floor("websocket"),
    },
    browser: rows.browser,
  };
}
