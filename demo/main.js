// The playground: insert n random vectors with a progress bar, then search them and
// see how long it took. Everything runs in the quiver worker; this page only draws.
import { open } from "../js/index.js";

const $ = (id) => document.getElementById(id);
let db = null;
let col = null;

function randomVector(dim) {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.random() * 2 - 1;
  return v;
}

function fail(where, e) {
  where.innerHTML = "";
  const span = document.createElement("span");
  span.className = "error";
  span.textContent = `${e.code ?? "ERROR"}: ${e.message}`;
  where.append(span);
}

$("insert").onclick = async () => {
  const n = Number($("n").value);
  const dim = Number($("dim").value);
  $("insert").disabled = $("search").disabled = true;
  try {
    await db?.close();
    db = await open({ name: "playground", build: $("build").value, workers: Number($("workers").value) });
    col = await db.collection("random", { dim, metric: $("metric").value });
    const t0 = performance.now();
    for (let start = 0; start < n; start += 1000) {
      const batch = [];
      for (let i = start; i < Math.min(n, start + 1000); i++) {
        batch.push({ id: `v${i}`, vector: randomVector(dim), metadata: { bucket: i % 4 } });
      }
      await col.upsert(batch);
      $("progress").value = Math.min(n, start + 1000) / n;
      $("insert-stat").textContent = `${Math.min(n, start + 1000).toLocaleString()} / ${n.toLocaleString()} vectors`;
    }
    const s = (performance.now() - t0) / 1000;
    $("insert-stat").textContent =
      `${(await col.count()).toLocaleString()} vectors of ${dim} dimensions in ${s.toFixed(2)} s ` +
      `(${Math.round(n / s).toLocaleString()} vectors/s), ${db.build} build.`;
    $("search").disabled = false;
  } catch (e) {
    fail($("insert-stat"), e);
  } finally {
    $("insert").disabled = false;
  }
};

$("search").onclick = async () => {
  try {
    const filter = $("filter").value === "even" ? { bucket: { $in: [0, 2] } } : undefined;
    const query = randomVector(col.dim);
    const t0 = performance.now();
    const hits = await col.search(query, { k: Number($("k").value), filter });
    const ms = performance.now() - t0;
    $("search-stat").textContent =
      `${hits.length} results in ${ms.toFixed(2)} ms (exact search over ${(await col.count()).toLocaleString()} vectors, ${db.build}, ${db.workers} worker${db.workers > 1 ? "s" : ""}).`;
    const body = $("results").querySelector("tbody");
    body.replaceChildren(
      ...hits.map((h, i) => {
        const tr = document.createElement("tr");
        for (const text of [i + 1, h.id, h.score.toFixed(4), JSON.stringify(h.metadata)]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }),
    );
    $("results").hidden = false;
  } catch (e) {
    fail($("search-stat"), e);
  }
};
