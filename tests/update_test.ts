/**
 * Tests of the update compiler: unit tests of every operator and error, and a
 * differential property test against mingo's updater.
 *
 * Where mingo 7 deviates from MongoDB, `compileUpdate` follows MongoDB and the
 * generators avoid the narrow case; each exclusion is marked
 * `MINGO DEVIATION` with what mingo does differently.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { update as mingoUpdate } from "mingo/updater";
import { compileUpdate, type Update } from "../src/query/update.ts";

function apply(update: Update, doc: unknown, protect?: string[]): unknown {
  const u = protect === undefined
    ? compileUpdate(update)
    : compileUpdate(update, { protect });
  return u(doc).doc;
}

function compileThrows(
  update: unknown,
  message: string | RegExp,
  error: typeof TypeError | typeof RangeError = TypeError,
): void {
  assert.throws(() => compileUpdate(update as Update), (e: unknown) => {
    assert(e instanceof error, String(e));
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function applyThrows(update: Update, doc: unknown, message: string): void {
  const u = compileUpdate(update);
  assert.throws(() => u(doc), { name: "TypeError", message });
}

Deno.test("a replacement document replaces the document, keeping protected fields", () => {
  assert.deepEqual(apply({ age: 30 }, { name: "Ann", age: 29 }), { age: 30 });
  assert.deepEqual(apply({ a: { x: 1 } }, { a: { y: 2, x: 0 }, b: 1 }), {
    a: { x: 1 },
  });
  const keep = compileUpdate({ b: 2 }, { protect: ["_id"] });
  assert.deepEqual(keep({ _id: "k", a: 1 }).doc, { _id: "k", b: 2 });
  // An empty replacement empties the document but for its protected fields.
  const r = compileUpdate({}, { protect: ["_id"] })({ _id: "k", a: 1 });
  assert(r.changed);
  assert.deepEqual(r.doc, { _id: "k" });
  assert(!compileUpdate({})({}).changed);
});

Deno.test("replacement: dotted keys and bad values are rejected", () => {
  compileThrows(
    { "a.b": 1 },
    /^Cannot compile update at 'a\.b': a replacement document's field names must not hold '\.'/,
  );
  compileThrows(
    { a: undefined },
    "Cannot compile update at 'a': the replacement value needs a document value, got undefined",
  );
  compileThrows({ a: { $x: 1 } }, /field names must not start with '\$'/);
});

Deno.test("replacement: protected fields may only be repeated unchanged", () => {
  const u = compileUpdate({ _id: 1, a: 2 }, { protect: ["_id"] });
  assert.deepEqual(u({ _id: 1, a: 1 }).doc, { _id: 1, a: 2 });
  assert.throws(() => u({ _id: 2, a: 1 }), {
    name: "TypeError",
    message: "Cannot update '_id': it is immutable",
  });
  assert.throws(() => u({ a: 1 }), TypeError);
});

Deno.test("applying never mutates the input; the result is a new object", () => {
  const doc = { a: { b: [1, 2] }, c: 1 };
  const before = structuredClone(doc);
  const u = compileUpdate({
    $push: { "a.b": 3 },
    $set: { "x.y": 1 },
    $unset: { c: 1 },
  });
  const r = u(doc);
  assert.deepEqual(doc, before);
  assert.deepEqual(r.doc, { a: { b: [1, 2, 3] }, x: { y: 1 } });
  const noop = compileUpdate({ $unset: { zzz: 1 } })(doc);
  assert(!noop.changed);
  assert.notEqual(noop.doc, doc);
  assert.deepEqual(noop.doc, doc);
  // The operand is copied, not shared.
  const value = { list: [1] };
  const set = compileUpdate({ $set: { v: value } });
  const out = set({}).doc as { v: { list: number[] } };
  out.v.list.push(2);
  assert.deepEqual(value, { list: [1] });
});

Deno.test("changed is false for no-op updates", () => {
  assert(!compileUpdate({ $set: { a: 1 } })({ a: 1 }).changed);
  assert(!compileUpdate({ $max: { a: 0 } })({ a: 1 }).changed);
  assert(!compileUpdate({ $pull: { a: 9 } })({ a: [1] }).changed);
  assert(!compileUpdate({ $addToSet: { a: 1 } })({ a: [1] }).changed);
  assert(!compileUpdate({ $rename: { x: "y" } })({ a: 1 }).changed);
  assert(!compileUpdate({ a: new Date(5) })({ a: new Date(5) }).changed);
  assert(compileUpdate({ $set: { a: 1 } })({ a: "1" }).changed);
  assert(compileUpdate({ $inc: { a: 0 } })({}).changed);
});

Deno.test("$set: dot paths, intermediate objects, array indexes", () => {
  assert.deepEqual(apply({ $set: { "a.b.c": 1 } }, {}), { a: { b: { c: 1 } } });
  assert.deepEqual(apply({ $set: { "a.b": 2 } }, { a: { c: 1 } }), {
    a: { c: 1, b: 2 },
  });
  assert.deepEqual(apply({ $set: { "a.1": 9 } }, { a: [1, 2, 3] }), {
    a: [1, 9, 3],
  });
  assert.deepEqual(apply({ $set: { "a.4": 9 } }, { a: [1] }), {
    a: [1, null, null, null, 9],
  });
  assert.deepEqual(apply({ $set: { "a.0.b": 9 } }, { a: [{ b: 1, c: 2 }] }), {
    a: [{ b: 9, c: 2 }],
  });
  // A missing parent of a numeric segment is created as an object.
  assert.deepEqual(apply({ $set: { "a.0": 1 } }, {}), { a: { "0": 1 } });
  const at = new Date(1000);
  const r = apply({ $set: { at } }, {}) as { at: Date };
  assert(r.at instanceof Date && r.at.getTime() === 1000 && r.at !== at);
});

Deno.test("$set: new fields are created in path order, like MongoDB 5+", () => {
  const r = apply({ $set: { b: 1, a: 1, "c.2": 1, "c.10": 1 } }, { z: 0 });
  assert.deepEqual(Object.keys(r as object), ["z", "a", "b", "c"]);
  assert.deepEqual(Object.keys((r as { c: object }).c), ["2", "10"]);
});

Deno.test("$set: creating a field in a scalar, null or array throws", () => {
  applyThrows(
    { $set: { "a.b": 1 } },
    { a: 5 },
    "Cannot apply update at 'a.b': $set cannot create field 'b' in number 5",
  );
  applyThrows(
    { $set: { "a.b": 1 } },
    { a: null },
    "Cannot apply update at 'a.b': $set cannot create field 'b' in null",
  );
  applyThrows(
    { $set: { "a.b": 1 } },
    { a: [1] },
    "Cannot apply update at 'a.b': $set cannot create field 'b' in an array",
  );
  applyThrows(
    { $set: { a: 1 } },
    [1],
    "Cannot apply update: the document is array, not an object",
  );
});

Deno.test("$set: invalid operands and field names are compile errors", () => {
  compileThrows(
    { $set: { a: undefined } },
    "Cannot compile update at 'a': $set needs a document value, got undefined",
  );
  compileThrows(
    { $set: { a: { b: [1, () => 1] } } },
    "Cannot compile update at 'a': $set needs a document value, got function at 'b.1'",
  );
  compileThrows(
    { $set: { a: NaN } },
    "Cannot compile update at 'a': $set needs a document value, got number NaN",
  );
  compileThrows({ $set: { a: new Date(NaN) } }, /valid Date/);
  compileThrows({ $set: { a: /x/ } }, /got RegExp/);
  compileThrows(
    { $set: { $x: 1 } },
    /^Cannot compile update at '\$x': \$set field names must not start with '\$'/,
  );
  compileThrows({ $set: { "$.a": 1 } }, /needs an array field before it/);
  compileThrows({ $set: { "a.$[X]": 1 } }, /must not start with '\$'/);
  compileThrows({ $set: { "$[]": 1 } }, /needs an array field before it/);
  compileThrows({ $set: { a: { $inc: 1 } } }, /field name '\$inc'/);
  compileThrows(
    { $set: { "a..b": 1 } },
    "Cannot compile update at 'a..b': $set path has an empty segment",
  );
  compileThrows({ $set: { "": 1 } }, /empty segment/);
});

Deno.test("$unset: removes fields; array elements become null", () => {
  assert.deepEqual(apply({ $unset: { a: "" } }, { a: 1, b: 2 }), { b: 2 });
  assert.deepEqual(apply({ $unset: { "a.b": 1 } }, { a: { b: 1, c: 2 } }), {
    a: { c: 2 },
  });
  assert.deepEqual(apply({ $unset: { "a.1": 1 } }, { a: [1, 2, 3] }), {
    a: [1, null, 3],
  });
  // Missing paths, paths through scalars and arrays: no-ops.
  for (const doc of [{}, { a: 5 }, { a: null }, { a: [1] }]) {
    const r = compileUpdate({ $unset: { "a.b": true } })(doc);
    assert(!r.changed);
    assert.deepEqual(r.doc, doc);
  }
  assert.deepEqual(apply({ $unset: { "a.5": 1 } }, { a: [1] }), { a: [1] });
});

Deno.test("$inc: adds; missing starts at 0; non-numbers throw", () => {
  assert.deepEqual(apply({ $inc: { a: 2 } }, { a: 1 }), { a: 3 });
  assert.deepEqual(apply({ $inc: { a: -1.5 } }, {}), { a: -1.5 });
  assert.deepEqual(apply({ $inc: { "a.b": 1 } }, { a: {} }), { a: { b: 1 } });
  assert.deepEqual(apply({ $inc: { "a.1": 1 } }, { a: [1, 2] }), {
    a: [1, 3],
  });
  applyThrows(
    { $inc: { age: 1 } },
    { age: "x" },
    `Cannot apply update at 'age': $inc needs a number field, got string "x"`,
  );
  applyThrows(
    { $inc: { a: 1 } },
    { a: null },
    "Cannot apply update at 'a': $inc needs a number field, got null",
  );
  applyThrows(
    { $inc: { a: 1 } },
    { a: new Date(0) },
    "Cannot apply update at 'a': $inc needs a number field, got Date",
  );
  compileThrows(
    { $inc: { age: "x" } },
    `Cannot compile update at 'age': $inc needs a number, got string "x"`,
  );
  compileThrows(
    { $inc: { age: Infinity } },
    "Cannot compile update at 'age': $inc needs a finite number, got Infinity",
    RangeError,
  );
});

Deno.test("$min and $max compare in BSON order; missing is set", () => {
  assert.deepEqual(apply({ $min: { a: 1 } }, { a: 5 }), { a: 1 });
  assert.deepEqual(apply({ $min: { a: 9 } }, { a: 5 }), { a: 5 });
  assert.deepEqual(apply({ $max: { a: 9 } }, { a: 5 }), { a: 9 });
  assert.deepEqual(apply({ $max: { a: 1 } }, { a: 5 }), { a: 5 });
  assert.deepEqual(apply({ $min: { a: 1 } }, {}), { a: 1 });
  assert.deepEqual(apply({ $max: { a: 1 } }, {}), { a: 1 });
  // null < numbers < strings
  assert.deepEqual(apply({ $min: { a: null } }, { a: 5 }), { a: null });
  assert.deepEqual(apply({ $max: { a: "x" } }, { a: 5 }), { a: "x" });
  const r = apply({ $max: { d: new Date(9) } }, { d: new Date(5) }) as {
    d: Date;
  };
  assert.equal(r.d.getTime(), 9);
  compileThrows({ $min: { a: undefined } }, /\$min needs a document value/);
});

Deno.test("$push: appends; $each; missing creates; non-arrays throw", () => {
  assert.deepEqual(apply({ $push: { a: 3 } }, { a: [1, 2] }), { a: [1, 2, 3] });
  assert.deepEqual(apply({ $push: { a: [3] } }, { a: [1] }), { a: [1, [3]] });
  assert.deepEqual(apply({ $push: { a: { $each: [3, 4] } } }, { a: [1] }), {
    a: [1, 3, 4],
  });
  assert.deepEqual(apply({ $push: { a: { $each: [] } } }, {}), { a: [] });
  assert.deepEqual(apply({ $push: { "a.b": 1 } }, {}), { a: { b: [1] } });
  assert.deepEqual(apply({ $push: { a: { x: 1 } } }, {}), { a: [{ x: 1 }] });
  applyThrows(
    { $push: { a: 1 } },
    { a: { b: 1 } },
    "Cannot apply update at 'a': $push needs an array field, got object",
  );
  applyThrows({ $push: { a: 1 } }, { a: null }, /got null/ as never);
  compileThrows(
    { $push: { a: { $each: 1 } } },
    "Cannot compile update at 'a': $push '$each' needs an array, got number 1",
  );
  compileThrows(
    { $push: { a: { $each: [1], $slice: 2.5 } } },
    "Cannot compile update at 'a': $push '$slice' needs a whole number, got number 2.5",
  );
  compileThrows({ $push: { a: { $sort: 1 } } }, /field name '\$sort'/);
});

Deno.test("$addToSet: appends missing values only", () => {
  assert.deepEqual(apply({ $addToSet: { a: 2 } }, { a: [1, 2] }), {
    a: [1, 2],
  });
  assert.deepEqual(apply({ $addToSet: { a: 3 } }, { a: [1, 2] }), {
    a: [1, 2, 3],
  });
  assert.deepEqual(
    apply({ $addToSet: { a: { $each: [1, 3, 3, 4] } } }, { a: [1] }),
    { a: [1, 3, 4] },
  );
  assert.deepEqual(apply({ $addToSet: { a: { x: 1 } } }, { a: [{ x: 1 }] }), {
    a: [{ x: 1 }],
  });
  // Field order matters for objects (as in MongoDB).
  assert.deepEqual(
    apply({ $addToSet: { a: { y: 1, x: 1 } } }, { a: [{ x: 1, y: 1 }] }),
    { a: [{ x: 1, y: 1 }, { y: 1, x: 1 }] },
  );
  assert.deepEqual(apply({ $addToSet: { a: 1 } }, {}), { a: [1] });
  applyThrows(
    { $addToSet: { a: 1 } },
    { a: 5 },
    "Cannot apply update at 'a': $addToSet needs an array field, got number 5",
  );
});

Deno.test("$pull: by value, by operator condition, by query", () => {
  assert.deepEqual(apply({ $pull: { a: 2 } }, { a: [1, 2, 3, 2] }), {
    a: [1, 3],
  });
  assert.deepEqual(apply({ $pull: { a: [1, 2] } }, { a: [[1, 2], [2, 1]] }), {
    a: [[2, 1]],
  });
  assert.deepEqual(
    apply({ $pull: { scores: { $gte: 6 } } }, { scores: [5, 6, 7, 1] }),
    { scores: [5, 1] },
  );
  assert.deepEqual(
    apply({ $pull: { a: { $in: ["x", "z"] } } }, { a: ["x", "y", "z"] }),
    { a: ["y"] },
  );
  assert.deepEqual(
    apply(
      { $pull: { items: { qty: { $lt: 2 } } } },
      { items: [{ qty: 1 }, { qty: 5 }, 1, { sku: "a" }] },
    ),
    { items: [{ qty: 5 }, 1, { sku: "a" }] },
  );
  // A query applies to whole elements: extra fields do not matter.
  assert.deepEqual(
    apply({ $pull: { r: { score: 8, item: "B" } } }, {
      r: [{ item: "B", score: 8, x: 1 }, { item: "B", score: 7 }],
    }),
    { r: [{ item: "B", score: 7 }] },
  );
  // An empty query removes every object element.
  assert.deepEqual(apply({ $pull: { a: {} } }, { a: [{ x: 1 }, 2] }), {
    a: [2],
  });
  assert.deepEqual(
    apply({ $pull: { a: { $or: [{ x: 1 }, { x: 2 }] } } }, {
      a: [{ x: 1 }, { x: 2 }, { x: 3 }],
    }),
    { a: [{ x: 3 }] },
  );
  assert.deepEqual(apply({ $pull: { a: /^b/ } }, { a: ["ab", "ba", "bb"] }), {
    a: ["ab"],
  });
  assert.deepEqual(apply({ $pull: { "a.b": 1 } }, { a: { b: [1, 2] } }), {
    a: { b: [2] },
  });
  // Missing fields: no-op.
  assert(!compileUpdate({ $pull: { a: 1 } })({}).changed);
  applyThrows(
    { $pull: { a: 1 } },
    { a: 1 },
    "Cannot apply update at 'a': $pull needs an array field, got number 1",
  );
  compileThrows(
    { $pull: { a: { $gtx: 1 } } },
    /^Cannot compile update at 'a': invalid \$pull condition \(.*unknown operator '\$gtx'\)$/,
  );
});

Deno.test("$rename: moves a field; missing source is a no-op", () => {
  assert.deepEqual(apply({ $rename: { a: "b" } }, { a: 1, c: 2 }), {
    c: 2,
    b: 1,
  });
  assert.deepEqual(apply({ $rename: { a: "b" } }, { a: 1, b: 2 }), { b: 1 });
  assert.deepEqual(apply({ $rename: { "a.x": "b.y" } }, { a: { x: 1 } }), {
    a: {},
    b: { y: 1 },
  });
  assert.deepEqual(apply({ $rename: { a: "b" } }, { c: 1 }), { c: 1 });
  applyThrows(
    { $rename: { "a.0": "b" } },
    { a: [1] },
    "Cannot apply update at 'a.0': $rename cannot work on a field inside an array",
  );
  applyThrows(
    { $rename: { a: "b.c" } },
    { a: 1, b: 2 },
    "Cannot apply update at 'b.c': $rename cannot create field 'c' in number 2",
  );
  compileThrows(
    { $rename: { a: 1 } },
    "Cannot compile update at 'a': $rename needs a field path string, got number 1",
  );
  compileThrows(
    { $rename: { a: "a" } },
    "Cannot compile update at 'a': $rename conflicts with $rename at 'a'",
  );
  compileThrows(
    { $rename: { a: "a.b" } },
    "Cannot compile update at 'a.b': $rename conflicts with $rename at 'a'",
  );
  compileThrows({ $rename: { a: "$b" } }, /must not start with '\$'/);
});

Deno.test("malformed updates are compile errors", () => {
  compileThrows(
    { $set: { a: 1 }, b: 2 },
    "Cannot compile update: an update mixes operators and fields ('$set' with 'b'); put fields under '$set'",
  );
  compileThrows(
    { $foo: { a: 1 } },
    "Cannot compile update: unknown update operator '$foo'",
  );
  // An empty operator is a no-op, as in MongoDB 5.0 and later.
  assert(!compileUpdate({ $set: {} })({ a: 1 }).changed);
  compileThrows(
    { $set: 1 },
    "Cannot compile update: $set needs an object of fields, got number 1",
  );
  compileThrows({ $set: [] }, /got array/);
  compileThrows(
    null,
    "Cannot compile update: an update must be a plain object, got null",
  );
  compileThrows([], /plain object, got array/);
});

Deno.test("conflicting paths are compile errors", () => {
  compileThrows(
    { $set: { a: 1 }, $inc: { "a.b": 1 } },
    "Cannot compile update at 'a.b': $inc conflicts with $set at 'a'",
  );
  compileThrows(
    { $set: { "a.b": 1 }, $unset: { a: 1 } },
    "Cannot compile update at 'a': $unset conflicts with $set at 'a.b'",
  );
  compileThrows({ $set: { a: 1 }, $inc: { a: 1 } }, /conflicts/);
  compileThrows({ $set: { a: 1, "a.b": 1 } }, /conflicts/);
  compileThrows({ $set: { b: 1 }, $rename: { a: "b" } }, /conflicts/);
  // Shared prefixes that are not whole segments do not conflict.
  assert.deepEqual(apply({ $set: { a: 1 }, $inc: { ab: 1 } }, {}), {
    a: 1,
    ab: 1,
  });
  assert.deepEqual(apply({ $set: { "a.b": 1 }, $inc: { "a.c": 1 } }, {}), {
    a: { b: 1, c: 1 },
  });
});

Deno.test("protected fields cannot be touched by operators", () => {
  const msg = {
    name: "TypeError",
    message: "Cannot update '_id': it is immutable",
  };
  const protect = { protect: ["_id"] };
  assert.throws(() => compileUpdate({ $set: { _id: 1 } }, protect), msg);
  assert.throws(() => compileUpdate({ $unset: { _id: 1 } }, protect), msg);
  assert.throws(() => compileUpdate({ $inc: { "_id.n": 1 } }, protect), msg);
  assert.throws(() => compileUpdate({ $rename: { a: "_id" } }, protect), msg);
  assert.throws(() => compileUpdate({ $rename: { _id: "a" } }, protect), msg);
  assert.deepEqual(
    compileUpdate({ $set: { _idx: 1 } }, protect)({ _id: 1 }).doc,
    { _id: 1, _idx: 1 },
  );
});

Deno.test("__proto__ is an ordinary field", () => {
  const r = apply({ $set: { "__proto__.x": 1 } }, {}) as Record<
    string,
    unknown
  >;
  assert.equal(Object.getPrototypeOf(r), Object.prototype);
  assert.deepEqual(Object.keys(r), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

// ---------------------------------------------------------------------------
// Differential test against mingo

const DEFAULT_SEED = 20240612;
const SEED = Deno.permissions.querySync({
    name: "env",
    variable: "UPDATE_SEED",
  }).state === "granted"
  ? Number(Deno.env.get("UPDATE_SEED") ?? DEFAULT_SEED)
  : DEFAULT_SEED;

const scalar = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(0.5, -2.5),
  fc.constantFrom("", "a", "b"),
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(0, 1000).map((t) => new Date(t)),
);
// MINGO DEVIATION (object equality): mingo compares objects ignoring field
// order; MongoDB (and we) compare them in order. Objects always have their
// fields in the order x, y.
const small: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  {
    weight: 1,
    arbitrary: fc.record({ x: scalar, y: scalar }, {
      requiredKeys: ["x"],
      noNullPrototype: true,
    }),
  },
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: small },
  { weight: 2, arbitrary: fc.array(small, { maxLength: 4 }) },
  {
    weight: 2,
    arbitrary: fc.record({ x: small, y: small }, {
      requiredKeys: [],
      noNullPrototype: true,
    }),
  },
);
const doc = fc.record({ a: value, b: value, c: value, d: value, e: value }, {
  requiredKeys: [],
  noNullPrototype: true,
});

const field = fc.constantFrom("a", "b", "c", "d", "e");
const path = fc.oneof(
  { weight: 3, arbitrary: field },
  {
    weight: 2,
    arbitrary: fc.tuple(field, fc.constantFrom("x", "y")).map(([f, s]) =>
      `${f}.${s}`
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(field, fc.constantFrom("0", "2")).map(([f, s]) =>
      `${f}.${s}`
    ),
  },
);

// Each arbitrary yields [operator, path, operand].
type Clause = [string, string, unknown];
const clause: fc.Arbitrary<Clause> = fc.oneof(
  fc.tuple(fc.constant("$set"), path, value),
  fc.tuple(fc.constant("$unset"), path, fc.constant("")),
  fc.tuple(fc.constant("$inc"), path, fc.integer({ min: -2, max: 2 })),
  fc.tuple(fc.constant("$min"), path, small),
  fc.tuple(fc.constant("$max"), path, small),
  fc.tuple(
    fc.constant("$push"),
    path,
    fc.oneof(
      small,
      fc.array(small, { maxLength: 2 }).map(($each) => ({ $each })),
    ),
  ),
  fc.tuple(
    fc.constant("$addToSet"),
    path,
    fc.oneof(
      small,
      fc.array(small, { maxLength: 2 }).map(($each) => ({ $each })),
    ),
  ),
  fc.tuple(
    fc.constant("$pull"),
    path,
    fc.oneof(
      scalar,
      fc.tuple(
        fc.constantFrom("$gte", "$lt", "$eq", "$ne"),
        fc.integer({ min: -3, max: 3 }),
      )
        .map(([op, v]) => ({ [op]: v })),
      fc.integer({ min: -3, max: 3 }).map((v) => ({ x: { $gte: v } })),
    ),
  ),
  fc.tuple(fc.constant("$rename"), field, field),
);

function buildUpdate(clauses: readonly Clause[]): Update | undefined {
  const out: Record<string, Record<string, unknown>> = {};
  const paths: string[][] = [];
  for (const [op, p, operand] of clauses) {
    const touched = op === "$rename" ? [p, operand as string] : [p];
    for (const t of touched) {
      const segs = t.split(".");
      for (const other of paths) {
        const n = Math.min(segs.length, other.length);
        if (segs.slice(0, n).join(".") === other.slice(0, n).join(".")) {
          return undefined; // conflicting paths: not a valid update
        }
      }
      paths.push(segs);
    }
    (out[op] ??= {})[p] = operand;
  }
  return out;
}

/** Whether our updater throws for this document (a MongoDB error). */
function tryOurs(update: Update, d: unknown): { doc: unknown } | Error {
  try {
    return compileUpdate(update)(d);
  } catch (e) {
    return e as Error;
  }
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return "date";
  return typeof v;
}

/** Walks a path without array fan-out; reports what lies along it. */
function along(d: unknown, p: string): unknown[] {
  const out: unknown[] = [];
  let cur = d;
  for (const seg of p.split(".")) {
    if (cur === undefined) break;
    if (Array.isArray(cur)) {
      cur = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined;
    } else if (typeOf(cur) === "object") {
      cur = (cur as Record<string, unknown>)[seg];
    } else cur = undefined;
    out.push(cur);
  }
  return out;
}

/** Excludes the narrow cases where mingo deviates from MongoDB. */
function mingoDeviates(clauses: readonly Clause[], d: unknown): boolean {
  for (const [op, p, operand] of clauses) {
    const segs = p.split(".");
    const vals = along(d, p);
    const leaf = vals.length === segs.length
      ? vals[vals.length - 1]
      : undefined;
    // MINGO DEVIATION (paths through arrays): mingo treats a non-numeric
    // segment on an array as "every element" (and creates nothing), and its
    // $unset of an array element splices instead of leaving null. Any clause
    // whose path meets an array before its end is excluded.
    for (let i = 0; i < vals.length - 1; i++) {
      if (Array.isArray(vals[i])) return true;
    }
    if (op === "$unset" && Array.isArray(d) === false) {
      const parent = segs.length > 1 ? vals[segs.length - 2] : undefined;
      if (Array.isArray(parent)) return true;
    }
    // MINGO DEVIATION (padding): mingo pads arrays with null only for $set.
    // MINGO DEVIATION (numeric segments on missing parents): mingo creates an
    // array for "a.0" when a is missing; MongoDB creates {"0": ...}.
    if (/^\d+$/.test(segs[segs.length - 1] as string) && segs.length > 1) {
      return true;
    }
    // MINGO DEVIATION (paths through scalars and null): MongoDB throws
    // "Cannot create field"; mingo silently does nothing or replaces null.
    // MINGO DEVIATION (type errors): $inc on a non-number, $push/$addToSet/
    // $pull on a non-array throw in MongoDB; mingo skips them silently.
    // Both are checked separately: if we throw, the case is excluded.
    if ((op === "$min" || op === "$max") && leaf !== undefined) {
      // MINGO DEVIATION ($min/$max across types and arrays): mingo's compare
      // descends into arrays ([1, 5] < 3 when any element is) and sorts
      // object keys; MongoDB compares whole values in BSON order. Only
      // same-typed scalars are compared.
      if (typeOf(leaf) !== typeOf(operand)) return true;
      if (["array", "object"].includes(typeOf(leaf))) return true;
    }
    if (op === "$addToSet" && Array.isArray(leaf)) {
      // MINGO DEVIATION ($addToSet on an array with duplicates): mingo also
      // removes the duplicates already there; MongoDB leaves them.
      const seen = new Set(leaf.map((v) => JSON.stringify(v)));
      if (seen.size !== leaf.length) return true;
    }
    if (op === "$pull" && Array.isArray(leaf)) {
      // MINGO DEVIATION ($pull by value): mingo compares objects ignoring
      // field order; generated objects already share an order. $pull with an
      // operator such as {$gte: 1} descends into array elements that are
      // arrays in MongoDB ([1, 2] matches {$gte: 2}); mingo does not.
      // MINGO DEVIATION ($pull by value on nested arrays): MongoDB removes
      // elements equal to the value ({$pull: {a: 1}} keeps [1]); mingo
      // matches query-style and removes the arrays containing it.
      if (leaf.some(Array.isArray)) return true;
      // MINGO DEVIATION ($pull with a query on non-object elements): MongoDB
      // applies a query such as {x: {$gte: 0}} to object elements only;
      // mingo also removes scalars (0 is pulled by {x: {$gte: 0}}).
      if (
        typeOf(operand) === "object" &&
        !Object.keys(operand as object)[0]?.startsWith("$") &&
        leaf.some((v) => typeOf(v) !== "object")
      ) return true;
    }
  }
  return false;
}

Deno.test("differential: compileUpdate agrees with mingo's updater", () => {
  let compared = 0;
  const stats = { conflict: 0, error: 0, deviation: 0 };
  fc.assert(
    fc.property(
      doc,
      fc.array(clause, { minLength: 1, maxLength: 3 }),
      (d, clauses) => {
        const update = buildUpdate(clauses);
        if (update === undefined) return void stats.conflict++;
        const ours = tryOurs(update, d);
        // MongoDB errors (type mismatches, creating fields in scalars) are
        // silent no-ops in mingo: see mingoDeviates.
        if (ours instanceof Error) {
          assert(ours instanceof TypeError, String(ours));
          return void stats.error++;
        }
        if (mingoDeviates(clauses, d)) return void stats.deviation++;
        const theirs = structuredClone(d) as Record<string, unknown>;
        mingoUpdate(theirs, update as never);
        assert.deepStrictEqual(ours.doc, theirs);
        compared++;
      },
    ),
    { seed: SEED, numRuns: 15000 },
  );
  assert(
    compared > 2500,
    `only ${compared} cases compared: ${JSON.stringify(stats)}`,
  );
});
