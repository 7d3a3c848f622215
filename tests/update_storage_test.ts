/**
 * updateOne / updateMany / replaceOne / deleteOne / findOneAndUpdate /
 * findOneAndDelete, upserts included, on the memory, file and Deno KV
 * storages: results shaped like MongoDB's, one atomic commit, and errors
 * that change nothing.
 */

import assert from "node:assert/strict";
import { ConflictError, type Database, open } from "../mod.ts";
import { FileStorage } from "../src/storage/file.ts";
import { KvStorage } from "../src/storage/kv.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { Storage } from "../storage.ts";

type Doc = Record<string, unknown> & { _id?: string };

const storages: {
  name: string;
  make: () => Promise<{ storage: Storage; done: () => Promise<void> }>;
}[] = [
  {
    name: "memory",
    make: () =>
      Promise.resolve({
        storage: new MemoryStorage(),
        done: () => Promise.resolve(),
      }),
  },
  {
    name: "file",
    make: async () => {
      const dir = await Deno.makeTempDir({ prefix: "tether-upd-" });
      return {
        storage: await FileStorage.open(`${dir}/db.tdb`),
        done: () => Deno.remove(dir, { recursive: true }),
      };
    },
  },
  {
    name: "kv",
    make: async () => ({
      storage: new KvStorage(await Deno.openKv(":memory:"), { closeKv: true }),
      done: () => Promise.resolve(),
    }),
  },
];

function t(name: string, fn: (db: Database) => Promise<void>): void {
  for (const s of storages) {
    Deno.test(`updates [${s.name}]: ${name}`, async () => {
      const { storage, done } = await s.make();
      const db = await open({ storage });
      try {
        await fn(db);
      } finally {
        await db.close();
        await done();
      }
    });
  }
}

const none = {
  acknowledged: true,
  matchedCount: 0,
  modifiedCount: 0,
  upsertedCount: 0,
  upsertedId: null,
};

t("updateOne changes the first match only; results count", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insertMany([{ _id: "a", n: 1 }, { _id: "b", n: 1 }]);
  assert.deepEqual(await c.updateOne({ n: 1 }, { $inc: { n: 1 } }), {
    ...none,
    matchedCount: 1,
    modifiedCount: 1,
  });
  assert.deepEqual(await c.get("a"), { _id: "a", n: 2 });
  assert.deepEqual(await c.get("b"), { _id: "b", n: 1 });
  // Matched but unchanged: modifiedCount 0, version kept.
  assert.deepEqual(await c.updateOne({ _id: "b" }, { $set: { n: 1 } }), {
    ...none,
    matchedCount: 1,
  });
  assert.equal((await c.getEntry("b"))?.version, 1);
  assert.deepEqual(await c.updateOne({ _id: "zz" }, { $set: { n: 1 } }), none);
});

t(
  "updateMany is one commit: an error on one document changes none",
  async (db) => {
    const c = db.collection<Doc>("c");
    await c.insertMany([
      { _id: "a", n: 1, tags: [] },
      { _id: "b", n: "x", tags: [] },
    ]);
    await assert.rejects(c.updateMany({}, { $inc: { n: 1 } }), TypeError);
    assert.deepEqual(await c.get("a"), { _id: "a", n: 1, tags: [] });
    const r = await c.updateMany({}, { $push: { tags: "t" } });
    assert.deepEqual(r, { ...none, matchedCount: 2, modifiedCount: 2 });
    await assert.rejects(c.updateMany({}, { $set: { _id: "z" } }), {
      name: "TypeError",
      message: "Cannot update '_id': it is immutable",
    });
    await assert.rejects(c.updateMany({}, { n: 1 }), /use replaceOne/);
    await assert.rejects(
      c.updateMany({}, { $set: { n: 1 } }, { multi: true } as never),
      /unknown option 'multi'/,
    );
    await assert.rejects(
      c.updateMany({}, { $set: { n: 1 } }, { upsert: 1 } as never),
      /'upsert' must be a boolean/,
    );
  },
);

t(
  "upsert builds the document from the filter's equalities, $setOnInsert and the update",
  async (db) => {
    const c = db.collection<Doc>("c");
    const r = await c.updateOne(
      { sku: "abc", "dim.h": { $eq: 10 }, qty: { $gt: 5 } },
      { $set: { item: "pen" }, $setOnInsert: { created: 1 }, $inc: { qty: 5 } },
      { upsert: true },
    );
    assert.equal(r.upsertedCount, 1);
    assert.equal(r.matchedCount, 0);
    assert.equal(r.modifiedCount, 0);
    assert.equal(typeof r.upsertedId, "string");
    assert.deepEqual(await c.get(r.upsertedId!), {
      _id: r.upsertedId,
      sku: "abc",
      dim: { h: 10 },
      item: "pen",
      created: 1,
      qty: 5,
    });
    // Matching now: $setOnInsert does nothing.
    const again = await c.updateOne(
      { sku: "abc" },
      { $set: { item: "ink" }, $setOnInsert: { created: 2 } },
      { upsert: true },
    );
    assert.deepEqual(again, { ...none, matchedCount: 1, modifiedCount: 1 });
    assert.equal((await c.get(r.upsertedId!))?.created, 1);
    // An _id in the filter is the new document's.
    const byId = await c.updateMany({ _id: "k" }, { $set: { v: 1 } }, {
      upsert: true,
    });
    assert.equal(byId.upsertedId, "k");
    assert.deepEqual(await c.get("k"), { _id: "k", v: 1 });
    // Without upsert, nothing is inserted.
    assert.deepEqual(
      await c.updateOne({ _id: "q" }, { $set: { v: 1 } }, { upsert: false }),
      none,
    );
    assert.equal(await c.get("q"), null);
  },
);

t("replaceOne replaces (keeping _id) and upserts", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insert({ _id: "a", x: 1, y: 2 });
  assert.deepEqual(await c.replaceOne({ x: 1 }, { z: 3 }), {
    ...none,
    matchedCount: 1,
    modifiedCount: 1,
  });
  assert.deepEqual(await c.get("a"), { _id: "a", z: 3 });
  await assert.rejects(c.replaceOne({ z: 3 }, { _id: "b", z: 3 }), TypeError);
  await assert.rejects(c.replaceOne({ z: 3 }, { $set: { z: 1 } }), TypeError);
  const u = await c.replaceOne({ _id: "n", w: 1 }, { w: 2 }, { upsert: true });
  assert.equal(u.upsertedId, "n");
  assert.deepEqual(await c.get("n"), { _id: "n", w: 2 });
});

t("findOneAndUpdate returns before or after; upserts", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insert({ _id: "a", n: 1, g: [1, 2, 3] });
  assert.deepEqual(
    await c.findOneAndUpdate({ g: 2 }, { $set: { "g.$": 20 } }),
    { _id: "a", n: 1, g: [1, 2, 3] },
  );
  assert.deepEqual(
    await c.findOneAndUpdate({ _id: "a" }, { $inc: { n: 1 } }, {
      returnDocument: "after",
    }),
    { _id: "a", n: 2, g: [1, 20, 3] },
  );
  assert.equal(
    await c.findOneAndUpdate({ _id: "b" }, { $inc: { n: 1 } }),
    null,
  );
  assert.equal(
    await c.findOneAndUpdate({ _id: "b" }, { $inc: { n: 1 } }, {
      upsert: true,
    }),
    null,
  );
  assert.deepEqual(await c.get("b"), { _id: "b", n: 1 });
  assert.deepEqual(
    await c.findOneAndUpdate({ _id: "c" }, { $inc: { n: 1 } }, {
      upsert: true,
      returnDocument: "after",
    }),
    { _id: "c", n: 1 },
  );
  await assert.rejects(
    c.findOneAndUpdate({}, { $inc: { n: 1 } }, {
      returnDocument: "later" as never,
    }),
    TypeError,
  );
  assert.equal((await c.getEntry("a"))?.version, 3);
});

t("deleteOne and findOneAndDelete remove the first match only", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insertMany([{ _id: "a", n: 1 }, { _id: "b", n: 1 }]);
  assert.deepEqual(await c.deleteOne({ n: 1 }), {
    acknowledged: true,
    deletedCount: 1,
  });
  assert.equal(await c.get("a"), null);
  assert.deepEqual(await c.findOneAndDelete({ n: 1 }), { _id: "b", n: 1 });
  assert.deepEqual(await c.deleteOne({}), {
    acknowledged: true,
    deletedCount: 0,
  });
  assert.equal(await c.findOneAndDelete({}), null);
});

t("arrayFilters update the selected elements", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insert({ _id: "a", grades: [95, 102, 90, 150] });
  const r = await c.updateOne({}, { $set: { "grades.$[el]": 100 } }, {
    arrayFilters: [{ el: { $gte: 100 } }],
  });
  assert.equal(r.modifiedCount, 1);
  assert.deepEqual((await c.get("a"))?.grades, [95, 100, 90, 100]);
  await assert.rejects(
    c.updateOne({}, { $set: { "grades.$[x]": 1 } }),
    /no array filter found for the identifier 'x'/,
  );
});

t(
  "updateMany counts every match when a storage splits the commit",
  async (db) => {
    const c = db.collection<Doc>("c");
    const docs = Array.from(
      { length: 600 },
      (_, i) => ({ i, pad: "x".repeat(2000) }),
    );
    for (let i = 0; i < docs.length; i += 20) {
      await c.insertMany(docs.slice(i, i + 20));
    }
    const r = await c.updateMany({}, { $inc: { i: 1 } });
    assert.equal(r.matchedCount, 600);
    assert.equal(r.modifiedCount, 600);
    assert.equal(await c.count({ i: 600 }), 1);
    assert.equal(await c.count({ i: 0 }), 0);
  },
);

t("expectedVersion and bad upserts change nothing", async (db) => {
  const c = db.collection<Doc>("c");
  await c.insert({ _id: "a", n: 1 });
  await assert.rejects(
    c.updateOne({ _id: "a" }, { $inc: { n: 1 } }, { expectedVersion: 2 }),
    ConflictError,
  );
  assert.deepEqual(
    await c.updateOne({ _id: "a" }, { $inc: { n: 1 } }, { expectedVersion: 1 }),
    { ...none, matchedCount: 1, modifiedCount: 1 },
  );
  // An upsert whose _id is not a string: a TypeError, nothing inserted.
  await assert.rejects(
    c.updateOne({ _id: 5 as never }, { $set: { n: 1 } }, { upsert: true }),
    TypeError,
  );
  // $[] cannot build the new document's array.
  await assert.rejects(
    c.updateOne({ _id: "z" }, { $set: { "g.$[]": 1 } }, { upsert: true }),
    /must exist/,
  );
  assert.equal(await c.count(), 1);
});

t(
  "an item put without _id stays without one through updates; the document returned is the one stored",
  async (db) => {
    const c = db.collection<Doc>("plain");
    await c.put("k", { n: 1 });
    await c.put("j", { n: 5 });
    assert.equal(await c.update({ n: 1 }, { $inc: { n: 1 } }), 1);
    assert.deepEqual(await c.get("k"), { n: 2 });
    const after = await c.findOneAndUpdate({ n: 2 }, { $set: { m: 1 } }, {
      returnDocument: "after",
    });
    assert.deepEqual(after, { n: 2, m: 1 });
    assert.deepEqual(await c.get("k"), after);
    // A replacement document keeps the stored _id, or its absence.
    await c.replaceOne({ n: 5 }, { n: 6 });
    assert.deepEqual(await c.get("j"), { n: 6 });
    await c.insert({ _id: "d", n: 7 });
    await c.replaceOne({ _id: "d" }, { n: 8 });
    assert.deepEqual(await c.get("d"), { _id: "d", n: 8 });
    // _id cannot be set by an update.
    await assert.rejects(c.update({ n: 2 }, { $set: { _id: "k" } }), TypeError);
    assert.deepEqual(await c.get("k"), { n: 2, m: 1 });
  },
);
