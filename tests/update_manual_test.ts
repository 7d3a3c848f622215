/**
 * The MongoDB Manual's examples for each update operator added in issue 16
 * (its documents and its results, ported by hand), and the error cases:
 * malformed operators and modifiers are TypeErrors at compile time.
 */

import assert from "node:assert/strict";
import {
  compileUpdate,
  type Update,
  type UpdateOptions,
} from "../src/query/update.ts";

function apply(
  update: Update,
  doc: Record<string, unknown>,
  options: UpdateOptions = {},
  insert = false,
): unknown {
  return compileUpdate(update, options)(doc, { insert }).doc;
}

function compileThrows(
  update: unknown,
  message: RegExp,
  options: UpdateOptions = {},
): void {
  assert.throws(
    () => compileUpdate(update as Update, options),
    (e: unknown) => {
      assert(e instanceof TypeError, `${e}`);
      assert.match(e.message, message);
      return true;
    },
  );
}

Deno.test("manual: $pop removes the first (-1) or last (1) element", () => {
  assert.deepEqual(
    apply({ $pop: { scores: -1 } }, { _id: 1, scores: [8, 9, 10] }),
    { _id: 1, scores: [9, 10] },
  );
  assert.deepEqual(
    apply({ $pop: { scores: 1 } }, { _id: 10, scores: [9, 10] }),
    { _id: 10, scores: [9] },
  );
  assert(!compileUpdate({ $pop: { s: 1 } })({ s: [] }).changed);
  assert(!compileUpdate({ $pop: { s: 1 } })({}).changed);
  assert.throws(() => apply({ $pop: { s: 1 } }, { s: 1 }), TypeError);
  compileThrows({ $pop: { s: 2 } }, /\$pop needs 1 or -1/);
});

Deno.test("manual: $pullAll removes every instance of the values", () => {
  assert.deepEqual(
    apply({ $pullAll: { scores: [0, 5] } }, {
      _id: 1,
      scores: [0, 2, 5, 5, 1, 0],
    }),
    { _id: 1, scores: [2, 1] },
  );
  assert.deepEqual(
    apply({ $pullAll: { a: [{ x: 1 }] } }, { a: [{ x: 1 }, { x: 2 }] }),
    { a: [{ x: 2 }] },
  );
  compileThrows({ $pullAll: { s: 1 } }, /\$pullAll needs an array/);
});

Deno.test("manual: $mul multiplies; a missing field becomes 0", () => {
  assert.deepEqual(
    apply({ $mul: { price: 1.25, quantity: 2 } }, {
      _id: 1,
      item: "Hats",
      price: 10.99,
      quantity: 25,
    }),
    { _id: 1, item: "Hats", price: 10.99 * 1.25, quantity: 50 },
  );
  assert.deepEqual(
    apply({ $mul: { price: 100 } }, { _id: 2, item: "Unknown" }),
    { _id: 2, item: "Unknown", price: 0 },
  );
  compileThrows({ $mul: { p: "2" } }, /\$mul needs a number/);
  assert.throws(() => apply({ $mul: { p: 2 } }, { p: "x" }), TypeError);
});

Deno.test("manual: $bit and, or, xor", () => {
  assert.deepEqual(apply({ $bit: { expdata: { and: 10 } } }, { expdata: 13 }), {
    expdata: 8,
  });
  assert.deepEqual(apply({ $bit: { expdata: { or: 5 } } }, { expdata: 3 }), {
    expdata: 7,
  });
  assert.deepEqual(apply({ $bit: { expdata: { xor: 5 } } }, { expdata: 1 }), {
    expdata: 4,
  });
  assert.deepEqual(apply({ $bit: { n: { or: 5 } } }, {}), { n: 5 });
  compileThrows({ $bit: { n: { and: 1.5 } } }, /whole number/);
  compileThrows({ $bit: { n: { nand: 1 } } }, /'nand' is unknown/);
  compileThrows({ $bit: { n: 1 } }, /\$bit needs an object/);
  assert.throws(() => apply({ $bit: { n: { or: 1 } } }, { n: 1.5 }), TypeError);
});

Deno.test("manual: $currentDate sets the current date", () => {
  const now = new Date("2024-01-02T03:04:05.000Z");
  const u = compileUpdate({
    $currentDate: {
      lastModified: true,
      "cancellation.date": { $type: "date" },
    },
    $set: { "cancellation.reason": "user request", status: "D" },
  });
  assert.deepEqual(
    u({
      _id: 1,
      status: "a",
      lastModified: new Date("2013-10-02T01:11:18.965Z"),
    }, { now }).doc,
    {
      _id: 1,
      status: "D",
      lastModified: now,
      cancellation: { date: now, reason: "user request" },
    },
  );
  compileThrows(
    { $currentDate: { t: { $type: "timestamp" } } },
    /\$type: 'timestamp' \} is not supported/,
  );
  compileThrows(
    { $currentDate: { t: 1 } },
    /needs true or \{ \$type: 'date' \}/,
  );
});

Deno.test("manual: $setOnInsert applies only when an upsert inserts", () => {
  const u = { $set: { item: "apple" }, $setOnInsert: { defaultQty: 100 } };
  assert.deepEqual(apply(u, { _id: 1 }, {}, true), {
    _id: 1,
    item: "apple",
    defaultQty: 100,
  });
  assert.deepEqual(apply(u, { _id: 1 }), { _id: 1, item: "apple" });
  // $setOnInsert may set _id (an upsert's new id); $set may not.
  assert.deepEqual(
    apply({ $setOnInsert: { _id: "n" } }, {}, { protect: ["_id"] }, true),
    { _id: "n" },
  );
});

Deno.test("manual: $push with $each, $sort and $slice", () => {
  assert.deepEqual(
    apply({
      $push: {
        quizzes: {
          $each: [{ wk: 5, score: 8 }, { wk: 6, score: 7 }, {
            wk: 7,
            score: 6,
          }],
          $sort: { score: -1 },
          $slice: 3,
        },
      },
    }, {
      _id: 5,
      quizzes: [
        { wk: 1, score: 10 },
        { wk: 2, score: 8 },
        { wk: 3, score: 5 },
        { wk: 4, score: 6 },
      ],
    }),
    {
      _id: 5,
      quizzes: [{ wk: 1, score: 10 }, { wk: 2, score: 8 }, { wk: 5, score: 8 }],
    },
  );
});

Deno.test("manual: $push $position", () => {
  const at = (scores: number[], each: number[], position: number) =>
    apply({ $push: { scores: { $each: each, $position: position } } }, {
      scores,
    });
  assert.deepEqual(at([100], [50, 60, 70], 0), { scores: [50, 60, 70, 100] });
  assert.deepEqual(at([50, 60, 70, 100], [20, 30], 2), {
    scores: [50, 60, 20, 30, 70, 100],
  });
  assert.deepEqual(at([50, 60, 20, 30, 70, 100], [90, 80], -2), {
    scores: [50, 60, 20, 30, 90, 80, 70, 100],
  });
  assert.deepEqual(at([1], [2], 10), { scores: [1, 2] });
});

Deno.test("manual: $push $slice", () => {
  const sl = (scores: number[], each: number[], slice: number) =>
    apply({ $push: { scores: { $each: each, $slice: slice } } }, { scores });
  assert.deepEqual(sl([40, 50, 60], [80, 78, 86], -5), {
    scores: [50, 60, 80, 78, 86],
  });
  assert.deepEqual(sl([89, 90], [100, 20], 3), { scores: [89, 90, 100] });
  assert.deepEqual(sl([89, 70, 100, 20], [], -3), { scores: [70, 100, 20] });
  assert.deepEqual(sl([1, 2], [3], 0), { scores: [] });
});

Deno.test("manual: $push $sort", () => {
  assert.deepEqual(
    apply({ $push: { tests: { $each: [40, 60], $sort: 1 } } }, {
      tests: [89, 70, 89, 50],
    }),
    { tests: [40, 50, 60, 70, 89, 89] },
  );
  assert.deepEqual(
    apply({ $push: { tests: { $each: [], $sort: -1 } } }, {
      tests: [89, 70, 100, 20],
    }),
    { tests: [100, 89, 70, 20] },
  );
});

Deno.test("$push and $addToSet modifiers: bad ones are compile errors", () => {
  compileThrows({ $push: { a: { $slice: 1 } } }, /field name '\$slice'/);
  compileThrows({ $push: { a: { $each: [1], $slice: 1.5 } } }, /whole number/);
  compileThrows(
    { $push: { a: { $each: [1], $position: "0" } } },
    /whole number/,
  );
  compileThrows({ $push: { a: { $each: [1], $sort: 2 } } }, /'\$sort' needs/);
  compileThrows(
    { $push: { a: { $each: [1], $sort: { x: 0 } } } },
    /must be 1 or -1/,
  );
  compileThrows({ $push: { a: { $each: [1], $sort: {} } } }, /'\$sort' needs/);
  compileThrows(
    { $push: { a: { $each: [1], $limit: 1 } } },
    /modifier '\$limit' is unknown/,
  );
  compileThrows(
    { $addToSet: { a: { $each: [1], $slice: 1 } } },
    /\$addToSet modifier '\$slice' is not allowed/,
  );
});

Deno.test("manual: $addToSet with $each", () => {
  assert.deepEqual(
    apply({
      $addToSet: { tags: { $each: ["camera", "electronics", "accessories"] } },
    }, { _id: 2, item: "cameras", tags: ["electronics", "supplies"] }),
    {
      _id: 2,
      item: "cameras",
      tags: ["electronics", "supplies", "camera", "accessories"],
    },
  );
});

Deno.test("manual: positional $ updates the element the filter matched", () => {
  assert.deepEqual(
    apply({ $set: { "grades.$": 82 } }, { _id: 1, grades: [85, 80, 80] }, {
      filter: { _id: 1, grades: 80 },
    }),
    { _id: 1, grades: [85, 82, 80] },
  );
  const grades = [
    { grade: 80, mean: 75, std: 8 },
    { grade: 85, mean: 90, std: 5 },
    { grade: 85, mean: 85, std: 8 },
  ];
  assert.deepEqual(
    apply({ $set: { "grades.$.std": 6 } }, { _id: 4, grades }, {
      filter: { _id: 4, "grades.grade": 85 },
    }),
    {
      _id: 4,
      grades: [grades[0], { grade: 85, mean: 90, std: 6 }, grades[2]],
    },
  );
  const five = [
    { grade: 80, mean: 75, std: 8 },
    { grade: 85, mean: 90, std: 5 },
    { grade: 90, mean: 85, std: 3 },
  ];
  assert.deepEqual(
    apply({ $set: { "grades.$.std": 6 } }, { _id: 5, grades: five }, {
      filter: {
        _id: 5,
        grades: { $elemMatch: { grade: { $lte: 90 }, mean: { $gt: 80 } } },
      },
    }),
    { _id: 5, grades: [five[0], { grade: 85, mean: 90, std: 6 }, five[2]] },
  );
  // A condition on the array inside $or gives the position too.
  assert.deepEqual(
    apply({ $set: { "grades.$": 0 } }, { _id: 6, grades: [70, 90, 95] }, {
      filter: { $or: [{ grades: 95 }, { grades: 90 }] },
    }),
    { _id: 6, grades: [70, 0, 95] },
  );
  // No condition on the array: an error when applied.
  assert.throws(
    () => apply({ $set: { "grades.$": 1 } }, { grades: [1] }, { filter: {} }),
    /positional operator '\$' did not find the match/,
  );
});

Deno.test("manual: $[] updates every element", () => {
  assert.deepEqual(
    apply({ $inc: { "grades.$[]": 10 } }, { _id: 1, grades: [85, 82, 80] }),
    { _id: 1, grades: [95, 92, 90] },
  );
  assert.deepEqual(
    apply({ $inc: { "grades.$[].questions.$[]": 2 } }, {
      grades: [{ questions: [1, 2] }, { questions: [3] }],
    }),
    { grades: [{ questions: [3, 4] }, { questions: [5] }] },
  );
  assert.throws(
    () => apply({ $set: { "a.$[]": 1 } }, {}),
    /must exist in the document/,
  );
  assert.throws(
    () => apply({ $set: { "a.$[]": 1 } }, { a: 1 }),
    /not an array/,
  );
});

Deno.test("manual: $[<identifier>] with arrayFilters", () => {
  const u = { $set: { "grades.$[element]": 100 } };
  const o = { arrayFilters: [{ element: { $gte: 100 } }] };
  assert.deepEqual(apply(u, { grades: [95, 92, 90] }, o), {
    grades: [95, 92, 90],
  });
  assert.deepEqual(apply(u, { grades: [98, 100, 102] }, o), {
    grades: [98, 100, 100],
  });
  assert.deepEqual(apply(u, { grades: [95, 110, 100] }, o), {
    grades: [95, 100, 100],
  });
  assert.deepEqual(
    apply({ $set: { "grades.$[elem].mean": 100 } }, {
      grades: [
        { grade: 80, mean: 75, std: 8 },
        { grade: 85, mean: 90, std: 6 },
        { grade: 85, mean: 85, std: 8 },
      ],
    }, { arrayFilters: [{ "elem.grade": { $gte: 85 } }] }),
    {
      grades: [
        { grade: 80, mean: 75, std: 8 },
        { grade: 85, mean: 100, std: 6 },
        { grade: 85, mean: 100, std: 8 },
      ],
    },
  );
  compileThrows(u, /no array filter found for the identifier 'element'/);
  compileThrows(
    { $set: { a: 1 } },
    /array filter for the identifier 'x' is not used/,
    { arrayFilters: [{ x: 1 }] },
  );
  compileThrows(u, /several identifiers/, {
    arrayFilters: [{ element: 1, other: 2 }],
  });
  compileThrows(u, /given twice/, {
    arrayFilters: [{ element: 1 }, { element: 2 }],
  });
});

Deno.test("positional paths that reach one field twice are a conflict when applied", () => {
  // montydb's cases (checked against mongod: "Update created a conflict").
  const doc = { a: [{ b: 4, c: 1 }, { b: 4, c: 0 }] };
  const conflict = (update: Update, arrayFilters: unknown[], d = doc) =>
    assert.throws(
      () => apply(update, d, { arrayFilters } as UpdateOptions),
      (e: unknown) =>
        e instanceof TypeError &&
        /creates a conflict at 'a\.[01]/.test(e.message),
    );
  conflict({ $inc: { "a.$[elem].b": 1, "a.$[conflict].b": 2 } }, [
    { "elem.c": { $gt: 0 } },
    { conflict: { b: 4, c: 1 } },
  ]);
  conflict({ $set: { "a.$[elem]": 5, "a.$[conflict]": 5 } }, [
    { "elem.c": { $gt: 6 } },
    { "conflict.b": { $lt: 1 } },
  ], { a: [{ c: 5, b: 1 }, { c: 8, b: 0 }] } as never);
  // `a.$[]` with an explicit index, and a field inside a written element.
  conflict({ $set: { "a.0.b": 1 }, $inc: { "a.$[].b": 1 } }, []);
  conflict({ $set: { "a.$[e].b": 1 }, $unset: { "a.$[f]": "" } }, [
    { "e.c": 1 },
    { "f.c": 1 },
  ]);
  // Different elements or different fields do not conflict.
  assert.deepEqual(
    apply({ $inc: { "a.$[x].b": 1, "a.$[y].b": 2 } }, doc, {
      arrayFilters: [{ "x.c": 1 }, { "y.c": 0 }],
    }),
    { a: [{ b: 5, c: 1 }, { b: 6, c: 0 }] },
  );
  assert.deepEqual(
    apply({ $inc: { "a.$[].b": 1, "a.$[].c": 1 } }, doc),
    { a: [{ b: 5, c: 2 }, { b: 5, c: 1 }] },
  );
  // Array filters test the document as it was before the update, as MongoDB
  // applies every path at once: y selects nothing although x writes c: 9.
  assert.deepEqual(
    apply({ $set: { "a.$[x].c": 9 }, $inc: { "a.$[y].b": 1 } }, doc, {
      arrayFilters: [{ "x.c": 0 }, { "y.c": 9 }],
    }),
    { a: [{ b: 4, c: 1 }, { b: 4, c: 9 }] },
  );
});

Deno.test("conflicts between operators and _id changes are compile errors", () => {
  compileThrows({ $set: { a: 1 }, $inc: { a: 1 } }, /conflicts/);
  compileThrows({ $pop: { a: 1 }, $push: { a: 1 } }, /conflicts/);
  compileThrows({ $mul: { "a.b": 2 }, $setOnInsert: { a: 1 } }, /conflicts/);
  compileThrows({ $set: { "a.$[].b": 1 }, $unset: { a: 1 } }, /conflicts/);
  assert.throws(
    () => compileUpdate({ $mul: { _id: 1 } }, { protect: ["_id"] }),
    { name: "TypeError", message: "Cannot update '_id': it is immutable" },
  );
  compileThrows(
    { $rename: { "a.$[]": "b" } },
    /\$rename cannot use the positional/,
  );
});
