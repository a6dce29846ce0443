// Several tabs, one persistent database: the tab holding the database's Web Lock runs
// the workers and writes; the others send it their calls over a BroadcastChannel, and
// one of them takes over when it goes. OPFS files are held by one worker of one tab at
// a time, so this is what keeps a second tab from failing on them, or corrupting them.
import { QuiverError } from "./errors.js";

const tabId = () => crypto.randomUUID?.() ?? String(Math.random()).slice(2);

/** Whether this browser has what sharing a database between tabs needs. */
export const canShareTabs = () => typeof BroadcastChannel === "function" && !!globalThis.navigator?.locks;

/**
 * Takes the lead of database `name` now if no tab has it, else arranges to take it
 * when the tab that has it lets go. Leading means running `lead()` (once) and holding
 * the lock until `until` resolves (on close).
 * Returns `leads`, which resolves with true once this tab leads, or at once with false
 * when another tab does (rejecting if `lead()` fails at once), and `released`, which
 * resolves when this tab neither holds nor waits for the lock any more.
 */
export function claim(name, lead, until, signal) {
  const lock = `quiver-db:${name}`;
  let following = false;
  let leads;
  const decided = new Promise((resolve, reject) => (leads = { resolve, reject }));
  const released = navigator.locks
    .request(lock, { ifAvailable: true }, async (held) => {
      if (!held) {
        following = true;
        return leads.resolve(false);
      }
      try {
        await lead();
      } catch (e) {
        return leads.reject(e);
      }
      leads.resolve(true);
      return until;
    })
    .then(() => {
      if (!following || signal.aborted) return;
      // Queue for the lock: granted when the leading tab closes or dies.
      return navigator.locks.request(lock, { signal }, async () => {
        await lead();
        return until;
      });
    })
    .catch((e) => {
      if (e.name !== "AbortError") console.error("quiver: could not take over the database:", e);
    });
  return { leads: decided, released };
}

/**
 * The coordinator's methods another tab may call, with how many arguments each
 * takes: the rest stay in the calling tab (a search's withdrawal list).
 */
const FORWARDED = {
  info: 0,
  collection: 2,
  dropCollection: 1,
  collections: 0,
  shards: 0,
  searchShards: 3,
  export: 1,
  import: 1,
  integrityCheck: 0,
  upsert: 2,
  search: 3,
  searchMany: 3,
  searchText: 3,
  get: 2,
  delete: 2,
  count: 1,
  stats: 1,
  ids: 1,
};

/** The leading tab's side: runs other tabs' calls on this tab's coordinator. */
export class Leader {
  constructor(name, coordinator) {
    this.coordinator = coordinator;
    this.channel = new BroadcastChannel(`quiver-db:${name}`);
    this.channel.onmessage = async ({ data }) => {
      if (data.type !== "call") return;
      let reply;
      try {
        reply = { ok: true, value: await this.dispatch(data.method, data.args) };
      } catch (e) {
        reply = { ok: false, code: e.code ?? "INTERNAL", message: String(e.message ?? e) };
      }
      this.channel.postMessage({ type: "reply", to: data.from, id: data.id, ...reply });
    };
    // Tabs waiting on a tab that has gone send their calls again to this one.
    this.channel.postMessage({ type: "leader" });
  }

  /** Runs coordinator method `method` with `args`, if other tabs may call it. */
  async dispatch(method, args) {
    if (!Object.hasOwn(FORWARDED, method)) {
      throw new QuiverError("INVALID_ARGUMENT", `method: ${JSON.stringify(method)} cannot be called from another tab`);
    }
    return this.coordinator[method](...args.slice(0, FORWARDED[method]));
  }

  close() {
    this.channel.close();
  }
}

/**
 * The leading tab's coordinator as seen from a following tab: the same methods, each
 * sent over `follower`. Vectors that are views into larger buffers are copied first,
 * as a message would carry their whole buffer.
 */
export function remote(follower) {
  const compact = (rows) => ({ ...rows, vectors: rows.vectors.map((v) => v.slice()) });
  return Object.fromEntries(
    Object.entries(FORWARDED).map(([method, arity]) => [
      method,
      (...args) => {
        if (method === "upsert") args[1] = compact(args[1]);
        return follower.call(method, args.slice(0, arity));
      },
    ]),
  );
}

/** A following tab's side: sends calls to the leading tab, again if a new one leads. */
export class Follower {
  #pending = new Map();
  #next = 1;
  #from = tabId();

  constructor(name) {
    this.channel = new BroadcastChannel(`quiver-db:${name}`);
    this.channel.onmessage = ({ data }) => {
      if (data.type === "leader") {
        for (const p of this.#pending.values()) this.channel.postMessage(p.message);
      } else if (data.type === "reply" && data.to === this.#from) {
        const p = this.#pending.get(data.id);
        if (!p) return;
        this.#pending.delete(data.id);
        if (data.ok) p.resolve(data.value);
        else p.reject(new QuiverError(data.code, data.message));
      }
    };
  }

  /** Calls coordinator method `method` in the leading tab. */
  call(method, args = []) {
    const message = { type: "call", from: this.#from, id: this.#next++, method, args };
    return new Promise((resolve, reject) => {
      this.#pending.set(message.id, { message, resolve, reject });
      this.channel.postMessage(message);
    });
  }

  /** Calls still unanswered, for this tab to run itself once it leads. */
  takePending() {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    return pending;
  }

  close() {
    this.channel.close();
    for (const p of this.#pending.values()) p.reject(new QuiverError("CLOSED", "the database was closed"));
    this.#pending.clear();
  }
}
