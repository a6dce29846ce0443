// Several tabs, one persistent database: the tab holding the database's Web Lock runs
// the workers and writes; the others send it their calls over a BroadcastChannel, and
// one of them takes over when it goes. OPFS files are held by one worker of one tab at
// a time, so this is what keeps a second tab from failing on them, or corrupting them.
import { QuiverError } from "./errors.js";

const tabId = () => (crypto.randomUUID?.() ?? String(Math.random()).slice(2));

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

/** The leading tab's side: answers other tabs' calls with `dispatch(target, method, args)`. */
export class Leader {
  constructor(name, dispatch) {
    this.channel = new BroadcastChannel(`quiver-db:${name}`);
    this.channel.onmessage = async ({ data }) => {
      if (data.type !== "call") return;
      let reply;
      try {
        reply = { ok: true, value: await dispatch(data.target, data.method, data.args) };
      } catch (e) {
        reply = { ok: false, code: e.code ?? "INTERNAL", message: String(e.message ?? e) };
      }
      this.channel.postMessage({ type: "reply", to: data.from, id: data.id, ...reply });
    };
    // Tabs waiting on a tab that has gone send their calls again to this one.
    this.channel.postMessage({ type: "leader" });
  }

  close() {
    this.channel.close();
  }
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

  /** Calls `method` on the leader's database ("db") or collection ({collection}). */
  call(target, method, args = []) {
    const message = { type: "call", from: this.#from, id: this.#next++, target, method, args };
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
