/**
 * Bulk writes on Deno KV (`putBatch` with `assumeNew`) chain their commits:
 * each is built (its values serialised) while KV writes the one before, and
 * sent after it with a check that the feed counter is where that one left
 * it. A lost race or a failure in the middle of the chain stops it there;
 * the rest is written as before, every item once, the feed in order.
 */

import assert from "node:assert/strict";
import { open, TooLargeError } from "../mod.ts";
import type { KvLike } from "../src/storage/kv.ts";
import { wrapAtomics } from "./kv_atomic_wrap.ts";
import { KvStorage } from "../src/storage/kv.ts";

/**
 * What happened on a KV, in order: `set n` (the first set of atomic n),
 * `start n`, `end n`. While `hold.on`, a commit is held until the next atomic
 * has its first set (or 200 ms have passed): what a chain overlaps then
 * shows in the order, however fast the KV is.
 */
function logging(
  kv: Deno.Kv,
  onEnd?: (n: number) => Promise<void>,
  hold: { on: boolean } = { on: false },
): { kv: KvLike; log: string[] } {
  const log: string[] = [];
  const firstSet = new Map<number, () => void>();
  const setOf = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, 200);
      firstSet.set(n, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const logged = new Set<number>();
  const wrapped = wrapAtomics(kv, {
    set: (n) => {
      if (logged.has(n)) return;
      logged.add(n);
      log.push(`set ${n}`);
      firstSet.get(n)?.();
    },
    commit: async (n, send) => {
      log.push(`start ${n}`);
      if (hold.on && !firstSet.has(n + 1)) await setOf(n + 1);
      const result = await send();
      log.push(`end ${n} ${result.ok ? "ok" : "refused"}`);
      await onEnd?.(n);
      return result;
    },
  });
  return { kv: wrapped, log };
}

const items = (n: number, from = 0): Map<string, unknown> =>
  new Map(
    Array.from({ length: n }, (_, i) => [
      `k${String(from + i).padStart(6, "0")}`,
      { i: from + i },
    ]),
  );

async function feed(
  db: Awaited<ReturnType<typeof open>>,
): Promise<{ keys: string[]; seqs: string[] }> {
  const keys: string[] = [];
  const seqs: string[] = [];
  for await (const c of db.collection("r").changes({ live: false })) {
    keys.push(c.key);
    seqs.push(c.seq);
  }
  return { keys, seqs };
}

Deno.test("kv chain: a bulk write builds each commit while KV writes the one before", async () => {
  const raw = await Deno.openKv(":memory:");
  const hold = { on: false };
  const { kv, log } = logging(raw, undefined, hold);
  await using db = await open({ kv: kv as Deno.Kv });
  await db.collection("r").put("first", 0); // the feed counter exists
  log.length = 0;
  hold.on = true;
  await db.collection("r").putBatch(items(3000), {
    atomic: false,
    assumeNew: true,
  });
  // The documents' commits: each one's values were set before the commit
  // before it ended, and it started only after that one ended.
  const sets = log.filter((e) => e.startsWith("set ")).map((e) =>
    Number(e.split(" ")[1])
  );
  assert.ok(sets.length >= 4, log.join(", "));
  let overlapped = 0;
  for (let k = 1; k < sets.length; k++) {
    const [a, b] = [sets[k - 1]!, sets[k]!];
    const setB = log.indexOf(`set ${b}`);
    const endA = log.indexOf(`end ${a} ok`);
    const startB = log.indexOf(`start ${b}`);
    assert.ok(endA >= 0 && startB > endA, `commit ${b} after ${a}: ${log}`);
    if (setB < endA) overlapped++;
  }
  assert.equal(overlapped, sets.length - 1, log.join(", "));
  const { keys, seqs } = await feed(db);
  assert.deepEqual(keys, ["first", ...items(3000).keys()]);
  assert.equal(new Set(seqs).size, 3001);
  assert.equal(await db.collection("r").count(), 3001);
});

Deno.test("kv chain: another handle's write in the middle of the chain stops it there; the rest is written again, every item once", async () => {
  const raw = await Deno.openKv(":memory:");
  const peer: { db?: Awaited<ReturnType<typeof open>> } = {};
  let cut = false;
  const { kv, log } = logging(raw, async (n) => {
    // Right after the first documents' commit, another process writes.
    if (peer.db !== undefined && !cut && n > 1) {
      cut = true;
      await peer.db.collection("r").put("other", 1);
    }
  });
  await using db = await open({ kv: kv as Deno.Kv });
  await db.collection("r").put("first", 0);
  await using second = await open({ kv: raw });
  peer.db = second;
  log.length = 0;
  await db.collection("r").putBatch(items(3000), {
    atomic: false,
    assumeNew: true,
  });
  assert.ok(cut);
  // The commit chained to the one before the other write was refused.
  assert.ok(log.some((e) => e.endsWith("refused")), log.join(", "));
  const { keys, seqs } = await feed(second);
  assert.equal(keys.length, 3002);
  assert.equal(new Set(keys).size, 3002);
  assert.equal(new Set(seqs).size, 3002);
  assert.equal(await second.collection("r").count(), 3002);
  for (const [k, v] of items(3000)) {
    assert.deepEqual(await second.collection("r").get(k), v);
  }
});

Deno.test("kv chain: a commit that throws in the middle stops the chain; the error says how many items were stored", async () => {
  const raw = await Deno.openKv(":memory:");
  let failAt = -1;
  const base = logging(raw).kv as unknown as Deno.Kv;
  const failing = new Proxy(base, {
    get(target, name) {
      if (name !== "atomic") {
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        const op = (target as unknown as KvLike).atomic();
        const commit = op.commit.bind(op);
        op.commit = () => {
          if (--failAt === 0) {
            return Promise.reject(new Error("the disk went away"));
          }
          return commit();
        };
        return op;
      };
    },
  });
  await using db = await open({ kv: failing });
  await db.collection("r").put("first", 0);
  failAt = 2; // the second documents' commit
  const error = await db.collection("r").putBatch(items(3000), {
    atomic: false,
    assumeNew: true,
  }).then(() => undefined, (e: Error) => e);
  assert.ok(error instanceof Error);
  assert.match(error.message, /the disk went away/);
  const stored = Number(
    /(\d+) of 3000 items were stored/.exec(error.message)?.[1],
  );
  const count = await db.collection("r").count();
  assert.equal(count, 1 + stored);
  assert.ok(stored > 0 && stored < 3000, error.message);
  // What was stored is a prefix, in the feed once each.
  const { keys } = await feed(db);
  assert.deepEqual(keys, [
    "first",
    ...[...items(3000).keys()].slice(0, stored),
  ]);
});

Deno.test("kv chain: a record over maxValueBytes in a later part ends the write; every item before it is stored, and the error says how many", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, maxValueBytes: 2_000 });
  await db.collection("r").put("first", 0);
  const batch = items(3000);
  batch.set("k002500", { big: "x".repeat(3_000) });
  const error = await db.collection("r").putBatch(batch, {
    atomic: false,
    assumeNew: true,
  }).then(() => undefined, (e: Error) => e);
  assert.ok(error instanceof TooLargeError, String(error));
  const stored = Number(
    /(\d+) of 3000 items were stored/.exec(error.message)?.[1],
  );
  // The chain stops at the part holding it; the parts after it go one by
  // one, halved down to the item: every item before it is stored.
  assert.equal(stored, 2_500, error.message);
  assert.equal(await db.collection("r").count(), 1 + stored);
  const { keys } = await feed(db);
  assert.deepEqual(keys, [
    "first",
    ...[...batch.keys()].slice(0, stored),
  ]);
});

Deno.test("kv storage: a commit after one in flight is sent once that one is in, checked against its versionstamp; after a failure or a throw it is not sent", async () => {
  const storage = new KvStorage(await Deno.openKv(":memory:"), {
    closeKv: true,
  });
  try {
    assert.equal(storage.chains, true);
    const b = (...xs: number[]) => new Uint8Array(xs);
    const mark = b(1);
    const first = storage.commit({ sets: [{ key: mark, value: b(1) }] });
    const second = storage.commit({
      sets: [{ key: mark, value: b(2) }, { key: b(2), value: b(2) }],
      after: { commit: first, check: mark },
    });
    const [r1, r2] = await Promise.all([first, second]);
    assert.ok(r1.ok && r2.ok);
    assert.ok(r2.versionstamp > r1.versionstamp);
    assert.deepEqual([...(await storage.get(mark))!.value], [2]);
    // The mark moved between the two: the second's check fails.
    const third = storage.commit({ sets: [{ key: mark, value: b(3) }] });
    const moved = third.then(async (r) => {
      await storage.commit({ sets: [{ key: mark, value: b(4) }] });
      return r;
    });
    const fourth = await storage.commit({
      sets: [{ key: b(4), value: b(4) }],
      after: { commit: moved, check: mark },
    });
    assert.equal(fourth.ok, false);
    assert.equal(await storage.get(b(4)), null);
    // The one before failed its own check, or threw: not sent.
    const refused = storage.commit({
      checks: [{ key: b(2), versionstamp: null }],
      sets: [{ key: b(5), value: b(5) }],
    });
    const afterRefused = await storage.commit({
      sets: [{ key: b(6), value: b(6) }],
      after: { commit: refused }, // (no check: only the order)
    });
    assert.equal((await refused).ok, false);
    assert.equal(afterRefused.ok, false);
    const afterThrow = await storage.commit({
      sets: [{ key: b(7), value: b(7) }],
      after: { commit: Promise.reject(new Error("gone")) },
    });
    assert.equal(afterThrow.ok, false);
    assert.deepEqual(
      await storage.getMany([b(5), b(6), b(7)]),
      [null, null, null],
    );
  } finally {
    await storage.close();
  }
});
