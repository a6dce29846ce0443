// Turns files into searchable chunks: cut each file (chunker.js), embed the chunks on
// the embedder's worker pool, and upsert them with what a result needs to show itself.
import { chunk, languageOf } from "./chunker.js";

/** Chunks embedded and written at a time: big enough to keep every worker busy. */
const BATCH = 64;

/** The top folder of a path, the unit the folder filter offers. */
export const folderOf = (path) => (path.includes("/") ? path.slice(0, path.indexOf("/")) : ".");

/**
 * Characters of a chunk that are embedded: about 150 tokens of code. A definition's
 * head (its path, signature and doc) says most of what it is about, and the
 * embedder's cost grows with every token.
 */
const EMBED_CHARS = 600;

/** The text a chunk is embedded as: where it lives, then the start of the code. */
const embeddingText = (path, title, code) => `${path}${title ? `\n${title}` : ""}\n${code}`.slice(0, EMBED_CHARS);

/**
 * Cuts `files` (`[{ path, text }]`) into records without vectors yet: ids are
 * `path#line`, and each record names its neighbours so a hit can expand in context.
 */
export function toRecords(files) {
  const records = [];
  for (const { path, text } of files) {
    const lines = text.split(/\r?\n/);
    const lang = languageOf(path);
    const folder = folderOf(path);
    const cut = chunk(path, text);
    cut.forEach(({ start, end, title }, i) => {
      const code = lines.slice(start - 1, end).join("\n");
      records.push({
        id: `${path}#${start}`,
        text: code,
        embed: embeddingText(path, title, code),
        metadata: {
          path,
          start,
          end,
          lang,
          folder,
          title,
          prev: i > 0 ? `${path}#${cut[i - 1].start}` : null,
          next: i + 1 < cut.length ? `${path}#${cut[i + 1].start}` : null,
        },
      });
    });
  }
  return records;
}

/**
 * Embeds and stores `files` in `col`. `onProgress({ files, filesDone, chunks,
 * chunksDone, perSecond, secondsLeft })` after every batch; `signal` stops between
 * batches (what is written stays written).
 */
export async function index(files, { col, embedder, onProgress = () => {}, signal } = {}) {
  const records = toRecords(files);
  const started = performance.now();
  const report = (done) => {
    const seconds = (performance.now() - started) / 1000;
    const perSecond = done / Math.max(seconds, 1e-3);
    const lastPath = records[done - 1]?.metadata.path;
    onProgress({
      files: files.length,
      filesDone: done === records.length ? files.length : files.findIndex((f) => f.path === lastPath) + 1,
      chunks: records.length,
      chunksDone: done,
      perSecond,
      secondsLeft: done ? (records.length - done) / perSecond : null,
    });
  };
  report(0);
  for (let i = 0; i < records.length; i += BATCH) {
    signal?.throwIfAborted();
    const batch = records.slice(i, i + BATCH);
    const vectors = await embedder.embed(batch.map((r) => r.embed));
    await col.upsert(batch.map((r, j) => ({ id: r.id, vector: vectors[j], metadata: r.metadata, text: r.text })));
    report(i + batch.length);
  }
  return { files: files.length, chunks: records.length, seconds: (performance.now() - started) / 1000 };
}
