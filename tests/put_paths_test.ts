/**
 * The single-put fast path (src/engine/local_put.ts, taken by every `put`
 * and `insert` on the memory storage) against the general path (a file
 * storage: queued, prepared and committed as a batch): random sequences of
 * puts with and without TTLs, inserts, deletes and clock moves, over a
 * unique and a plain index, must give the same answers, the same errors, the
 * same documents and metadata, the same change feed and the same counts
 * (the fast path also removes the tombstone of a key written again).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, open } from "../mod.ts";
import { decodeKey, encodeKey, MemoryStorage } from "../storage.ts";
import { FileStorage } from "../src/storage/file.ts";
import type { Storage } from "../src/storage/contract.ts";
import { FakeClock } from "./conformance/database_suite.ts";

type Op =
  | {
    t: "put";
    k: string;
    u: number;
    n: number;
    ttl: number | undefined;
    tags: readonly string[] | undefined;
  }
  | { t: "insert"; k: string; u: number }
  | { t: "delete"; k: string }
  | { t: "tick"; ms: number };

const KEYS = ["a", "b", "c", "d", "e"];
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("put" as const),
      k: fc.constantFrom(...KEYS),
      u: fc.integer({ min: 0, max: 5 }),
      n: fc.integer({ min: 0, max: 3 }),
      ttl: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
      tags: fc.option(fc.constantFrom(["x"], ["y"], ["x", "y"]), {
        nil: undefined,
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("insert" as const),
      k: fc.constantFrom(...KEYS),
      u: fc.integer({ min: 0, max: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("delete" as const),
      k: fc.constantFrom(...KEYS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 30 }),
    }),
  },
);

async function apply(db: Database, clock: FakeClock, o: Op): Promise<string> {
  const c = db.collection("c", {
    indexes: [{ fields: "u", unique: true }, { fields: "n" }],
  });
  try {
    switch (o.t) {
      case "put": {
        const options = {
          ...(o.ttl === undefined ? {} : { ttl: o.ttl }),
          ...(o.tags === undefined ? {} : { tags: o.tags }),
        };
        return String(await c.put(o.k, { u: o.u, n: o.n }, options));
      }
      case "insert":
        return String(await c.insert({ _id: o.k, u: o.u, n: 9 }));
      case "delete":
        return String(await c.delete(o.k));
      case "tick":
        clock.advance(o.ms);
        return "tick";
    }
  } catch (e) {
    return `error ${(e as Error).constructor.name}`;
  }
}

/** The keys that hold a tombstone, as the storage has them. */
async function tombstones(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (
    const page of storage.scan({ prefix: encodeKey(["t", "c"]) })
  ) {
    for (const e of page) keys.push(String(decodeKey(e.key)[2]));
  }
  return keys;
}

async function state(db: Database): Promise<unknown> {
  const c = db.collection("c");
  const docs = [];
  for (const k of KEYS) {
    const e = await c.getEntry(k);
    docs.push(
      e === null ? null : {
        value: e.value,
        version: e.version,
        createdAt: e.createdAt,
        updatedAt: e.updatedAt,
        expiresAt: e.expiresAt,
      },
    );
  }
  const byU = [];
  for (let u = 0; u <= 5; u++) {
    const keys = [];
    for await (const e of c.find({ u }).entries()) keys.push(e.key);
    byU.push(keys);
  }
  const feed = (await Array.fromAsync(c.changes({ live: false })))
    .map((f) => `${f.type} ${f.key} ${f.version}`);
  const tagged = [];
  for await (const e of c.find({ tags: "x" }).entries()) tagged.push(e.key);
  const values = [];
  for (const k of KEYS) values.push(await c.get(k));
  return {
    docs,
    values,
    tagged,
    taggedCount: await c.count({ tags: "x" }),
    byU,
    count: await c.count(),
    n1: await c.count({ n: 1 }),
    feed,
  };
}

Deno.test("put paths: the single-put fast path answers as the general path does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-putpaths-" });
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 40 }),
        async (ops) => {
          const fastClock = new FakeClock();
          const slowClock = new FakeClock();
          // Timers off: only the writes and reads below move anything.
          const timers = { ttlCheckInterval: Infinity } as const;
          const fastStorage = new MemoryStorage();
          const slowStorage = await FileStorage.open(`${dir}/${run++}.tdb`);
          await using fast = await open({
            storage: fastStorage,
            clock: fastClock,
            ...timers,
          });
          await using slow = await open({
            storage: slowStorage,
            clock: slowClock,
            ...timers,
          });
          for (const o of ops) {
            const a = await apply(fast, fastClock, o);
            const b = await apply(slow, slowClock, o);
            assert.equal(a, b, `answer to ${JSON.stringify(o)}`);
          }
          assert.deepEqual(await state(fast), await state(slow));
          // The local paths remove a tombstone when its key is written
          // again (the shared path leaves it: the record is newer).
          const live: string[] = [];
          for (const k of KEYS) {
            if (await fast.collection("c").has(k)) live.push(k);
          }
          const tombs = await tombstones(fastStorage);
          assert.deepEqual(tombs.filter((k) => live.includes(k)), []);
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("put paths: a refused single put changes nothing", async () => {
  const clock = new FakeClock();
  await using db = await open({ clock, memoryLimit: 64 * 1024 });
  const c = db.collection("c", { indexes: [{ fields: "u", unique: true }] });
  await c.put("a", { u: 1 });
  const before = db.stats();
  // Taken unique value, duplicate insert, over the memory limit.
  await assert.rejects(c.put("b", { u: 1 }), /unique index/);
  await assert.rejects(c.insert({ _id: "a", u: 2 }), /already exists/);
  await assert.rejects(c.put("c", { u: 3, big: "x".repeat(100_000) }));
  const after = db.stats();
  assert.equal(after.items, before.items);
  assert.equal(after.bytes, before.bytes);
  assert.deepEqual(
    (await Array.fromAsync(c.changes({ live: false }))).map((f) => f.key),
    ["a"],
  );
  assert.deepEqual(await c.get("a"), { u: 1 });
  assert.equal(await c.get("b"), null);
  assert.equal(await c.get("c"), null);
});
