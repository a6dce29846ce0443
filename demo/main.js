// The code-search demo: embeds code with all-MiniLM-L6-v2 in quiver's embed workers,
// keeps the chunks in a quiver collection in OPFS, and searches them as you type.
// On a first visit it indexes quiver's own sources (sample.json, made at build time);
// "Open a folder" indexes yours instead. This file only draws and wires events.
import { open } from "../js/index.js";
import { loadEmbedder } from "../js/embed.js";
import { folderOf, index } from "./indexer.js";
import { languageOf } from "./chunker.js";
import { decode, fromHandle, fromInput } from "./files.js";

const $ = (id) => document.getElementById(id);
/** What was indexed, kept beside the collection so a reload knows it is done. */
const MANIFEST = "quiver-demo:manifest";
const K = 10;

const state = { db: null, col: null, embedder: null, manifest: null, indexedThisVisit: 0, busy: null };

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

const fail = (e) => status(`${e.code ?? "Error"}: ${e.message}`, true);

async function start() {
  const embedderReady = loadEmbedder({
    onProgress: ({ loaded, total }) => total && status(`Loading the embedding model… ${Math.round((100 * loaded) / total)}%`),
  });
  state.db = await open({ name: "quiver-demo", storage: "auto" });
  state.col = await state.db.collection("code", { dim: 384, metric: "cosine", index: "auto" });
  state.embedder = await embedderReady;
  // Searching works while a first visit indexes: over what is in so far.
  $("q").disabled = false;
  state.manifest = JSON.parse(localStorage.getItem(MANIFEST) ?? "null");
  const count = await state.col.count();
  if (!state.manifest || state.manifest.chunks !== count) await indexFiles("sample", await sampleFiles());
  ready();
}

/** quiver's own sources, bundled into the page at build time. */
async function sampleFiles() {
  // Beside the page (the build puts it there, the dev server serves it there).
  const res = await fetch(new URL("sample.json", document.baseURI));
  return (await res.json()).files;
}

async function readFiles(found) {
  const files = [];
  for (const { path, file } of found) {
    const text = decode(new Uint8Array(await file.arrayBuffer()));
    if (text !== null && text.trim()) files.push({ path, text });
  }
  return files;
}

/** Replaces the index with `files`, showing progress. */
async function indexFiles(source, files) {
  setBusy(true);
  $("progress").hidden = false;
  status(`Indexing ${files.length} files…`);
  try {
    localStorage.removeItem(MANIFEST);
    await state.db.dropCollection("code");
    state.col = await state.db.collection("code", { dim: 384, metric: "cosine", index: "auto" });
    const done = await index(files, {
      col: state.col,
      embedder: state.embedder,
      onProgress: ({ files: nf, filesDone, chunks, chunksDone, perSecond, secondsLeft }) => {
        $("bar").value = chunks ? chunksDone / chunks : 0;
        $("progress-text").textContent =
          `files ${filesDone}/${nf} · chunks ${chunksDone}/${chunks} · ${perSecond.toFixed(1)} chunks/s` +
          (secondsLeft === null ? "" : ` · ${Math.ceil(secondsLeft)} s left`);
      },
    });
    const count = (key) => {
      const counts = {};
      for (const f of files) counts[key(f)] = (counts[key(f)] ?? 0) + 1;
      return counts;
    };
    const langs = count((f) => languageOf(f.path));
    const dirs = count((f) => folderOf(f.path));
    state.manifest = { source, files: done.files, chunks: done.chunks, seconds: done.seconds, langs, dirs, at: Date.now() };
    localStorage.setItem(MANIFEST, JSON.stringify(state.manifest));
    state.indexedThisVisit += done.chunks;
  } finally {
    $("progress").hidden = true;
    setBusy(false);
  }
}

function setBusy(busy) {
  for (const id of ["open", "reindex", "forget"]) $(id).disabled = busy;
}

async function ready() {
  const m = state.manifest;
  const stats = await state.col.stats();
  const how = state.indexedThisVisit ? `indexed in ${m.seconds.toFixed(1)} s` : "loaded from storage";
  status(
    `${m.chunks} chunks from ${m.files} files (${m.source === "sample" ? "quiver's own sources" : m.source}), ${how} · ` +
      `${state.db.storage} · ${state.db.build} · index ${state.col.index} · ${(stats.vectorBytes / 2 ** 20).toFixed(1)} MiB of vectors`,
  );
  $("source").textContent = "";
  fillFilters();
  $("q").disabled = false;
  $("q").focus();
  setBusy(false);
  if ($("q").value) void run();
}

/** The languages and top folders of what is indexed, with their file counts. */
function fillFilters() {
  const fill = (select, counts) => {
    select.length = 1;
    for (const [value, n] of Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1])) select.add(new Option(`${value} (${n})`, value));
  };
  fill($("lang"), state.manifest.langs);
  fill($("dir"), state.manifest.dirs);
}

/** The filter the selects describe, or undefined. */
function currentFilter() {
  const filter = {};
  if ($("lang").value) filter.lang = $("lang").value;
  if ($("dir").value) filter.folder = $("dir").value;
  return Object.keys(filter).length ? filter : undefined;
}

/** Searches for `q`: by meaning, or by meaning and keywords fused. */
async function search(q, { keywords = $("keywords").checked, filter = currentFilter(), k = K } = {}) {
  const t0 = performance.now();
  const [vector] = await state.embedder.embed([q]);
  const t1 = performance.now();
  const hasWord = /[\p{L}\p{N}]/u.test(q);
  const hits = await state.col.search(vector, { k, filter, ...(keywords && hasWord ? { text: q } : {}) });
  const t2 = performance.now();
  return { hits, embedMs: t1 - t0, searchMs: t2 - t1 };
}

let latest = 0;
async function run() {
  const q = $("q").value.trim();
  const mine = ++latest;
  if (!q) {
    $("results").replaceChildren();
    $("timing").textContent = "";
    return;
  }
  try {
    const { hits, embedMs, searchMs } = await search(q);
    if (mine !== latest) return;
    const records = await state.col.get(hits.map((h) => h.id));
    if (mine !== latest) return;
    $("timing").textContent = `embed ${embedMs.toFixed(0)} ms · search ${searchMs.toFixed(1)} ms`;
    $("results").replaceChildren(...hits.map((h, i) => result(h, records[i], q)));
  } catch (e) {
    if (mine === latest) fail(e);
  }
}

const words = (q) => [...new Set(q.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) ?? [])];

/** Escapes `text` and marks the query's words in it. */
function highlight(text, q) {
  const escaped = text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const ws = words(q).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return ws.length ? escaped.replace(new RegExp(`(${ws.join("|")})`, "giu"), "<mark>$1</mark>") : escaped;
}

/** Numbered lines of `text` starting at `first`, with class `cls`. */
function lines(text, first, q, cls) {
  return text
    .split("\n")
    .map((l, i) => `<span class="${cls}"><span class="n">${first + i}</span>${highlight(l, q) || " "}</span>`)
    .join("");
}

const SNIPPET_LINES = 12;

function result(hit, record, q) {
  const m = hit.metadata;
  const li = document.createElement("li");
  li.dataset.id = hit.id;
  const head = document.createElement("div");
  head.className = "head";
  head.innerHTML = `<span class="path"></span><span class="title"></span><span class="score">${hit.score.toFixed(3)}</span>`;
  head.querySelector(".path").textContent = `${m.path}:${m.start}–${m.end}`;
  head.querySelector(".title").textContent = m.title ?? "";
  const pre = document.createElement("pre");
  const text = record?.text ?? "";
  const short = text.split("\n").slice(0, SNIPPET_LINES).join("\n");
  pre.innerHTML = lines(short, m.start, q, "hit");
  li.append(head, pre);
  let expanded = false;
  li.onclick = async () => {
    expanded = !expanded;
    if (!expanded) {
      pre.innerHTML = lines(short, m.start, q, "hit");
      return;
    }
    // In context: the chunks before and after this one in the file.
    const [prev, next] = await state.col.get([m.prev ?? "", m.next ?? ""].map((id) => id || hit.id));
    const parts = [];
    if (m.prev && prev)
      parts.push(
        lines(
          prev.text
            .split("\n")
            .slice(0, m.start - prev.metadata.start)
            .join("\n"),
          prev.metadata.start,
          "",
          "ctx",
        ),
      );
    parts.push(lines(text, m.start, q, "hit"));
    if (m.next && next)
      parts.push(
        lines(
          next.text
            .split("\n")
            .slice(Math.max(0, m.end + 1 - next.metadata.start))
            .join("\n"),
          Math.max(next.metadata.start, m.end + 1),
          "",
          "ctx",
        ),
      );
    pre.innerHTML = parts.join("");
  };
  return li;
}

let timer = 0;
$("q").addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(run, 60);
});
$("keywords").onchange = $("lang").onchange = $("dir").onchange = () => void run();

$("open").onclick = async () => {
  try {
    if (window.showDirectoryPicker) {
      const dir = await window.showDirectoryPicker();
      await indexFiles(dir.name, await readFiles(await fromHandle(dir)));
      await ready();
    } else {
      $("folder").click();
    }
  } catch (e) {
    if (e.name !== "AbortError") fail(e);
  }
};
$("folder").onchange = async () => {
  const files = $("folder").files;
  if (!files.length) return;
  try {
    const found = fromInput(files);
    const name = found[0]?.path.split("/")[0] ?? "folder";
    await indexFiles(name, await readFiles(found));
    await ready();
  } catch (e) {
    fail(e);
  }
};
$("reindex").onclick = async () => {
  if (state.manifest && state.manifest.source !== "sample") return $("open").onclick();
  try {
    await indexFiles("sample", await sampleFiles());
    await ready();
  } catch (e) {
    fail(e);
  }
};
$("forget").onclick = async () => {
  try {
    setBusy(true);
    await state.db.dropCollection("code");
    localStorage.removeItem(MANIFEST);
    state.col = await state.db.collection("code", { dim: 384, metric: "cosine", index: "auto" });
    state.manifest = null;
    $("results").replaceChildren();
    $("q").disabled = true;
    status("Forgotten: the index is gone from this browser. Open a folder, or re-index the sample.");
    $("reindex").disabled = $("open").disabled = false;
    $("forget").disabled = true;
  } catch (e) {
    fail(e);
  }
};

/** For the tests and the benchmark: the same search the box runs, and what happened. */
window.demo = {
  ready: start().then(
    () => true,
    (e) => {
      fail(e);
      throw e;
    },
  ),
  search: async (q, options) => (await search(q, options)).hits.map((h) => ({ path: h.metadata.path, start: h.metadata.start, score: h.score })),
  get indexedThisVisit() {
    return state.indexedThisVisit;
  },
  get manifest() {
    return state.manifest;
  },
};
