// A sync session: keeps one collection in step with a room on a relay (relay/, the
// protocol in docs/SYNC.md). It says hello with the last relay sequence it applied,
// applies the backlog and then every op the room fans out, and pushes this site's
// changes since the last acknowledged one, batch by batch, as they are written. When
// the connection drops it reconnects with exponential backoff and full jitter; the
// cursors live in the database, so a reload or a crash resumes where the relay's
// acknowledgements left off, and ops sent twice change nothing.
import { QuiverError } from "../errors.js";
import { Local } from "./local.js";
import { webSocket, webTransport } from "./transport.js";

/** Reconnect delays: the first, and the cap the doubling stops at. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** How long a connection may take to open before the other transport is tried. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Events: `status` (detail `{status, transport, reason?}`: "connecting", "live" once the
 * backlog is applied, "offline" between connections, "refused" when the relay will not
 * have this token, "closed"), `progress` (detail `{pushed, pulled, pending}`), and
 * `change` (detail `{ids}`: records other sites changed here).
 */
export class Sync extends EventTarget {
  status = "connecting";
  transport = null;
  pushed = 0;
  pulled = 0;
  /** Bytes of frames sent and received, over every connection of the session. */
  bytesSent = 0;
  bytesReceived = 0;
  /** Times the relay sent its whole room, as this site had fallen behind its compaction. */
  snapshots = 0;
  #local;
  #options;
  #link = null;
  #cursors = null;
  #head = 0;
  #batch = 0;
  #inFlight = null; // {batch, w, upto, count}
  #wantPush = false;
  #pushing = false;
  #inbox = Promise.resolve();
  #attempt = 0;
  #retry = null;
  #waiters = [];
  #unlisten;
  #preferSocket = false;
  #refusal = null; // the error the relay refused the session with
  /** During a snapshot's backlog: the ids it holds. */
  #snapshot = null;

  /**
   * @param {import("../coordinator.js").Coordinator} coordinator
   * @param {string} name the collection
   * @param {{url?: string, websocketUrl?: string, room: string, token: string,
   *   serverCertificateHashes?: {algorithm: string, value: BufferSource}[],
   *   transport: "auto"|"webtransport"|"websocket"}} options checked by the caller
   */
  constructor(coordinator, name, options) {
    super();
    this.#local = new Local(coordinator, name);
    this.#options = options;
    this.#unlisten = coordinator.onWrite((collection) => collection === name && this.#pushSoon());
    this.#connect();
  }

  /** Resolves once the backlog is applied and every local change is acknowledged. */
  synced() {
    // A session the relay refused keeps saying why, however late the caller asks.
    if (this.status === "refused") return Promise.reject(this.#refusal);
    if (this.status === "closed") return Promise.reject(this.#stopped());
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#settle();
    });
  }

  /** Ends the session; what was acknowledged stays, the rest goes on the next sync. */
  close() {
    if (this.status === "closed") return;
    clearTimeout(this.#retry);
    this.#unlisten();
    const link = this.#link;
    this.#link = null;
    if (link)
      this.#local
        .encode({ type: "close", message: "done" })
        .then((f) => link.send(f))
        .catch(() => {})
        .finally(() => link.close("done"));
    this.#setStatus("closed");
  }

  #stopped() {
    return new QuiverError("CLOSED", `sync: the session is ${this.status}`);
  }

  async #connect() {
    this.#setStatus("connecting");
    try {
      this.#cursors = await this.#local.cursors(this.#options.room);
      const link = await this.#open();
      if (this.status === "closed") return link.close("closed");
      this.#link = link;
      this.transport = link.kind;
      const hello = { type: "hello", room: this.#options.room, token: this.#options.token, site: this.#local.co.site, since: this.#cursors.since };
      await this.#send(await this.#local.encode(hello));
    } catch (e) {
      // A collection that is gone, or options the relay's address cannot take, will
      // not mend with a retry.
      if (e instanceof QuiverError && (e.code === "NOT_FOUND" || e.code === "INVALID_ARGUMENT")) this.#end("closed", e);
      else this.#lost(e);
    }
  }

  /** Ends the session for good with `error`, which waiters get. */
  #end(status, error) {
    if (status === "refused") this.#refusal = error;
    clearTimeout(this.#retry);
    this.#unlisten();
    this.#link?.close(error.message);
    this.#link = null;
    this.#setStatus(status, error.message);
    this.#waiters.splice(0).forEach((w) => w.reject(error));
  }

  #send(frame) {
    this.bytesSent += frame.length;
    return this.#link.send(frame);
  }

  /** The first transport that opens: WebTransport unless it failed last time or is missing. */
  async #open() {
    const { url, websocketUrl, serverCertificateHashes, transport } = this.#options;
    const handlers = {
      timeout: CONNECT_TIMEOUT_MS,
      onFrame: (bytes) => {
        this.bytesReceived += bytes.length;
        this.#inbox = this.#inbox.then(() => this.#receive(bytes)).catch((e) => this.#lost(e));
      },
      onClose: ({ reason }) => this.#lost(reason),
    };
    const canTransport = typeof WebTransport === "function" && url;
    if (transport === "webtransport" || (transport === "auto" && canTransport && !this.#preferSocket)) {
      try {
        return await webTransport(url, { serverCertificateHashes, ...handlers });
      } catch (e) {
        if (transport === "webtransport") throw e;
        // UDP blocked or no WebTransport on the way: the same protocol over TCP, and
        // WebTransport again on the next connection but one.
        this.#preferSocket = true;
      }
    } else {
      this.#preferSocket = false;
    }
    return webSocket(websocketUrl, handlers);
  }

  async #receive(bytes) {
    if (this.status === "closed") return;
    const { message: m, ids } = await this.#local.receive(bytes);
    switch (m.type) {
      case "welcome":
        this.#attempt = 0;
        this.#head = m.head;
        // A snapshot replaces the log this site followed: its cursor starts over.
        this.#snapshot = m.snapshot ? new Set() : null;
        this.snapshots += m.snapshot ? 1 : 0;
        if (!m.snapshot && m.head <= this.#cursors.since) this.#setStatus("live");
        this.#pushSoon();
        break;
      case "ops": {
        if (ids.length) this.dispatchEvent(new CustomEvent("change", { detail: { ids } }));
        for (const op of this.#snapshot ? m.ops : []) this.#snapshot.add(op.id);
        // Ops may come before the relay has made them durable, with `upto` left where
        // it was: the cursor moves, and is saved, only when `upto` does.
        const since = this.#snapshot ? m.upto : Math.max(this.#cursors.since, m.upto);
        const moved = since !== this.#cursors.since;
        this.#cursors.since = since;
        if (this.#snapshot && m.upto >= this.#head) await this.#endSnapshot();
        if (moved) await this.#local.saveCursors(this.#options.room, this.#cursors);
        this.pulled += m.ops.length;
        if (this.status === "connecting" && this.#cursors.since >= this.#head) this.#setStatus("live");
        this.#progress();
        break;
      }
      case "ack": {
        const sent = this.#inFlight;
        if (!sent || sent.batch !== m.batch) throw new Error(`the relay acknowledged batch ${m.batch}, which is not in flight`);
        this.#inFlight = null;
        this.#cursors.pushed[sent.w] = Math.max(this.#cursors.pushed[sent.w], sent.upto);
        await this.#local.saveCursors(this.#options.room, this.#cursors);
        this.pushed += sent.count;
        this.#progress();
        this.#pushSoon();
        break;
      }
      case "refused":
        this.#end(
          "refused",
          new QuiverError(m.reason === "unauthorized" ? "UNAUTHORIZED" : "CLOSED", `sync: the relay refused the session (${m.reason}: ${m.message})`),
        );
        break;
      case "close":
        this.#lost(`${m.reason}: ${m.message}`);
        break;
    }
    this.#settle();
  }

  /**
   * After a snapshot's backlog: what this site holds that the room's log no longer has
   * was deleted there (its tombstone since dropped), unless this site wrote it and the
   * relay has not yet acknowledged it.
   */
  async #endSnapshot() {
    const held = this.#snapshot;
    this.#snapshot = null;
    const unacked = new Set();
    for (const w of await this.#local.owners()) {
      for (let after = this.#cursors.pushed[w] ?? 0; ;) {
        const { ops, upto } = await this.#local.read(w, after);
        ops.forEach((op) => unacked.add(op.id));
        if (upto === after) break;
        after = upto;
      }
    }
    const gone = (await this.#local.ids()).filter((id) => !held.has(id) && !unacked.has(id));
    if (gone.length) this.dispatchEvent(new CustomEvent("change", { detail: { ids: await this.#local.remove(gone) } }));
  }

  /** Pushes this site's changes, one batch in flight at a time. */
  #pushSoon() {
    this.#wantPush = true;
    if (this.#pushing || this.#inFlight || !this.#link || this.status === "closed") return;
    this.#pushing = true;
    (async () => {
      while (this.#wantPush && !this.#inFlight && this.#link) {
        this.#wantPush = false;
        for (const w of await this.#local.owners()) {
          const after = this.#cursors.pushed[w] ?? 0;
          const batch = this.#batch + 1;
          const { frame, upto, count } = await this.#local.push(w, after, batch);
          if (upto === after) continue;
          this.#wantPush = true; // there may be more past this read
          if (!frame) {
            this.#cursors.pushed[w] = upto;
            continue;
          }
          this.#batch = batch;
          this.#inFlight = { batch, w, upto, count };
          await this.#send(frame);
          break;
        }
      }
    })()
      .catch((e) => this.#lost(e))
      .finally(() => {
        this.#pushing = false;
        this.#settle();
      });
  }

  /** The connection ended (`why`: a reason or an error): try again after a backoff, unless the session is over. */
  #lost(why) {
    if (this.status === "closed" || this.status === "refused") return;
    const reason = typeof why === "string" ? why : String(why?.message ?? why);
    this.#link?.close(reason);
    this.#link = null;
    this.#inFlight = null;
    this.#setStatus("offline", reason);
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.#attempt++);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#connect(), Math.random() * delay);
  }

  #setStatus(status, reason) {
    if (this.status === status && status !== "offline") return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, transport: this.transport, reason } }));
    this.#settle();
  }

  #progress() {
    this.dispatchEvent(new CustomEvent("progress", { detail: { pushed: this.pushed, pulled: this.pulled } }));
  }

  /** Resolves `synced()` waiters once live with nothing left to push. */
  async #settle() {
    if (!this.#waiters.length || this.status !== "live" || this.#inFlight || this.#pushing || this.#wantPush) return;
    // Nothing in flight: check that no change was written since the last read.
    for (const w of await this.#local.owners()) {
      const { upto } = await this.#local.read(w, this.#cursors.pushed[w] ?? 0);
      if (upto !== (this.#cursors.pushed[w] ?? 0)) return this.#pushSoon();
    }
    if (this.status !== "live" || this.#inFlight || this.#pushing) return;
    this.#waiters.splice(0).forEach((w) => w.resolve());
  }
}
