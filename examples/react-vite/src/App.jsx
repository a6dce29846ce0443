// A React component that keeps a quiver database open while it is mounted, fills a
// collection and searches it as the user picks a query. No plugin and no config:
// Vite finds quiver's wasm and worker through `new URL(..., import.meta.url)`.
import { useEffect, useState } from "react";
import { open, QuiverError } from "quiver";

const NOTES = [
  { id: "parse", vector: [1, 0, 0, 0], metadata: { lang: "rust", title: "parse the config file" } },
  { id: "print", vector: [0, 1, 0, 0], metadata: { lang: "js", title: "print a report" } },
  { id: "lex", vector: [0.9, 0.1, 0, 0], metadata: { lang: "rust", title: "split input into tokens" } },
  { id: "draw", vector: [0, 0.2, 0.9, 0], metadata: { lang: "js", title: "draw the chart" } },
];

const QUERIES = {
  "reading input": [1, 0, 0, 0],
  "output to the screen": [0, 0.6, 0.6, 0],
};

/** Opens the database once for the component's life and closes it on unmount. */
function useCollection(build) {
  const [col, setCol] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let db = null;
    let live = true;
    (async () => {
      db = await open({ name: `react-${build}`, build });
      const c = await db.collection("notes", { dim: 4, metric: "cosine" });
      await c.upsert(NOTES);
      if (live) setCol({ c, build: db.build });
    })().catch((e) => live && setError(e));
    return () => {
      live = false;
      db?.close();
    };
  }, [build]);
  return { col, error };
}

export function Search({ build }) {
  const { col, error } = useCollection(build);
  const [query, setQuery] = useState("reading input");
  const [rustOnly, setRustOnly] = useState(true);
  const [hits, setHits] = useState(null);
  const [refusal, setRefusal] = useState(null);

  useEffect(() => {
    if (!col) return;
    let live = true;
    const filter = rustOnly ? { lang: "rust" } : undefined;
    col.c.search(QUERIES[query], { k: 2, filter }).then((h) => live && setHits(h));
    // A wrong dimension is refused with a typed error, and changes nothing.
    col.c.search([1, 0], { k: 1 }).catch((e) => live && setRefusal(e instanceof QuiverError ? e.code : String(e)));
    return () => {
      live = false;
    };
  }, [col, query, rustOnly]);

  if (error) return <p className="error">{String(error)}</p>;
  if (!col || !hits) return <p>opening…</p>;
  return (
    <section data-build={col.build}>
      <h2>{col.build}</h2>
      <select value={query} onChange={(e) => setQuery(e.target.value)}>
        {Object.keys(QUERIES).map((q) => (
          <option key={q}>{q}</option>
        ))}
      </select>
      <label>
        <input type="checkbox" checked={rustOnly} onChange={(e) => setRustOnly(e.target.checked)} /> Rust only
      </label>
      <ol className="hits">
        {hits.map((h) => (
          <li key={h.id} data-id={h.id}>
            {h.metadata.title} <small>{h.score.toFixed(3)}</small>
          </li>
        ))}
      </ol>
      <p className="refusal">{refusal}</p>
    </section>
  );
}

export function App() {
  return (
    <main>
      <h1>quiver in React</h1>
      <Search build="simd128" />
      <Search build="scalar" />
    </main>
  );
}
