// The two ways a sync session reaches a relay, behind one interface: WebTransport (one
// bidirectional stream, frames back to back) and WebSocket (one frame a binary
// message). Each gives `{ kind, send(bytes), close() }` and calls `onFrame(bytes)` for
// every whole frame and `onClose({ code, reason })` once.

/** A frame's header: version (u8), type (u8), payload length (u32 LE). */
const HEADER_BYTES = 6;
/** Largest frame a relay sends (the core's wire::MAX_FRAME_BYTES). */
const MAX_FRAME_BYTES = 8 << 20;
/** The type byte (the header's second) of an Ops frame (the core's wire::Kind::Ops). */
const OPS = 6;

/** Whether a whole frame is an Ops frame. */
export const isOps = (frame) => frame[1] === OPS;

/** Opens a WebTransport session to `url` and its one stream. */
export async function webTransport(url, { serverCertificateHashes, onFrame, onClose, timeout }) {
  const options = serverCertificateHashes?.length ? { serverCertificateHashes } : {};
  const wt = new WebTransport(url, options);
  let closed = false;
  const end = (info) => {
    if (closed) return;
    closed = true;
    onClose(info);
  };
  const timer = setTimeout(() => wt.close({ closeCode: 0, reason: "connect timeout" }), timeout);
  try {
    await wt.ready;
  } finally {
    clearTimeout(timer);
  }
  wt.closed.then(
    (info) => end({ code: info?.closeCode ?? 0, reason: info?.reason ?? "" }),
    (e) => end({ code: -1, reason: String(e?.message ?? e) }),
  );
  const stream = await wt.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  (async () => {
    // Bytes read and not yet framed are buf[framed, read): a frame arrives in many
    // chunks, and joining each to all before it would copy a large frame many times.
    let buf = new Uint8Array(64 << 10);
    let [framed, read] = [0, 0];
    for await (const chunk of stream.readable) {
      if (read + chunk.length > buf.length) {
        const unread = read - framed;
        const into = unread + chunk.length > buf.length ? new Uint8Array(Math.max(2 * buf.length, unread + chunk.length)) : buf;
        into.set(buf.subarray(framed, read));
        [buf, framed, read] = [into, 0, unread];
      }
      buf.set(chunk, read);
      read += chunk.length;
      while (read - framed >= HEADER_BYTES) {
        const len = new DataView(buf.buffer, framed + 2, 4).getUint32(0, true);
        if (len + HEADER_BYTES > MAX_FRAME_BYTES) {
          wt.close({ closeCode: 0, reason: "frame too large" });
          return;
        }
        if (read - framed < HEADER_BYTES + len) break;
        onFrame(buf.slice(framed, framed + HEADER_BYTES + len));
        framed += HEADER_BYTES + len;
      }
      if (framed === read) [framed, read] = [0, 0];
    }
  })().catch((e) => end({ code: -1, reason: String(e?.message ?? e) }));
  return {
    kind: "webtransport",
    send: (bytes) => writer.write(bytes),
    close(reason = "") {
      end({ code: 0, reason });
      try {
        wt.close({ closeCode: 0, reason });
      } catch {
        // Already closed.
      }
    },
  };
}

/** Opens a WebSocket to `url`. */
export function webSocket(url, { onFrame, onClose, timeout }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    let open = false;
    const timer = setTimeout(() => ws.close(), timeout);
    ws.onopen = () => {
      clearTimeout(timer);
      open = true;
      resolve({
        kind: "websocket",
        send: (bytes) => ws.send(bytes),
        close: () => ws.close(1000),
      });
    };
    ws.onmessage = (e) => onFrame(new Uint8Array(e.data));
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (open) onClose({ code: e.code, reason: e.reason });
      else reject(new Error(`WebSocket to ${url} closed before it opened (${e.code})`));
    };
  });
}
