/**
 * The object tier and the fast path (issue 14, items 1, 2, 3 and 6): the
 * memory storage keeps records as objects, writes on it complete before
 * `put` returns its promise, indexes hold references, and `readonly` reads
 * share frozen values. The whole conformance suite also runs over a file
 * storage that offers a persisting (non-volatile) object tier, the shape a
 * file storage with values on disk will have.
 */

import assert from "node:assert/strict";
import { DuplicateKeyError, open, QuotaError, TooLargeError } from "../mod.ts";
import { MemoryStorage } from "../storage.ts";
import { FileStorage } from "../src/storage/file.ts";
import type { ObjectTier, Storage } from "../src/storage/contract.ts";
import { encodeKey } from "../src/key_codec.ts";
import { collectionSuite } from "./conformance/collection_suite.ts";
import { databaseSuite } from "./conformance/database_suite.ts";
import type { StorageFactory } from "./conformance/storage_suite.ts";
import { FakeClock } from "./conformance/database_suite.ts";

/** A file storage that offers a persisting object tier. */
function withTier(storage: FileStorage): Storage {
  const objects: ObjectTier = {
    volatile: false,
    commit: () => {
      throw new Error("a persisting tier takes byte commits");
    },
  };
  return Object.assign(storage, { objects });
}

function tiered(name: string, reopen: boolean): StorageFactory {
  let dir: string | undefined;
  let path = "";
  const factory: StorageFactory = {
    name,
    create: async () => {
      dir = await Deno.makeTempDir({ prefix: "tether-tier-" });
      path = `${dir}/db.tdb`;
      return withTier(await FileStorage.open(path));
    },
    cleanup: async () => {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true });
      dir = undefined;
    },
  };
  if (!reopen) return factory;
  return {
    ...factory,
    reopen: async () => withTier(await FileStorage.open(path)),
    propertyScale: TORTURE ? 1 : 0.5,
  };
}

const TORTURE = Deno.env.get("TETHER_TORTURE") === "1";
// The reopened variant runs every step of the plain one and reopens after
// each write, with half the property cases (the plain file storage runs them
// in full in file_storage_test.ts); `deno task torture` (TETHER_TORTURE=1)
// runs the plain one too, and every case.
for (
  const factory of [
    ...(TORTURE ? [tiered("file with an object tier", false)] : []),
    tiered("file with an object tier, reopened after every write", true),
  ]
) {
  databaseSuite(factory);
  collectionSuite(factory);
}

Deno.test("memory storage keeps records as objects: bytes only when read", async () => {
  const storage = new MemoryStorage();
  assert.equal(storage.objects.volatile, true);
  await using db = await open({ storage });
  const value = { name: "Ann", tags: ["a"] };
  await db.put("k", value);
  const entry = await storage.get(encodeKey(["d", "default", "k"]));
  assert.ok(entry !== null);
  const memo = entry.memo as { value: unknown };
  assert.deepEqual(memo.value, value);
  assert.notEqual(memo.value, value, "the stored value is a copy");
  // Bytes are made on demand, and decode to the record.
  const text = new TextDecoder().decode(entry.value);
  assert.match(text, /"name":"Ann"/);
});

Deno.test("a put on memory storage is applied before its promise is awaited", async () => {
  await using db = await open();
  const pending = db.put("k", { n: 1 });
  assert.equal(db.stats().ops.puts, 1);
  assert.equal(db.stats().items, 1);
  await pending;
  // A failing fast-path write rejects and changes nothing.
  const bad = db.put("big", { s: "x".repeat(70_000) });
  assert.equal(db.stats().items, 1);
  await assert.rejects(bad, TooLargeError);
});

Deno.test("fast path: same errors and atomicity as the queued path", async () => {
  await using db = await open({ memoryLimit: 200_000 });
  const users = db.collection<{ email: string; n?: number }>("users", {
    indexes: [{ fields: "email", unique: true }],
  });
  await users.put("a", { email: "a@x" });
  await users.put("b", { email: "b@x" });
  await assert.rejects(users.put("c", { email: "a@x" }), DuplicateKeyError);
  assert.equal(await users.get("c"), null);
  // A batch with one duplicate writes nothing.
  await assert.rejects(
    users.putBatch(new Map([["d", { email: "d@x" }], ["e", { email: "b@x" }]])),
    DuplicateKeyError,
  );
  assert.equal(await users.get("d"), null);
  // Two items swap their unique values in one batch.
  await users.putBatch(
    new Map([["a", { email: "b@x" }], ["b", { email: "a@x" }]]),
  );
  assert.deepEqual(await users.findOne({ email: "a@x" }), { email: "a@x" });
  const holders = [];
  for await (const e of users.find({ email: "b@x" }).entries()) {
    holders.push(e.key);
  }
  assert.deepEqual(holders, ["a"]);
  // Past the memory limit: a QuotaError, nothing written.
  const before = db.stats().items;
  await assert.rejects(
    users.putBatch(
      new Map(
        Array.from(
          { length: 2000 },
          (_, i) => [`q${i}`, { email: `q${i}@x`, n: i }] as const,
        ),
      ),
    ),
    QuotaError,
  );
  assert.equal(db.stats().items, before);
  assert.equal(await users.count({ email: "q1@x" }), 0);
});

Deno.test("unique index: an expired holder's value is taken over", async () => {
  const clock = new FakeClock();
  await using db = await open({ clock, ttlCheckInterval: Infinity });
  const c = db.collection<{ email: string }>("c", {
    indexes: [{ fields: "email", unique: true }],
  });
  await c.put("old", { email: "a@x" }, { ttl: 1000 });
  clock.advance(2000);
  await c.put("new", { email: "a@x" });
  assert.deepEqual(
    await c.find({ email: "a@x" }).toArray(),
    [{ email: "a@x" }],
  );
  await db.cleanup(); // the expired holder goes; the new one keeps its entry
  assert.equal((await c.find({ email: "a@x" }).toArray()).length, 1);
  assert.equal((await db.verify()).problems.length, 0);
});

Deno.test("an index lookup examines only the matching entries", async () => {
  await using db = await open();
  const c = db.collection<{ age: number }>("c", {
    indexes: [{ fields: "age" }],
  });
  await c.putBatch(
    new Map(Array.from({ length: 1000 }, (_, i) => [`k${i}`, { age: i % 50 }])),
  );
  const plan = await c.find({ age: 42 }).explain();
  assert.equal(plan.index, "age_1");
  assert.equal(plan.returned, 20);
  assert.equal(plan.docsExamined, 20);
  // After updates and deletes the tree follows.
  await c.put("k42", { age: 7 });
  await c.delete("k92");
  assert.equal(await c.count({ age: 42 }), 18);
  assert.equal((await c.find({ age: { $gte: 48 } }).toArray()).length, 40);
});

Deno.test("readonly reads share frozen values and never expose stored state", async () => {
  await using db = await open();
  await db.put("k", { list: [1, 2], nested: { a: 1 } });
  const copy = await db.get("k") as { list: number[] };
  copy.list.push(3);
  const shared = await db.get("k", { readonly: true }) as {
    list: number[];
    nested: { a: number };
  };
  assert.deepEqual(shared.list, [1, 2]);
  assert.ok(Object.isFrozen(shared) && Object.isFrozen(shared.nested));
  assert.throws(() => shared.list.push(3), TypeError);
  assert.equal(await db.get("k", { readonly: true }), shared, "shared");
  const [found] = await db.find({}, { readonly: true }).toArray();
  assert.equal(found, shared);
  const entry = await db.getEntry("k", { readonly: true });
  assert.equal(entry?.value, shared);
  // An update stores a new value; the shared one is unchanged.
  await db.put("k", { list: [9] });
  assert.deepEqual(shared.list, [1, 2]);
  assert.deepEqual(await db.get("k"), { list: [9] });
  // Bad option values are TypeErrors.
  await assert.rejects(
    db.get("k", { readonly: 1 as unknown as boolean }),
    TypeError,
  );
  assert.throws(
    () => db.find({}, { readonly: "yes" as unknown as boolean }),
    TypeError,
  );
});

Deno.test("readonly: true on open is the default of every read; dates are copied", async () => {
  await using db = await open({ readonly: true });
  await db.put("k", { a: { b: 1 } });
  const v = await db.get("k") as { a: { b: number } };
  assert.ok(Object.isFrozen(v.a));
  assert.equal(await db.get("k"), v);
  const copy = await db.get("k", { readonly: false }) as { a: { b: number } };
  assert.ok(!Object.isFrozen(copy));
  copy.a.b = 2;
  assert.equal((await db.get("k") as { a: { b: number } }).a.b, 1);
  await db.put("d", { at: new Date(5) });
  const d = await db.get("d") as { at: Date };
  d.at.setTime(99);
  assert.equal((await db.get("d") as { at: Date }).at.getTime(), 5);
  // Updates go on working on stored values read internally.
  await db.update({ a: { $exists: true } }, { $set: { "a.b": 3 } });
  assert.deepEqual(await db.get("k"), { a: { b: 3 } });
  await assert.rejects(
    open({ readonly: "yes" as unknown as boolean }),
    TypeError,
  );
});

Deno.test("readonly: a slot frozen once shares its value until it is written again; dates stay copies", async () => {
  await using db = await open({ readonly: true });
  await db.createIndex("n");
  await db.put("k", { n: 1, list: [1] });
  const [first] = await db.find({ n: 1 }).toArray() as { list: number[] }[];
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first!.list));
  assert.equal((await db.find({ n: 1 }).toArray())[0], first, "the same");
  assert.equal(await db.get("k"), first);
  // A write replaces the value: the new one is shared (and frozen) now.
  await db.put("k", { n: 1, list: [2] });
  const [second] = await db.find({ n: 1 }).toArray() as { list: number[] }[];
  assert.notEqual(second, first);
  assert.deepEqual(second, { n: 1, list: [2] });
  assert.ok(Object.isFrozen(second!.list));
  assert.equal(await db.get("k"), second);
  assert.deepEqual(first!.list, [1]);
  // A value with a Date is copied on every read (a Date can be changed).
  await db.put("d", { n: 2, at: new Date(5) });
  const [a] = await db.find({ n: 2 }).toArray() as { at: Date }[];
  const [b] = await db.find({ n: 2 }).toArray() as { at: Date }[];
  assert.notEqual(a, b);
  a!.at.setTime(99);
  assert.equal(b!.at.getTime(), 5);
  assert.equal((await db.get("d") as { at: Date }).at.getTime(), 5);
});

Deno.test("memory storage's byte view follows object-tier writes in commit order", async () => {
  const storage = new MemoryStorage();
  await using db = await open({ storage });
  const key = encodeKey(["d", "default", "k"]);
  for (let i = 0; i < 5; i++) {
    await db.put("k", { i });
    await db.delete("k");
  }
  assert.equal(await storage.get(key), null);
  await db.put("k", { i: 9 });
  const entry = await storage.get(key);
  assert.deepEqual((entry?.memo as { value: unknown }).value, { i: 9 });
  // A tombstone per deletion, the last one removed by the re-put.
  assert.equal(
    await storage.get(encodeKey(["t", "default", "k"])),
    null,
  );
  // Many overwrites of one key stay one entry.
  for (let i = 0; i < 2000; i++) await db.put("k", { i });
  let n = 0;
  for await (const page of storage.scan({ prefix: encodeKey(["d"]) })) {
    n += page.length;
  }
  assert.equal(n, 1);
});
