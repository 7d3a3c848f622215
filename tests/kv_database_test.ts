/**
 * Deno KV specifics: values split across KV entries, writes over KV's
 * atomic limits, expiry hidden before KV removes it, bulk work in steps,
 * prefixes, several handles on one KV (schema changes, change feed).
 */

import assert from "node:assert/strict";
import {
  type Change,
  DuplicateKeyError,
  IntegrityError,
  open,
  TooLargeError,
} from "../mod.ts";
import type { KvAtomicLike, KvLike } from "../src/storage/kv.ts";
import { FakeClock } from "./conformance/database_suite.ts";
import { fill } from "./conformance/storage_suite.ts";
import { damageDocument, overwriteBytes } from "./fixtures/kv_damage.ts";

async function rawKeys(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix })) n++;
  return n;
}

Deno.test("kv: values across the 64 KiB boundary are split and joined in one atomic write", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, maxValueBytes: 300_000 });
  const sizes = [65_000, 65_500, 65_536, 65_600, 131_072, 200_000];
  for (const n of sizes) {
    await db.put(`v${n}`, { s: "x".repeat(n - 40) });
  }
  assert.ok(await rawKeys(kv, ["tether", "c"]) > 0, "large values are split");
  for (const n of sizes) {
    const got = await db.get(`v${n}`) as { s: string };
    assert.equal(got.s.length, n - 40);
  }
  // Overwriting with a small value or deleting removes every part.
  for (const n of sizes) {
    if (n % 2 === 0) await db.put(`v${n}`, { s: "small" });
    else await db.delete(`v${n}`);
  }
  assert.equal(await rawKeys(kv, ["tether", "c"]), 0, "no part left behind");
  assert.deepEqual(await db.get("v65536"), { s: "small" });
  await assert.rejects(
    db.put("huge", { s: "x".repeat(400_000) }),
    TooLargeError,
  );
  kv.close();
});

Deno.test("kv: maxValueBytes over what one atomic write holds is a RangeError", async () => {
  await assert.rejects(
    open({ kv: ":memory:", maxValueBytes: 2_000_000 }),
    RangeError,
  );
  await assert.rejects(open({ kv: ":memory:", path: "x.tdb" }), TypeError);
  await assert.rejects(open({ prefix: ["a"] }), TypeError);
  await assert.rejects(
    open({ kv: ":memory:", prefix: "a" as unknown as string[] }),
    TypeError,
  );
});

Deno.test("kv: a batch over the atomic limits is a TooLargeError and writes nothing", async () => {
  await using db = await open({ kv: ":memory:" });
  const err = await db.putBatch(Array.from({ length: 150 }, (_, i) => i))
    .then(() => undefined, (e) => e);
  assert.ok(err instanceof TooLargeError);
  assert.match(err.message, /100 version checks|allows 100/);
  assert.equal(await db.count(), 0);
  const c = db.collection("c");
  await c.createIndex("labels");
  // 50 documents of 25 labels: 1300 mutations, over KV's 1000.
  const labels = Array.from({ length: 25 }, (_, i) => `l${i}`);
  const over = await c.insertMany(
    Array.from({ length: 50 }, (_, i) => ({ a: i, b: i, labels })),
  ).then(() => undefined, (e) => e);
  assert.ok(over instanceof TooLargeError);
  assert.match(over.message, /mutations/);
  assert.equal(await c.count(), 0);
  // Within the limits, one call is one atomic write.
  assert.equal(
    (await c.insertMany([{ a: 1, b: 1 }, { a: 2, b: 2 }])).length,
    2,
  );
  assert.equal(await c.count({ a: 2 }), 1);
});

Deno.test("kv: an expired item is hidden at once, before KV removes it", async () => {
  const clock = new FakeClock();
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, clock, ttlCheckInterval: Infinity });
  const c = db.collection<{ _id?: string; room: string }>("c");
  await c.createIndex("room");
  await c.put("t1", { room: "a" }, { ttl: 60_000 });
  await c.put("t2", { room: "a" });
  clock.advance(60_000);
  // Deno KV itself still holds it (its expiry is in real time, later).
  assert.ok(await rawKeys(kv, ["tether"]) > 2);
  assert.equal(await c.get("t1"), null);
  assert.deepEqual(await c.find({ room: "a" }).toArray(), [{ room: "a" }]);
  assert.deepEqual(await c.get("t2"), { room: "a" });
  assert.equal(await c.count({ room: "a" }), 1);
  assert.equal(await c.count(), 1);
  kv.close();
});

Deno.test("kv: index builds, drops and clear of more documents than one atomic write holds", async () => {
  await using db = await open({ kv: ":memory:" });
  const c = db.collection("big");
  const docs = Array.from({ length: 1500 }, (_, i) => ({
    n: i,
    g: i % 10,
    u: `u${i}`,
  }));
  await fill(docs, (part) => c.insertMany(part));
  assert.equal(await c.createIndex("g"), "g_1");
  assert.equal(await c.createIndex("u", { unique: true }), "u_1");
  const plan = await c.find({ g: 3 }).explain();
  assert.equal(plan.index, "g_1");
  assert.equal(plan.returned, 150);
  assert.equal(await c.count({ u: "u77" }), 1);
  await assert.rejects(c.insert({ u: "u77" }), DuplicateKeyError);
  // A duplicate met while building a unique index leaves no index behind.
  await c.put("dup", { n: 0, g: 0, u: "x" });
  await assert.rejects(c.createIndex("n", { unique: true }), DuplicateKeyError);
  assert.deepEqual((await c.indexes()).map((i) => i.name), ["g_1", "u_1"]);
  assert.equal((await c.first(3)).length, 3);
  assert.equal(await c.dropIndex("g_1"), true);
  assert.equal(await c.clear(), 1501);
  assert.equal(await c.count(), 0);
  assert.equal(await c.find({ u: "u5" }).count(), 0);
});

Deno.test("kv: prefixes keep databases on one KV apart", async () => {
  const kv = await Deno.openKv(":memory:");
  await using a = await open({ kv, prefix: ["app", "a"] });
  await using b = await open({ kv, prefix: ["app", "b"] });
  await a.put("k", 1);
  await b.put("k", 2);
  assert.equal(await a.get("k"), 1);
  assert.equal(await b.get("k"), 2);
  assert.equal(await a.count(), 1);
  await a.clear();
  assert.equal(await b.get("k"), 2);
  kv.close();
});

Deno.test("kv: an index created by another handle is kept by this one's next write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-" });
  try {
    const path = `${dir}/kv.sqlite`;
    await using one = await open({ kv: path });
    await using two = await open({ kv: path });
    const c1 = one.collection("c");
    const c2 = two.collection("c");
    await c2.insert({ _id: "before", v: 1 }); // two knows the schema now
    await c1.createIndex("v", { unique: true });
    await c2.insert({ _id: "after", v: 2 }); // must write the index entry
    await assert.rejects(c2.insert({ v: 2 }), DuplicateKeyError);
    const plan = await c1.find({ v: 2 }).explain();
    assert.equal(plan.index, "v_1");
    assert.equal(plan.returned, 1);
    assert.deepEqual(await c2.find({ v: 1 }).toArray(), [{
      _id: "before",
      v: 1,
    }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: watch reports this handle's changes in order, and another handle's with feed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-" });
  try {
    const path = `${dir}/kv.sqlite`;
    await using one = await open({ kv: path, feed: true });
    await using two = await open({ kv: path, feed: true });
    const local: Change[] = [];
    const remote: Change[] = [];
    const stop = new AbortController();
    const seenLocal = (async () => {
      for await (const change of one.watch({ signal: stop.signal })) {
        local.push(change);
        if (local.length === 3) return;
      }
    })();
    const seenRemote = (async () => {
      for await (const change of two.watch({ signal: stop.signal })) {
        remote.push(change);
        if (change.type === "delete") return;
      }
    })();
    await new Promise((r) => setTimeout(r, 50)); // both watches started
    await one.put("a", 1);
    await new Promise((r) => setTimeout(r, 50));
    await one.put("a", 2);
    await new Promise((r) => setTimeout(r, 50));
    await one.delete("a");
    await seenLocal;
    await seenRemote;
    stop.abort();
    assert.deepEqual(local.map((c) => [c.type, c.key, c.version]), [
      ["put", "a", 1],
      ["put", "a", 2],
      ["delete", "a", undefined],
    ]);
    assert.ok(remote.length >= 1 && remote.every((c) => c.remote === true));
    assert.deepEqual(remote.at(-1), {
      type: "delete",
      collection: "default",
      key: "a",
      remote: true,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: update and deleteMany over more documents than one atomic write holds go in groups", async () => {
  await using db = await open({ kv: ":memory:" });
  const c = db.collection<{ n: number; even: boolean; seen?: number }>("c");
  await c.createIndex("even");
  await fill(
    Array.from({ length: 450 }, (_, i) => ({ n: i, even: i % 2 === 0 })),
    (part) => c.insertMany(part),
  );
  assert.equal(await c.update({ even: true }, { $inc: { seen: 1 } }), 225);
  assert.equal(await c.count({ seen: 1 }), 225);
  assert.equal(await c.count({ seen: { $exists: false } }), 225);
  assert.equal(await c.deleteMany({ n: { $gte: 100 } }), 350);
  assert.equal(await c.count(), 100);
  assert.equal(await c.count({ even: true }), 50);
  assert.equal((await c.find({ even: false }).explain()).returned, 50);
});

Deno.test("kv: a key too long for Deno KV is a TooLargeError, and reading it finds nothing", async () => {
  await using db = await open({ kv: ":memory:" });
  const long = "\0".repeat(700); // escaped twice on the way into KV
  assert.equal(await db.get(long), null);
  await assert.rejects(db.put(long, 1), TooLargeError);
  const c = db.collection("c");
  await c.createIndex("s");
  await assert.rejects(c.insert({ s: "\0".repeat(1000) }), TooLargeError);
  assert.equal(await c.count(), 0);
  assert.equal(await db.count(), 0);
});

Deno.test("insert with a TTL expires the document and its index entries", async () => {
  const clock = new FakeClock();
  await using db = await open({ kv: ":memory:", clock });
  const c = db.collection<{ _id?: string; device: string }>("readings");
  await c.createIndex("device");
  const id = await c.insert({ device: "d1" }, { ttl: 1000, tags: ["s"] });
  await c.insertMany([{ device: "d1" }], { ttl: 5000 });
  assert.equal((await c.getEntry(id))?.expiresAt, clock.now() + 1000);
  assert.deepEqual((await c.getEntry(id))?.tags, ["s"]);
  clock.advance(1000);
  assert.equal(await c.findOne({ _id: id }), null);
  assert.equal(await c.count({ device: "d1" }), 1);
  await assert.rejects(c.insert({ device: "d2" }, { ttl: -1 }), RangeError);
});

Deno.test("kv: a put that guessed its key was new reads and writes again when it was not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-" });
  try {
    const clock = new FakeClock();
    const path = `${dir}/kv.sqlite`;
    await using one = await open({ kv: path, clock });
    await using two = await open({ kv: path, clock });
    await one.put("k", { v: 1 });
    clock.advance(5);
    await two.put("k", { v: 2 }); // two has never seen "k"
    const entry = await one.getEntry("k");
    assert.equal(entry?.version, 2);
    assert.equal(entry?.createdAt, clock.now() - 5);
    assert.deepEqual(entry?.value, { v: 2 });
    const c1 = one.collection("c");
    const c2 = two.collection("c");
    await c1.insert({ _id: "x" });
    await assert.rejects(c2.insert({ _id: "x" }), DuplicateKeyError);
    // Keys that keep existing stop the guessing; answers stay right.
    for (let i = 3; i < 8; i++) await two.put("k", { v: i });
    assert.equal((await one.getEntry("k"))?.version, 7);
    assert.equal(await two.count(), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: writes over items this handle wrote last stay right when another handle changed them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tether-kv-" });
  try {
    const path = `${dir}/kv.sqlite`;
    await using one = await open({ kv: path });
    await using two = await open({ kv: path });
    await one.put("k", { v: 1 });
    await one.put("k", { v: 2 }); // over what one wrote: no read needed
    assert.equal((await two.getEntry("k"))?.version, 2);
    await two.put("k", { v: 3 }); // one's memory of "k" is now stale
    await one.put("k", { v: 4 });
    const entry = await two.getEntry("k");
    assert.equal(entry?.version, 4);
    assert.deepEqual(entry?.value, { v: 4 });
    const c1 = one.collection<{ _id?: string; n: number }>("c");
    const c2 = two.collection<{ _id?: string; n: number }>("c");
    await c1.createIndex("n", { unique: true });
    await c1.insert({ _id: "a", n: 1 });
    await c2.deleteMany({ _id: "a" });
    // one remembers "a", but it is gone: an insert of "a" must succeed.
    await c1.insert({ _id: "a", n: 2 });
    await c1.update({ _id: "a" }, { $inc: { n: 10 } });
    await c2.update({ _id: "a" }, { $inc: { n: 100 } });
    await c1.update({ _id: "a" }, { $inc: { n: 1000 } });
    assert.deepEqual(await c2.findOne({ _id: "a" }), { _id: "a", n: 1112 });
    assert.equal(await c2.count({ n: 1112 }), 1);
    assert.equal(await one.delete("k"), true);
    assert.equal(await two.get("k"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: with the real clock an item expires by KV's own expireIn, and reads hide it at once", async () => {
  const kv = await Deno.openKv(":memory:");
  await using db = await open({ kv, ttlCheckInterval: Infinity });
  assert.equal(db.stats().storage, "KvStorage");
  const c = db.collection<{ _id?: string; room: string }>("c");
  await c.createIndex("room");
  await c.insert({ _id: "gone", room: "a" }, { ttl: 1 });
  await c.insert({ _id: "kept", room: "a" });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(await c.get("gone"), null);
  assert.deepEqual(await c.find({ room: "a" }).toArray(), [{
    _id: "kept",
    room: "a",
  }]);
  assert.equal(await c.count({ room: "a" }), 1);
  kv.close();
});

/** A Deno.Kv whose atomic operations report the `expireIn` of their sets. */
function recording(kv: Deno.Kv, seen: (number | undefined)[]): KvLike {
  return {
    get: (key) => kv.get(key as Deno.KvKey),
    getMany: (keys) => kv.getMany(keys as Deno.KvKey[]),
    list: (selector, options) =>
      kv.list(selector as { start: Deno.KvKey; end: Deno.KvKey }, options),
    watch: (keys) => kv.watch(keys as Deno.KvKey[]),
    close: () => kv.close(),
    atomic: () => {
      const op = kv.atomic();
      const wrapped: KvAtomicLike = {
        check: (...checks) => {
          op.check(...(checks as Deno.AtomicCheck[]));
          return wrapped;
        },
        set: (key, value, options) => {
          seen.push(options?.expireIn);
          op.set(key as Deno.KvKey, value, options);
          return wrapped;
        },
        delete: (key) => {
          op.delete(key as Deno.KvKey);
          return wrapped;
        },
        commit: () => op.commit(),
      };
      return wrapped;
    },
  };
}

Deno.test("kv: KV's own expiry gets the TTL with the real clock, and nothing with an injected one (it runs on real time)", async () => {
  for (const injected of [false, true]) {
    const kv = await Deno.openKv(":memory:");
    const seen: (number | undefined)[] = [];
    const clock = new FakeClock();
    await using db = await open({
      kv: recording(kv, seen),
      ttlCheckInterval: Infinity,
      ...(injected ? { clock } : {}),
    });
    await db.put("k", 1, { ttl: 60_000 });
    const withTtl = seen.filter((x) => x !== undefined);
    if (injected) {
      assert.deepEqual(withTtl, []);
      clock.advance(60_000);
      assert.equal(await db.get("k"), null);
    } else {
      // The item and its change feed by-position key.
      assert.equal(withTtl.length, 2);
      for (const ms of withTtl) assert.ok(ms! > 59_000 && ms! <= 60_000);
    }
    kv.close();
  }
});

Deno.test("kv: putBatch with atomic: false splits a batch over the atomic limits; atomic stays all or nothing", async () => {
  await using db = await open({ kv: ":memory:", maxValueBytes: 60_000 });
  const many = new Map(
    Array.from({ length: 450 }, (_, i) => [`k${i}`, { i }] as const),
  );
  const err = await db.putBatch(many).then(() => undefined, (e) => e);
  assert.ok(err instanceof TooLargeError);
  assert.match(err.message, /atomic: false/);
  assert.equal(await db.count(), 0);
  const keys = await db.putBatch(many, { atomic: false, ttl: 60_000 });
  assert.equal(keys.length, 450);
  assert.equal(await db.count(), 450);
  assert.deepEqual(await db.get("k449"), { i: 449 });
  // Large values: 40 of 50 KB pass KV's 800 KiB per atomic write; groups
  // are halved until they fit.
  const big = Array.from(
    { length: 40 },
    (_, i) => ({ i, s: "x".repeat(50_000) }),
  );
  await assert.rejects(db.putBatch(big), TooLargeError);
  assert.equal((await db.putBatch(big, { atomic: false })).length, 40);
  assert.equal(await db.count(), 490);
  // A failure part way says how many were stored before.
  const bad = new Map<string, unknown>(
    Array.from({ length: 200 }, (_, i) => [`b${i}`, { i }]),
  );
  bad.set("b150", { s: "x".repeat(70_000) }); // over maxValueBytes
  const partial = await db.putBatch(bad, { atomic: false }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(partial instanceof TooLargeError);
  assert.match(partial.message, /of 200 items were stored before/);
  await assert.rejects(
    db.putBatch([1], { atomic: "no" as unknown as boolean }),
    TypeError,
  );
});

Deno.test("kv: a value another program wrote under the prefix fails reads of its item only; verify reports it and goes on", async () => {
  using kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const c = db.collection<{ x: number }>("c");
  await c.createIndex("x");
  await c.put("a", { x: 1 });
  await c.put("b", { x: 2 });
  await db.put("k", { y: 1 });
  // Overwrite a document and an index entry with what another program
  // might write under the same prefix.
  const text = (key: Deno.KvKey) =>
    key.map((p) => p instanceof Uint8Array ? new TextDecoder().decode(p) : p)
      .join("|");
  for await (const e of kv.list({ prefix: [] })) {
    const t = text(e.key);
    if (t.includes("0default\u00000k\u0000")) {
      await kv.set(e.key, { not: "ours" });
    }
    if (t.startsWith("tether|0i") && t.endsWith("0b\u0000")) {
      await kv.set(e.key, 42);
    }
  }
  // Reads of that item fail, naming the cause; the others work.
  await assert.rejects(
    db.get("k"),
    (e) => e instanceof IntegrityError && /another program/.test(e.message),
  );
  assert.deepEqual(await c.get("a"), { x: 1 });
  assert.deepEqual(await c.get("b"), { x: 2 });
  // verify lists both and does not stop at the first.
  const report = await db.verify();
  assert.equal(report.problems.length, 2, JSON.stringify(report.problems));
  assert(
    report.problems.some((p) =>
      p.collection === "default" && p.key === "k" &&
      /another program/.test(p.problem)
    ),
  );
  assert(
    report.problems.some((p) =>
      p.collection === "c" && /index 'x_1' cannot be read/.test(p.problem)
    ),
  );
});

Deno.test("kv: a damaged item is removed by delete or replaced by put, with the index entries it had; other writes over it still fail", async () => {
  using kv = await Deno.openKv(":memory:");
  const warned: string[] = [];
  await using db = await open({
    kv,
    logger: {
      warn: (_m: string, d: { event: string }) => warned.push(d.event),
    },
  });
  const c = db.collection<{ x: number; y?: string }>("c");
  await c.createIndex("x");
  await c.createIndex("y", { unique: true, sparse: true });
  await c.put("a", { x: 1, y: "u" });
  await c.put("b", { x: 2 });
  await c.put("keep", { x: 1 });
  assert.equal((await c.first(3)).length, 3); // the insertion-order entries
  const damage = (id: string) => damageDocument(kv, "c", id);
  await damage("a");
  await damage("b");
  assert.equal((await db.verify()).problems.length, 2);
  // Writes that need the old record still fail.
  await assert.rejects(c.insert({ _id: "a", x: 9 } as never), IntegrityError);
  await assert.rejects(
    c.update({ _id: "b" }, { $set: { x: 3 } }),
    IntegrityError,
  );
  // delete removes it, and its entries (index-only counts see none).
  assert.equal(await c.delete("a"), true);
  assert.equal(await c.count({ x: 1 }), 1);
  assert.deepEqual(await c.find({ x: 1 }).toArray(), [{ x: 1 }]);
  // Its unique value is free again.
  await c.put("z", { x: 7, y: "u" });
  // put replaces it as a new item.
  await c.put("b", { x: 5 });
  assert.deepEqual(await c.get("b"), { x: 5 });
  assert.equal((await c.getEntry("b"))?.version, 1);
  assert.equal(await c.count({ x: 2 }), 0);
  assert.equal(await c.count({ x: 5 }), 1);
  assert.deepEqual(
    (await c.first(10)).map((d) => d.x).sort(),
    [1, 5, 7],
  );
  assert.deepEqual((await db.verify()).problems, []);
  assert.deepEqual(warned, ["damaged-item", "damaged-item"]);
  // The change feed goes on past them.
  const keys: string[] = [];
  for await (const ch of c.changes({ live: false })) keys.push(ch.key);
  assert.deepEqual(keys.sort(), ["a", "b", "keep", "z"]);
  // clear() removes a damaged item with the rest, and counts it.
  await damage("keep");
  assert.equal(await c.clear(), 3);
  assert.equal(await c.count(), 0);
  assert.deepEqual((await db.verify()).problems, []);
  assert.equal(warned.length, 3);
});

Deno.test("kv: a by-position feed entry written over is reported with its position, after the changes before it; resuming after it reads on", async () => {
  using kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const c = db.collection<{ x: number }>("c");
  await c.put("a", { x: 1 });
  await c.put("lost", { x: 2 });
  await c.putBatch(new Map([["b1", { x: 3 }], ["b2", { x: 4 }]]), {
    assumeNew: true,
    atomic: false,
  });
  await c.put("z", { x: 5 });
  const all: string[] = [];
  for await (const ch of c.changes({ live: false })) all.push(ch.seq);
  assert.equal(all.length, 5);
  assert.equal(await overwriteBytes(kv, (t) => t === '["c","lost",1]'), 1);
  const read = async (since?: string) => {
    const keys: string[] = [];
    try {
      for await (
        const ch of c.changes({ live: false, ...since ? { since } : {} })
      ) keys.push(ch.key);
      return { keys, error: undefined };
    } catch (error) {
      return { keys, error };
    }
  };
  const first = await read(all[0]);
  assert.deepEqual(first.keys, []);
  assert(first.error instanceof IntegrityError, String(first.error));
  assert.equal(first.error.seq, all[1]);
  assert.match(first.error.message, /by-position entry at position \d+/);
  // From the start: the change before it comes first.
  const start = await read();
  assert.deepEqual(start.keys, ["a"]);
  assert(start.error instanceof IntegrityError);
  assert.deepEqual((await read(first.error.seq)).keys, ["b1", "b2", "z"]);
  // A bulk write's block: its puts are lost to the feed together.
  assert.equal(
    await overwriteBytes(kv, (t) => t.startsWith('{"c":"c",')),
    1,
  );
  const block = await read(all[1]);
  assert.deepEqual(block.keys, []);
  assert(block.error instanceof IntegrityError, String(block.error));
  assert.equal(block.error.seq, all[3]);
  assert.match(block.error.message, /block of puts ending at position/);
  assert.deepEqual((await read(block.error.seq)).keys, ["z"]);
  // The documents themselves are intact; verify lists both entries.
  assert.deepEqual(await c.get("lost"), { x: 2 });
  assert.deepEqual(await c.get("b2"), { x: 4 });
  const { problems } = await db.verify();
  assert.deepEqual(
    problems.map((p) => p.problem.match(/position (\d+)/)?.[1]),
    [
      first.error.seq,
      block.error.seq,
    ],
  );
});

Deno.test("kv: the change feed names a damaged item's change by its position, and resumes after it", async () => {
  using kv = await Deno.openKv(":memory:");
  await using db = await open({ kv });
  const c = db.collection<{ x: number }>("c");
  await c.put("a", { x: 1 });
  await c.put("bad", { x: 2 });
  await c.put("z", { x: 3 });
  const all: string[] = [];
  for await (const ch of c.changes({ live: false })) all.push(ch.seq);
  assert.equal(await damageDocument(kv, "c", "bad"), 1);
  const read: string[] = [];
  const error = await (async () => {
    try {
      for await (const ch of c.changes({ live: false })) read.push(ch.key);
    } catch (e) {
      return e;
    }
  })();
  assert(error instanceof IntegrityError, String(error));
  assert.deepEqual(read, ["a"], String((error as Error).stack));
  assert.equal(error.seq, all[1]);
  assert.match(error.message, /position \d+ \(a put of "bad" in 'c'\)/);
  assert.match(error.message, /another program/);
  // Resuming after it reads on; a database-wide feed names it alike.
  const rest: string[] = [];
  for await (const ch of c.changes({ since: error.seq, live: false })) {
    rest.push(ch.key);
  }
  assert.deepEqual(rest, ["z"]);
  await assert.rejects(
    async () => {
      for await (const _ of db.changes({ live: false }));
    },
    (e) => e instanceof IntegrityError && e.seq === all[1],
  );
});
