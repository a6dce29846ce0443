// For tests, in the page: the datasets they search. Everything here is in the
// repository or generated, so a fresh clone tests with nothing beside it.

/** Real MiniLM embeddings of code (tests/fixtures/minilm-2k): 2,000 rows, 64 queries. */
export async function minilm() {
  const f32 = async (f) => new Float32Array(await (await fetch(`/tests/fixtures/minilm-2k/${f}`)).arrayBuffer());
  const [base, queries] = await Promise.all([f32("base.f32"), f32("queries.f32")]);
  return { dim: 384, base, queries, n: base.length / 384 };
}

/**
 * Synthetic, deterministic: `n` unit vectors of `dim` dimensions around 64 random
 * centres (Gaussian spread), so that neighbours are clustered as embeddings are
 * rather than uniformly far apart. For tests that need more rows than the fixture.
 */
export function clustered(n, dim, seed = 1) {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    // xorshift32: fast, and the same sequence in every engine.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const centres = Float32Array.from({ length: 64 * dim }, gauss);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(uniform() * 64) * dim;
    const row = out.subarray(i * dim, (i + 1) * dim);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      row[d] = centres[c + d] + 0.6 * gauss();
      norm += row[d] * row[d];
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) row[d] /= norm;
  }
  return out;
}
