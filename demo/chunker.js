// Cuts a source file into chunks worth one embedding each: a function, a class, an
// impl block, or a run of small items, so that a hit points at a whole definition.
// Brace languages (Rust, JS/TS, Go) are cut where the bracket depth returns to the
// item's own level; Python where the indentation does. A definition too long for one
// chunk is cut at its inner items (the methods of a class or impl) when it has them,
// else into overlapping line windows, which is also what every other file gets.

/** Lines a chunk aims to stay under; longer definitions are cut. */
export const MAX_LINES = 40;
/** Small neighbouring items merge until a chunk reaches this many lines. */
const MERGE_LINES = 24;
/** Line windows for unstructured text and over-long bodies. */
const WINDOW = 30;
const OVERLAP = 8;

const LANGUAGES = {
  rs: "rust",
  js: "javascript",
  mjs: "javascript",
  cjs: "javascript",
  jsx: "javascript",
  ts: "typescript",
  tsx: "typescript",
  mts: "typescript",
  py: "python",
  go: "go",
  md: "markdown",
  c: "c",
  h: "c",
  cc: "cpp",
  cpp: "cpp",
  hpp: "cpp",
  java: "java",
  rb: "ruby",
  sh: "shell",
  toml: "toml",
  json: "json",
  yaml: "yaml",
  yml: "yaml",
  html: "html",
  css: "css",
  sql: "sql",
};

/** The language of a file, from its extension (`"text"` when unknown). */
export function languageOf(path) {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  return LANGUAGES[ext] ?? "text";
}

const BRACES = new Set(["rust", "javascript", "typescript", "go"]);

/** A line that starts a definition worth naming, per language. */
const DEFINITION = {
  rust: /^(pub(\([^)]*\))?\s+)?(async\s+|const\s+|unsafe\s+|extern\s+"[^"]*"\s+)*(fn|impl|struct|enum|trait|mod|macro_rules!|type|union)\b/,
  javascript:
    /^(export\s+(default\s+)?)?((async\s+)?function\b|class\b|(const|let|var)\s+[\w$]+\s*=\s*(async\s+)?(\(|function\b|[\w$]+\s*=>|class\b))|^[\w$#]+\s*\([^)]*\)\s*\{|^(static\s+|async\s+|get\s+|set\s+)+[\w$#]+\s*\(/,
  typescript:
    /^(export\s+(default\s+)?)?(declare\s+)?((async\s+)?function\b|class\b|interface\b|type\s+\w|enum\b|namespace\b|(const|let|var)\s+[\w$]+\s*(:[^=]+)?=\s*(async\s+)?(\(|function\b|[\w$]+\s*=>|class\b))|^(public\s+|private\s+|protected\s+|static\s+|async\s+|readonly\s+)*[\w$#]+\s*\([^)]*\)\s*(:[^{]+)?\{/,
  go: /^(func|type)\b/,
  python: /^(async\s+def|def|class)\b/,
};

/** Lines that belong to the item below them: comments, attributes, decorators. */
const PREFIX = /^(\/\/|\/\*|\*|#!?\[|@\w|#( |$))/;

/**
 * Cuts `text` (the file at `path`) into chunks: `{ start, end, title }`, lines
 * 1-based and inclusive, in file order; `title` names the definition when there is one
 * (`impl Index for Hnsw › fn search`).
 */
export function chunk(path, text) {
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) return [];
  const language = languageOf(path);
  const shape = BRACES.has(language) ? braceShape(lines, language) : language === "python" ? indentShape(lines) : null;
  if (!shape) return windows(0, lines.length, "");
  const chunks = [];
  cut(lines, shape, language, 0, lines.length, shape.depth[0] ?? 0, "", chunks);
  return chunks;
}

/** Overlapping windows over lines [lo, hi). */
function windows(lo, hi, title) {
  const out = [];
  for (let s = lo; s < hi; s += WINDOW - OVERLAP) {
    const e = Math.min(hi, s + WINDOW);
    out.push({ start: s + 1, end: e, title });
    if (e === hi) break;
  }
  return out;
}

const indentOf = (line) => line.length - line.trimStart().length;
const blank = (line) => line.trim() === "";

/**
 * Cuts lines [lo, hi), whose items start at `level`, into chunks appended to `out`.
 * `level` is a bracket depth for brace languages and an indentation for Python.
 */
function cut(lines, shape, language, lo, hi, level, context, out) {
  const items = itemsAt(lines, shape, lo, hi, level);
  let run = null; // small items merged so far: { start, end, title }
  const flush = () => {
    if (run) out.push(run);
    run = null;
  };
  for (const { start, end, head } of items) {
    const size = end - start;
    const title = titleOf(lines[head], language, context);
    if (size > MAX_LINES) {
      flush();
      const inner = shape.inner(head, end);
      if (inner && inner.hi - inner.lo > 1) {
        // The header (signature and the doc above it) goes with the first inner item,
        // the closing line with the last.
        const before = out.length;
        cut(lines, shape, language, inner.lo, inner.hi, inner.level, title || context, out);
        if (out.length > before) {
          out[before].start = start + 1;
          out[out.length - 1].end = end;
        } else out.push(...windows(start, end, title));
      } else {
        out.push(...windows(start, end, title || context));
      }
      continue;
    }
    if (run && run.end - run.start + 1 + size <= MERGE_LINES) {
      run.end = end;
      if (!run.title) run.title = title;
    } else {
      flush();
      run = { start: start + 1, end, title: title || context };
    }
    if (size > MERGE_LINES / 2) flush();
  }
  flush();
}

/** The first line of a definition, shortened, under its container's name. */
function titleOf(line, language, context) {
  const t = line.trim();
  if (!DEFINITION[language]?.test(t)) return "";
  const name = t
    .replace(/\s*[{:]\s*$/, "")
    .replace(/\s+/g, " ")
    .slice(0, 80);
  return context ? `${context} › ${name}` : name;
}

/**
 * The items among lines [lo, hi) that start at `level`: `{ start, end, head }`, with
 * `head` the item's first line that is not a comment or an attribute. Comments and
 * attributes directly above an item belong to it; blank lines end a run of them.
 */
function itemsAt(lines, shape, lo, hi, level) {
  const items = [];
  let i = lo;
  while (i < hi) {
    while (i < hi && blank(lines[i])) i++;
    if (i >= hi) break;
    const start = i;
    let head = i;
    while (head < hi && !blank(lines[head]) && PREFIX.test(lines[head].trim()) && shape.endsAt(head, level, hi)) head++;
    if (head >= hi || blank(lines[head])) {
      items.push({ start, end: head, head: start });
      i = head;
      continue;
    }
    let end = head;
    while (end < hi - 1 && !shape.endsAt(end, level, hi)) end++;
    items.push({ start, end: end + 1, head });
    i = end + 1;
  }
  return items;
}

/** A line that continues the statement above it rather than starting a new one. */
const CONTINUATION = /^(\.|\)|\]|\}|\?|:|&&|\|\||\+|-(?!-)|\*(?!\/)|=|where\b|->|else\b|catch\b|finally\b|elif\b|except\b)/;

/**
 * Bracket depths of a brace language: `depth[i]` at the start of line i, `after[i]`
 * at its end. Strings, comments, template literals and Rust's char literals and raw
 * strings are skipped, so braces inside them do not count.
 */
function braceShape(lines, language) {
  const depth = new Array(lines.length);
  const after = new Array(lines.length);
  let d = 0;
  let mode = null; // null | "block" | '"' | "'" | "`" | "raw"
  let rawHashes = 0;
  let blockNest = 0;
  const templates = []; // brace depths at which a `${` returns to a template
  for (let li = 0; li < lines.length; li++) {
    const s = lines[li];
    depth[li] = d;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (mode === "block") {
        if (c === "*" && s[i + 1] === "/") {
          i++;
          if (--blockNest === 0) mode = null;
        } else if (language === "rust" && c === "/" && s[i + 1] === "*") {
          i++;
          blockNest++;
        }
        continue;
      }
      if (mode === "raw") {
        if (c === '"' && s.slice(i + 1, i + 1 + rawHashes) === "#".repeat(rawHashes)) {
          i += rawHashes;
          mode = null;
        }
        continue;
      }
      if (mode === '"' || mode === "'" || mode === "`") {
        if (c === "\\") i++;
        else if (mode === "`" && c === "$" && s[i + 1] === "{" && language !== "go") {
          i++;
          templates.push(d);
          d++;
          mode = null;
        } else if (c === mode) mode = null;
        continue;
      }
      if (c === "/" && s[i + 1] === "/") break;
      if (c === "/" && s[i + 1] === "*") {
        mode = "block";
        blockNest = 1;
        i++;
      } else if (c === '"') {
        if (language === "rust" && s[i - 1] === "r") mode = "raw";
        else mode = '"';
        rawHashes = 0;
      } else if (language === "rust" && c === "r" && s[i + 1] === "#" && !/\w/.test(s[i - 1] ?? "")) {
        let j = i + 1;
        while (s[j] === "#") j++;
        if (s[j] === '"') {
          rawHashes = j - i - 1;
          mode = "raw";
          i = j;
        }
      } else if (c === "'") {
        // Rust: a char literal closes within a few characters; a lifetime does not.
        if (language === "rust") {
          const close = s[i + 1] === "\\" ? s.indexOf("'", i + 2) : s[i + 2] === "'" ? i + 2 : -1;
          if (close > i && close - i <= 10) i = close;
        } else mode = "'";
      } else if (c === "`") mode = "`";
      else if (c === "{" || c === "(" || c === "[") d++;
      else if (c === "}" || c === ")" || c === "]") {
        d = Math.max(0, d - 1);
        if (c === "}" && templates.length && templates[templates.length - 1] === d) {
          templates.pop();
          mode = "`";
        }
      }
    }
    // A line comment or an unclosed JS/Go string ends with its line.
    if (mode === "'" || (mode === '"' && language !== "rust")) mode = null;
    after[li] = d;
  }
  return {
    depth,
    endsAt(i, level, hi) {
      if (after[i] > level) return false;
      let j = i + 1;
      while (j < hi && blank(lines[j])) j++;
      if (j >= hi || j > i + 1) return true;
      return indentOf(lines[j]) <= indentOf(lines[i]) && !CONTINUATION.test(lines[j].trim());
    },
    inner(head, end) {
      let open = head;
      while (open < end && after[open] <= depth[head]) open++;
      if (open >= end - 1) return null;
      return { lo: open + 1, hi: end - 1, level: after[open] };
    },
  };
}

/**
 * Python's shape: an item at indentation `level` runs until a line at that
 * indentation or less that is not inside brackets or a triple-quoted string.
 */
function indentShape(lines) {
  const open = new Array(lines.length); // inside brackets or a string at the line's start
  let d = 0;
  let triple = null;
  for (let li = 0; li < lines.length; li++) {
    const s = lines[li];
    open[li] = d > 0 || triple !== null;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (triple) {
        if (s.startsWith(triple, i)) {
          i += 2;
          triple = null;
        }
        continue;
      }
      if (c === "#") break;
      if (s.startsWith('"""', i) || s.startsWith("'''", i)) {
        triple = s.slice(i, i + 3);
        i += 2;
      } else if (c === '"' || c === "'") {
        const close = s.indexOf(c, i + 1);
        i = close < 0 ? s.length : close;
      } else if ("([{".includes(c)) d++;
      else if (")]}".includes(c)) d = Math.max(0, d - 1);
    }
  }
  const starts = (j, level) => !blank(lines[j]) && !open[j] && indentOf(lines[j]) <= level;
  return {
    depth: lines.map((l) => indentOf(l)),
    endsAt(i, level, hi) {
      let j = i + 1;
      while (j < hi && blank(lines[j])) j++;
      return j >= hi || (starts(j, level) && !/^(elif|else|except|finally)\b/.test(lines[j].trim()));
    },
    inner(head, end) {
      let j = head + 1;
      while (j < end && (blank(lines[j]) || open[j] || indentOf(lines[j]) <= indentOf(lines[head]))) j++;
      if (j >= end) return null;
      return { lo: j, hi: end, level: indentOf(lines[j]) };
    },
  };
}
