// Checks of what callers pass to the public API, in one place: each failure is a
// QuiverError whose message names the field, thrown before anything is sent to a
// worker, so bad input changes nothing.
import { QuiverError } from "./errors.js";
import { INDEXES, QUANTIZATIONS, limits } from "./protocol.js";

export const invalid = (message) => new QuiverError("INVALID_ARGUMENT", message);

/** Shows a value in an error message, including what JSON.stringify cannot. */
const show = (v) => {
  if (typeof v === "number" || typeof v === "bigint" || v === undefined) return String(v);
  if (typeof v === "symbol" || typeof v === "function") return `a ${typeof v}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

export function checkName(name, field) {
  if (typeof name !== "string" || name.length === 0) throw invalid(`${field}: must be a non-empty string`);
}

/** `value` one of `allowed`, else INVALID_ARGUMENT naming `field` and the choices. */
function checkOneOf(value, field, allowed) {
  if (!allowed.includes(value)) throw invalid(`${field}: must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${show(value)}`);
}

/** One of the index kinds (protocol.js INDEXES). */
export const checkIndex = (index) => checkOneOf(index, "index", INDEXES);

/** One of the quantizations (protocol.js QUANTIZATIONS). */
export const checkQuantization = (quantization) => checkOneOf(quantization, "quantization", QUANTIZATIONS);

/** An integer from `min` to `max`, else INVALID_ARGUMENT naming `field` and the value. */
export function checkInteger(value, field, min, max) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${field}: must be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}

/** A vector as a Float32Array: typed arrays are converted, arrays must hold numbers. */
export function toVector(v, field) {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== "number") throw new QuiverError("INVALID_VECTOR", `${field}[${i}] must be a number`);
    }
    return Float32Array.from(v);
  }
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
    return Float32Array.from(v);
  }
  throw new QuiverError("INVALID_VECTOR", `${field} must be a Float32Array or an array of numbers`);
}

/**
 * Where `value` holds something JSON cannot carry exactly: the path of the first such
 * part and what it is, or null when it is all plain objects, arrays, strings, finite
 * numbers, booleans and nulls. JSON.stringify would drop or change the rest without
 * a word (a function or undefined vanishes, a Map becomes {}, NaN becomes null).
 */
function notJson(value, path, parents) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : { path, what: String(value) };
    case "object": {
      if (value === null) return null;
      if (parents.has(value)) return { path, what: "a reference to itself (a cycle)" };
      const proto = Object.getPrototypeOf(value);
      const array = Array.isArray(value);
      if (!array && proto !== Object.prototype && proto !== null) {
        return { path, what: `a ${proto?.constructor?.name ?? "class instance"}` };
      }
      if (Object.getOwnPropertySymbols(value).length > 0) return { path, what: "an object with symbol keys" };
      parents.add(value);
      try {
        if (array) {
          for (let i = 0; i < value.length; i++) {
            const bad = i in value ? notJson(value[i], `${path}[${i}]`, parents) : { path: `${path}[${i}]`, what: "a hole" };
            if (bad) return bad;
          }
        } else {
          for (const key of Object.keys(value)) {
            const bad = notJson(value[key], `${path}.${key}`, parents);
            if (bad) return bad;
          }
        }
      } finally {
        parents.delete(value);
      }
      return null;
    }
    default:
      return { path, what: typeof value === "undefined" ? "undefined" : `a ${typeof value}` };
  }
}

/** `value` as JSON text, or `code` naming the path of the part JSON cannot carry. */
function jsonText(value, code, field) {
  const bad = notJson(value, field, new Set());
  if (bad)
    throw new QuiverError(code, `${bad.path} is ${bad.what}, which JSON cannot carry (only plain objects, arrays, strings, finite numbers, booleans and null)`);
  return JSON.stringify(value);
}

/** A record's metadata as JSON text ("null" for none): a plain object, all JSON. */
export function metadataText(m, i) {
  if (m === undefined || m === null) return "null";
  const field = `records[${i}].metadata`;
  if (typeof m !== "object" || Array.isArray(m)) throw new QuiverError("INVALID_METADATA", `${field} must be a JSON object, got ${show(m)}`);
  return jsonText(m, "INVALID_METADATA", field);
}

/** A filter as JSON text ("null" for none), checked for what JSON cannot carry. */
function filterText(filter) {
  if (filter === undefined || filter === null) return "null";
  if (typeof filter !== "object" || Array.isArray(filter)) throw invalid(`filter: must be an object, got ${show(filter)}`);
  return jsonText(filter, "INVALID_ARGUMENT", "filter");
}

/** An object of options named `field` ({} when not given). */
function optionObject(value, field) {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalid(`${field}: must be an object, got ${show(value)}`);
  return value;
}

/** A number from 0 to 1. */
function checkUnit(value, field) {
  if (!(typeof value === "number" && value >= 0 && value <= 1)) throw invalid(`${field}: must be a number from 0 to 1, got ${show(value)}`);
  return value;
}

/** The words of a keyword search: a string holding more than whitespace. */
export function checkWords(text, field) {
  if (typeof text !== "string" || text.trim() === "") throw invalid(`${field}: must be a string holding a word to search for, got ${show(text)}`);
  return text;
}

/** How many candidates a re-ranking search fetches: `k` or more, 4k when not given. */
function fetchK(value, k, field) {
  if (value === undefined) return Math.min(4 * k, limits.maxFetchK);
  if (Number.isInteger(value) && value < k) throw invalid(`${field}: must be at least k (${k}), got ${value}`);
  return checkInteger(value, field, k, limits.maxFetchK);
}

/**
 * Search options as the core reads them (JSON text `text`), checked for what JSON
 * cannot carry. With words to match (`text`, tuned by `hybrid`), also `hybrid`: what
 * each owner is asked (`vector` and `keyword` options, `fetchK` of each) and how the
 * two rankings are fused; with `mmr`, what its candidates are fetched with and picked by.
 */
export function searchOptions(options) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { k = 10, filter, threshold, ef, fetch, text, hybrid, mmr } = options;
  checkInteger(k, "k", 1, limits.maxK);
  if (ef !== undefined) checkInteger(ef, "ef", 1, limits.maxEf);
  if (fetch !== undefined) checkInteger(fetch, "fetch", 1, limits.maxFetchK);
  if (threshold !== undefined && !(typeof threshold === "number" && Number.isFinite(threshold))) {
    throw invalid(`threshold: must be a finite number, got ${show(threshold)}`);
  }
  const where = filterText(filter);
  const core = (n) => `{"k":${n},"filter":${where},"threshold":${threshold ?? null},"ef":${ef ?? null},"fetch":${fetch ?? null}}`;
  const out = { k, text: core(k) };
  if (text !== undefined || hybrid !== undefined) {
    if (mmr !== undefined) throw invalid("mmr: cannot be combined with text or hybrid: a search is either hybrid or diversified by MMR");
    checkWords(text, "text");
    const { weight = 0.5, k: rrfK = 60, fetchK: n } = optionObject(hybrid, "hybrid");
    checkUnit(weight, "hybrid.weight");
    checkInteger(rrfK, "hybrid.k", 1, limits.maxK);
    const fetched = fetchK(n, k, "hybrid.fetchK");
    out.hybrid = { words: text, weight, rrfK, fetchK: fetched, vector: core(fetched), keyword: `{"k":${fetched},"filter":${where}}` };
  }
  if (mmr !== undefined) {
    const { lambda = 0.5, fetchK: n } = optionObject(mmr, "mmr");
    checkUnit(lambda, "mmr.lambda");
    const fetched = fetchK(n, k, "mmr.fetchK");
    out.mmr = { lambda, fetchK: fetched, candidates: core(fetched) };
  }
  return out;
}

/** Search options for a call that takes neither words nor MMR (`call` names it). */
export function plainSearchOptions(options, call) {
  const opts = searchOptions(options);
  const extra = ["text", "hybrid", "mmr"].find((key) => options[key] !== undefined);
  if (extra) throw invalid(`${extra}: ${call} does not take it; col.search does`);
  return opts;
}

/** Options of a keyword search, `{k, filter}`, as the core reads them (JSON `text`). */
export function textOptions(options) {
  if (options === null || typeof options !== "object") throw invalid("options: must be an object");
  const { k = 10, filter } = options;
  checkInteger(k, "k", 1, limits.maxK);
  return { k, text: `{"k":${k},"filter":${filterText(filter)}}` };
}

/** A search's `signal` and `timeout`, checked. */
export function checkCancel(signal, timeout) {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid("signal: must be an AbortSignal");
  if (timeout !== undefined && !(typeof timeout === "number" && timeout > 0 && timeout <= limits.maxTimeoutMs)) {
    throw invalid(`timeout: must be a number of milliseconds above 0 and at most ${limits.maxTimeoutMs}, got ${show(timeout)}`);
  }
}

const TRANSPORTS = ["auto", "webtransport", "websocket"];

/**
 * A sync session's options, checked: `{url, websocketUrl, room, token,
 * serverCertificateHashes, transport}`. Without `websocketUrl` the WebSocket goes to
 * `url`'s host and port (the relay serves both transports on one port number, UDP and
 * TCP); without `url`, only the WebSocket is tried.
 */
export function syncOptions(options) {
  const o = optionObject(options, "options");
  const { url, websocketUrl, room, token, serverCertificateHashes, transport = "auto" } = o;
  const parse = (value, field, schemes) => {
    let u;
    try {
      u = new URL(value);
    } catch {
      throw invalid(`${field}: must be an absolute URL, got ${JSON.stringify(value)}`);
    }
    if (!schemes.includes(u.protocol)) throw invalid(`${field}: must start with ${schemes.join(" or ")}, got ${JSON.stringify(value)}`);
    return u;
  };
  if (url === undefined && websocketUrl === undefined) throw invalid("url: a relay's https:// address (or websocketUrl) is needed");
  const wt = url === undefined ? null : parse(url, "url", ["https:"]);
  let ws = websocketUrl === undefined ? null : parse(websocketUrl, "websocketUrl", ["ws:", "wss:"]);
  if (!ws) {
    ws = new URL(wt);
    ws.protocol = globalThis.location?.protocol === "https:" ? "wss:" : "ws:";
  }
  if (typeof room !== "string" || room.length === 0 || new TextEncoder().encode(room).length > 128) {
    throw invalid(`room: must be a non-empty string of at most 128 bytes, got ${JSON.stringify(room)}`);
  }
  if (typeof token !== "string" || token.length > 512) throw invalid("token: must be a string of at most 512 bytes");
  if (serverCertificateHashes !== undefined) {
    if (!Array.isArray(serverCertificateHashes)) throw invalid("serverCertificateHashes: must be an array of {algorithm, value}");
    serverCertificateHashes.forEach((h, i) => {
      if (h?.algorithm !== "sha-256" || !(ArrayBuffer.isView(h.value) || h.value instanceof ArrayBuffer)) {
        throw invalid(`serverCertificateHashes[${i}]: must be {algorithm: "sha-256", value: the hash's bytes}`);
      }
    });
  }
  checkOneOf(transport, "transport", TRANSPORTS);
  if (transport === "webtransport" && !wt) throw invalid('url: transport "webtransport" needs a url');
  return { url: wt?.href, websocketUrl: ws.href, room, token, serverCertificateHashes, transport };
}
