// The storage floor for the `storage` bench: writes `bytes` to an OPFS file through a
// sync access handle, then times reading them back in `chunk`-sized calls.
self.onmessage = async ({ data: { name, bytes, chunk } }) => {
  const dir = await navigator.storage.getDirectory();
  const file = await dir.getFileHandle(name, { create: true });
  const handle = await file.createSyncAccessHandle();
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) data[i] = i & 255;
  handle.write(data, { at: 0 });
  handle.flush();
  handle.close();
  const times = [];
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    const h = await file.createSyncAccessHandle();
    const into = new Uint8Array(bytes);
    for (let at = 0; at < bytes; at += chunk) h.read(into.subarray(at, Math.min(bytes, at + chunk)), { at });
    h.close();
    times.push(performance.now() - t0);
  }
  await dir.removeEntry(name);
  self.postMessage({ ms: Math.min(...times) });
};
