// Compiled with `tsc --noEmit` by tests/types.test.mjs: the shipped types accept the
// README's usage and reject misuse (each @ts-expect-error must be an error).
import { open, QuiverError, limits, type CollectionStats, type Hit, type Quantization, type ShardHit, type ShardInfo, type StoredRecord } from "quiver";

const db = await open({ name: "notes", build: "auto", storage: "opfs", workers: 2, partitionThreshold: 8192 });
const storage: "memory" | "opfs" | "idb" = db.storage;
const build: "simd128" | "scalar" = db.build;
const workers: number = db.workers;
const site: string = db.site;
const maxK: number = limits.maxK;
const col = await db.collection("code", { dim: 3, metric: "cosine" });
const ids: string[] = await col.upsert([
  { id: "parse", vector: [0.9, 0.1, 0], metadata: { lang: "rust", stars: 3 }, text: "fn parse()" },
  { vector: new Float32Array(3) },
]);
const hits: Hit[] = await col.search([1, 0, 0], { k: 5, filter: { lang: { $in: ["rust"] }, $or: [{ stars: { $gt: 2 } }] } });
const nested: Hit[] = await col.search([1, 0, 0], {
  filter: { "repo.lang": "rust", license: { $exists: false }, $or: [{ price: { $not: { $gt: 5, $exists: true } } }] },
});
const byWords: Hit[] = await col.searchText("parse_json", { k: 5, filter: { lang: "rust" }, timeout: 100 });
const hybrid: Hit[] = await col.search([1, 0, 0], { k: 5, text: "parse json", hybrid: { weight: 0.7, k: 60, fetchK: 40 } });
const fused: Hit[] = await col.search([1, 0, 0], { text: "parse" });
const diverse: Hit[] = await col.search([1, 0, 0], { k: 5, mmr: { lambda: 0.3, fetchK: 50 }, filter: { lang: "rust" } });
const maxFetchK: number = limits.maxFetchK;
// @ts-expect-error hybrid needs text
await col.search([1, 0, 0], { hybrid: { weight: 0.5 } });
// @ts-expect-error mmr and text do not go together
await col.search([1, 0, 0], { text: "parse", mmr: {} });
// @ts-expect-error searchText takes words, not a vector
await col.searchText([1, 0, 0]);
// @ts-expect-error lambda is a number
await col.search([1, 0, 0], { mmr: { lambda: "high" } });
console.log(byWords, hybrid, fused, diverse, maxFetchK);
const ctl = new AbortController();
const lists: Hit[][] = await col.searchMany([[1, 0, 0], new Float32Array(3)], { k: 2, signal: ctl.signal, timeout: 50 });
const one: StoredRecord | null = await col.get("parse");
const many: (StoredRecord | null)[] = await col.get(["parse", "x"]);
const n: number = (await col.delete("parse")) + (await col.count());
const small = await db.collection("small", { dim: 384, quantization: "int8" });
const quantization: Quantization = small.quantization;
const quantized: Hit[] = await small.search(new Float32Array(384), { k: 10, fetch: 100 });
const stats: CollectionStats = await small.stats();
const smaller: number = stats.vectorBytes / stats.codeBytes;
const agent = await db.shard("agent-7", { dim: 3 });
await agent.upsert({ vector: [1, 0, 0] });
const listed: ShardInfo[] = await db.shards();
const across: ShardHit[] = await db.search(["agent-7", "code"], [1, 0, 0], { k: 3 });
const shardOf: string = across[0].shard;
await db.dropShard("agent-7");
const fallback = await open({ name: "anywhere", storage: "auto" });
try {
  await col.search([1, 2]);
} catch (e) {
  if (e instanceof QuiverError && (e.code === "DIMENSION_MISMATCH" || e.code === "TIMEOUT")) console.log(e.message);
}
// @ts-expect-error metric must be one of the three
await db.collection("x", { dim: 3, metric: "manhattan" });
// @ts-expect-error a record needs a vector
await col.upsert([{ id: "a" }]);
// @ts-expect-error k is a number
await col.search([1, 0, 0], { k: "5" });
// @ts-expect-error $exists takes a boolean
await col.search([1, 0, 0], { filter: { lang: { $exists: "yes" } } });
// @ts-expect-error $not takes an operator object
await col.search([1, 0, 0], { filter: { price: { $not: 5 } } });
// @ts-expect-error searchMany takes a list of vectors
await col.searchMany([1, 0, 0]);
// @ts-expect-error search over shards takes a list of shard ids
await db.search("agent-7", [1, 0, 0]);
// @ts-expect-error quantization is "none", "int8" or "binary"
await db.collection("x", { dim: 3, quantization: "pq" });
// @ts-expect-error fetch is a number
await col.search([1, 0, 0], { fetch: "40" });
// @ts-expect-error storage is "memory", "opfs", "idb" or "auto"
await open({ storage: "disk" });
console.log(build, storage, workers, site, maxK, ids, hits, nested, lists, one, many, n, listed, shardOf, fallback.storage, quantization, quantized, smaller);
await db.close();
