/**
 * The database conformance suite: the public API's behaviour, run unchanged
 * on every storage adapter. Call {@linkcode databaseSuite} with a factory of
 * fresh, empty storages.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ClosedError,
  type Database,
  IntegrityError,
  open,
  type OpenOptions,
  QuotaError,
  TooLargeError,
} from "../../mod.ts";
import { encodeKey } from "../../src/key_codec.ts";
import type { Storage } from "../../src/storage/contract.ts";
import {
  fill,
  loadSize,
  propertyRuns,
  type StorageFactory,
} from "./storage_suite.ts";
import { reopening } from "./reopen.ts";

/** A clock the test moves by hand. */
export class FakeClock {
  /** The current time, epoch ms. */
  time: number;
  /**
   * @param time Start time.
   */
  constructor(time = 1_700_000_000_000) {
    this.time = time;
  }
  /** @returns The current time. */
  now(): number {
    return this.time;
  }
  /** @param ms How far to move. */
  advance(ms: number): void {
    this.time += ms;
  }
}

type Ctx = { db: Database; clock: FakeClock; storage: Storage };

/**
 * Registers the database conformance tests for one adapter.
 *
 * @param factory Makes fresh storages.
 */
export function databaseSuite(factory: StorageFactory): void {
  const t = (
    name: string,
    fn: (ctx: Ctx) => Promise<void>,
    options: Omit<OpenOptions, "storage" | "clock"> = {},
  ) =>
    Deno.test(`database conformance [${factory.name}]: ${name}`, async () => {
      const clock = new FakeClock();
      let storage = await factory.create();
      let db = await open({ ...options, storage, clock });
      if (factory.reopen !== undefined) {
        const reopen = factory.reopen;
        db = reopening(db, async () => {
          storage = await reopen();
          return await open({ ...options, storage, clock });
        }).db;
      }
      const current = new Proxy({} as Storage, {
        get: (_, prop) => {
          const value = Reflect.get(storage, prop, storage);
          return typeof value === "function" ? value.bind(storage) : value;
        },
      });
      try {
        await fn({ db, clock, storage: current });
      } finally {
        await db.close();
        await factory.cleanup?.();
      }
    });

  t("put with an auto key, get, delete", async ({ db }) => {
    const key = await db.put({ temp: 21.5 });
    assert.equal(typeof key, "string");
    assert.deepEqual(await db.get(key), { temp: 21.5 });
    assert.equal(await db.delete(key), true);
    assert.equal(await db.delete(key), false);
    assert.equal(await db.get(key), null);
  });

  t("put with a key replaces and bumps the version", async ({ db, clock }) => {
    assert.equal(await db.put("user1", { name: "John", age: 30 }), "user1");
    const first = await db.getEntry("user1");
    clock.advance(5);
    await db.put("user1", { name: "John", age: 31 });
    const second = await db.getEntry("user1");
    assert.equal(first?.version, 1);
    assert.equal(second?.version, 2);
    assert.equal(second?.createdAt, first?.createdAt);
    assert.equal(second?.updatedAt, first!.updatedAt + 5);
    assert.deepEqual(second?.value, { name: "John", age: 31 });
  });

  t("-0 is stored as 0, at any depth, by every write", async ({ db }) => {
    await db.put("z", -0);
    await db.put("doc", { a: -0, list: [-0, 1], deep: { b: -0 } });
    await db.putBatch(new Map([["batch", { c: -0 }]]));
    const isZero = (v: unknown) => Object.is(v, 0);
    assert.ok(isZero(await db.get("z")), "a value of -0");
    const doc = await db.get("doc") as {
      a: number;
      list: number[];
      deep: { b: number };
    };
    assert.ok(isZero(doc.a) && isZero(doc.list[0]) && isZero(doc.deep.b));
    assert.ok(isZero((await db.get("batch") as { c: number }).c));
    // A query for 0 finds it, as it finds -0.
    assert.equal(await db.count({ a: 0 }), 1);
    assert.equal(await db.count({ a: -0 }), 1);
  });

  t("stores every JSON type and Dates, at any depth", async ({ db }) => {
    const value = {
      s: "é\u0000😀",
      n: -1.5e-7,
      big: Number.MAX_SAFE_INTEGER,
      t: true,
      f: false,
      nil: null,
      arr: [1, "two", [3], { four: 4 }, new Date(5)],
      nested: { at: new Date("2024-01-02T03:04:05.678Z"), deep: { x: [] } },
      ...JSON.parse('{"__proto__": {"polluted": true}}'),
    };
    const key = await db.put(value);
    const got = await db.get(key) as typeof value;
    assert.deepEqual(got, value);
    assert.ok(got.nested.at instanceof Date);
    assert.ok(got.arr[4] instanceof Date);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    await db.put("scalar", 42);
    assert.equal(await db.get("scalar"), 42);
    await db.put("null", null);
    assert.equal(await db.get("null"), null);
    assert.equal(await db.has("null"), true);
    await db.put("date", new Date(7));
    assert.deepEqual(await db.get("date"), new Date(7));
  });

  t(
    "results are copies and the caller's object is never changed",
    async ({ db }) => {
      const input = { list: [1], name: "a" };
      await db.put("k", input, { tags: ["x"] });
      assert.deepEqual(input, { list: [1], name: "a" }, "no _tags added");
      input.list.push(2);
      const got = await db.get("k") as typeof input;
      assert.deepEqual(got.list, [1]);
      got.list.push(3);
      assert.deepEqual((await db.get("k") as typeof input).list, [1]);
      const [viaQuery] = await db.query({ name: "a" }) as (typeof input)[];
      viaQuery!.name = "changed";
      assert.deepEqual(await db.query({ name: "a" }), [{
        list: [1],
        name: "a",
      }]);
    },
  );

  t(
    "invalid values are TypeErrors naming the path; nothing is stored",
    async ({ db }) => {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic.self = cyclic;
      class Point {
        x = 1;
      }
      const cases: [unknown, RegExp][] = [
        [{ a: { b: () => 1 } }, /a\.b/],
        [{ a: [1, NaN] }, /a\[1\]/],
        [{ a: Infinity }, /'a'/],
        [{ a: 10n }, /bigint/],
        [cyclic, /circular reference at 'self'/],
        [{ p: new Point() }, /Point is not a plain object at 'p'/],
        [{ [Symbol("s")]: 1 }, /symbol key/],
        [{ a: [undefined] }, /undefined/],
        [{ m: new Map() }, /Map/],
        [undefined, /undefined/],
        [{ d: new Date(NaN) }, /invalid Date/],
      ];
      for (const [value, message] of cases) {
        await assert.rejects(db.put("bad", value), (e: Error) => {
          assert.ok(e instanceof TypeError, `${e}`);
          assert.match(e.message, message);
          assert.match(e.message, /Cannot put 'bad'/);
          return true;
        });
      }
      assert.equal(await db.count(), 0);
      assert.equal(await db.get("bad"), null);
      // Undefined properties are dropped, as JSON.stringify does.
      await db.put("u", { a: 1, b: undefined });
      assert.deepEqual(await db.get("u"), { a: 1 });
    },
  );

  t("keys are validated", async ({ db }) => {
    await assert.rejects(db.get(""), TypeError);
    await assert.rejects(db.get(5 as unknown as string), TypeError);
    await assert.rejects(db.put("x".repeat(1025), 1), RangeError);
    assert.equal(await db.put("x".repeat(1024), 1), "x".repeat(1024));
    await assert.rejects(db.delete(""), TypeError);
    // A lone surrogate is not storable as UTF-8: refused by every write
    // (a memory database took it and then could not list its collections).
    for (const key of ["\ud800", "a\udc00b", "x\ud83d"]) {
      await assert.rejects(db.put(key, 1), /lone surrogate/);
      await assert.rejects(db.putBatch(new Map([[key, 1]])), TypeError);
      await assert.rejects(db.insert({ _id: key }), TypeError);
    }
    assert.equal(await db.put("\ud83d\ude00", 2), "\ud83d\ude00"); // a pair is fine
    assert.deepEqual(await db.collections(), ["default"]);
    assert.equal(await db.count(), 2);
  });

  t(
    "TTL: visible while now < T + ttl, invisible to every read from then",
    async ({ db, clock }) => {
      await db.put("s", { v: 1 }, { ttl: 1000, tags: ["t"] });
      await db.put("keep", { v: 2 });
      clock.advance(999);
      assert.deepEqual(await db.get("s"), { v: 1 });
      assert.equal(db.stats().items, 2);
      assert.equal(db.stats().ttlItems, 1);
      clock.advance(1);
      assert.equal(await db.get("s"), null);
      assert.equal(await db.getEntry("s"), null);
      assert.equal(await db.has("s"), false);
      assert.deepEqual(await db.query({}), [{ v: 2 }]);
      assert.deepEqual(await db.query({ tags: "t" }), []);
      assert.equal(await db.count(), 1);
      assert.equal(await db.count({ v: 1 }), 0);
      assert.equal(db.stats().items, 1);
      assert.equal(db.stats().ttlItems, 0);
      assert.equal(
        await db.delete("s"),
        false,
        "an expired item does not count as deleted",
      );
    },
  );

  t("cleanup removes expired items and counts them", async ({ db, clock }) => {
    await db.putBatch([{ a: 1 }, { a: 2 }, { a: 3 }], { ttl: [10, 20, 30] });
    await db.put("forever", { a: 0 });
    clock.advance(20);
    assert.equal(await db.cleanup(), 2);
    assert.equal(await db.cleanup(), 0);
    assert.equal(db.stats().expired >= 2, true);
    assert.equal(await db.count(), 2);
    clock.advance(10);
    assert.equal(await db.cleanup(), 1);
    assert.deepEqual(await db.query({}), [{ a: 0 }]);
  });

  t(
    "a re-put before the sweep keeps the new item; re-put after expiry starts at version 1",
    async ({ db, clock }) => {
      await db.put("k", { gen: 1 }, { ttl: 10 });
      clock.advance(5);
      await db.put("k", { gen: 2 }, { ttl: 100 });
      clock.advance(10);
      assert.equal(await db.cleanup(), 0);
      assert.deepEqual(await db.get("k"), { gen: 2 });
      clock.advance(100);
      assert.equal(await db.get("k"), null);
      await db.put("k", { gen: 3 });
      const entry = await db.getEntry("k");
      assert.equal(entry?.version, 1);
      assert.equal(entry?.expiresAt, undefined);
      assert.equal(await db.cleanup(), 0);
      assert.deepEqual(await db.get("k"), { gen: 3 });
    },
  );

  t(
    "removing a TTL by re-putting without one keeps the item forever",
    async ({ db, clock }) => {
      await db.put("k", 1, { ttl: 10 });
      await db.put("k", 2);
      clock.advance(1_000_000);
      assert.equal(await db.cleanup(), 0);
      assert.equal(await db.get("k"), 2);
    },
  );

  t("reads sweep opportunistically without waiting", async ({ db, clock }) => {
    await db.put("k", 1, { ttl: 10 });
    clock.advance(10);
    assert.equal(await db.get("k"), null);
    // The sweep the read started is queued before this write.
    await db.put("other", 1);
    assert.equal(db.stats().expired, 1);
    assert.equal(db.stats().bytes > 0, true);
  });

  t("TTL and tag options are validated", async ({ db }) => {
    for (const ttl of [0, -1, NaN, Infinity]) {
      await assert.rejects(db.put("k", 1, { ttl }), RangeError);
    }
    await assert.rejects(
      db.put("k", 1, { ttl: "5" as unknown as number }),
      TypeError,
    );
    await assert.rejects(
      db.put("k", 1, { tags: "a" as unknown as string[] }),
      TypeError,
    );
    await assert.rejects(db.put("k", 1, { tags: [""] }), TypeError);
    assert.equal(await db.count(), 0);
  });

  t(
    "tags: stored as metadata, matched by a top-level tags filter",
    async ({ db }) => {
      await db.put("user1", { name: "John", age: 30 }, {
        tags: ["user", "active"],
      });
      await db.put("user2", { name: "Jane", age: 20 }, { tags: ["user"] });
      await db.put("doc", { name: "Doc", tags: ["active"] });
      const active = await db.query({ tags: "active" }) as { name: string }[];
      assert.deepEqual(active.map((u) => u.name).sort(), ["Doc", "John"]);
      assert.deepEqual(
        await db.query({ tags: { $all: ["user", "active"] } }),
        [{ name: "John", age: 30 }],
      );
      assert.deepEqual(
        await db.query({ age: { $gt: 25 }, tags: "active" }),
        [{ name: "John", age: 30 }],
      );
      const entry = await db.getEntry("user1");
      assert.deepEqual(entry?.tags, ["user", "active"]);
      assert.deepEqual((await db.getEntry("doc"))?.tags, []);
    },
  );

  t("putBatch is atomic and returns keys in order", async ({ db }) => {
    const keys = await db.putBatch([{ a: 1 }, { b: 2 }, { c: 3 }]);
    assert.equal(keys.length, 3);
    assert.deepEqual([...keys].sort(), keys);
    assert.deepEqual(await db.get(keys[1]!), { b: 2 });
    await assert.rejects(
      db.putBatch([{ ok: 1 }, { bad: () => 1 }]),
      /item 1/,
    );
    await assert.rejects(db.putBatch([1, 2], { ttl: [10] }), RangeError);
    await assert.rejects(
      db.putBatch(new Map([["good", 1], ["", 2]])),
      TypeError,
    );
    assert.equal(await db.count(), 3);
    assert.equal(await db.get("good"), null);
    const explicit = await db.putBatch(
      new Map([["k1", { a: 1 }], ["k2", { b: 2 }]]),
    );
    assert.deepEqual(explicit, ["k1", "k2"]);
    assert.deepEqual(await db.get("k2"), { b: 2 });
    assert.deepEqual(await db.putBatch([]), []);
  });

  t("putBatch TTLs apply per item", async ({ db, clock }) => {
    const [a, b] = await db.putBatch([{ a: 1 }, { b: 2 }], {
      ttl: [1000, 2000],
    });
    clock.advance(1500);
    assert.equal(await db.get(a!), null);
    assert.deepEqual(await db.get(b!), { b: 2 });
  });

  t("deleteBatch counts visible deletions", async ({ db, clock }) => {
    const keys = await db.putBatch([1, 2, 3]);
    await db.put("short", 4, { ttl: 1 });
    clock.advance(1);
    assert.equal(
      await db.deleteBatch([...keys, keys[0]!, "short", "missing"]),
      3,
    );
    assert.equal(await db.count(), 0);
    await assert.rejects(db.deleteBatch(["ok", ""]), TypeError);
  });

  t(
    "clear removes everything and returns the visible count",
    async ({ db, clock }) => {
      await db.putBatch([1, 2, 3]);
      await db.put("gone", 1, { ttl: 5 });
      clock.advance(5);
      assert.equal(await db.clear(), 3);
      assert.equal(await db.count(), 0);
      assert.equal(db.stats().items, 0);
      assert.equal(db.stats().bytes, 0);
      assert.equal(await db.clear(), 0);
    },
  );

  t("query, find, limit, skip, count", async ({ db }) => {
    const people = Array.from({ length: 20 }, (_, i) => ({
      i,
      age: 20 + i,
      address: { city: i % 2 === 0 ? "NY" : "SF" },
    }));
    await db.putBatch(
      new Map(people.map((p) => [`p${String(p.i).padStart(2, "0")}`, p])),
    );
    assert.equal((await db.query({ "address.city": "NY" })).length, 10);
    assert.equal((await db.query({ age: { $gt: 25 }, $limit: 3 })).length, 3);
    const page = await db.find({ "address.city": "SF" }, { skip: 2, limit: 3 })
      .toArray() as typeof people;
    assert.deepEqual(page.map((p) => p.i), [5, 7, 9]);
    const seen: number[] = [];
    for await (const p of db.find({ age: { $lt: 25 } })) {
      seen.push((p as typeof people[0]).i);
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.equal(await db.count({ "address.city": "NY" }), 10);
    assert.equal(await db.find({}, { limit: 0 }).count(), 0);
    const entries = [];
    for await (const e of db.find({ i: 3 }).entries()) entries.push(e);
    assert.equal(entries[0]?.key, "p03");
    await assert.rejects(
      async () => await db.query({ age: { $bogus: 1 } }),
      TypeError,
    );
    assert.throws(() => db.find({}, { limit: -1 }), RangeError);
    assert.throws(() => db.find({ $limit: 1.5 }), RangeError);
  });

  t("a malformed filter throws before anything runs", async ({ db }) => {
    await db.put("a", { x: 1 });
    assert.throws(() => db.find({ x: { $in: 5 } }), TypeError);
    assert.throws(() => db.find({ $or: [] }), TypeError);
    assert.throws(
      () => db.find(null as unknown as Record<string, never>),
      TypeError,
    );
  });

  t("break releases a scan and an aborted signal stops it", async ({ db }) => {
    await fill(
      Array.from({ length: 600 }, (_, i) => ({ i })),
      (part) => db.putBatch(part),
    );
    let n = 0;
    for await (const _ of db.find({})) {
      if (++n === 3) break;
    }
    assert.equal(n, 3);
    const controller = new AbortController();
    const seen: unknown[] = [];
    await assert.rejects(async () => {
      for await (const v of db.find({}, { signal: controller.signal })) {
        seen.push(v);
        if (seen.length === 300) controller.abort(new Error("stop"));
      }
    }, /stop/);
    assert.ok(seen.length >= 300 && seen.length < 600);
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(db.find({}, { signal: pre.signal }).toArray());
  });

  t("collections are separate", async ({ db }) => {
    const a = db.collection("a");
    const b = db.collection("b");
    assert.equal(db.collection("a"), a);
    assert.equal(db.collection("default"), db);
    await a.put("k", 1);
    await b.put("k", 2);
    assert.equal(await a.get("k"), 1);
    assert.equal(await b.get("k"), 2);
    assert.equal(await db.get("k"), null);
    assert.equal(await a.clear(), 1);
    assert.equal(await b.get("k"), 2);
    assert.equal(db.stats().items, 1);
    for (const bad of ["", "-x", ".x", "a/b", "a b", "x".repeat(129)]) {
      assert.throws(() => db.collection(bad), TypeError);
    }
  });

  t("auto keys are unique and ordered under load", async ({ db }) => {
    // Well past the 32 values of a key's last digit: increments carry.
    const n = loadSize(factory, 2000, 500);
    const keys = await Promise.all(
      Array.from({ length: n }, (_, i) => db.put({ i })),
    );
    assert.equal(new Set(keys).size, n);
    assert.deepEqual([...keys].sort(), keys);
    const values = await db.query({}) as { i: number }[];
    assert.deepEqual(values.map((v) => v.i), keys.map((_, i) => i));
  });

  t("concurrent writes to one key are serialized", async ({ db }) => {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => db.put("hot", { i })),
    );
    const entry = await db.getEntry("hot");
    assert.equal(entry?.version, 50);
    assert.deepEqual(entry?.value, { i: 49 });
  });

  t(
    "maxValueBytes: a too-large record is refused and nothing changes",
    async ({ db }) => {
      await db.put("k", "small");
      await assert.rejects(db.put("k", "x".repeat(2000)), (e: Error) => {
        assert.ok(e instanceof TooLargeError);
        assert.match(e.message, /over maxValueBytes 1024/);
        return true;
      });
      assert.equal(await db.get("k"), "small");
      await assert.rejects(
        db.putBatch(["ok", "y".repeat(5000)]),
        TooLargeError,
      );
      assert.equal(await db.count(), 1);
    },
    { maxValueBytes: 1024 },
  );

  t(
    "memoryLimit: a write past it is a QuotaError and nothing is stored",
    async ({ db }) => {
      let stored = 0;
      let error: unknown;
      for (let i = 0; i < 200 && error === undefined; i++) {
        try {
          await db.put(`k${i}`, { payload: "z".repeat(100) });
          stored++;
        } catch (e) {
          error = e;
        }
      }
      assert.ok(error instanceof QuotaError, String(error));
      assert.ok(stored > 0);
      assert.equal(await db.count(), stored);
      assert.ok(db.stats().bytes <= 4096);
      await db.delete("k0");
      await db.put("again", { payload: "z" });
    },
    { memoryLimit: 4096 },
  );

  t(
    "a corrupt record is an IntegrityError, never skipped",
    async ({ db, storage, clock }) => {
      await db.put("good", { a: 1 });
      await db.put("bad", { a: 2 });
      await storage.commit({
        sets: [{
          key: encodeKey(["d", "default", "bad"]),
          value: new TextEncoder().encode("{not json"),
        }],
      });
      if (storage.capabilities.shared) {
        await assert.rejects(db.get("bad"), IntegrityError);
        await assert.rejects(db.query({}), IntegrityError);
        assert.deepEqual(await db.get("good"), { a: 1 });
        return;
      }
      // A storage only this process writes is read at open (the engine then
      // serves reads from its object tier, and nothing else may write
      // under it): the damage is found by the next open, which refuses it,
      // or reported by every read of the damaged record.
      let reader;
      try {
        reader = await open({ storage, clock });
      } catch (e) {
        assert.ok(e instanceof IntegrityError, String(e));
        return;
      }
      try {
        await assert.rejects(reader.get("bad"), IntegrityError);
        await assert.rejects(reader.query({}), IntegrityError);
        assert.deepEqual(await reader.get("good"), { a: 1 });
      } finally {
        await reader.close();
      }
    },
  );

  t(
    "close is idempotent and every later call rejects with ClosedError",
    async ({ db }) => {
      await db.put("k", 1);
      const pending = db.put("late", 2);
      await db.close();
      await db.close();
      await pending;
      assert.equal(db.closed, true);
      await assert.rejects(db.get("k"), ClosedError);
      await assert.rejects(db.put("k", 1), ClosedError);
      await assert.rejects(db.delete("k"), ClosedError);
      await assert.rejects(db.query({}), ClosedError);
      await assert.rejects(db.cleanup(), ClosedError);
      await assert.rejects(db.count(), ClosedError);
      await assert.rejects(db.clear(), ClosedError);
      await assert.rejects(db.putBatch([1]), ClosedError);
      assert.throws(() => db.collection("x"), ClosedError);
    },
  );

  t(
    "matches a Map model under random operations with TTL (property)",
    async ({ db, clock }) => {
      const key = fc.constantFrom("a", "b", "c", "d");
      const cmd = fc.oneof(
        fc.record({
          op: fc.constant("put" as const),
          key,
          value: fc.integer({ min: 0, max: 9 }),
          ttl: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
        }),
        fc.record({ op: fc.constant("delete" as const), key }),
        fc.record({
          op: fc.constant("advance" as const),
          ms: fc.integer({ min: 0, max: 40 }),
        }),
        fc.record({ op: fc.constant("cleanup" as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { maxLength: 30 }), async (cmds) => {
          await db.clear();
          const model = new Map<string, { value: number; expiresAt: number }>();
          const live = () => {
            for (const [k, v] of model) {
              if (clock.now() >= v.expiresAt) model.delete(k);
            }
          };
          for (const c of cmds) {
            live();
            if (c.op === "put") {
              const options = c.ttl === undefined ? {} : { ttl: c.ttl };
              await db.put(c.key, { v: c.value }, options);
              model.set(c.key, {
                value: c.value,
                expiresAt: clock.now() + (c.ttl ?? Infinity),
              });
            } else if (c.op === "delete") {
              assert.equal(await db.delete(c.key), model.delete(c.key));
            } else if (c.op === "advance") {
              clock.advance(c.ms);
            } else {
              await db.cleanup();
            }
            live();
            for (const k of ["a", "b", "c", "d"]) {
              const got = await db.get(k) as { v: number } | null;
              assert.equal(got?.v, model.get(k)?.value);
            }
            assert.equal(await db.count(), model.size);
            assert.equal(db.stats().items, model.size);
            assert.equal(
              (await db.query({ v: { $gte: 5 } })).length,
              [...model.values()].filter((m) => m.value >= 5).length,
            );
          }
        }),
        { numRuns: propertyRuns(factory, 40) },
      );
    },
  );

  t(
    "concurrent writes and sweeps keep counts exact (property)",
    async ({ db, clock }) => {
      const key = fc.constantFrom("a", "b", "c", "d", "e");
      const cmd = fc.oneof(
        fc.record({
          op: fc.constant("put" as const),
          key,
          ttl: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
        }),
        fc.record({ op: fc.constant("delete" as const), key }),
        fc.record({ op: fc.constant("cleanup" as const) }),
        fc.record({ op: fc.constant("get" as const), key }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(cmd, { maxLength: 8 }), { maxLength: 6 }),
          async (rounds) => {
            await db.clear();
            const model = new Map<string, number>(); // key -> expiresAt
            for (const round of rounds) {
              const now = clock.now();
              // Writes apply in call order; nothing here is awaited one by one.
              const pending: Promise<unknown>[] = [];
              for (const c of round) {
                if (c.op === "put") {
                  const options = c.ttl === undefined ? {} : { ttl: c.ttl };
                  pending.push(db.put(c.key, 1, options));
                  model.set(c.key, now + (c.ttl ?? Infinity));
                } else if (c.op === "delete") {
                  pending.push(db.delete(c.key));
                  model.delete(c.key);
                } else if (c.op === "cleanup") {
                  pending.push(db.cleanup());
                } else {
                  pending.push(db.get(c.key));
                }
              }
              await Promise.all(pending);
              clock.advance(7);
              const visible = [...model].filter(([, at]) => clock.now() < at);
              assert.equal(db.stats().items, visible.length);
              assert.equal(await db.count(), visible.length);
              assert.equal((await db.query({})).length, visible.length);
            }
            await db.cleanup();
            const visible = [...model].filter(([, at]) => clock.now() < at);
            assert.equal(db.stats().items, visible.length);
          },
        ),
        { numRuns: propertyRuns(factory, 60) },
      );
    },
  );

  t(
    "stores Uint8Array values and fields, returned as copies",
    async ({ db }) => {
      const buffer = new Uint8Array([9, 0, 1, 255, 128, 9]);
      const value = {
        raw: buffer.subarray(1, 5), // a view: only its 4 bytes are kept
        list: [new Uint8Array(0), { deep: new Uint8Array([7]) }],
        at: new Date(3),
        looksLikeBase64: "AAH/gA==",
      };
      await db.put("b", value);
      buffer.fill(0); // the caller's bytes change; the stored ones do not
      const expected = {
        raw: new Uint8Array([0, 1, 255, 128]),
        list: [new Uint8Array(0), { deep: new Uint8Array([7]) }],
        at: new Date(3),
        looksLikeBase64: "AAH/gA==",
      };
      const got = await db.get("b") as typeof value;
      assert.deepEqual(got, expected);
      assert.ok(got.raw instanceof Uint8Array && got.at instanceof Date);
      assert.equal(got.raw.buffer.byteLength, 4);
      got.raw[0] = 42; // changing a result changes nothing stored
      assert.deepEqual(await db.get("b"), expected);
      const shared = await db.get("b", { readonly: true }) as typeof value;
      assert.deepEqual(shared, expected);
      await db.put("top", new Uint8Array([1, 2, 3]));
      assert.deepEqual(await db.get("top"), new Uint8Array([1, 2, 3]));
      assert.deepEqual(
        (await db.find({ looksLikeBase64: "AAH/gA==" }).toArray())[0],
        expected,
      );
      // Other typed arrays are refused, naming the path.
      await assert.rejects(
        db.put("f", { x: new Float32Array(1) }),
        (e: Error) => e instanceof TypeError && /'x'/.test(e.message),
      );
      // Export and import, backup and restore keep them.
      const lines: Uint8Array[] = [];
      await db.export(new WritableStream({ write: (c) => void lines.push(c) }));
      const text = new TextDecoder().decode(
        new Uint8Array(
          await new Blob(lines as Uint8Array<ArrayBuffer>[])
            .arrayBuffer(),
        ),
      );
      assert.match(text, /"raw":"AAH\/gA=="/);
      await using imported = await open();
      await imported.import(new Blob([text]).stream());
      assert.deepEqual(await imported.get("b"), expected);
      assert.deepEqual(await imported.get("top"), new Uint8Array([1, 2, 3]));
      const chunks: Uint8Array[] = [];
      await db.backup(
        new WritableStream({ write: (c) => void chunks.push(c) }),
      );
      await db.put("b", "changed");
      // Into the same database (an encrypted backup needs its secret).
      await db.restore(new Blob(chunks as Uint8Array<ArrayBuffer>[]).stream());
      assert.deepEqual(await db.get("b"), expected);
    },
  );

  t(
    "the size limit counts byte arrays (as their base64 text)",
    async ({ db }) => {
      await db.put("small", { raw: new Uint8Array(1000) });
      await assert.rejects(
        db.put("large", { raw: new Uint8Array(1600) }),
        (e: Error) => e.name === "TooLargeError",
      );
      assert.equal(await db.get("large"), null);
      assert.equal(
        (await db.get("small") as { raw: Uint8Array }).raw.length,
        1000,
      );
    },
    { maxValueBytes: 2000 },
  );
}
