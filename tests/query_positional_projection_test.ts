/**
 * The positional `.$` projection: the MongoDB Manual's examples through
 * `find()`, the errors MongoDB gives (as TypeErrors when the projection is
 * compiled), what happens to documents whose array the filter matched as a
 * whole, and a differential test against mingo's `.$` on random documents.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Query } from "mingo";
import { open } from "../mod.ts";
import { compileFilter, type Filter } from "../src/query/compile.ts";
import { compileProjection, type Projection } from "../src/query/projection.ts";

const TORTURE = Deno.permissions.querySync({
      name: "env",
      variable: "TETHER_TORTURE",
    }).state === "granted" && Deno.env.get("TETHER_TORTURE") === "1";

const STUDENTS = [
  { _id: 1, semester: 1, grades: [70, 87, 90] },
  { _id: 2, semester: 1, grades: [90, 88, 92] },
  { _id: 3, semester: 1, grades: [85, 100, 90] },
  { _id: 4, semester: 2, grades: [79, 85, 80] },
  { _id: 5, semester: 2, grades: [88, 88, 92] },
  { _id: 6, semester: 2, grades: [95, 90, 96] },
];

const STUDENTS_DOCS = [
  {
    _id: 7,
    semester: 3,
    grades: [
      { grade: 80, mean: 75, std: 8 },
      { grade: 85, mean: 90, std: 5 },
      { grade: 90, mean: 85, std: 3 },
    ],
  },
  {
    _id: 8,
    semester: 3,
    grades: [
      { grade: 92, mean: 88, std: 8 },
      { grade: 78, mean: 90, std: 5 },
      { grade: 88, mean: 85, std: 3 },
    ],
  },
];

Deno.test("Manual: grades.$ keeps the first grade >= 85 (array of values)", async () => {
  await using db = await open();
  const students = db.collection<Record<string, unknown>>("students");
  await students.insertMany(STUDENTS.map((d) => ({ ...d, _id: `${d._id}` })));
  const got = await students.find(
    { semester: 1, grades: { $gte: 85 } },
    { fields: { "grades.$": 1 }, sort: { _id: 1 } },
  ).toArray();
  // (_id values are strings here: a collection's keys are strings.)
  assert.deepEqual(got, [
    { _id: "1", grades: [87] },
    { _id: "2", grades: [90] },
    { _id: "3", grades: [85] },
  ]);
});

Deno.test("Manual: grades.$ on an array of documents, by a condition on grades.mean", async () => {
  await using db = await open();
  const students = db.collection<Record<string, unknown>>("students");
  await students.insertMany(
    STUDENTS_DOCS.map((d) => ({ ...d, _id: `${d._id}` })),
  );
  const got = await students.find(
    { "grades.mean": { $gt: 70 } },
    { fields: { "grades.$": 1 }, sort: { _id: 1 } },
  ).toArray();
  assert.deepEqual(got, [
    { _id: "7", grades: [{ grade: 80, mean: 75, std: 8 }] },
    { _id: "8", grades: [{ grade: 92, mean: 88, std: 8 }] },
  ]);
  // The Manual's "array field limitations": several conditions on one
  // element's fields go in one $elemMatch.
  const both = await students.find(
    { grades: { $elemMatch: { mean: { $gt: 70 }, grade: { $gt: 90 } } } },
    { fields: { "grades.$": 1 } },
  ).toArray();
  assert.deepEqual(both, [{
    _id: "8",
    grades: [{ grade: 92, mean: 88, std: 8 }],
  }]);
});

Deno.test("positional projection: nested path, other fields, _id: 0, $or, $and", () => {
  const doc = {
    _id: 1,
    name: "n",
    a: { b: [1, 2, 3], c: 9 },
    tags: ["x", "y"],
  };
  assert.deepEqual(
    compileProjection({ "a.b.$": 1 }, { "a.b": 2 })(doc),
    { _id: 1, a: { b: [2] } },
  );
  assert.deepEqual(
    compileProjection({ name: 1, "tags.$": 1, _id: 0 }, { tags: "y" })(doc),
    { name: "n", tags: ["y"] },
  );
  // $or: the first element some branch holds for.
  assert.deepEqual(
    compileProjection({ "a.b.$": 1 }, { $or: [{ "a.b": 3 }, { "a.b": 2 }] })(
      doc,
    ),
    { _id: 1, a: { b: [2] } },
  );
  // Two conditions on the array: the first element both hold for (MongoDB
  // leaves this undefined; mingo reads only the first operator).
  assert.deepEqual(
    compileProjection({ "g.$": 1 }, { g: { $gte: 85, $lt: 89 } })({
      _id: 2,
      g: [90, 88, 92],
    }),
    { _id: 2, g: [88] },
  );
  assert.deepEqual(
    compileProjection({ "g.$": 1 }, { $and: [{ g: { $gt: 1 } }, { g: 3 }] })({
      _id: 3,
      g: [2, 3],
    }),
    { _id: 3, g: [3] },
  );
  // A missing or non-array field is left out; the document is returned.
  const p = compileProjection({ "g.$": 1, k: 1 }, { g: 5 });
  assert.deepEqual(p({ _id: 4, g: 5, k: 1 }), { _id: 4, k: 1 });
  assert.deepEqual(p({ _id: 5, k: 1 }), { _id: 5, k: 1 });
  // The input is not changed.
  const input = { _id: 6, g: [4, 5] };
  assert.deepEqual(p(input), { _id: 6, g: [5] });
  assert.deepEqual(input, { _id: 6, g: [4, 5] });
});

Deno.test("positional projection: MongoDB's errors are TypeErrors at compile time", async () => {
  const bad: [Projection, Filter | undefined, RegExp][] = [
    [{ "a.$.b": 1 }, { "a.b": 1 }, /must end a path/],
    [{ "$": 1 }, { a: 1 }, /must end a path/],
    [{ "a.$": 1, "b.$": 1 }, { a: 1, b: 1 }, /only one positional/],
    [{ "a.$": 0 }, { a: 1 }, /exclusion/],
    [{ b: 0, "a.$": 1 }, { a: 1 }, /excludes 'b'/],
    [{ "a.$": 1, b: 0 }, { a: 1 }, /positional/],
    [{ "a.$": { $slice: 1 } } as never, { a: 1 }, /not a projection operator/],
    [{ "a.$": 1, b: { $elemMatch: { x: 1 } } }, { a: 1 }, /\$elemMatch/],
    [{ b: { $elemMatch: { x: 1 } }, "a.$": 1 }, { a: 1 }, /\$elemMatch/],
    [{ "a.$": 1, a: 1 }, { a: 1 }, /collides/],
    [{ "a.$": 1, "a.x": 1 }, { "a.x": 1 }, /collides/],
    [{ "a.$": 2 } as never, { a: 1 }, /expected 1 or true/],
    [{ "a.$": 1 }, undefined, /needs the query's filter/],
    [{ "a.$": 1 }, { b: 1 }, /needs a condition on 'a'/],
    [{ "a.b.$": 1 }, { "a.c": 1 }, /needs a condition on 'a.b'/],
    [{ "a.$": 1 }, { $expr: { $eq: [1, 1] } }, /needs a condition on 'a'/],
  ];
  for (const [proj, filter, re] of bad) {
    assert.throws(
      () => compileProjection(proj, filter),
      (e: unknown) => e instanceof TypeError && re.test(e.message),
      JSON.stringify(proj),
    );
  }
  // find() checks it before reading anything.
  await using db = await open();
  assert.throws(
    () => db.find({ b: 1 }, { fields: { "a.$": 1 } }),
    /needs a condition on 'a'/,
  );
  // Conditions inside $and/$or/$nor count; a path under the array counts.
  compileProjection({ "a.$": 1 }, { $and: [{ "a.x": 1 }] });
  compileProjection({ "a.$": 1 }, { $nor: [{ a: 1 }] });
});

Deno.test("positional projection: a whole-array match gives no position, a TypeError as in MongoDB", async () => {
  await using db = await open();
  await db.put("k", { _id: "k", g: [1, 2] });
  // MongoDB: "positional operator '.$' couldn't find a matching element".
  await assert.rejects(
    db.find({ g: [1, 2] }, { fields: { "g.$": 1 } }).toArray(),
    (e: unknown) =>
      e instanceof TypeError && /no element of the array/.test(e.message),
  );
  assert.throws(
    () => compileProjection({ "g.$": 1 }, { g: { $size: 2 } })({ g: [1, 2] }),
    TypeError,
  );
  // An element match works.
  assert.deepEqual(
    await db.find({ g: 2 }, { fields: { "g.$": 1, _id: 0 } }).toArray(),
    [{ g: [2] }],
  );
});

// ---------------------------------------------------------------------------
// Differential test against mingo's `.$`.
//
// MINGO DEVIATION (several operators in one condition): mingo reads only the
// first operator of `{ a: { $gte: 1, $lt: 3 } }` when it picks the element;
// each condition here has one operator.
// MINGO DEVIATION (non-array fields): mingo throws when the projected field
// is not an array; we leave it out (unit-tested above). `a` is always an
// array.
// MINGO DEVIATION ($elemMatch on scalars): mingo's document form matches
// scalar elements; arrays of objects get $elemMatch conditions only.
// MINGO DEVIATION (negations): for $ne/$nin/$not MongoDB records no position
// (an error), mingo and we take the first element the negation holds for;
// they are left out.
// MINGO DEVIATION (missing subfields): mingo drops elements without `x`
// when it resolves "a.x", shifting positions; every object has `x`.

const small = fc.integer({ min: 0, max: 5 });
const ints = fc.array(small, { maxLength: 5 });
const objs = fc.array(
  fc.record({ x: small, y: small }, { noNullPrototype: true }),
  {
    maxLength: 4,
  },
);
const opArb = fc.oneof(
  small,
  fc.record({ $eq: small }),
  fc.record({ $gt: small }),
  fc.record({ $gte: small }),
  fc.record({ $lt: small }),
  fc.record({ $lte: small }),
  fc.record({ $in: fc.array(small, { minLength: 1, maxLength: 3 }) }),
);
/** Conditions on `a`: on its values (scalars) or on the elements' fields. */
function condArb(objects: boolean): fc.Arbitrary<Filter> {
  return objects
    ? fc.oneof(
      opArb.map((c) => ({ "a.x": c })),
      fc.tuple(opArb, opArb).map(([x, y]) => ({ a: { $elemMatch: { x, y } } })),
    )
    : opArb.map((c) => ({ a: c }));
}
// Each run's documents all hold arrays of numbers or all arrays of objects.
const caseArb = fc.boolean().chain((objects) =>
  fc.tuple(
    fc.array(
      fc.record({ a: objects ? objs : ints, s: small }, {
        noNullPrototype: true,
      }),
      { maxLength: 6 },
    ),
    fc.tuple(
      fc.oneof(
        condArb(objects),
        fc.tuple(condArb(objects), condArb(objects)).map(([p, q]) => ({
          $or: [p, q],
        })),
      ),
      fc.option(opArb.map((c) => ({ s: c })), { nil: undefined }),
    ).map(([f, s]) => ({ ...f, ...s }) as Filter),
  )
);
const projArb = fc.record({
  "a.$": fc.constant(1 as const),
  s: fc.constantFrom(undefined, 1 as const),
  _id: fc.constantFrom(undefined, 0 as const),
}).map((p) =>
  Object.fromEntries(
    Object.entries(p).filter(([, v]) => v !== undefined),
  ) as Projection
);

Deno.test("differential: the positional .$ agrees with mingo on random documents", () => {
  fc.assert(
    fc.property(
      caseArb,
      projArb,
      ([raw, filter], proj) => {
        const docs = raw.map((d, i) => ({ _id: i, ...d }));
        const match = compileFilter(filter);
        const project = compileProjection(proj, filter);
        // Filters are compared in query_mingo_test.ts; here mingo projects
        // the documents our filter matched.
        const matched = docs.filter((d) => match(d));
        const ours = matched.map(project);
        const theirs = new Query(filter).find(structuredClone(matched), proj)
          .all();
        assert.deepStrictEqual(ours, theirs);
      },
    ),
    { seed: 20261205, numRuns: TORTURE ? 20000 : 400 },
  );
});
