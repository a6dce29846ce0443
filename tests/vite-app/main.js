// What a Vite user writes after `npm install quiver`: no plugin, no config.
import { open, QuiverError } from "quiver";

async function run(build) {
  const db = await open({ name: `vite-${build}`, build });
  const col = await db.collection("code", { dim: 4, metric: "cosine" });
  await col.upsert([
    { id: "parse", vector: [1, 0, 0, 0], metadata: { lang: "rust" } },
    { id: "print", vector: [0, 1, 0, 0], metadata: { lang: "js" } },
    { id: "lex", vector: [0.9, 0.1, 0, 0], metadata: { lang: "rust" } },
  ]);
  const hits = await col.search([1, 0, 0, 0], { k: 2, filter: { lang: "rust" } });
  let error = null;
  try {
    await col.search([1, 0], { k: 1 });
  } catch (e) {
    error = e instanceof QuiverError ? e.code : String(e);
  }
  const out = { build: db.build, hits: hits.map((h) => h.id), error };
  await db.close();
  return out;
}

window.result = Promise.all([run("simd128"), run("scalar")]).catch((e) => ({ failed: String(e) }));
