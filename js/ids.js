// The identifiers the page makes, in one place. Record ids are made here, not by the
// core, because the page routes a record to the worker its id hashes to before any
// worker sees it.

/** 64 random bits in hex. */
const randomHex = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

/** A site id to propose for a new database's files (its files keep the first one). */
export const newSite = randomHex;

/** A batch id for a write that spans workers. */
export const newBatch = randomHex;

/** An id for a record given none: the database's site, then 64 random bits. */
export const newRecordId = (site) => `${site}-${randomHex()}`;
