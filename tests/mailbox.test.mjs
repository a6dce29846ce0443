// The channel two workers share a graph build through (js/mailbox.js), between two
// real threads: each round's nodes are taken exactly once between the two sides, and
// what one side sends is what the other receives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { Mailbox, mailboxBuffer } from "../js/mailbox.js";

/** Rounds as link_shared makes them: consecutive, or after nodes linked one at a time. */
const ROUNDS = [
  [16, 40],
  [40, 300],
  [310, 311],
  [311, 2000],
];

/** Takes each round's nodes until none are left, then swaps them with the other side. */
const side = `
  const { workerData, parentPort } = require("node:worker_threads");
  import(workerData.url).then(({ Mailbox }) => {
    const mailbox = new Mailbox(workerData.buffer, workerData.side);
    const rounds = [];
    for (const [start, end] of workerData.rounds) {
      const mine = [];
      for (let s; (s = mailbox.take(start, end)) !== undefined; ) mine.push(s);
      const theirs = mailbox.swap(new TextEncoder().encode(JSON.stringify(mine)));
      rounds.push({ mine, theirs: JSON.parse(new TextDecoder().decode(theirs)) });
    }
    mailbox.close();
    parentPort.postMessage(rounds);
  });
`;

test("two threads take every node of each round exactly once, and swap what they took", { timeout: 60_000 }, async () => {
  const buffer = mailboxBuffer();
  const url = new URL("../js/mailbox.js", import.meta.url).href;
  const run = (s) =>
    new Promise((resolve, reject) => {
      const w = new Worker(side, { eval: true, workerData: { url, buffer, side: s, rounds: ROUNDS } });
      w.once("message", resolve);
      w.once("error", reject);
    });
  const [owner, helper] = await Promise.all([run(0), run(1)]);
  ROUNDS.forEach(([start, end], r) => {
    const all = [...owner[r].mine, ...helper[r].mine].sort((a, b) => a - b);
    assert.deepEqual(
      all,
      Array.from({ length: end - start }, (_, i) => start + i),
      `round ${r}: each node taken once`,
    );
    assert.deepEqual(owner[r].theirs, helper[r].mine, `round ${r}: the owner received the helper's nodes`);
    assert.deepEqual(helper[r].theirs, owner[r].mine, `round ${r}: the helper received the owner's nodes`);
  });
  assert.equal(new Mailbox(buffer, 0).take(0, 2000), undefined, "the counter stopped at the last round's end");
});
