// The writes a database takes, each as it applies to a core database `d`: what the
// worker runs, and what an IndexedDB log records and replays on reopen.
export const WRITES = {
  createCollection: (d, { name, dim, metric, index, quantization }) => d.createCollection(name, dim, metric, index ?? undefined, quantization ?? undefined),
  dropCollection: (d, { name }) => d.dropCollection(name),
  upsert: (d, { collection, ids, vectors, lengths, metadata, texts }, mailbox) => d.upsert(collection, ids, vectors, lengths, metadata, texts, mailbox),
  delete: (d, { collection, ids }) => d.delete(collection, idList(ids)),
  setMeta: (d, { key, value }) => d.setMeta(key, value),
  applyOps: (d, { collection, ops, vectors }) => d.applyOps(collection, ops, vectors),
  handOver: (d, { collection, ids }) => d.handOver(collection, ids),
  applyFrame: (d, { collection, bytes }) => d.applyFrame(collection, bytes),
  stage: (d, { batch, collection, ids, vectors, lengths, metadata, texts }) => d.stage(batch, collection, ids, vectors, lengths, metadata, texts),
  stageDelete: (d, { batch, collection, ids }) => d.stageDelete(batch, collection, idList(ids)),
  commit: (d, { batch }) => d.commitStaged(batch),
  discard: (d, { batch }) => d.discardStaged(batch),
  decide: (d, { batch }) => d.decide(batch),
  forget: (d, { batch }) => d.forget(batch ?? undefined),
};

/** Ids as an array: a log written by quiver 0.1 holds them as JSON text. */
const idList = (ids) => (typeof ids === "string" ? JSON.parse(ids) : ids);
