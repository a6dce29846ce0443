// For tests, in the page: runs `call` again while it fails with WORKER_LOST, as that
// error asks, up to `attempts` times. A call caught by a worker's death fails so; the
// retry waits for the replacement. (A terminated worker may still answer for a moment.)
export async function retryLost(call, attempts = 4) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (e.code !== "WORKER_LOST" || attempt === attempts) throw e;
    }
  }
}
