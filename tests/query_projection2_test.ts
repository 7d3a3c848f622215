/** Projection operators `$slice` and `$elemMatch`: the Manual's examples. */

import assert from "node:assert/strict";
import { compileProjection, type Projection } from "../src/query/projection.ts";

const p = (spec: Record<string, unknown>) =>
  compileProjection(spec as unknown as Projection) as (
    doc: unknown,
  ) => Record<string, unknown>;

Deno.test("$elemMatch projection: the Manual's schools example", () => {
  const schools = [
    {
      _id: 1,
      zipcode: "63109",
      students: [
        { name: "john", school: 102, age: 10 },
        { name: "jess", school: 102, age: 11 },
        { name: "jeff", school: 108, age: 15 },
      ],
    },
    {
      _id: 2,
      zipcode: "63110",
      students: [
        { name: "ajax", school: 100, age: 7 },
        { name: "achilles", school: 100, age: 8 },
      ],
    },
    {
      _id: 3,
      zipcode: "63109",
      students: [
        { name: "ajax", school: 100, age: 7 },
        { name: "achilles", school: 100, age: 8 },
      ],
    },
  ];
  const proj = p({ students: { $elemMatch: { school: 102 } } });
  assert.deepEqual(schools.map(proj), [
    { _id: 1, students: [{ name: "john", school: 102, age: 10 }] },
    { _id: 2 },
    { _id: 3 },
  ]);
  const withAge = p({
    students: { $elemMatch: { school: 102, age: { $gt: 10 } } },
  });
  assert.deepEqual(withAge(schools[0]), {
    _id: 1,
    students: [{ name: "jess", school: 102, age: 11 }],
  });
  assert.deepEqual(
    p({ zipcode: 1, students: { $elemMatch: { $eq: 5 } } })({
      _id: 4,
      zipcode: "x",
      students: [4, 5],
    }),
    { _id: 4, zipcode: "x", students: [5] },
  );
});

Deno.test("$slice projection: the Manual's inventory example", () => {
  const doc = {
    _id: 1,
    item: "abc",
    details: { colors: ["blue", "red"], sizes: ["S", "M", "L"] },
    comments: [1, 2, 3, 4, 5],
  };
  assert.deepEqual(p({ comments: { $slice: 2 } })(doc), {
    ...doc,
    comments: [1, 2],
  });
  assert.deepEqual(p({ comments: { $slice: -2 } })(doc).comments, [4, 5]);
  assert.deepEqual(p({ comments: { $slice: [1, 2] } })(doc).comments, [2, 3]);
  assert.deepEqual(p({ comments: { $slice: [-3, 2] } })(doc).comments, [3, 4]);
  assert.deepEqual(
    p({ "details.colors": { $slice: 1 } })(doc),
    { ...doc, details: { colors: ["blue"], sizes: ["S", "M", "L"] } },
  );
  assert.deepEqual(doc.details.colors, ["blue", "red"]); // input untouched
  assert.deepEqual(p({ item: 1, comments: { $slice: 1 } })(doc), {
    _id: 1,
    item: "abc",
    comments: [1],
  });
  assert.deepEqual(p({ item: 0, comments: { $slice: 1 } })(doc), {
    _id: 1,
    details: doc.details,
    comments: [1],
  });
  assert.throws(() => p({ a: { $slice: [1, 0] } }), TypeError);
  assert.throws(() => p({ a: { $slice: "x" } }), TypeError);
  assert.throws(() => p({ a: { $foo: 1 } }), TypeError);
});
