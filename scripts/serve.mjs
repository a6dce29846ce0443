// A static file server for the demo, the tests and the benchmarks. Serves the repo
// root on 127.0.0.1 with the COOP/COEP headers that make SharedArrayBuffer available
// (pass isolate: false to serve without them).
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".jsonl": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".f32": "application/octet-stream",
  ".i32": "application/octet-stream",
};

/**
 * Starts a server for `root`; `routes` maps URL prefixes to other directories;
 * `onServed(path, bytes)` hears of each file sent.
 */
export function serve({ root, port = 0, isolate = true, routes = {}, onServed = () => {} }) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const prefix = Object.keys(routes).find((p) => path.startsWith(p));
    const base = prefix ? routes[prefix] : root;
    const rel = normalize(prefix ? path.slice(prefix.length) : path).replace(/^(\.\.[/\\])+/, "");
    let file = join(base, rel);
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      const headers = { "Content-Type": types[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" };
      if (isolate) {
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers["Cross-Origin-Embedder-Policy"] = "require-corp";
      }
      res.writeHead(200, headers).end(body);
      onServed(path, body.length);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const port = Number(process.env.PORT ?? 8080);
  const { url } = await serve({ root, port });
  console.log(`quiver: serving the repository at ${url}/ (examples/plain/, tests/pages/)  (Ctrl+C to stop)`);
}
