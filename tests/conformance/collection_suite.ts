/**
 * The collection conformance suite: documents, versions, update operators,
 * indexes, the planner and cursors, run unchanged on every storage adapter.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Query } from "mingo";
import {
  ConflictError,
  type Database,
  DuplicateKeyError,
  open,
  type SortSpec,
} from "../../mod.ts";
import { FakeClock } from "./database_suite.ts";
import { fill, propertyRuns, type StorageFactory } from "./storage_suite.ts";
import { reopening } from "./reopen.ts";

type Ctx = { db: Database; clock: FakeClock };
type Doc = Record<string, unknown> & { _id?: string };

/**
 * Registers the collection conformance tests for one adapter.
 *
 * @param factory Makes fresh storages.
 */
export function collectionSuite(factory: StorageFactory): void {
  const t = (name: string, fn: (ctx: Ctx) => Promise<void>) =>
    Deno.test(`collection conformance [${factory.name}]: ${name}`, async () => {
      const clock = new FakeClock();
      let db = await open({ storage: await factory.create(), clock });
      if (factory.reopen !== undefined) {
        const reopen = factory.reopen;
        db = reopening(
          db,
          async () => await open({ storage: await reopen(), clock }),
        ).db;
      }
      try {
        await fn({ db, clock });
      } finally {
        await db.close();
        await factory.cleanup?.();
      }
    });

  t(
    "insert keeps or generates _id; a duplicate id writes nothing",
    async ({ db }) => {
      const users = db.collection<Doc>("users");
      const id = await users.insert({ name: "Alice", age: 25 });
      assert.equal(id.length, 26);
      assert.deepEqual(await users.findOne({ name: "Alice" }), {
        _id: id,
        name: "Alice",
        age: 25,
      });
      assert.equal(await users.insert({ _id: "bob", name: "Bob" }), "bob");
      await assert.rejects(
        users.insert({ _id: "bob", name: "Other" }),
        DuplicateKeyError,
      );
      assert.deepEqual(await users.get("bob"), { _id: "bob", name: "Bob" });
      await assert.rejects(users.insert("nope" as unknown as Doc), TypeError);
      await assert.rejects(users.insert([1] as unknown as Doc), TypeError);
      await assert.rejects(
        users.insert({ _id: 5 } as unknown as Doc),
        TypeError,
      );
      assert.equal(await users.count(), 2);
    },
  );

  t(
    "insertMany is atomic, duplicates within the batch included",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await assert.rejects(
        c.insertMany([{ _id: "a" }, { _id: "b" }, { _id: "a" }]),
        DuplicateKeyError,
      );
      await assert.rejects(
        c.insertMany([{ ok: 1 }, { bad: () => 1 }]),
        TypeError,
      );
      assert.equal(await c.count(), 0);
      const ids = await c.insertMany([{ n: 1 }, { n: 2 }]);
      assert.equal(ids.length, 2);
      assert.equal(await c.count(), 2);
    },
  );

  t(
    "metadata: version, createdAt and updatedAt through getEntry",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      const id = await c.insert({ n: 1 });
      const created = clock.now();
      clock.advance(10);
      assert.equal(await c.update({ _id: id }, { $set: { n: 1 } }), 0, "no-op");
      let entry = await c.getEntry(id);
      assert.equal(entry?.version, 1);
      assert.equal(entry?.updatedAt, created);
      assert.equal(await c.update({ _id: id }, { $inc: { n: 1 } }), 1);
      entry = await c.getEntry(id);
      assert.equal(entry?.version, 2);
      assert.equal(entry?.createdAt, created);
      assert.equal(entry?.updatedAt, created + 10);
      assert.deepEqual(entry?.value, { _id: id, n: 2 });
    },
  );

  t(
    "indexes() lists in name order, whatever the creation order",
    async ({ db }) => {
      const c = db.collection<Doc>("ordered");
      await c.createIndex("name");
      await c.createIndex("age");
      await c.createIndex(["age", "name"]);
      await c.put("a", { name: "A", age: 1 });
      assert.deepEqual(
        (await c.indexes()).map((i) => i.name),
        ["age_1", "age_1_name_1", "name_1"],
      );
    },
  );

  t(
    "a later collection() call with a bad index declaration throws",
    async ({ db }) => {
      const c = db.collection<Doc>("declared");
      await c.put("a", { name: "A" });
      for (
        const bad of [
          [{ fields: 5 }],
          [{ fields: ["name"], unique: "yes" }],
          [{ fields: [] }],
        ]
      ) {
        assert.throws(
          () => db.collection("declared", { indexes: bad as never }),
          TypeError,
          JSON.stringify(bad),
        );
      }
      // Nothing was built by the refused calls.
      assert.deepEqual(await c.indexes(), []);
      assert.deepEqual(await c.indexes(), []);
    },
  );

  t("between: a NaN or invalid Date bound is a RangeError", async ({ db }) => {
    const c = db.collection<Doc>("ranges");
    await c.insertMany([{ age: 1 }, { age: 5 }]);
    for (const [lo, hi] of [[NaN, 5], [1, NaN], [new Date(NaN), 5]]) {
      await assert.rejects(c.between("age", lo!, hi!), RangeError);
    }
    assert.equal((await c.between("age", -Infinity, Infinity)).length, 2);
  });

  t("watch with an already aborted signal ends quietly", async ({ db }) => {
    const stop = new AbortController();
    stop.abort();
    const seen: unknown[] = [];
    for await (
      const change of db.collection("w").watch({ signal: stop.signal })
    ) {
      seen.push(change);
    }
    assert.deepEqual(seen, []);
  });

  t("update: operators, atomic over every match", async ({ db }) => {
    const c = db.collection<Doc>("c");
    await c.insertMany([
      { _id: "a", name: "Arman", age: 29, tags: ["x"] },
      { _id: "b", name: "Bo", age: 40, tags: [] },
    ]);
    assert.equal(await c.update({ name: "Arman" }, { $set: { age: 30 } }), 1);
    assert.equal((await c.get("a"))?.age, 30);
    assert.equal(
      await c.update({}, {
        $push: { tags: "y" },
        $unset: { name: "" },
        $set: { "meta.seen": true },
      }),
      2,
    );
    assert.deepEqual(await c.get("b"), {
      _id: "b",
      age: 40,
      tags: ["y"],
      meta: { seen: true },
    });
    assert.equal(await c.update({}, { $pull: { tags: "x" } }), 1);
    assert.deepEqual((await c.get("a"))?.tags, ["y"]);
    // An error on one document changes none.
    await assert.rejects(c.update({}, { $inc: { tags: 1 } }), TypeError);
    assert.equal((await c.getEntry("b"))?.version, 2);
    await assert.rejects(c.update({}, { $set: { _id: "z" } }), TypeError);
    await assert.rejects(c.update({}, { $bogus: { a: 1 } }), TypeError);
  });

  t(
    "expectedVersion: a stale version is a ConflictError and nothing changes",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      const id = await c.insert({ n: 1 });
      assert.equal(
        await c.update({ _id: id }, { n: 2 }, { expectedVersion: 1 }),
        1,
      );
      await assert.rejects(
        c.update({ _id: id }, { n: 3 }, { expectedVersion: 1 }),
        ConflictError,
      );
      assert.equal((await c.get(id))?.n, 2);
      await assert.rejects(
        c.replace(id, { n: 9 }, { expectedVersion: 1 }),
        ConflictError,
      );
      assert.ok(await c.replace(id, { n: 9 }, { expectedVersion: 2 }));
      assert.deepEqual(await c.get(id), { _id: id, n: 9 });
      assert.equal(await c.replace("missing", { n: 1 }), false);
      await assert.rejects(c.replace(id, { _id: "other" }), TypeError);
    },
  );

  t("replace and update keep tags and TTL", async ({ db, clock }) => {
    await db.put("k", { _id: "k", n: 1 }, { ttl: 100, tags: ["t"] });
    await db.update({ _id: "k" }, { n: 2 });
    await db.replace("k", { n: 3 });
    const entry = await db.getEntry("k");
    assert.deepEqual(entry?.tags, ["t"]);
    assert.equal(entry?.expiresAt, clock.now() + 100);
    clock.advance(100);
    assert.equal(await db.get("k"), null);
  });

  t("deleteMany, all, count", async ({ db }) => {
    const c = db.collection<Doc>("c");
    await c.insertMany([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    assert.equal(await c.deleteMany({ n: { $gt: 2 } }), 2);
    assert.equal((await c.all()).length, 2);
    assert.equal(await c.count({ n: 1 }), 1);
    assert.equal(await c.deleteMany({}), 2);
    assert.equal(await c.count(), 0);
  });

  t(
    "first and last in insertion order; n = 0 returns nothing",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      // Ids that sort against insertion order, inserted in the same ms.
      for (const id of ["z", "m", "a", "q"]) await c.insert({ _id: id });
      clock.advance(1);
      await c.insert({ _id: "b" });
      const ids = (docs: Doc[]) => docs.map((d) => d._id);
      assert.deepEqual(ids(await c.first(2)), ["z", "m"]);
      assert.deepEqual(ids(await c.last(2)), ["q", "b"]);
      assert.deepEqual(ids(await c.last(10)), ["z", "m", "a", "q", "b"]);
      assert.deepEqual(await c.last(0), []);
      assert.deepEqual(await c.first(0), []);
      await assert.rejects(c.last(-1), RangeError);
      await c.delete("q");
      assert.deepEqual(ids(await c.last(1)), ["b"]);
      await c.put("m", { _id: "m", v: 2 }); // an update keeps its place
      assert.deepEqual(ids(await c.first(2)), ["z", "m"]);
    },
  );

  t(
    "between: inclusive, by field (indexed or not) and by creation time",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("readings");
      for (const t of [5, 1, 9, 3]) {
        await c.insert({ t });
        clock.advance(10);
      }
      const ts = (docs: Doc[]) => docs.map((d) => d.t);
      assert.deepEqual(ts(await c.between("t", 3, 5)), [3, 5]);
      await c.createIndex("t");
      assert.deepEqual(ts(await c.between("t", 1, 9)), [1, 3, 5, 9]);
      const start = clock.now() - 40;
      assert.deepEqual(
        ts(await c.between("_createdAt", start + 10, start + 20)),
        [
          1,
          9,
        ],
      );
      await assert.rejects(
        c.between("t", {} as unknown as number, 2),
        TypeError,
      );
    },
  );

  t("find: sort, skip, limit and projection", async ({ db }) => {
    const c = db.collection<Doc>("c");
    await c.insertMany([
      { _id: "1", name: "b", age: 30, address: { city: "NY", zip: 1 } },
      { _id: "2", name: "a", age: 30, address: { city: "SF", zip: 2 } },
      { _id: "3", name: "c", age: 20 },
    ]);
    const sorted = await c.find({}, { sort: { age: -1, name: 1 } }).toArray();
    assert.deepEqual(sorted.map((d) => d._id), ["2", "1", "3"]);
    const page = await c.find({}, { sort: { name: 1 }, skip: 1, limit: 1 })
      .toArray();
    assert.deepEqual(page.map((d) => d._id), ["1"]);
    const projected = await c.find({ age: 30 }, {
      fields: { "address.city": 1, _id: 0 },
      sort: { name: 1 },
    }).toArray();
    assert.deepEqual(projected, [{ address: { city: "SF" } }, {
      address: { city: "NY" },
    }]);
    assert.throws(() => c.find({}, { sort: { a: 2 as 1 } }), Error);
  });

  t(
    "indexes: create, list, use, drop; answers never change",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      const docs = Array.from({ length: 200 }, (_, i) => ({
        city: ["NY", "SF", "LA"][i % 3],
        age: i % 50,
        labels: [`t${i % 7}`, `t${i % 5}`],
      }));
      await fill(docs, (part) => c.insertMany(part));
      const before = await c.find({ city: "NY", age: { $gte: 40 } }).toArray();
      assert.equal(await c.createIndex(["city", "age"]), "city_1_age_1");
      assert.equal(await c.createIndex("labels"), "labels_1");
      const listed = await c.indexes();
      assert.deepEqual(listed.map((i) => i.name).sort(), [
        "city_1_age_1",
        "labels_1",
      ]);
      assert.equal(listed.find((i) => i.name === "labels_1")?.multikey, true);
      // Without a sort the order is the plan's: compare as sets.
      const byId = (docs: Doc[]) =>
        docs.slice().sort((x, y) => x._id! < y._id! ? -1 : 1);
      const cursor = c.find({ city: "NY", age: { $gte: 40 } });
      assert.deepEqual(byId(await cursor.toArray()), byId(before));
      const plan = await cursor.explain();
      assert.equal(plan.kind, "index");
      assert.equal(plan.index, "city_1_age_1");
      if (factory.blind === true) {
        // Equality on city through the index; the age range is filtered.
        assert.match(plan.description, /blind/);
        assert.equal(
          plan.docsExamined,
          docs.filter((d) => d.city === "NY").length,
        );
      } else {
        assert.equal(
          plan.docsExamined,
          before.length,
          "only the matches are read",
        );
      }
      assert.equal(plan.returned, before.length);
      const tagged = await c.find({ labels: "t3" }).explain();
      assert.equal(tagged.index, "labels_1");
      assert.equal(
        tagged.returned,
        docs.filter((d) => d.labels.includes("t3")).length,
      );
      assert.ok(await c.dropIndex(["city", "age"]));
      assert.equal(await c.dropIndex("city_1_age_1"), false);
      assert.equal((await c.find({ city: "NY" }).explain()).kind, "scan");
      assert.deepEqual(
        byId(await c.find({ city: "NY", age: { $gte: 40 } }).toArray()),
        byId(before),
      );
    },
  );

  t(
    "createIndex again: the same definition is a no-op, another one under the same name a TypeError that changes nothing",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await c.insertMany([{ _id: "1", a: 1, b: 2, a_1_b: 3 }]);
      assert.equal(await c.createIndex(["a", "b"]), "a_1_b_1");
      assert.equal(await c.createIndex(["a", "b"]), "a_1_b_1");
      const other = /index 'a_1_b_1' already exists with other options/;
      // The same derived name from other fields, or other options.
      await assert.rejects(c.createIndex("a_1_b"), TypeError);
      await assert.rejects(c.createIndex("a_1_b"), other);
      await assert.rejects(
        c.createIndex(["a", "b"], { unique: true }),
        other,
      );
      await assert.rejects(
        c.createIndex(["a", "b"], { sparse: true }),
        other,
      );
      const listed = await c.indexes();
      assert.deepEqual(
        listed.map((i) => [i.name, i.fields, i.unique, i.sparse]),
        [["a_1_b_1", ["a", "b"], false, false]],
      );
      assert.equal(
        (await c.find({ a: 1, b: 2 }).explain()).index,
        "a_1_b_1",
      );
    },
  );

  t(
    "putBatch onlyNew: a key that holds an item refuses the batch (DuplicateKeyError naming it, nothing written); an expired item is absent",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c", {
        indexes: [{ fields: "u", unique: true, sparse: true }],
      });
      await c.putBatch(new Map([["a", { n: 1, u: 1 }]]));
      await c.put("gone", { n: 0 }, { ttl: 100 });
      const refused = await assert.rejects(
        c.putBatch(new Map([["b", { n: 2 }], ["a", { n: 3 }]]), {
          onlyNew: true,
        }),
        (e: Error) => {
          assert.ok(e instanceof DuplicateKeyError, String(e));
          assert.equal(e.key, "a");
          assert.equal(e.holder, "a");
          assert.match(e.message, /item with id 'a' already exists/);
          return true;
        },
      );
      assert.equal(refused, undefined);
      assert.deepEqual(await c.get("a"), { n: 1, u: 1 });
      assert.equal(await c.get("b"), null);
      // A unique value another item holds: the index's DuplicateKeyError.
      await assert.rejects(
        c.putBatch(new Map([["c", { u: 1 }]]), { onlyNew: true }),
        (e: Error) =>
          e instanceof DuplicateKeyError && e.key === "c" && e.holder === "a",
      );
      clock.advance(101);
      assert.deepEqual(
        await c.putBatch(new Map([["b", { n: 2 }], ["gone", { n: 9 }]]), {
          onlyNew: true,
        }),
        ["b", "gone"],
      );
      assert.deepEqual(await c.get("gone"), { n: 9 });
      assert.equal((await c.getEntry("gone"))?.version, 1);
      // Generated keys are new by construction.
      const [k] = await c.putBatch([{ n: 5 }], { onlyNew: true });
      assert.deepEqual(await c.get(k!), { n: 5 });
      // Caller mistakes, before anything is written.
      await assert.rejects(
        c.putBatch(new Map([["d", {}]]), { onlyNew: 1 as unknown as boolean }),
        TypeError,
      );
      await assert.rejects(
        c.putBatch(new Map([["d", {}]]), {
          onlyNew: true,
          assumeNew: true,
          atomic: false,
        }),
        /onlyNew .* assumeNew/,
      );
      assert.equal(await c.get("d"), null);
      assert.equal(await c.count(), 4);
    },
  );

  t("a range on an index reads only what it returns", async ({ db }) => {
    const c = db.collection<Doc>("c");
    await c.createIndex("n");
    await fill(
      Array.from({ length: 1000 }, (_, i) => ({ n: i })),
      (part) => c.insertMany(part),
    );
    const cursor = c.find({ n: { $gte: 500 } }, { sort: { n: 1 }, limit: 100 });
    const plan = await cursor.explain();
    if (factory.blind === true) {
      // Digests keep no order: the range scans, and says why.
      assert.equal(plan.kind, "scan");
      assert.match(plan.description, /blind index n_1/);
    } else {
      assert.equal(plan.index, "n_1");
      assert.equal(plan.sortCovered, true);
      assert.ok(plan.docsExamined <= 256 + 100, `read ${plan.docsExamined}`);
    }
    assert.equal(plan.returned, 100);
    const values = (await cursor.toArray()).map((d) => d.n);
    assert.deepEqual(values, Array.from({ length: 100 }, (_, i) => 500 + i));
    const desc = await c.find({}, { sort: { n: -1 }, limit: 3 }).toArray();
    assert.deepEqual(desc.map((d) => d.n), [999, 998, 997]);
  });

  t(
    "unique index: a duplicate is refused and nothing is written",
    async ({ db }) => {
      const users = db.collection<Doc>("users", {
        indexes: [{ fields: "email", unique: true }],
      });
      await users.insert({ _id: "u1", email: "a@b.c" });
      await assert.rejects(
        users.insert({ _id: "u2", email: "a@b.c" }),
        (e: Error) => {
          assert.ok(e instanceof DuplicateKeyError);
          // An encrypted database's messages never show a value.
          if (db.stats().storageStats?.encrypted === true) {
            assert.match(e.message, /unique index 'email_1'.*'u1'/);
            assert.ok(!e.message.includes("a@b.c"), e.message);
          } else {
            assert.match(e.message, /unique index 'email_1'.*"a@b.c"/);
          }
          return true;
        },
      );
      assert.equal(await users.get("u2"), null);
      await users.insert({ _id: "u2", email: "x@y.z" });
      await assert.rejects(
        users.update({ _id: "u2" }, { email: "a@b.c" }),
        DuplicateKeyError,
      );
      assert.equal((await users.get("u2"))?.email, "x@y.z");
      // Freeing a value lets another document take it, even in one batch.
      await users.update({ _id: "u1" }, { email: "new@b.c" });
      await users.update({ _id: "u2" }, { email: "a@b.c" });
      await users.delete("u2");
      await users.insert({ _id: "u3", email: "a@b.c" });
      await assert.rejects(
        users.createIndex("email", { unique: false }),
        TypeError,
      );
      const other = db.collection<Doc>("other");
      await other.insertMany([{ k: 1 }, { k: 1 }]);
      await assert.rejects(
        other.createIndex("k", { unique: true }),
        DuplicateKeyError,
      );
      assert.deepEqual(await other.indexes(), []);
    },
  );

  t(
    "unique index in one batch: a document the batch rewrites keeps its value from the others unless it gives it up",
    async ({ db }) => {
      const c = db.collection<Doc>("u", {
        indexes: [{ fields: "email", unique: true }],
      });
      await c.put("a", { email: "v", n: 1 });
      // "a" keeps "v" (another field changes): "b" cannot take it, whichever
      // comes first in the batch; nothing is written.
      for (
        const batch of [
          new Map<string, Doc>([["a", { email: "v", n: 2 }], ["b", {
            email: "v",
          }]]),
          new Map<string, Doc>([["b", { email: "v" }], ["a", {
            email: "v",
            n: 3,
          }]]),
        ]
      ) {
        await assert.rejects(c.putBatch(batch), DuplicateKeyError);
        assert.deepEqual(await c.get("a"), { email: "v", n: 1 });
        assert.equal(await c.get("b"), null);
        assert.deepEqual(await c.find({ email: "v" }).toArray(), [{
          email: "v",
          n: 1,
        }]);
      }
      // "a" gives "v" up in the batch: "b" takes it.
      await c.putBatch(
        new Map<string, Doc>([["b", { email: "v" }], ["a", {
          email: "w",
          n: 4,
        }]]),
      );
      assert.deepEqual(await c.find({ email: "v" }).toArray(), [{
        email: "v",
      }]);
      assert.deepEqual(await c.find({ email: "w" }).toArray(), [{
        email: "w",
        n: 4,
      }]);
      assert.deepEqual((await db.verify()).problems, []);
      // The other order: "b" gives "v" up first, "a" takes it after.
      await c.putBatch(
        new Map<string, Doc>([["b", { email: "x" }], ["a", {
          email: "v",
          n: 5,
        }]]),
      );
      assert.deepEqual(await c.find({ email: "v" }).toArray(), [{
        email: "v",
        n: 5,
      }]);
      await assert.rejects(
        c.insert({ _id: "z", email: "v" }),
        DuplicateKeyError,
      );
      assert.deepEqual((await db.verify()).problems, []);
    },
  );

  t(
    "putBatch with deletes: the puts and the deletes commit together, or none",
    async ({ db }) => {
      const c = db.collection<Doc>("mixed", {
        indexes: [{ fields: "email", unique: true }],
      });
      await c.putBatch(
        new Map<string, Doc>([["a", { email: "a" }], ["b", { email: "b" }]]),
      );
      // Refused (a unique value taken): "a" is not deleted either.
      await assert.rejects(
        c.putBatch(new Map<string, Doc>([["c", { email: "b" }]]), {
          deletes: ["a"],
        }),
        DuplicateKeyError,
      );
      assert.deepEqual(await c.get("a"), { email: "a" });
      assert.equal(await c.get("c"), null);
      // A value a deleted item gives up is free for a put of the same write.
      assert.deepEqual(
        await c.putBatch(new Map<string, Doc>([["c", { email: "b" }]]), {
          deletes: new Set(["b", "nothing", "b"]),
        }),
        ["c"],
      );
      assert.equal(await c.get("b"), null);
      assert.deepEqual(await c.get("c"), { email: "b" });
      // Only deletes; split into steps with atomic: false.
      assert.deepEqual(await c.putBatch(new Map(), { deletes: ["a"] }), []);
      assert.equal(await c.count(), 1);
      await c.putBatch(new Map<string, Doc>([["d", {}]]), {
        deletes: ["c"],
        atomic: false,
      });
      assert.deepEqual(
        (await c.find().toArray()).length,
        1,
      );
      // Caller mistakes, before anything changes.
      await assert.rejects(
        c.putBatch(new Map<string, Doc>([["d", {}]]), { deletes: ["d"] }),
        /'d' is both put and deleted/,
      );
      await assert.rejects(
        c.putBatch(new Map(), { deletes: "d" as unknown as string[] }),
        TypeError,
      );
      await assert.rejects(
        c.putBatch(new Map(), { deletes: [""] }),
        TypeError,
      );
      await assert.rejects(
        c.putBatch(new Map<string, Doc>([["e", {}]]), {
          deletes: ["d"],
          atomic: false,
          assumeNew: true,
        }),
        /deletes cannot go with assumeNew/,
      );
      assert.deepEqual(await c.get("d"), {});
      assert.deepEqual((await db.verify()).problems, []);
    },
  );

  t(
    "a DuplicateKeyError names the item refused, the holder and the index",
    async ({ db }) => {
      const c = db.collection<Doc>("named", {
        indexes: [{ fields: "email", unique: true }],
      });
      await c.put("a", { email: "v" });
      const names = async (write: Promise<unknown>) => {
        const e = await write.then(() => undefined, (e) => e);
        assert.ok(e instanceof DuplicateKeyError, String(e));
        return { key: e.key, holder: e.holder, index: e.index };
      };
      // Against a stored holder; against a holder the batch rewrites and
      // that keeps the value (either order); two claims in one batch.
      assert.deepEqual(
        await names(c.putBatch(
          new Map([["c", { email: "q" }], ["b", {
            email: "v",
          }]]),
        )),
        { key: "b", holder: "a", index: "email_1" },
      );
      for (
        const batch of [
          [["a", { email: "v", n: 2 }], ["b", { email: "v" }]],
          [["b", { email: "v" }], ["a", { email: "v", n: 3 }]],
        ] as [string, Doc][][]
      ) {
        assert.deepEqual(await names(c.putBatch(new Map(batch))), {
          key: "b",
          holder: "a",
          index: "email_1",
        });
      }
      assert.deepEqual(
        await names(c.putBatch(
          new Map([["x", { email: "z" }], ["y", {
            email: "z",
          }]]),
        )),
        { key: "y", holder: "x", index: "email_1" },
      );
      assert.deepEqual(await names(c.put("d", { email: "v" })), {
        key: "d",
        holder: "a",
        index: "email_1",
      });
      assert.deepEqual(await names(c.insert({ _id: "a", email: "w" })), {
        key: "a",
        holder: "a",
        index: undefined,
      });
      const other = db.collection<Doc>("named2");
      await other.insertMany([{ _id: "p", k: 1 }, { _id: "q", k: 1 }]);
      const built = await names(other.createIndex("k", { unique: true }));
      assert.deepEqual([built.key, built.holder].sort(), ["p", "q"]);
      assert.equal(built.index, "k_1");
    },
  );

  t(
    "an expired document frees its unique value and leaves its indexes",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex("code", { unique: true });
      await c.put("a", { code: 1 }, { ttl: 10 });
      await assert.rejects(c.insert({ _id: "b", code: 1 }), DuplicateKeyError);
      clock.advance(10);
      await c.insert({ _id: "b", code: 1 });
      await db.cleanup();
      assert.equal(db.stats().expired, 1);
      assert.deepEqual(await c.find({ code: 1 }).toArray(), [{
        _id: "b",
        code: 1,
      }]);
      await assert.rejects(c.insert({ _id: "c", code: 1 }), DuplicateKeyError);
    },
  );

  t(
    "sparse indexes skip documents without the fields and are not used for null",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex("email", { unique: true, sparse: true });
      await c.insertMany([{ n: 1 }, { n: 2 }, { email: "a" }]);
      assert.equal(await c.count({ email: null }), 2);
      assert.equal((await c.find({ email: "a" }).explain()).index, "email_1");
    },
  );

  t(
    "indexes follow every write: put, update, delete, clear, expiry",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex("v");
      await c.put("a", { v: 1 });
      await c.put("a", { v: 2 });
      assert.equal(await c.count({ v: 1 }), 0);
      assert.equal(await c.count({ v: 2 }), 1);
      await c.update({ v: 2 }, { $set: { v: 3 } });
      await c.put("b", { v: 3 }, { ttl: 5 });
      assert.equal((await c.find({ v: 3 }).toArray()).length, 2);
      assert.deepEqual((await db.verify()).problems, []);
      clock.advance(5);
      assert.equal((await c.find({ v: 3 }).toArray()).length, 1);
      assert.deepEqual((await db.verify()).problems, []);
      await db.cleanup();
      assert.deepEqual((await db.verify()).problems, []);
      await c.delete("a");
      assert.equal(await c.count(), 0);
      assert.equal((await c.find({ v: 3 }).explain()).keysExamined, 0);
      await c.put("x", { v: 7 });
      await c.clear();
      assert.equal((await c.find({ v: 7 }).explain()).keysExamined, 0);
      assert.equal(db.stats().bytes, 0, "every index byte is accounted for");
    },
  );

  t("queries with indexes agree with mingo (property)", async ({ db }) => {
    const c = db.collection<Doc>("c");
    await c.createIndex("a");
    await c.createIndex(["b", "a"]);
    await c.createIndex("tags");
    const value = fc.oneof(
      fc.integer({ min: 0, max: 5 }),
      fc.constantFrom("x", "y", "z"),
      fc.constant(null),
    );
    const doc = fc.record({
      a: value,
      b: fc.integer({ min: 0, max: 3 }),
      tags: fc.array(fc.constantFrom("p", "q", "r"), { maxLength: 3 }),
    }, { requiredKeys: ["b"] });
    const cond = fc.oneof(
      value.map((v) => ({ a: v })),
      fc.integer({ min: 0, max: 5 }).map((v) => ({ a: { $gt: v } })),
      fc.integer({ min: 0, max: 5 }).map((v) => ({ a: { $lte: v } })),
      fc.array(value, { minLength: 1, maxLength: 3 }).map((v) => ({
        a: { $in: v },
      })),
      fc.integer({ min: 0, max: 3 }).map((v) => ({ b: v })),
      fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5 }))
        .map(([b, a]) => ({ b, a: { $gte: a } })),
      fc.constantFrom("p", "q", "r").map((t) => ({ tags: t })),
      fc.constant({}),
    );
    const sortArb = fc.option(
      fc.constantFrom<SortSpec>({ a: 1 }, { a: -1 }, { b: 1, a: 1 }, {
        b: -1,
        a: -1,
      }),
      { nil: undefined },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(doc, { maxLength: 40 }),
        cond,
        sortArb,
        fc.integer({ min: 0, max: 3 }),
        fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
        async (docs, filter, sort, skip, limit) => {
          await c.clear();
          assert.equal(db.stats().bytes, 0, "clear frees every byte");
          const withIds = docs.map((d, i) => ({
            _id: `d${String(i).padStart(3, "0")}`,
            ...d,
          }));
          if (withIds.length > 0) await c.insertMany(withIds);
          // Ties in the sort are broken by _id on both sides.
          const fullSort: Record<string, 1 | -1> = { ...(sort ?? {}), _id: 1 };
          let q = new Query(filter).find(withIds).sort(fullSort).skip(skip);
          if (limit !== undefined) q = q.limit(limit);
          const expected = q.all();
          const got = await c.find(filter, {
            sort: fullSort,
            skip,
            ...(limit === undefined ? {} : { limit }),
          }).toArray();
          assert.deepEqual(got, expected);
          assert.equal(
            await c.count(filter),
            new Query(filter).find(withIds).all().length,
          );
        },
      ),
      { numRuns: propertyRuns(factory, 150), seed: 7 },
    );
    // What the last run left: every document with its entries, and back.
    assert.deepEqual((await db.verify()).problems, []);
  });

  t(
    "pagination: page() positions resume exactly, for every kind of plan",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex("n");
      await c.insertMany(
        Array.from(
          { length: 25 },
          (_, i) => ({ _id: `k${i + 10}`, n: i % 7, m: i }),
        ),
      );
      const cases: [Record<string, unknown>, Parameters<typeof c.find>[1]][] = [
        [{}, {}], // key order
        [{ n: { $gte: 2 } }, {}], // index range
        [{}, { sort: { n: -1 } }], // index order, backwards
        [{ m: { $lt: 20 } }, { sort: { m: -1 } }], // sorted in memory
      ];
      for (const [filter, options] of cases) {
        const all = await c.find(filter, options).toArray();
        const seen: Doc[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await c.find(filter, { ...options, after }).page(4);
          seen.push(...page.items);
          after = page.next;
          pages++;
        } while (after !== undefined);
        assert.deepEqual(seen, all, JSON.stringify({ filter, options }));
        assert.equal(pages, Math.max(1, Math.ceil(all.length / 4)));
      }
      // Writes before the position do not shift a key-ordered page.
      const first = await c.find({}).page(5);
      await c.insert({ _id: "a0", n: 1, m: -1 }); // sorts before every key
      const second = await c.find({}, { after: first.next }).page(5);
      assert.equal(second.items[0]?._id, "k15");
      // A position from another plan is refused.
      const sorted = await c.find({}, { sort: { m: 1 } }).page(2);
      await assert.rejects(
        c.find({}, { after: sorted.next }).toArray(),
        TypeError,
      );
      await assert.rejects(
        c.find({}, { after: "not a position" }).toArray(),
        TypeError,
      );
      await assert.rejects(c.find({}).page(0), RangeError);
    },
  );

  t(
    "count answers from an exact index plan without reading documents",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex(["city", "age"]);
      await c.insertMany(
        Array.from(
          { length: 60 },
          (_, i) => ({ city: i % 2 ? "NY" : "SF", age: i }),
        ),
      );
      const filter = { city: "NY", age: { $gte: 40 } };
      assert.equal(await c.count(filter), 10);
      const plan = await c.find(filter).explain("count");
      if (factory.shared !== true && factory.blind !== true) {
        assert.equal(plan.docsExamined, 0);
      }
      assert.equal(plan.returned, 10);
      assert.equal(await c.find(filter, { skip: 3, limit: 5 }).count(), 5);
      // Once an item may have expired, the documents are read again.
      await c.put("short", { city: "NY", age: 50 }, { ttl: 5 });
      assert.equal(await c.count(filter), 11);
      clock.advance(5);
      const expiredPlan = await c.find(filter).explain("count");
      assert.ok(expiredPlan.docsExamined > 0);
      assert.equal(expiredPlan.returned, 10);
      assert.equal(await c.count(filter), 10);
    },
  );

  t(
    "a compound index refuses a document with two array fields",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await c.createIndex(["a", "b"]);
      await c.insert({ _id: "ok", a: [1, 2], b: 1 });
      await assert.rejects(
        c.insert({ _id: "bad", a: [1], b: [2] }),
        /more than one array field/,
      );
      assert.equal(await c.get("bad"), null);
      await assert.rejects(
        c.update({ _id: "ok" }, { $set: { b: [3] } }),
        TypeError,
      );
      assert.deepEqual(await c.get("ok"), { _id: "ok", a: [1, 2], b: 1 });
    },
  );

  t(
    "createIndex after items expired: sweeps them first, bytes stay exact",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      await c.put("old", { v: 1 }, { ttl: 5 });
      await c.put("keep", { v: 1 });
      clock.advance(5);
      await c.createIndex("v", { unique: true });
      assert.deepEqual(await c.find({ v: 1 }).toArray(), [{ v: 1 }]);
      await c.clear();
      assert.equal(db.stats().bytes, 0);
      assert.equal(db.stats().items, 0);
    },
  );

  t(
    "the insertion-order index is built on first use, expired items first",
    async ({ db, clock }) => {
      const c = db.collection<Doc>("c");
      await c.put("b", { n: 1 });
      await c.put("a", { n: 2 }, { ttl: 5 });
      await c.put("c", { n: 3 });
      clock.advance(5);
      assert.deepEqual(await c.last(5), [{ n: 1 }, { n: 3 }]);
      await c.put("d", { n: 4 });
      assert.deepEqual(await c.first(1), [{ n: 1 }]);
      assert.deepEqual(await c.last(1), [{ n: 4 }]);
      await c.clear();
      assert.equal(db.stats().bytes, 0);
      await c.put("e", { n: 5 });
      assert.deepEqual(await c.last(1), [{ n: 5 }]);
    },
  );

  t(
    "sort with a limit keeps the best items, ties in key order in the sort's direction (property)",
    async ({ db }) => {
      const c = db.collection<Doc>("c");
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 60 }),
          fc.integer({ min: 0, max: 10 }),
          fc.integer({ min: 1, max: 15 }),
          fc.constantFrom<1 | -1>(1, -1),
          async (groups, skip, limit, dir) => {
            await c.clear();
            if (groups.length > 0) {
              await c.insertMany(
                groups.map((g, i) => ({
                  _id: `k${String(i).padStart(2, "0")}`,
                  g,
                })),
              );
            }
            const sort = { g: dir };
            const all = await c.find({}, { sort }).toArray();
            const ids = all.map((d) => d._id);
            // Equal groups in key order, descending for a descending sort
            // (as an index walked backwards lists them).
            const expected = groups
              .map((g, i) => ({ g, id: `k${String(i).padStart(2, "0")}` }))
              .sort((a, b) =>
                ((a.g - b.g) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) * dir
              )
              .map((d) => d.id);
            assert.deepEqual(ids, expected);
            const page = await c.find({}, { sort, skip, limit }).toArray();
            assert.deepEqual(page, all.slice(skip, skip + limit));
          },
        ),
        { numRuns: propertyRuns(factory, 100), seed: 11 },
      );
    },
  );
}
