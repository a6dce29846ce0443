// The storage floor for the `storage` bench: reads a file already in OPFS (the
// collection's segment, the bytes a reopen reads) through a sync access handle in
// `chunk`-sized calls, best of 3. The database must be closed: a sync access handle
// holds its file exclusively.
self.onmessage = async ({ data: { path, chunk } }) => {
  try {
    let dir = await navigator.storage.getDirectory();
    for (const part of path.split("/")) dir = await dir.getDirectoryHandle(part);
    // The largest segment: the bench's collection, whatever its key.
    let file;
    let bytes = -1;
    for await (const entry of dir.values()) {
      if (entry.kind !== "file" || !entry.name.endsWith(".seg")) continue;
      const size = (await entry.getFile()).size;
      if (size > bytes) [file, bytes] = [entry, size];
    }
    if (!file) throw new Error(`no segment file in ${path}`);
    const times = [];
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      // Into fresh memory, as a reopen reads into memory it has just grown.
      const into = new Uint8Array(bytes);
      const h = await file.createSyncAccessHandle();
      for (let at = 0; at < bytes; at += chunk) h.read(into.subarray(at, Math.min(bytes, at + chunk)), { at });
      h.close();
      times.push(performance.now() - t0);
    }
    self.postMessage({ ms: Math.min(...times), bytes, file: `${path}/${file.name}` });
  } catch (e) {
    self.postMessage({ error: String(e) });
  }
};
