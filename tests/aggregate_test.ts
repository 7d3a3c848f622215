/**
 * Aggregation: differential against mingo's aggregate on random documents,
 * cases from the MongoDB Manual's examples, the sensor use cases, errors.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Aggregator, Query } from "mingo";
import { open } from "../mod.ts";
import { compileFilter } from "../src/query/compile.ts";

const sortById = (rows: Record<string, unknown>[]) =>
  [...rows].sort((a, b) => String(a._id).localeCompare(String(b._id)));

Deno.test("aggregate matches mingo on random documents ($match $group $project $unwind $sort)", async () => {
  const docArb = fc.record({
    g: fc.constantFrom("a", "b", "c"),
    n: fc.integer({ min: -50, max: 50 }),
    x: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }),
    tags: fc.array(fc.constantFrom("p", "q", "r"), { maxLength: 3 }),
  }, { requiredKeys: ["g", "n", "tags"] });
  const pipelines = [
    [{
      $group: {
        _id: "$g",
        s: { $sum: "$n" },
        c: { $sum: 1 },
        mn: { $min: "$n" },
        mx: { $max: "$n" },
        a: { $avg: "$x" },
      },
    }],
    [{ $match: { n: { $gt: 0 } } }, {
      $group: {
        _id: "$g",
        p: { $push: "$n" },
        s: { $addToSet: { $ifNull: ["$x", -1] } },
        f: { $first: "$n" },
        l: { $last: "$n" },
      },
    }],
    [{ $unwind: "$tags" }, { $group: { _id: "$tags", c: { $sum: 1 } } }],
    [{
      $project: {
        _id: "$g",
        y: { $add: ["$n", 10] },
        z: { $cond: [{ $gte: ["$n", 0] }, "pos", "neg"] },
      },
    }],
    [
      {
        $addFields: { m: { $multiply: ["$n", 2] }, q: { $ifNull: ["$x", 0] } },
      },
      { $group: { _id: "$g", m: { $sum: "$m" }, q: { $sum: "$q" } } },
    ],
  ];
  await fc.assert(
    fc.asyncProperty(fc.array(docArb, { maxLength: 30 }), async (docs) => {
      await using db = await open();
      const withIds = docs.map((d, i) => ({
        _id: `k${String(i).padStart(3, "0")}`,
        ...d,
      }));
      for (const d of withIds) await db.insert(d as never);
      // MINGO DEVIATION: mingo's $push adds null for a missing value;
      // MongoDB (AccumulatorPush) skips it, as we do (tested below).
      for (const p of pipelines) {
        const ours = await db.aggregate(p).toArray();
        const theirs = new Aggregator(p).run(
          structuredClone(withIds),
        ) as Record<string, unknown>[];
        if (p.length === 1 && "$project" in p[0]!) {
          assert.deepEqual(ours, theirs);
        } else {
          const norm = (rows: Record<string, unknown>[]) =>
            sortById(rows).map((r) =>
              Array.isArray(r.s) ? { ...r, s: [...r.s].sort() } : r
            );
          assert.deepEqual(norm(ours), norm(theirs), JSON.stringify(p));
        }
      }
    }),
    { numRuns: 100 },
  );
});

Deno.test("MongoDB Manual: $group with $sum/$avg (sales example)", async () => {
  await using db = await open();
  const sales = [
    {
      _id: "1",
      item: "abc",
      price: 10,
      quantity: 2,
      date: new Date("2014-03-01T08:00:00Z"),
    },
    {
      _id: "2",
      item: "jkl",
      price: 20,
      quantity: 1,
      date: new Date("2014-03-01T09:00:00Z"),
    },
    {
      _id: "3",
      item: "xyz",
      price: 5,
      quantity: 10,
      date: new Date("2014-03-15T09:00:00Z"),
    },
    {
      _id: "4",
      item: "xyz",
      price: 5,
      quantity: 20,
      date: new Date("2014-04-04T11:21:39.736Z"),
    },
    {
      _id: "5",
      item: "abc",
      price: 10,
      quantity: 10,
      date: new Date("2014-04-04T21:23:13.331Z"),
    },
  ];
  for (const s of sales) await db.insert(s as never);
  const rows = await db.aggregate([
    {
      $group: {
        _id: { $dateTrunc: { date: "$date", unit: "day" } },
        total: { $sum: { $multiply: ["$price", "$quantity"] } },
        count: { $sum: 1 },
      },
    },
    { $sort: { total: -1 } },
  ]).toArray();
  assert.deepEqual(rows, [
    { _id: new Date("2014-04-04T00:00:00Z"), total: 200, count: 2 },
    { _id: new Date("2014-03-15T00:00:00Z"), total: 50, count: 1 },
    { _id: new Date("2014-03-01T00:00:00Z"), total: 40, count: 2 },
  ]);
  assert.deepEqual(
    await db.aggregate([{ $sortByCount: "$item" }, { $limit: 2 }]).toArray(),
    [
      { _id: "abc", count: 2 },
      { _id: "xyz", count: 2 },
    ],
  );
  assert.deepEqual(
    await db.aggregate([{ $match: { price: { $gt: 5 } } }, { $count: "n" }])
      .toArray(),
    [{ n: 3 }],
  );
  const pushed = await db.aggregate([{
    $group: { _id: null, p: { $push: "$missing" }, s: { $addToSet: "$item" } },
  }]).toArray();
  assert.deepEqual(pushed[0]?.p, []); // missing values are not pushed
  assert.deepEqual((pushed[0]?.s as string[]).sort(), ["abc", "jkl", "xyz"]);
  assert.deepEqual(await db.distinct("item"), ["abc", "jkl", "xyz"]);
  assert.deepEqual(await db.distinct("item", { price: 5 }), ["xyz"]);
});

Deno.test("MongoDB Manual: $unwind with includeArrayIndex and preserveNullAndEmptyArrays", async () => {
  await using db = await open();
  for (
    const d of [
      { _id: "1", item: "ABC", price: 80, sizes: ["S", "M", "L"] },
      { _id: "2", item: "EFG", price: 120, sizes: [] },
      { _id: "3", item: "IJK", price: 160, sizes: "M" },
      { _id: "4", item: "LMN", price: 10 },
      { _id: "5", item: "XYZ", price: 5.75, sizes: null },
    ]
  ) await db.insert(d as never);
  const rows = await db.aggregate([{
    $unwind: {
      path: "$sizes",
      includeArrayIndex: "i",
      preserveNullAndEmptyArrays: true,
    },
  }, { $project: { _id: 1, sizes: 1, i: 1 } }]).toArray();
  assert.deepEqual(rows, [
    { _id: "1", sizes: "S", i: 0 },
    { _id: "1", sizes: "M", i: 1 },
    { _id: "1", sizes: "L", i: 2 },
    { _id: "2", i: null },
    { _id: "3", sizes: "M", i: null },
    { _id: "4", i: null },
    { _id: "5", sizes: null, i: null },
  ]);
  assert.equal(
    (await db.aggregate([{ $unwind: "$sizes" }]).toArray()).length,
    4,
  );
});

Deno.test("MongoDB Manual: $bucket by price with default and output", async () => {
  await using db = await open();
  for (const [i, p] of [5, 10, 150, 200, 250, 1000, "x"].entries()) {
    await db.insert({ _id: `a${i}`, price: p } as never);
  }
  const rows = await db.aggregate([{
    $bucket: {
      groupBy: "$price",
      boundaries: [0, 200, 400],
      default: "Other",
      output: { count: { $sum: 1 }, ids: { $push: "$_id" } },
    },
  }]).toArray();
  assert.deepEqual(rows, [
    { _id: 0, count: 3, ids: ["a0", "a1", "a2"] },
    { _id: 200, count: 2, ids: ["a3", "a4"] },
    { _id: "Other", count: 2, ids: ["a5", "a6"] },
  ]);
});

Deno.test("sensor use cases: average per device per hour, min/max per day, last per device", async () => {
  await using db = await open();
  const base = Date.UTC(2026, 0, 1, 10, 0);
  const readings = [
    { device: "d1", at: new Date(base + 5 * 60_000), temp: 20 },
    { device: "d1", at: new Date(base + 50 * 60_000), temp: 22 },
    { device: "d1", at: new Date(base + 70 * 60_000), temp: 30 },
    { device: "d2", at: new Date(base + 10 * 60_000), temp: 10 },
  ];
  for (const r of readings) await db.put(r);
  const hourly = await db.aggregate([
    {
      $group: {
        _id: {
          device: "$device",
          hour: { $dateTrunc: { date: "$at", unit: "hour" } },
        },
        avg: { $avg: "$temp" },
      },
    },
    { $sort: { "_id.device": 1, "_id.hour": 1 } },
  ]).toArray();
  assert.deepEqual(hourly, [
    { _id: { device: "d1", hour: new Date(base) }, avg: 21 },
    { _id: { device: "d1", hour: new Date(base + 3_600_000) }, avg: 30 },
    { _id: { device: "d2", hour: new Date(base) }, avg: 10 },
  ]);
  const daily = await db.aggregate([
    {
      $group: {
        _id: { $dateTrunc: { date: "$at", unit: "day" } },
        lo: { $min: "$temp" },
        hi: { $max: "$temp" },
      },
    },
  ]).toArray();
  assert.deepEqual(daily, [{
    _id: new Date(Date.UTC(2026, 0, 1)),
    lo: 10,
    hi: 30,
  }]);
  const last = await db.aggregate([
    { $sort: { at: 1 } },
    {
      $group: {
        _id: "$device",
        temp: { $last: "$temp" },
        at: { $last: "$at" },
      },
    },
    { $sort: { _id: 1 } },
  ]).toArray();
  assert.deepEqual(last, [
    { _id: "d1", temp: 30, at: new Date(base + 70 * 60_000) },
    { _id: "d2", temp: 10, at: new Date(base + 10 * 60_000) },
  ]);
  // Epoch milliseconds work as dates too, and come back as numbers.
  const ms = await db.aggregate([{
    $project: {
      _id: 0,
      h: {
        $dateTrunc: { date: { $toDouble: "$at" }, unit: "minute", binSize: 15 },
      },
    },
  }, { $limit: 1 }]).toArray();
  assert.deepEqual(ms, [{ h: base }]);
});

Deno.test("$expr in find, compiled and interpreted", async () => {
  await using db = await open();
  await db.putBatch([{ a: 1, b: 2 }, { a: 3, b: 2 }]);
  assert.deepEqual(await db.find({ $expr: { $gt: ["$a", "$b"] } }).toArray(), [{
    a: 3,
    b: 2,
  }]);
  const { setCodeGeneration } = await import("../src/query/codegen.ts");
  const before = setCodeGeneration("off");
  try {
    assert.deepEqual(
      await db.find({ $expr: { $lt: ["$a", "$b"] } }).toArray(),
      [{ a: 1, b: 2 }],
    );
  } finally {
    setCodeGeneration(before);
  }
  assert.throws(() => db.find({ $expr: { $nope: 1 } }), TypeError);
});

Deno.test("errors: unknown stage/operator is a TypeError before reading; maxGroups is a RangeError", async () => {
  await using db = await open();
  await db.putBatch([{ a: 1 }, { a: 2 }, { a: 3 }]);
  assert.throws(() => db.aggregate([{ $nope: {} }]), TypeError);
  assert.throws(
    () => db.aggregate([{ $group: { _id: "$a", x: { $median: "$a" } } }]),
    TypeError,
  );
  assert.throws(
    () => db.aggregate([{ $project: { a: { $bogus: 1 } } }]),
    TypeError,
  );
  assert.throws(() => db.aggregate([{ $project: { a: 1, b: 0 } }]), TypeError);
  assert.throws(() => db.aggregate([{ $limit: 0 }]), RangeError);
  assert.throws(() => db.aggregate([{ $group: { x: 1 } }]), TypeError);
  await assert.rejects(
    db.aggregate([{ $group: { _id: "$a" } }], { maxGroups: 2 }).toArray(),
    RangeError,
  );
  assert.equal(
    (await db.aggregate([{ $group: { _id: "$a" } }], { maxGroups: 3 })
      .toArray()).length,
    3,
  );
});

Deno.test("$expr filters match mingo on random documents", () => {
  const filters = [
    { $expr: { $gt: ["$a", "$b"] } },
    { $expr: { $eq: [{ $mod: ["$a", 3] }, 1] } },
    { $expr: { $and: [{ $lte: ["$a", 5] }, { $ne: ["$b", 2] }] } },
    { $expr: { $lt: [{ $add: ["$a", "$b"] }, 4] }, a: { $gte: 0 } },
    { $expr: { $cond: [{ $gt: ["$a", 0] }, true, false] } },
  ];
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          a: fc.integer({ min: -5, max: 9 }),
          b: fc.integer({ min: -5, max: 9 }),
        }),
        { maxLength: 20 },
      ),
      (docs) => {
        for (const f of filters) {
          const p = compileFilter(f);
          const ours = docs.filter((d) => p(d));
          const theirs = docs.filter((d) => new Query(f).test(d));
          assert.deepEqual(ours, theirs, JSON.stringify(f));
        }
      },
    ),
    { numRuns: 100 },
  );
});
