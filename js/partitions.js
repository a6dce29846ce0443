// Which worker owns a record, and how per-worker results become one answer.

/** FNV-1a over the id's UTF-16 code units: a cheap, stable spread of ids over workers. */
export function owner(id, workers) {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

/**
 * Orders ids as the core does, by their UTF-8 bytes. That is code-point order, which
 * differs from JS's code-unit order only where a surrogate pair meets U+E000..U+FFFF.
 */
export function compareIds(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x += x < 0xe000 ? 0x2000 : -0x800;
      y += y < 0xe000 ? 0x2000 : -0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The best `k` of several result lists (each best first), best first, ties broken by
 * id as a single worker breaks them, so the answer does not depend on the partitioning.
 */
export function mergeTopK(lists, k, higherIsCloser) {
  if (lists.length === 1) return lists[0];
  const all = lists.flat();
  const sign = higherIsCloser ? -1 : 1;
  all.sort((a, b) => sign * (a.score - b.score) || compareIds(a.id, b.id));
  return all.length > k ? all.slice(0, k) : all;
}

/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher 2009) of a vector ranking and a
 * keyword ranking, each best first over the whole collection: a record scores
 * `weight / (rrfK + its vector rank) + (1 - weight) / (rrfK + its keyword rank)`, ranks
 * from 1, a ranking it is missing from adding nothing. The best `k`, best first, ties
 * by id; each hit's `score` is its fused score.
 */
export function fuseRanks(byVector, byText, { k, weight, rrfK }) {
  const fused = new Map();
  const add = (list, w) =>
    list.forEach((hit, i) => {
      const entry = fused.get(hit.id) ?? { id: hit.id, score: 0, metadata: hit.metadata };
      entry.score += w / (rrfK + i + 1);
      fused.set(hit.id, entry);
    });
  add(byVector, weight);
  add(byText, 1 - weight);
  const all = [...fused.values()];
  all.sort((a, b) => b.score - a.score || compareIds(a.id, b.id));
  return all.slice(0, k);
}
