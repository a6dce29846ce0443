// A real quiver-relay process for the tests and the sync benchmark: built by cargo,
// started on ephemeral loopback ports with a data file, read for its addresses and
// certificate hash, killed or stopped at will.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { root } from "./helpers.mjs";

const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
let binary = null;

/**
 * Builds the relay (a no-op when it is up to date): the debug build for tests, which
 * `cargo test` has built already; the release build for the benchmark.
 */
export function buildRelay({ release = false } = {}) {
  execFileSync("cargo", ["build", "-q", "-p", "quiver-relay", ...(release ? ["--release"] : [])], { cwd: root, stdio: "inherit" });
  binary = join(targetDir, release ? "release" : "debug", "quiver-relay");
  return binary;
}

/** A fresh relay secret, hex. */
export const newSecret = () => randomBytes(32).toString("hex");

/** A token for `room` signed with `secret`, as `quiver-relay token` mints it. */
export const mintToken = (secret, room) => execFileSync(binary, ["token", "--room", room, "--secret", secret], { encoding: "utf8" }).trim();

/**
 * Starts a relay on `data` and resolves once it is ready: `{ url, websocketUrl,
 * certificate, hash, proc, kill(signal), stopped }`. `ports` reuses the addresses of a
 * relay started before (a restart on the same ports).
 */
export function startRelay({ data, secret, ports = { wt: 0, ws: 0 }, extra = [] }) {
  const args = ["--listen", `127.0.0.1:${ports.wt}`, "--ws-listen", `127.0.0.1:${ports.ws}`, "--data", data, "--secret", secret, ...extra];
  const proc = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const stopped = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`relay not ready in 20 s; stderr: ${err}`));
    }, 20_000);
    const seen = {};
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      for (const line of out.split("\n")) {
        const [, key, value] = line.match(/^quiver-relay (\S+) (.+)$/) ?? [];
        if (key) seen[key] = value;
      }
      if (!("ready" in seen) && !out.includes("quiver-relay ready")) return;
      clearTimeout(timer);
      const url = seen.webtransport;
      const websocketUrl = seen.websocket;
      resolve({
        url: `${url}/`,
        websocketUrl: `${websocketUrl}/`,
        certificate: seen.certificate,
        hash: seen["certificate-sha256"],
        ports: { wt: Number(new URL(url).port), ws: Number(new URL(websocketUrl).port) },
        proc,
        stopped,
        kill: (signal = "SIGKILL") => (proc.kill(signal), stopped),
      });
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}) before it was ready: ${err}`));
    });
  });
}
