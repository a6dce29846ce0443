// The demo's chunker: cuts at definitions per language, never loses a line, and is
// not fooled by brackets inside strings, comments and char literals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chunk, languageOf, MAX_LINES } from "../demo/chunker.js";
import { wanted, decode } from "../demo/files.js";
import { root } from "./helpers.mjs";

/** Every non-blank line of `text` lies in some chunk, chunks go forward, none is empty. */
function assertCovers(path, text) {
  const lines = text.split("\n");
  const chunks = chunk(path, text);
  const covered = new Set();
  let last = 0;
  for (const c of chunks) {
    assert.ok(c.start >= 1 && c.end >= c.start && c.end <= lines.length, `${path}: ${JSON.stringify(c)}`);
    assert.ok(c.start > last || c.start >= last - 8, `${path}: chunks go back at ${c.start}`);
    last = c.start;
    for (let i = c.start; i <= c.end; i++) covered.add(i);
  }
  lines.forEach((l, i) => l.trim() && assert.ok(covered.has(i + 1), `${path}: line ${i + 1} in no chunk: ${l}`));
  return chunks;
}

const longBody = (indent, n) => Array.from({ length: n }, (_, i) => `${indent}let v${i} = ${i};`).join("\n");

test("a Rust impl too long for one chunk is cut at its methods, each titled", () => {
  const text = [
    "use std::fmt;",
    "",
    "/// A thing.",
    "#[derive(Debug)]",
    "pub struct Thing { a: u32 }",
    "",
    "impl Thing {",
    "    /// Makes one.",
    "    pub fn new() -> Self {",
    longBody("        ", 20),
    "        Thing { a: 0 }",
    "    }",
    "",
    "    fn braces(&self) -> char {",
    '        let s = "}}}{";',
    "        let c = '}';",
    '        let r = r#"{"#;',
    "        // } in a comment",
    "        /* { in a block */",
    longBody("        ", 15),
    "        c",
    "    }",
    "}",
    "",
    "fn after<'a>(x: &'a str) -> &'a str {",
    "    x",
    "}",
  ].join("\n");
  const chunks = assertCovers("src/thing.rs", text);
  const titles = chunks.map((c) => c.title);
  assert.ok(titles.includes("impl Thing › pub fn new() -> Self"), titles.join(" | "));
  assert.ok(titles.includes("impl Thing › fn braces(&self) -> char"), titles.join(" | "));
  const after = chunks.find((c) => c.title.startsWith("fn after"));
  assert.ok(after, `brackets in strings and chars must not hide fn after: ${titles.join(" | ")}`);
  assert.equal(text.split("\n")[after.end - 1], "}");
  // The doc comment and the attribute stay with their struct.
  const struct = chunks.find((c) => c.start <= 3 && c.end >= 5);
  assert.ok(struct, JSON.stringify(chunks));
});

test("JS and TS: functions, classes and their methods; template literals hold braces", () => {
  const text = [
    'import { a } from "./a.js";',
    "",
    "export function one(x) {",
    "  return `${x} } {`;",
    "}",
    "",
    "export class Two {",
    "  constructor() {",
    longBody("    ", 25),
    "  }",
    "",
    "  async three(y) {",
    longBody("    ", 25),
    "  }",
    "}",
    "",
    "const four = (z) => {",
    "  return z;",
    "};",
  ].join("\n");
  for (const path of ["x.js", "x.ts"]) {
    const chunks = assertCovers(path, text);
    const titles = chunks.map((c) => c.title).join(" | ");
    assert.match(titles, /export class Two › constructor\(\)/);
    assert.match(titles, /export class Two › async three\(y\)/);
    assert.match(titles, /const four = \(z\) =>/);
  }
});

test("Python: a long class is cut at its methods, decorators stay with their def", () => {
  const body = Array.from({ length: 25 }, (_, i) => `        x{i} = {i}`.replace(/\{i\}/g, i)).join("\n");
  const text = [
    "import os",
    "",
    "",
    "@cache",
    "def top(a,",
    "        b):",
    '    """Doc with { brace',
    '    and more"""',
    "    return a",
    "",
    "",
    "class Big:",
    "    def one(self):",
    body,
    "",
    "    def two(self):",
    body,
    "",
  ].join("\n");
  const chunks = assertCovers("m.py", text);
  const titles = chunks.map((c) => c.title);
  assert.ok(titles.includes("class Big › def one(self)"), titles.join(" | "));
  assert.ok(titles.includes("class Big › def two(self)"), titles.join(" | "));
  const top = chunks.find((c) => c.title.startsWith("def top"));
  assert.ok(top.start <= 4, "the decorator belongs to its function");
});

test("Go: one chunk per func and type", () => {
  const text = [
    "package main",
    "",
    "type T struct {",
    "  a int",
    "}",
    "",
    "func (t *T) Get() int {",
    longBody("  ", 30),
    "  return t.a",
    "}",
    "",
    "func main() {",
    "  s := `raw { string`",
    "  _ = s",
    "}",
  ].join("\n");
  const chunks = assertCovers("main.go", text);
  const titles = chunks.map((c) => c.title).join(" | ");
  assert.match(titles, /func \(t \*T\) Get\(\) int/);
  assert.match(titles, /func main\(\)/);
});

test("other files get overlapping windows, and no chunk of quiver's sources runs long", () => {
  const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  const chunks = assertCovers("notes.txt", text);
  assert.ok(chunks.length >= 4);
  for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i].start <= chunks[i - 1].end, "windows overlap");
  for (const path of ["crate/src/index/hnsw/mod.rs", "js/coordinator.js", "workers/store-worker.js", "js/index.d.ts"]) {
    const source = readFileSync(join(root, path), "utf8");
    for (const c of assertCovers(path, source)) assert.ok(c.end - c.start < MAX_LINES + 4, `${path}: ${JSON.stringify(c)}`);
  }
  assert.equal(languageOf("a/b.RS"), "rust");
  assert.equal(languageOf("README"), "text");
});

test("the folder reader skips dependencies, build output, binaries and huge files", () => {
  assert.ok(wanted("app/src/main.rs", 100));
  for (const p of ["app/node_modules/x/index.js", "app/target/debug/a.rs", "app/.git/config", "app/logo.png", "app/package-lock.json", "app/x.min.js"]) {
    assert.equal(wanted(p, 100), false, p);
  }
  assert.equal(wanted("app/big.js", 10 * 1024 * 1024), false);
  assert.equal(decode(new Uint8Array([104, 105])), "hi");
  assert.equal(decode(new Uint8Array([104, 0, 105])), null);
  assert.equal(decode(new Uint8Array([0xff, 0xfe, 0x41])), null);
});
