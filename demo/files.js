// Finds the files worth indexing in a folder the user picked: through the File System
// Access API where the browser has it, else the files of an <input webkitdirectory>.
// Skips what is not source: dependency and build folders, binaries, huge files.

/** Folders that hold dependencies, build output or history, not the user's code. */
const SKIP_DIRS = new Set(["node_modules", "target", ".git", "dist", "build", ".next", "__pycache__", ".venv", "venv", "vendor"]);
/** Files larger than this are generated or data, not code worth searching. */
export const MAX_FILE_BYTES = 256 * 1024;
const BINARY =
  /\.(png|jpe?g|gif|webp|ico|bmp|pdf|zip|gz|tgz|xz|bz2|7z|tar|wasm|so|dylib|dll|exe|o|a|class|jar|bin|dat|f32|i32|npy|safetensors|onnx|woff2?|ttf|otf|mp[34]|mov|avi|webm|ogg|wav|sqlite|db|lock)$/i;
const GENERATED = /(^|\/)(package-lock\.json|pnpm-lock\.yaml|yarn\.lock)$|\.min\.(js|css)$|\.map$/;

/** Whether a file at `path` (relative, `/`-separated) of `size` bytes is worth reading. */
export function wanted(path, size) {
  if (size > MAX_FILE_BYTES || BINARY.test(path) || GENERATED.test(path)) return false;
  return !path.split("/").some((part) => SKIP_DIRS.has(part) || (part.startsWith(".") && part.length > 1));
}

/** Decodes a file's bytes as UTF-8, or null when they look binary (a NUL or bad UTF-8). */
export function decode(bytes) {
  if (bytes.subarray(0, 8192).includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The wanted files under a directory handle: `[{ path, file }]` (`file` a `File`),
 * `path` relative to the handle and starting with its name.
 */
export async function fromHandle(dir) {
  const out = [];
  const walk = async (handle, prefix) => {
    for await (const entry of handle.values()) {
      const path = `${prefix}/${entry.name}`;
      if (entry.kind === "directory") {
        if (wanted(`${path}/`, 0)) await walk(entry, path);
      } else {
        const file = await entry.getFile();
        if (wanted(path, file.size)) out.push({ path, file });
      }
    }
  };
  await walk(dir, dir.name);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The wanted files of an `<input webkitdirectory>`'s `FileList`. */
export function fromInput(files) {
  return [...files]
    .map((file) => ({ path: file.webkitRelativePath || file.name, file }))
    .filter(({ path, file }) => wanted(path, file.size))
    .sort((a, b) => a.path.localeCompare(b.path));
}
