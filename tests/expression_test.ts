/** Expression operators: values from the MongoDB Manual's examples. */
import assert from "node:assert/strict";
import { compileExpression } from "../src/query/expression.ts";

const ev = (spec: unknown, doc: unknown = {}) => compileExpression(spec)(doc);

Deno.test("arithmetic (Manual values), null propagation, errors", () => {
  assert.equal(ev({ $add: ["$a", 2, 3] }, { a: 1 }), 6);
  assert.deepEqual(
    ev({ $add: ["$d", 1000] }, { d: new Date(0) }),
    new Date(1000),
  );
  assert.equal(ev({ $add: ["$missing", 1] }), null);
  assert.equal(ev({ $subtract: [new Date(5000), new Date(2000)] }), 3000);
  assert.equal(ev({ $divide: [9, 2] }), 4.5);
  assert.equal(ev({ $mod: [-7, 3] }), -1);
  assert.equal(ev({ $abs: -5 }), 5);
  assert.equal(ev({ $floor: 1.5 }), 1);
  assert.equal(ev({ $ceil: -1.5 }), -1);
  // $round rounds half to even (Manual: 10.5 -> 10, 11.5 -> 12).
  assert.equal(ev({ $round: [10.5, 0] }), 10);
  assert.equal(ev({ $round: [11.5, 0] }), 12);
  assert.equal(ev({ $round: [19.25, 1] }), 19.2);
  assert.equal(ev({ $round: [1234.5678, -2] }), 1200);
  assert.throws(() => ev({ $add: ["x", 1] }), TypeError);
  assert.throws(() => ev({ $divide: [1, 0] }), RangeError);
  assert.throws(() => compileExpression({ $add: [1], $x: 1 }), TypeError);
  assert.throws(() => compileExpression({ $unknownOp: 1 }), TypeError);
  assert.throws(() => compileExpression("$$NOPE"), TypeError);
});

Deno.test("comparison, boolean, $cond, $ifNull, $in, $size, $concat", () => {
  assert.equal(ev({ $cmp: ["$q", 250] }, { q: 300 }), 1);
  assert.equal(ev({ $eq: ["$missing", null] }), false); // missing < null
  assert.equal(ev({ $lt: [1, "a"] }), true); // numbers before strings
  assert.equal(ev({ $and: [1, "x", []] }), true);
  assert.equal(ev({ $or: [0, null, "$missing"] }), false);
  assert.equal(ev({ $not: [0] }), true);
  assert.equal(
    ev({ $cond: { if: { $gte: ["$qty", 250] }, then: 30, else: 20 } }, {
      qty: 300,
    }),
    30,
  );
  assert.equal(ev({ $cond: [false, 1, 2] }), 2);
  assert.equal(
    ev({ $ifNull: ["$a", "$b", "Unspecified"] }, { b: null }),
    "Unspecified",
  );
  assert.equal(
    ev({ $in: ["bananas", "$in_stock"] }, { in_stock: ["apples", "bananas"] }),
    true,
  );
  assert.equal(ev({ $size: "$colors" }, { colors: ["a", "b"] }), 2);
  assert.throws(() => ev({ $size: "$missing" }), TypeError);
  assert.equal(
    ev({ $concat: ["$item", " - ", "$d"] }, { item: "abc", d: "x" }),
    "abc - x",
  );
  assert.equal(ev({ $concat: ["a", "$missing"] }), null);
  assert.equal(ev({ $toString: 5 }), "5");
  assert.equal(ev({ $toDouble: "2.5" }), 2.5);
  assert.deepEqual(ev({ $literal: { $add: 1 } }), { $add: 1 });
  assert.deepEqual(
    ev("$items.price", { items: [{ price: 1 }, {}, { price: 2 }] }),
    [1, 2],
  );
  assert.equal(ev("$constructor", {}), undefined); // own fields only
});

Deno.test("date parts in UTC and with a fixed offset; $dateTrunc bins", () => {
  const d = new Date("2014-01-01T08:15:39.736Z"); // Manual's $year… example
  const doc = { date: d };
  assert.equal(ev({ $year: "$date" }, doc), 2014);
  assert.equal(ev({ $month: "$date" }, doc), 1);
  assert.equal(ev({ $dayOfMonth: "$date" }, doc), 1);
  assert.equal(ev({ $hour: "$date" }, doc), 8);
  assert.equal(ev({ $minute: "$date" }, doc), 15);
  assert.equal(ev({ $second: "$date" }, doc), 39);
  assert.equal(ev({ $dayOfWeek: "$date" }, doc), 4); // a Wednesday
  assert.equal(ev({ $hour: { date: "$date", timezone: "-05:00" } }, doc), 3);
  assert.equal(ev({ $year: d.getTime() }), 2014); // epoch ms
  assert.equal(ev({ $year: "$missing" }), null);
  assert.throws(
    () =>
      compileExpression({ $hour: { date: "$d", timezone: "Europe/Paris" } }),
    TypeError,
  );
  // Manual's $dateTrunc examples (orderDate 2020-05-18T14:10:30Z).
  const o = { t: new Date("2020-05-18T14:10:30Z") };
  const tr = (x: Record<string, unknown>) =>
    ev({ $dateTrunc: { date: "$t", ...x } }, o);
  assert.deepEqual(tr({ unit: "week" }), new Date("2020-05-17T00:00:00Z"));
  assert.deepEqual(
    tr({ unit: "week", startOfWeek: "monday" }),
    new Date("2020-05-18T00:00:00Z"),
  );
  assert.deepEqual(
    tr({ unit: "month", binSize: 6 }),
    new Date("2020-01-01T00:00:00Z"),
  );
  assert.deepEqual(tr({ unit: "quarter" }), new Date("2020-04-01T00:00:00Z"));
  assert.deepEqual(
    tr({ unit: "hour", binSize: 2 }),
    new Date("2020-05-18T14:00:00Z"),
  );
  assert.deepEqual(
    tr({ unit: "minute", binSize: 15 }),
    new Date("2020-05-18T14:00:00Z"),
  );
  assert.deepEqual(
    tr({ unit: "day", timezone: "+03:00" }),
    new Date("2020-05-17T21:00:00Z"),
  );
  assert.equal(
    ev({ $dateTrunc: { date: o.t.getTime(), unit: "year" } }),
    Date.UTC(2020, 0, 1),
  );
  assert.throws(
    () => compileExpression({ $dateTrunc: { date: "$t", unit: "fortnight" } }),
    TypeError,
  );
  assert.throws(
    () =>
      compileExpression({
        $dateTrunc: { date: "$t", unit: "day", binSize: 0 },
      }),
    TypeError,
  );
});
