// A persistent database's segment files (see crate/src/segment.rs): one OPFS file per
// large collection, `<key>.seg` in a directory beside the SQLite pool's. The core reads
// and writes them synchronously, so each file's sync access handle is opened ahead:
// those with a segment when the database opens, a new one before its first write.
// Few files ever exist (only collections of thousands of rows get one), so keeping
// their handles open costs little of the browser's file limit.

export class SegmentFiles {
  #dir;
  #handles = new Map(); // key -> FileSystemSyncAccessHandle

  /** The segment files in the OPFS directory at `path` (created if missing). */
  static async at(path) {
    let dir = await navigator.storage.getDirectory();
    for (const part of path.split("/")) dir = await dir.getDirectoryHandle(part, { create: true });
    const files = new SegmentFiles();
    files.#dir = dir;
    return files;
  }

  /** Opens the files of `keys` and deletes any others (left by a dropped collection). */
  async keep(keys) {
    const wanted = new Set(keys.map((k) => `${k}.seg`));
    for await (const name of this.#dir.keys()) {
      if (!wanted.has(name)) await this.#dir.removeEntry(name);
    }
    for (const key of keys) await this.ensure(key);
  }

  /** Opens (creating it if missing) the file of collection `key`. */
  async ensure(key) {
    if (this.#handles.has(key)) return;
    const file = await this.#dir.getFileHandle(`${key}.seg`, { create: true });
    this.#handles.set(key, await file.createSyncAccessHandle());
  }

  #handle(key) {
    const h = this.#handles.get(key);
    if (!h) throw new Error(`segment ${key} is not open`);
    return h;
  }

  read(key, at, view) {
    const n = this.#handle(key).read(view, { at });
    if (n !== view.length) throw new Error(`segment ${key}: read ${n} of ${view.length} bytes at ${at}`);
  }

  write(key, at, view) {
    const n = this.#handle(key).write(view, { at });
    if (n !== view.length) throw new Error(`segment ${key}: wrote ${n} of ${view.length} bytes at ${at}`);
  }

  flush(key, length) {
    const h = this.#handle(key);
    h.truncate(length);
    h.flush();
  }

  remove(key) {
    this.#handles.get(key)?.close();
    this.#handles.delete(key);
    // The record went first, so until this lands the file is only unused space.
    this.#dir.removeEntry(`${key}.seg`).catch(() => {});
  }

  close() {
    for (const h of this.#handles.values()) h.close();
    this.#handles.clear();
  }
}
